//! The subscriber pane (who the subscriber is, this tenant's consent, its history, the code
//! block) and the question asked before recording an opt-out.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

use super::cells;
use super::overlays::{centered, frame};
use super::theme;
use crate::client::app::App;
use crate::client::app::subscriber::{ConsentLoad, OptOutPrompt, consent_word, source_label};
use crate::client::format;
use crate::client::sanitize::sanitize;
use crate::client::text;
use crate::protocol::{ConsentState, Conversation};

pub struct SubscriberPane<'a> {
    pub app: &'a App,
}

fn consent_style(c: ConsentState) -> ratatui::style::Style {
    match c {
        ConsentState::OptedOut => theme::opted_out(),
        ConsentState::OptedIn => theme::ok(),
        ConsentState::Pending => theme::warn(),
        ConsentState::None => theme::dim(),
    }
}

/// A label and a value on one line, the value cut to what is left of `width`.
fn fact(label: &str, value: String, style: ratatui::style::Style, width: usize) -> Line<'static> {
    let room = width.saturating_sub(text::width(label));
    Line::from(vec![
        Span::styled(label.to_string(), theme::dim()),
        Span::styled(text::truncate(&value, room).into_owned(), style),
    ])
}

impl SubscriberPane<'_> {
    fn lines(&self, c: &Conversation, width: usize) -> Vec<Line<'static>> {
        let app = self.app;
        let me = app.principal().map(|p| p.agent.as_str());
        let mut lines = Vec::new();
        let number = sanitize(&format::phone(&c.subscriber)).into_owned();
        let name = c
            .subscriber_name
            .as_deref()
            .map(|n| sanitize(n).into_owned())
            .filter(|n| !n.trim().is_empty());
        lines.push(fact(
            "Name     ",
            name.unwrap_or_else(|| "not known".into()),
            theme::bold(),
            width,
        ));
        lines.push(fact("Number   ", number, theme::bold(), width));
        let country = format::subscriber_country(&c.subscriber).unwrap_or_else(|| "?".into());
        lines.push(fact(
            "Country  ",
            country,
            ratatui::style::Style::new(),
            width,
        ));
        let badge = format::code_badge(&sanitize(&c.code), c.code_kind, &sanitize(&c.country));
        lines.push(fact(
            "Code     ",
            format!("{badge} {}", format::code_kind(c.code_kind)),
            theme::accent(),
            width,
        ));
        lines.push(Line::raw(""));
        let tenant = app
            .tenant_name()
            .map(|t| sanitize(t).into_owned())
            .unwrap_or_else(|| c.tenant.clone());
        lines.push(Line::styled(
            text::truncate(&format!("Consent with {tenant}"), width).into_owned(),
            theme::bold(),
        ));
        let view = app.consent.as_ref().filter(|v| v.conversation == c.id);
        let history = match view.map(|v| &v.load) {
            Some(ConsentLoad::Ready(r)) => Some(r),
            Some(ConsentLoad::Loading) | None => {
                lines.push(Line::styled("  loading…", theme::dim()));
                None
            }
            Some(ConsentLoad::NotLoaded) => {
                lines.push(Line::styled(
                    "  loads when the connection is back",
                    theme::dim(),
                ));
                None
            }
            Some(ConsentLoad::Failed(m)) => {
                let t = format!("  could not load: {}", sanitize(m));
                for l in text::wrap(&t, width).into_iter().take(2) {
                    lines.push(Line::styled(l, theme::error()));
                }
                None
            }
        };
        let consent = history.map_or(c.consent, |r| r.consent);
        lines.push(Line::styled(
            format!("  {}", consent_word(consent).to_uppercase()),
            consent_style(consent).add_modifier(ratatui::style::Modifier::BOLD),
        ));
        if let Some(r) = history {
            let (text, style) = if r.code_blocked {
                (
                    format!("  {}: blocked for this number", sanitize(&c.code)),
                    theme::opted_out(),
                )
            } else {
                (
                    format!("  {}: not blocked", sanitize(&c.code)),
                    theme::dim(),
                )
            };
            lines.push(Line::styled(
                text::truncate(&text, width).into_owned(),
                style,
            ));
            lines.push(Line::raw(""));
            lines.push(Line::styled("History, newest first", theme::bold()));
            if r.items.is_empty() {
                lines.push(Line::styled("  no consent changes recorded", theme::dim()));
            }
            for item in r.items.iter().rev() {
                let when = format::date_ymd_hm(&item.at, &app.tz);
                let head = format!("  {when} ");
                let rest = format!(
                    "{} · {}",
                    consent_word(item.state),
                    sanitize(&source_label(&item.source, me))
                );
                let room = width.saturating_sub(text::width(&head));
                lines.push(Line::from(vec![
                    Span::styled(head, theme::dim()),
                    Span::styled(
                        text::truncate(&rest, room).into_owned(),
                        consent_style(item.state),
                    ),
                ]));
            }
        }
        lines
    }
}

impl Widget for SubscriberPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        // The keyboard stays with the thread beside it: the pane only shows.
        let block = Block::new()
            .borders(Borders::ALL)
            .border_style(theme::border())
            .title(Span::styled(" Subscriber · s closes ", theme::title()));
        let inner = block.inner(area);
        block.render(area, buf);
        let Some(t) = app.thread.as_ref() else {
            return;
        };
        let c = &t.conversation;
        let width = inner.width as usize;
        let mut lines = self.lines(c, width);
        // The action at the bottom, when there is room and something to do.
        if c.consent != ConsentState::OptedOut {
            let hint = Line::from(vec![
                Span::styled("o", theme::key()),
                Span::raw(" record an opt-out (asks first)"),
            ]);
            let rows = inner.height as usize;
            if lines.len() + 2 <= rows {
                lines.resize(rows - 1, Line::raw(""));
                lines.push(hint);
            }
        }
        for (i, l) in lines.iter().take(inner.height as usize).enumerate() {
            cells::set_line(buf, inner.x, inner.y + i as u16, l, inner.width);
        }
    }
}

/// "Record an opt-out for +1 415-555-0100? y/n", with the message that asked for it.
pub struct OptOutDialog<'a> {
    pub app: &'a App,
    pub prompt: &'a OptOutPrompt,
}

impl Widget for OptOutDialog<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let p = self.prompt;
        let who = sanitize(&format::phone(&p.subscriber)).into_owned();
        let tenant = self
            .app
            .tenant_name()
            .map(|t| sanitize(t).into_owned())
            .unwrap_or_else(|| "this business".into());
        let mut lines = Vec::new();
        if let Some(body) = &p.flagged {
            let quote = text::truncate(&sanitize(body).replace('\n', " "), 120).into_owned();
            lines.push(Line::raw(format!("{who} wrote: “{quote}”")));
            lines.push(Line::styled(
                "The engine flagged it as reading like an opt-out request.",
                theme::dim(),
            ));
            lines.push(Line::raw(""));
        }
        lines.push(Line::styled(
            format!("Record an opt-out for {who}? y/n"),
            theme::bold(),
        ));
        lines.push(Line::raw(""));
        lines.push(Line::raw(format!(
            "{tenant} will send nothing more to this number, on any code; one confirmation \
             goes out now. Only the subscriber can opt back in (START)."
        )));
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![
            Span::styled(" y ", theme::key()),
            Span::raw(" record the opt-out   "),
            Span::styled(" n / Esc ", theme::key()),
            Span::raw(" do nothing"),
        ]));
        let w = area.width.saturating_sub(4).min(66);
        let text_w = w.saturating_sub(2) as usize;
        let h: usize = lines
            .iter()
            .map(|l| text::wrapped_height(&l.to_string(), text_w))
            .sum();
        let outer = centered(area, w, h as u16 + 2);
        let inner = frame("Confirm opt-out", outer, buf);
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .render(inner, buf);
    }
}
