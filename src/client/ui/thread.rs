//! The thread pane: who the conversation is with, the attribution and consent banners, and
//! the messages — drawn from the bottom up, only as many as fit.
//!
//! [`Measure`] turns one item into its lines (day separator, header, wrapped body); the App
//! uses the same function to scroll by lines, so drawing and scrolling agree. Every string
//! from the wire goes through the sanitizer here.

use std::collections::VecDeque;

use jiff::tz::TimeZone;
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};

use super::cells;
use super::theme;
use crate::client::app::subscriber::source_label;
use crate::client::app::thread::{Item, Older, Thread, Tone};
use crate::client::app::{App, Focus};
use crate::client::format;
use crate::client::sanitize::sanitize;
use crate::client::text;
use crate::protocol::{
    AttributionState, ConsentState, Conversation, Direction, Message, MessageStatus,
};

/// What measuring and drawing a thread item needs.
pub struct Measure {
    tz: TimeZone,
    me: Option<String>,
    /// The subscriber's name, when the open conversation knows it.
    name: Option<String>,
    width: usize,
}

impl Measure {
    pub fn new(app: &App, width: usize) -> Self {
        let name = app
            .thread
            .as_ref()
            .and_then(|t| t.conversation.subscriber_name.as_deref())
            .filter(|n| !n.trim().is_empty())
            .map(|n| sanitize(n).into_owned());
        Measure {
            tz: app.tz.clone(),
            me: app.principal().map(|p| p.agent.clone()),
            name,
            width: width.max(4),
        }
    }

    pub fn item_height(&self, items: &VecDeque<Item>, i: usize) -> usize {
        self.item_lines(items, i).len()
    }

    /// The lines of item `i`: a day separator when the day changes, then the item.
    pub fn item_lines(&self, items: &VecDeque<Item>, i: usize) -> Vec<Line<'static>> {
        let mut lines = Vec::new();
        let item = &items[i];
        let day = format::day_key(item.at(), &self.tz);
        if i == 0 || format::day_key(items[i - 1].at(), &self.tz) != day {
            let label = format!(" {} ", format::day_label(item.at(), &self.tz));
            lines.push(Line::styled(
                centered_rule(&label, self.width),
                theme::dim(),
            ));
        }
        match item {
            Item::Message(m) => self.message_lines(m, &mut lines),
            Item::System(s) => {
                let style = match s.tone {
                    Tone::Info => theme::dim(),
                    Tone::Warn => theme::warn(),
                };
                let text = format!("{} {}", format::clock(&s.at, &self.tz), sanitize(&s.text));
                for (n, l) in text::wrap(&text, self.width.saturating_sub(4))
                    .into_iter()
                    .enumerate()
                {
                    let lead = if n == 0 { "  ◆ " } else { "    " };
                    lines.push(Line::styled(format!("{lead}{l}"), style));
                }
            }
        }
        lines
    }

    fn message_lines(&self, m: &Message, lines: &mut Vec<Line<'static>>) {
        let time = format::clock(&m.created_at, &self.tz);
        let mut head = vec![Span::styled(format!("{time} "), theme::dim())];
        match m.direction {
            Direction::In => {
                let who = match &self.name {
                    Some(n) => n.clone(),
                    None => sanitize(&format::phone(&m.subscriber)).into_owned(),
                };
                head.push(Span::styled(who, theme::inbound()));
                if m.opt_out_intent {
                    head.push(Span::styled(
                        " · reads like an opt-out request",
                        theme::warn(),
                    ));
                }
            }
            Direction::Out => {
                let who = match m.author.as_deref() {
                    Some(a) if Some(a) == self.me.as_deref() => "You".to_string(),
                    // Confirmations, HELP and welcome answers the engine sent by itself.
                    Some(a) if a.starts_with("system:") => {
                        format!("Automatic ({})", sanitize(&a["system:".len()..]))
                    }
                    Some(a) => sanitize(a).into_owned(),
                    None => "Sent".to_string(),
                };
                head.push(Span::styled(who, theme::outbound()));
                head.push(Span::styled(format!(" · {}", m.code), theme::dim()));
                let style = match m.status {
                    MessageStatus::Delivered => theme::ok(),
                    MessageStatus::Failed | MessageStatus::Undelivered => theme::error(),
                    MessageStatus::Dispatched => theme::warn(),
                    _ => theme::dim(),
                };
                head.push(Span::styled(
                    format!(" · {}", format::delivery(m.status)),
                    style,
                ));
                if let Some(e) = m.error.as_deref() {
                    head.push(Span::styled(format!(": {}", sanitize(e)), theme::error()));
                }
                if m.reclaim {
                    head.push(Span::styled(" · reclaimed", theme::warn()));
                }
            }
        }
        lines.push(truncate_line(head, self.width));
        for l in text::wrap(&sanitize(&m.body), self.width.saturating_sub(2)) {
            lines.push(Line::raw(format!("  {l}")));
        }
    }
}

/// Cuts a line of spans to `width` cells.
fn truncate_line(spans: Vec<Span<'static>>, width: usize) -> Line<'static> {
    let mut used = 0;
    let mut out = Vec::new();
    for s in spans {
        let w = text::width(&s.content);
        if used + w <= width {
            used += w;
            out.push(s);
        } else {
            let cut = text::truncate(&s.content, width - used).into_owned();
            out.push(Span::styled(cut, s.style));
            break;
        }
    }
    Line::from(out)
}

fn centered_rule(label: &str, width: usize) -> String {
    let w = text::width(label);
    if w + 4 > width {
        return text::truncate(label.trim(), width).into_owned();
    }
    let left = (width - w) / 2;
    format!(
        "{}{label}{}",
        "─".repeat(left),
        "─".repeat(width - w - left)
    )
}

/// The lines above the messages: the conversation's code, status, assignee and consent,
/// then a banner for lost attribution and one for an opt-out.
pub fn header_lines(app: &App, c: &Conversation, width: usize) -> Vec<Line<'static>> {
    let mut info = vec![
        Span::styled(
            format::code_badge(&sanitize(&c.code), c.code_kind, &sanitize(&c.country)),
            theme::accent(),
        ),
        Span::styled(format!(" {}", format::code_kind(c.code_kind)), theme::dim()),
        Span::raw(format!(" · {}", c.status.as_str())),
    ];
    match c.assignee.as_deref() {
        None | Some("") => info.push(Span::styled(" · unassigned", theme::dim())),
        a => info.push(Span::raw(format!(
            " · assigned to {}",
            sanitize(&app.assignee_label(a))
        ))),
    }
    let consent = match c.consent {
        ConsentState::None => None,
        ConsentState::Pending => Some("consent pending"),
        ConsentState::OptedIn => Some("opted in"),
        ConsentState::OptedOut => None,
    };
    if let Some(s) = consent {
        info.push(Span::styled(format!(" · {s}"), theme::dim()));
    }
    let mut lines = vec![truncate_line(info, width)];
    if c.attribution.state == AttributionState::Lost {
        let code = sanitize(&c.code);
        let since = c
            .attribution
            .since
            .as_deref()
            .map(|s| format!(" since {}", format::date_time(s, &app.tz)))
            .unwrap_or_default();
        let text = format!(
            "ATTRIBUTION LOST on {code}{since}. Replies from this subscriber on {code} now go to \
             another business. Sending asks first: reclaim the code, or use a dedicated one."
        );
        for l in text::wrap(&text, width.saturating_sub(2)) {
            lines.push(Line::styled(
                format!(" {}", text::fit(&l, width.saturating_sub(1))),
                theme::lost(),
            ));
        }
    }
    let is_open = app.thread.as_ref().is_some_and(|t| t.id() == c.id);
    if c.consent == ConsentState::OptedOut {
        let since = app
            .opted_out_since()
            .filter(|_| is_open)
            .map(|(at, source)| {
                let me = app.principal().map(|p| p.agent.as_str());
                format!(
                    " on {} ({})",
                    format::date_ymd_hm(&at, &app.tz),
                    sanitize(&source_label(&source, me))
                )
            })
            .unwrap_or_default();
        let text = format!(
            "OPTED OUT{since}: this subscriber asked for no more messages; nothing can be sent."
        );
        for l in text::wrap(&text, width) {
            lines.push(Line::styled(l, theme::opted_out()));
        }
    } else if c.opt_out_intent {
        let text = "STOP? A message reads like an opt-out request. Press o to record the \
                    opt-out (Ctrl-O in the composer); it asks first.";
        for l in text::wrap(text, width) {
            lines.push(Line::styled(l, theme::warn()));
        }
    }
    lines
}

pub struct ThreadView<'a> {
    pub app: &'a App,
}

impl Widget for ThreadView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let focused = app.focus == Focus::Thread;
        let border = if focused {
            theme::focused_border()
        } else {
            theme::border()
        };
        let Some(t) = app.thread.as_ref() else {
            let block = Block::new()
                .borders(Borders::ALL)
                .border_style(border)
                .title(" Conversation ");
            Paragraph::new(vec![
                Line::raw(""),
                Line::styled("Pick a conversation and press Enter.", theme::dim()),
            ])
            .alignment(Alignment::Center)
            .block(block)
            .render(area, buf);
            return;
        };
        let c = &t.conversation;
        let who = match c.subscriber_name.as_deref() {
            Some(n) if !n.trim().is_empty() => format!(
                " {} · {} ",
                sanitize(n),
                sanitize(&format::phone(&c.subscriber))
            ),
            _ => format!(" {} ", sanitize(&format::phone(&c.subscriber))),
        };
        let title = text::truncate(&who, area.width.saturating_sub(4) as usize).into_owned();
        Block::new()
            .borders(Borders::ALL)
            .border_style(border)
            .title(Span::styled(title, theme::title()))
            .render(area, buf);
        let (header, messages) = super::layout::thread_parts(app, area);
        let lines = header_lines(app, c, header.width as usize);
        for (i, l) in lines.iter().enumerate().take(header.height as usize) {
            cells::set_line(buf, header.x, header.y + i as u16, l, header.width);
        }
        render_messages(app, t, messages, buf);
    }
}

/// Draws the items that fit, bottom first from the scroll position.
fn render_messages(app: &App, t: &Thread, area: Rect, buf: &mut Buffer) {
    if area.height == 0 || area.width == 0 {
        return;
    }
    let measure = Measure::new(app, area.width as usize);
    let rows = area.height as usize;
    let mut shown: Vec<Line<'static>> = Vec::with_capacity(rows);
    let mut reached_top = true;
    if let Some((bottom, hidden)) = t.bottom() {
        let mut i = bottom;
        let mut skip = hidden;
        reached_top = false;
        loop {
            let mut lines = measure.item_lines(t.items(), i);
            lines.truncate(lines.len().saturating_sub(skip));
            skip = 0;
            for l in lines.into_iter().rev() {
                if shown.len() == rows {
                    break;
                }
                shown.push(l);
            }
            if shown.len() == rows {
                break;
            }
            if i == 0 {
                reached_top = true;
                break;
            }
            i -= 1;
        }
    }
    if reached_top && shown.len() < rows {
        let top = match (&t.older, t.items().is_empty()) {
            (Older::NotLoaded, _) => {
                Some(("Waiting for the connection to load history…", theme::dim()))
            }
            (Older::Loading, _) => Some(("Loading history…", theme::dim())),
            (Older::More(_), _) => Some(("↑ older messages: scroll up", theme::dim())),
            (Older::Complete, true) => Some(("No messages yet.", theme::dim())),
            (Older::Complete, false) => None,
        };
        if let Some((text, style)) = top {
            shown.push(Line::styled(text.to_string(), style).alignment(Alignment::Center));
        }
    }
    shown.reverse();
    for (row, line) in shown.iter().enumerate() {
        let y = area.y + row as u16;
        if line.alignment == Some(Alignment::Center) {
            let w = (text::width(&line.to_string()) as u16).min(area.width);
            cells::set_line(buf, area.x + (area.width - w) / 2, y, line, w);
        } else {
            cells::set_line(buf, area.x, y, line, area.width);
        }
    }
}
