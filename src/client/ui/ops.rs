//! The ops view: the unattributed queue (two rows a message: who wrote to which code and
//! what, then why no tenant got it) above the live feed of attribution changes, and the
//! tenant picker that assigns a message.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Widget};

use super::overlays::{centered, frame};
use super::theme;
use crate::client::app::inbox::Load;
use crate::client::app::ops::AssignPicker;
use crate::client::app::{App, Conn};
use crate::client::format;
use crate::client::sanitize::sanitize;
use crate::client::text;

pub struct OpsView<'a> {
    pub app: &'a App,
}

fn boxed(title: String, focused: bool, area: Rect, buf: &mut Buffer) -> Rect {
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(if focused {
            theme::focused_border()
        } else {
            theme::border()
        })
        .title(Span::styled(title, theme::title()));
    let inner = block.inner(area);
    block.render(area, buf);
    inner
}

impl OpsView<'_> {
    fn queue(&self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let ops = &app.ops;
        let title = format!(
            " Unattributed · {} · Enter assigns to a tenant ",
            ops.queue.len()
        );
        let title = text::truncate(&title, area.width.saturating_sub(4) as usize).into_owned();
        let inner = boxed(title, app.overlay.is_none(), area, buf);
        let width = inner.width as usize;
        if ops.queue.is_empty() {
            let text = match (&ops.load, &app.conn) {
                (_, c) if *c != Conn::Online => "Waiting for the connection…",
                (Load::Loading, _) | (Load::Stale, _) => "Loading the unattributed queue…",
                (Load::Loaded, _) => "Nothing unattributed: every inbound message has a tenant.",
            };
            buf.set_line(
                inner.x,
                inner.y,
                &Line::styled(text::truncate(text, width).into_owned(), theme::dim()),
                inner.width,
            );
            return;
        }
        let page = (inner.height / 2).max(1) as usize;
        let start = ops.selected.saturating_sub(page - 1);
        for (n, (i, u)) in ops
            .queue
            .iter()
            .enumerate()
            .skip(start)
            .take(page)
            .enumerate()
        {
            let y = inner.y + 2 * n as u16;
            let sel = i == ops.selected;
            let m = &u.message;
            let mark = if sel { "▸ " } else { "  " };
            let time = format!("{} ", format::date_time(&m.created_at, &app.tz));
            let who = sanitize(&format::phone(&m.subscriber)).into_owned();
            let head = format!("{who} → {} ", sanitize(&m.code));
            let used = text::width(mark) + text::width(&time) + text::width(&head);
            let body = text::truncate(
                &sanitize(&m.body).replace('\n', " "),
                width.saturating_sub(used),
            )
            .into_owned();
            let l1 = Line::from(vec![
                Span::styled(mark, theme::key()),
                Span::styled(time, theme::dim()),
                Span::styled(head, theme::bold()),
                Span::raw(body),
            ]);
            let reason = match u.reason.as_deref() {
                Some(r) => format!("    why: {}", sanitize(r)),
                None => "    why: not given (queued before this session)".to_string(),
            };
            let l2 = Line::styled(text::truncate(&reason, width).into_owned(), theme::dim());
            if sel {
                buf.set_style(
                    Rect {
                        x: inner.x,
                        y,
                        width: inner.width,
                        height: 2.min(inner.bottom() - y),
                    },
                    theme::selected(),
                );
            }
            buf.set_line(inner.x, y, &l1, inner.width);
            if y + 1 < inner.bottom() {
                buf.set_line(inner.x, y + 1, &l2, inner.width);
            }
        }
    }

    fn feed(&self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let inner = boxed(
            " Attribution changes · live, newest first ".into(),
            false,
            area,
            buf,
        );
        let width = inner.width as usize;
        if app.ops.feed.is_empty() {
            let text = "No attribution has moved since this session started.";
            buf.set_line(
                inner.x,
                inner.y,
                &Line::styled(text::truncate(text, width).into_owned(), theme::dim()),
                inner.width,
            );
            return;
        }
        for (row, m) in app.ops.feed.iter().take(inner.height as usize).enumerate() {
            let c = &m.change;
            let time = format!("{} ", format::clock(&m.at, &app.tz));
            let head = format!(
                "{} {} ",
                sanitize(&c.code),
                sanitize(&format::phone(&c.subscriber))
            );
            let from = match &c.from {
                Some(t) => sanitize(&t.name).into_owned(),
                None => "nobody".into(),
            };
            let to = sanitize(&c.to.name).into_owned();
            let spans = vec![
                Span::styled(time, theme::dim()),
                Span::styled(head, theme::accent()),
                Span::styled(from, Style::new()),
                Span::styled(" → ", theme::dim()),
                Span::styled(to, theme::bold()),
            ];
            let line = super::inbox::truncate_spans(spans, width);
            buf.set_line(inner.x, inner.y + row as u16, &line, inner.width);
        }
    }
}

impl Widget for OpsView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let [queue, feed] =
            Layout::vertical([Constraint::Percentage(60), Constraint::Fill(1)]).areas(area);
        self.queue(queue, buf);
        self.feed(feed, buf);
    }
}

/// Which tenant gets an unattributed message.
pub struct AssignDialog<'a> {
    pub picker: &'a AssignPicker,
}

impl Widget for AssignDialog<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let p = self.picker;
        let who = sanitize(&format::phone(&p.subscriber)).into_owned();
        let mut lines = vec![Line::raw("Which tenant gets this message?")];
        if p.options.is_empty() {
            lines.push(Line::styled(
                "No tenant seen yet (an ops login has none): type its id.",
                theme::dim(),
            ));
        }
        for (i, t) in p.options.iter().enumerate() {
            let sel = i == p.selected;
            let text = format!(
                "{}{} ({})",
                if sel { "▸ " } else { "  " },
                sanitize(&t.name),
                sanitize(&t.id)
            );
            let style = if sel { theme::selected() } else { Style::new() };
            lines.push(Line::styled(text, style));
        }
        let typed_sel = p.selected >= p.options.len();
        let cursor = if typed_sel { "▏" } else { "" };
        lines.push(Line::styled(
            format!(
                "{}Tenant id: {}{cursor}",
                if typed_sel { "▸ " } else { "  " },
                sanitize(&p.typed)
            ),
            if typed_sel {
                theme::selected()
            } else {
                theme::dim()
            },
        ));
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            "Enter assign · ↑↓ choose · type an id · Esc cancel",
            theme::dim(),
        ));
        let w = area.width.saturating_sub(4).min(60);
        let h = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
        let outer = centered(area, w, h);
        let inner = frame(
            &format!("Assign {who} on {}", sanitize(&p.code)),
            outer,
            buf,
        );
        // Keep the chosen row in view when the list is longer than the box.
        let rows = inner.height as usize;
        let chosen = (p.selected + 1).min(lines.len() - 1);
        let start = (chosen + 3)
            .saturating_sub(rows)
            .min(lines.len().saturating_sub(rows));
        for (i, l) in lines.iter().skip(start).take(rows).enumerate() {
            buf.set_line(inner.x, inner.y + i as u16, l, inner.width);
        }
    }
}
