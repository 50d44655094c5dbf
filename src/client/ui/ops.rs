//! The ops view: the unattributed queue (two rows a message: who wrote to which code and
//! what, then why no tenant got it) above the live feed of attribution changes, and the
//! tenant picker that assigns a message.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Widget};

use super::cells;
use super::overlays::{centered, frame};
use super::theme;
use crate::client::app::inbox::Load;
use crate::client::app::ops::AssignPicker;
use crate::client::app::{App, Conn};
use crate::client::format;
use crate::client::sanitize::sanitize;
use crate::client::text;
use crate::protocol::TenantInfo;

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
            cells::set_line(
                buf,
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
            cells::set_line(buf, inner.x, y, &l1, inner.width);
            if y + 1 < inner.bottom() {
                cells::set_line(buf, inner.x, y + 1, &l2, inner.width);
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
            cells::set_line(
                buf,
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
            cells::set_line(buf, inner.x, inner.y + row as u16, &line, inner.width);
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

/// Which tenant gets an unattributed message: the filter, the tenants it lets through (the
/// chosen one kept in view), and why the list is short or missing.
pub struct AssignDialog<'a> {
    pub picker: &'a AssignPicker,
}

/// One tenant of the picker: `Acme Shoes (acme)`, then where it sends from and its keywords
/// on the message's code.
fn tenant_line(t: &TenantInfo, code: &str, chosen: bool, width: usize) -> Line<'static> {
    let mut spans = vec![
        Span::styled(if chosen { "▸ " } else { "  " }, theme::key()),
        Span::styled(
            format!("{} ({})", sanitize(&t.name), sanitize(&t.id)),
            if chosen { theme::bold() } else { Style::new() },
        ),
    ];
    let mut facts: Vec<String> = Vec::new();
    if !t.countries.is_empty() {
        facts.push(sanitize(&t.countries.join(" ")).into_owned());
    }
    if !t.codes.is_empty() {
        facts.push(format!("dedicated {}", sanitize(&t.codes.join(" "))));
    }
    let words: Vec<&str> = t
        .keywords
        .iter()
        .filter(|k| k.code == code)
        .map(|k| k.word.as_str())
        .collect();
    if !words.is_empty() {
        facts.push(format!(
            "keyword {} on {}",
            sanitize(&words.join(" ")),
            sanitize(code)
        ));
    }
    if !facts.is_empty() {
        spans.push(Span::styled(
            format!(" · {}", facts.join(" · ")),
            theme::dim(),
        ));
    }
    let line = super::inbox::truncate_spans(spans, width);
    if chosen {
        line.style(theme::selected())
    } else {
        line
    }
}

impl Widget for AssignDialog<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let p = self.picker;
        let who = sanitize(&format::phone(&p.subscriber)).into_owned();
        let w = area.width.saturating_sub(4).min(76);
        let width = w.saturating_sub(2) as usize;
        let matches = p.matches();

        let mut head = vec![Line::raw("Which tenant gets this message?")];
        head.push(if p.filter.is_empty() {
            Line::styled("Filter: type a name, id, code or keyword", theme::dim())
        } else {
            Line::from(vec![
                Span::styled("Filter: ", theme::dim()),
                Span::raw(
                    text::truncate(&sanitize(&p.filter), width.saturating_sub(9)).into_owned(),
                ),
                Span::styled("▏", theme::key()),
            ])
        });
        let list: Vec<Line<'static>> = matches
            .iter()
            .enumerate()
            .map(|(i, t)| tenant_line(t, &p.code, i == p.selected, width))
            .collect();
        let mut notes: Vec<Line<'static>> = Vec::new();
        let note = |text: String, style| {
            text::wrap(&text, width)
                .into_iter()
                .map(move |l| Line::styled(l, style))
        };
        if p.options.is_empty() && p.loading {
            notes.extend(note("Loading the tenants…".into(), theme::dim()));
        } else if matches.is_empty() && !p.options.is_empty() {
            notes.extend(note(
                format!("No tenant matches “{}”.", sanitize(p.filter.trim())),
                theme::warn(),
            ));
        } else if p.options.is_empty() && p.complete {
            notes.extend(note("The engine lists no tenant.".into(), theme::warn()));
        }
        if !p.complete && !p.loading {
            let why = match &p.error {
                Some(e) => format!("The engine gave no tenant list ({})", sanitize(e)),
                None => "The engine's tenant list has not come".to_string(),
            };
            let typed = match p.typed_id() {
                Some(id) if matches.is_empty() => format!(": Enter assigns to “{}”.", sanitize(id)),
                _ => ": these are the tenants seen so far; type an id to name another.".into(),
            };
            notes.extend(note(format!("{why}{typed}"), theme::dim()));
        }
        let foot = Line::styled(
            text::truncate(
                "Enter assign · ↑↓ choose · type to filter · Esc cancel",
                width,
            )
            .into_owned(),
            theme::dim(),
        );

        // Head, a blank, the list, the notes, a blank, the keys: the list gives way first.
        let fixed = head.len() + 1 + notes.len() + 2;
        let room = area.height.saturating_sub(4) as usize;
        let rows = list.len().clamp(1, room.saturating_sub(fixed).max(1));
        let h = (fixed + rows + 2).min(room + 2) as u16;
        let outer = centered(area, w, h);
        let inner = frame(
            &format!("Assign {who} on {}", sanitize(&p.code)),
            outer,
            buf,
        );
        let start = (p.selected + 1)
            .saturating_sub(rows)
            .min(list.len().saturating_sub(rows));
        let mut lines: Vec<Line<'static>> = head;
        lines.push(Line::raw(""));
        let shown = list.len().min(rows);
        lines.extend(list.into_iter().skip(start).take(rows));
        lines.extend(std::iter::repeat_n(Line::raw(""), rows - shown));
        lines.extend(notes);
        lines.push(Line::raw(""));
        lines.push(foot);
        for (i, l) in lines.iter().take(inner.height as usize).enumerate() {
            cells::set_line(buf, inner.x, inner.y + i as u16, l, inner.width);
        }
    }
}
