//! The inbox pane: two rows per conversation, and only the rows that fit are built.
//!
//! Row one: unread dot, subscriber (name and formatted number), relative time. Row two: the
//! code badge, marks (attribution lost, opted out, status), the last message, and the unread
//! count. Until there is something to list, the pane says why (connecting, loading, empty).

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

use super::cells;
use super::theme;
use crate::client::app::inbox::Load;
use crate::client::app::{App, Conn, Focus};
use crate::client::format;
use crate::client::sanitize::sanitize;
use crate::client::text;
use crate::protocol::{
    AttributionState, ConsentState, Conversation, ConversationStatus, Direction,
};

pub struct InboxView<'a> {
    pub app: &'a App,
}

impl Widget for InboxView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let inbox = &app.inbox;
        let focused = app.focus == Focus::Inbox && app.overlay.is_none();
        let mut title = format!(" Inbox · {}", inbox.view.label());
        if let Some(q) = inbox.query.as_deref() {
            title.push_str(&format!(" · “{}”", sanitize(q)));
        }
        if inbox.load == Load::Loaded {
            let more = if inbox.next.is_some() { "+" } else { "" };
            title.push_str(&format!(" · {}{more} ", inbox.len()));
        } else {
            title.push(' ');
        }
        let title = text::truncate(&title, area.width.saturating_sub(4) as usize).into_owned();
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
        if let Some(msg) = empty_state(app) {
            let lines = vec![Line::raw(""), msg];
            Paragraph::new(lines)
                .alignment(Alignment::Center)
                .wrap(Wrap { trim: true })
                .render(inner, buf);
            return;
        }
        let page = (inner.height / 2) as usize;
        let start = inbox.window_start(page);
        let selected = inbox.selected_index();
        for (n, i) in (start..inbox.len()).take(page).enumerate() {
            let Some(c) = inbox.row(i) else { break };
            let y = inner.y + 2 * n as u16;
            let sel = Some(i) == selected;
            let (l1, l2) = row_lines(app, c, inner.width as usize);
            let style = if sel && focused {
                theme::selected()
            } else if sel {
                Style::new().bg(ratatui::style::Color::Indexed(235))
            } else {
                Style::new()
            };
            let width = inner.width;
            buf.set_style(
                Rect {
                    x: inner.x,
                    y,
                    width,
                    height: 2.min(inner.bottom() - y),
                },
                style,
            );
            cells::set_line(buf, inner.x, y, &l1, width);
            if y + 1 < inner.bottom() {
                cells::set_line(buf, inner.x, y + 1, &l2, width);
            }
        }
    }
}

/// What the pane says when it has no rows to show.
fn empty_state(app: &App) -> Option<Line<'static>> {
    let inbox = &app.inbox;
    if app.session.is_none() {
        let text = match &app.conn {
            Conn::Connecting { attempt } if *attempt <= 1 => {
                format!("Connecting to {}…", sanitize(&app.url))
            }
            Conn::Connecting { attempt } => {
                format!("Connecting to {} (attempt {attempt})…", sanitize(&app.url))
            }
            Conn::Retrying { at, reason } => format!(
                "Cannot reach {}: {}. Trying again in {} s.",
                sanitize(&app.url),
                sanitize(reason),
                (at.as_second() - app.now.as_second()).max(0)
            ),
            Conn::Stopped { reason, .. } => {
                format!("Not connected: {}. Ctrl-R tries again.", sanitize(reason))
            }
            Conn::Online => "Connected; waiting for the engine…".to_string(),
        };
        let style = if matches!(app.conn, Conn::Stopped { .. }) {
            theme::error()
        } else {
            theme::warn()
        };
        return Some(Line::styled(text, style));
    }
    if app.tenant.is_none() {
        return Some(Line::styled(
            "This login has no tenant inbox.",
            theme::dim(),
        ));
    }
    if !inbox.is_empty() {
        return None;
    }
    let text = match inbox.load {
        Load::Loading => "Loading conversations…".to_string(),
        Load::Stale => "Waiting for the connection to load conversations…".to_string(),
        Load::Loaded => match inbox.query.as_deref() {
            Some(q) => format!(
                "No conversation matches “{}”. Esc clears the search.",
                sanitize(q)
            ),
            None => format!("No conversations in “{}”.", inbox.view.label()),
        },
    };
    Some(Line::styled(text, theme::dim()))
}

/// The two lines of one conversation, `width` cells wide.
pub fn row_lines(app: &App, c: &Conversation, width: usize) -> (Line<'static>, Line<'static>) {
    let unread = c.unread > 0;
    let dot = if unread {
        Span::styled("● ", theme::accent())
    } else {
        Span::raw("  ")
    };
    let time = format::relative(app.now, &c.last_activity, &app.tz);
    let number = sanitize(&format::phone(&c.subscriber)).into_owned();
    let who = match c.subscriber_name.as_deref().map(sanitize) {
        Some(n) if !n.trim().is_empty() => format!("{n} {number}"),
        _ => number,
    };
    let room = width.saturating_sub(2 + text::width(&time) + 1);
    let who = text::fit(&who, room);
    let name_style = if unread { theme::bold() } else { Style::new() };
    let line1 = Line::from(vec![
        dot,
        Span::styled(who, name_style),
        Span::raw(" "),
        Span::styled(time, theme::dim()),
    ]);

    let mut spans = vec![Span::raw("  ")];
    let badge = format::code_badge(&sanitize(&c.code), c.code_kind, &sanitize(&c.country));
    spans.push(Span::styled(badge, theme::accent()));
    spans.push(Span::raw(" "));
    if c.attribution.state == AttributionState::Lost {
        spans.push(Span::styled("LOST", theme::lost()));
        spans.push(Span::raw(" "));
    }
    if c.consent == ConsentState::OptedOut {
        spans.push(Span::styled("OPTED OUT", theme::opted_out()));
        spans.push(Span::raw(" "));
    } else if c.opt_out_intent {
        spans.push(Span::styled("STOP?", theme::warn()));
        spans.push(Span::raw(" "));
    }
    if c.status != ConversationStatus::Open {
        spans.push(Span::styled(
            format!("{} ", c.status.as_str()),
            theme::dim(),
        ));
    }
    let count = if unread {
        format!(" {}", c.unread.min(999))
    } else {
        String::new()
    };
    let used: usize = spans.iter().map(|s| text::width(&s.content)).sum();
    let room = width.saturating_sub(used + text::width(&count));
    let preview = match &c.last_message {
        Some(m) => {
            let body = sanitize(&m.body);
            if m.direction == Direction::Out {
                format!("You: {body}")
            } else {
                body.into_owned()
            }
        }
        None => String::new(),
    };
    spans.push(Span::styled(text::fit(&preview, room), theme::dim()));
    spans.push(Span::styled(count, theme::accent()));
    (line1, truncate_spans(spans, width))
}

pub(super) fn truncate_spans(spans: Vec<Span<'static>>, width: usize) -> Line<'static> {
    let mut used = 0;
    let mut out = Vec::new();
    for s in spans {
        let w = text::width(&s.content);
        if used + w <= width {
            used += w;
            out.push(s);
        } else {
            out.push(Span::styled(
                text::truncate(&s.content, width - used).into_owned(),
                s.style,
            ));
            break;
        }
    }
    Line::from(out)
}
