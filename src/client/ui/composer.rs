//! The composer pane: the text area, then notes under it — the send in flight, the engine's
//! refusal, and the live preview (encoding, segments, cost, every warning: the rules that
//! would refuse the message first, marked ✗, then notices, marked !). When the subscriber
//! opted out, the pane is closed and says why instead.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Widget};

use super::cells;
use super::theme;
use crate::client::app::composer::Preview;
use crate::client::app::{App, Focus};
use crate::client::format;
use crate::client::sanitize::sanitize;
use crate::client::text;
use crate::protocol::Encoding;

/// Rows the preview's warnings may wrap to before each is cut to one.
const WARNING_ROWS: usize = 6;

/// The notes under the text, wrapped to `width`.
pub fn notes(app: &App, width: usize) -> Vec<Line<'static>> {
    let c = &app.composer;
    let mut lines = Vec::new();
    if let Some(out) = c.conversation.as_ref().and_then(|id| c.outbox.get(id)) {
        let (text, style) = if out.call.is_some() {
            ("Sending…".to_string(), theme::warn())
        } else {
            (
                "Not connected: it goes out when the connection is back, once.".to_string(),
                theme::warn(),
            )
        };
        lines.push(Line::styled(
            text::truncate(&text, width).into_owned(),
            style,
        ));
    }
    if let Some(e) = &c.refusal {
        let text = format!("✗ Not sent ({}): {}", e.code, sanitize(&e.message));
        for l in text::wrap(&text, width).into_iter().take(2) {
            lines.push(Line::styled(l, theme::error()));
        }
    }
    match &c.preview {
        Preview::None => {}
        Preview::Waiting => lines.push(Line::styled("…", theme::dim())),
        Preview::Failed(m) => {
            let text = format!("Preview unavailable: {}", sanitize(m));
            lines.push(Line::styled(
                text::truncate(&text, width).into_owned(),
                theme::dim(),
            ));
        }
        Preview::Ready(p) => {
            let (blocking, notices): (Vec<_>, Vec<_>) = p.warnings.iter().partition(|w| w.blocking);
            // Every warning gets at least its first line; all wrap when there is room.
            let full: usize = p
                .warnings
                .iter()
                .map(|w| text::wrapped_height(&format!("! {}", w.message), width))
                .sum();
            let each = if full <= WARNING_ROWS { usize::MAX } else { 1 };
            let enc = match p.encoding {
                Encoding::Gsm7 => "GSM-7",
                Encoding::Ucs2 => "UCS-2",
            };
            let plural = if p.segments == 1 { "" } else { "s" };
            let text = format!(
                "{enc} · {} segment{plural} · {} · {} left in segment",
                p.segments,
                format::money(p.cost_micros),
                p.remaining_in_segment
            );
            let style = if p.segments > 1 {
                theme::warn()
            } else {
                theme::dim()
            };
            lines.push(Line::styled(
                text::truncate(&text, width).into_owned(),
                style,
            ));
            let marked = blocking
                .iter()
                .map(|w| ("✗", w, theme::error()))
                .chain(notices.iter().map(|w| ("!", w, theme::notice())));
            for (mark, w, style) in marked {
                let text = format!("{mark} {}", sanitize(&w.message).replace('\n', " "));
                let wrapped = text::wrap(&text, width);
                let cut = wrapped.len() > each;
                for (i, l) in wrapped.into_iter().take(each).enumerate() {
                    let l = if cut && i + 1 == each {
                        text::truncate(&format!("{l}…"), width).into_owned()
                    } else {
                        l
                    };
                    lines.push(Line::styled(l, style));
                }
            }
        }
    }
    lines
}

/// What a closed composer says instead of the text area, wrapped to `width`.
pub fn closed_lines(app: &App, width: usize) -> Option<Vec<Line<'static>>> {
    let why = app.composer_closed()?;
    let mut lines: Vec<Line<'static>> = text::wrap(&format!("✗ Closed: {}", sanitize(&why)), width)
        .into_iter()
        .map(|l| Line::styled(l, theme::opted_out()))
        .collect();
    for l in text::wrap(
        "Only the subscriber can opt back in, by texting START.",
        width,
    ) {
        lines.push(Line::styled(l, theme::dim()));
    }
    Some(lines)
}

pub struct ComposerView<'a> {
    pub app: &'a App,
}

impl Widget for ComposerView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.app;
        let focused = app.focus == Focus::Composer && app.overlay.is_none();
        let via = app
            .thread
            .as_ref()
            .map(|t| {
                let c = &t.conversation;
                format!(
                    " via {}",
                    format::code_badge(&sanitize(&c.code), c.code_kind, &sanitize(&c.country))
                )
            })
            .unwrap_or_default();
        let closed = app.composer_closed().is_some();
        let title = if closed {
            format!(" Reply{via} · closed ")
        } else {
            format!(" Reply{via} ")
        };
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
        if let Some(lines) = closed_lines(app, inner.width as usize) {
            for (i, l) in lines.iter().take(inner.height as usize).enumerate() {
                cells::set_line(buf, inner.x, inner.y + i as u16, l, inner.width);
            }
            return;
        }
        let notes = notes(app, inner.width as usize);
        let shown = notes.len().min(inner.height.saturating_sub(1) as usize);
        let text_area = Rect {
            height: inner.height - shown as u16,
            ..inner
        };
        app.composer.textarea().render(text_area, buf);
        for (i, l) in notes.iter().take(shown).enumerate() {
            cells::set_line(buf, inner.x, text_area.bottom() + i as u16, l, inner.width);
        }
    }
}
