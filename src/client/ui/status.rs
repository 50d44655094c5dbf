//! The two one-line bars: the top bar (tenants, views, the ops view, search) and the status
//! bar (connection state, engine URL, who is signed in, tenant, this month's spend once a
//! `spend.notice` came, and the latest notice).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::cells;
use super::theme;
use crate::client::app::inbox::View;
use crate::client::app::{App, Conn, Screen, Tone};
use crate::client::sanitize::sanitize;
use crate::client::text;

fn short(view: View) -> &'static str {
    match view {
        View::Lost => "Lost",
        v => v.label(),
    }
}

pub struct TopBar<'a> {
    pub app: &'a App,
}

impl Widget for TopBar<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let mut spans = Vec::new();
        if area.width >= 100 {
            spans.push(Span::styled(" shortbox ", theme::title()));
        }
        if let Some(p) = app.principal().filter(|p| p.tenants.len() > 1) {
            for t in &p.tenants {
                let current = app.tenant.as_deref() == Some(t.id.as_str());
                let style = if current {
                    theme::bold().add_modifier(Modifier::REVERSED)
                } else {
                    theme::dim()
                };
                spans.push(Span::styled(format!(" {} ", sanitize(&t.name)), style));
                if let Some(n) = app.tenant_news.get(&t.id).filter(|n| **n > 0) {
                    spans.push(Span::styled(format!("{n}"), theme::warn()));
                }
            }
            spans.push(Span::styled(" │", theme::dim()));
        } else if let Some(name) = app.tenant_name() {
            spans.push(Span::styled(
                format!(" {} │", sanitize(name)),
                theme::bold(),
            ));
        }
        for (i, v) in View::EVERY.iter().enumerate() {
            if app.session.is_some() && app.tenant.is_none() {
                // A login without an inbox (ops): no views to switch.
                break;
            }
            let current = app.screen == Screen::Inbox && app.inbox.view == *v;
            spans.push(Span::styled(format!(" {}", i + 1), theme::key()));
            let style = if current {
                theme::bold().add_modifier(Modifier::UNDERLINED)
            } else {
                Style::new()
            };
            spans.push(Span::styled(format!(" {}", short(*v)), style));
        }
        if app.has_ops() {
            spans.push(Span::styled(" 6", theme::key()));
            let style = if app.screen == Screen::Ops {
                theme::bold().add_modifier(Modifier::UNDERLINED)
            } else {
                Style::new()
            };
            spans.push(Span::styled(" Ops", style));
            if !app.ops.queue.is_empty() {
                spans.push(Span::styled(
                    format!(" {}", app.ops.queue.len()),
                    theme::warn(),
                ));
            }
        }
        if app.screen == Screen::Ops {
            render_cut(spans, area, buf);
            return;
        }
        spans.push(Span::styled(" │ ", theme::dim()));
        match (&app.search, &app.inbox.query) {
            (Some(q), _) => {
                spans.push(Span::styled("/ ", theme::key()));
                spans.push(Span::styled(format!("{}▏", sanitize(q)), theme::bold()));
                spans.push(Span::styled("  Enter search · Esc cancel", theme::dim()));
            }
            (None, Some(q)) => {
                spans.push(Span::styled("/ ", theme::key()));
                spans.push(Span::styled(format!("“{}”", sanitize(q)), theme::bold()));
            }
            (None, None) => spans.push(Span::styled("/ search", theme::dim())),
        }
        render_cut(spans, area, buf);
    }
}

/// "spend ≥ 80%" or "spend limit reached", for the tenant on screen this month (UTC).
fn spend_fact(app: &App) -> Option<String> {
    let d = app.spend.get(app.tenant.as_deref()?)?;
    let month = app
        .now
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y-%m")
        .to_string();
    if d.month != month {
        return None;
    }
    Some(if d.percent >= 100 {
        "spend limit reached".to_string()
    } else {
        format!("spend ≥ {}%", d.percent)
    })
}

fn render_cut(spans: Vec<Span<'_>>, area: Rect, buf: &mut Buffer) {
    let width = area.width as usize;
    let mut used = 0;
    let mut out = Vec::new();
    for s in spans {
        let w = text::width(&s.content);
        if used + w > width {
            out.push(Span::styled(
                text::truncate(&s.content, width - used).into_owned(),
                s.style,
            ));
            break;
        }
        used += w;
        out.push(s);
    }
    cells::set_line(buf, area.x, area.y, &Line::from(out), area.width);
}

pub struct StatusBar<'a> {
    pub app: &'a App,
}

impl Widget for StatusBar<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        buf.set_style(area, Style::new().bg(ratatui::style::Color::Indexed(236)));
        let (state, style) = match &app.conn {
            Conn::Online => ("● connected".to_string(), theme::ok()),
            Conn::Connecting { attempt } if *attempt <= 1 => {
                ("◌ connecting…".to_string(), theme::warn())
            }
            Conn::Connecting { attempt } => {
                (format!("◌ connecting (attempt {attempt})…"), theme::warn())
            }
            Conn::Retrying { at, .. } => {
                let secs = (at.as_second() - app.now.as_second()).max(0);
                (format!("◌ reconnecting in {secs} s"), theme::warn())
            }
            Conn::Stopped {
                new_token: true, ..
            } => ("✗ offline: token refused".to_string(), theme::error()),
            Conn::Stopped { .. } => ("✗ offline".to_string(), theme::error()),
        };
        let mut left = vec![Span::styled(
            format!(" {state} "),
            style.add_modifier(Modifier::BOLD),
        )];
        let mut facts = vec![sanitize(&app.url).into_owned()];
        if let Some(p) = app.principal() {
            facts.push(format!("{} ({})", sanitize(&p.name), p.role.as_str()));
        }
        if let Some(t) = app.tenant_name() {
            facts.push(sanitize(t).into_owned());
        }
        if let Some(spend) = spend_fact(app) {
            facts.push(spend);
        }
        left.push(Span::styled(facts.join(" · "), theme::dim()));

        let (right, right_style) = match (&app.notice, &app.conn) {
            (Some(n), _) => {
                let style = match n.tone {
                    Tone::Info => theme::accent(),
                    Tone::Warn => theme::warn(),
                    Tone::Error => theme::error(),
                };
                (sanitize(&n.text).into_owned(), style)
            }
            (None, Conn::Retrying { reason, .. }) => {
                (format!("{} · Ctrl-R now", sanitize(reason)), theme::warn())
            }
            (None, Conn::Stopped { reason, .. }) => (
                format!("{} · Ctrl-R retry", sanitize(reason)),
                theme::error(),
            ),
            (None, _) => ("? help".to_string(), theme::dim()),
        };
        let width = area.width as usize;
        let left_w: usize = left.iter().map(|s| text::width(&s.content)).sum();
        // The right side (notices, reasons) wins room over the facts, but never the state.
        let state_w = text::width(&left[0].content);
        let right_room = width
            .saturating_sub(state_w + 2)
            .min(text::width(&right) + 1);
        let right = text::truncate(&right, right_room.saturating_sub(1)).into_owned();
        let facts_room = width.saturating_sub(state_w + text::width(&right) + 2);
        if left_w > state_w {
            let cut = text::truncate(&left[1].content, facts_room).into_owned();
            left[1] = Span::styled(cut, theme::dim());
        }
        cells::set_line(buf, area.x, area.y, &Line::from(left), area.width);
        let rw = text::width(&right) as u16;
        if rw > 0 && rw < area.width {
            cells::set_line(
                buf,
                area.right() - rw - 1,
                area.y,
                &Line::styled(right, right_style),
                rw,
            );
        }
    }
}
