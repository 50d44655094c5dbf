//! Boxes drawn over the screen: the help (every key), the question before a send where
//! attribution was lost (with a chooser when the tenant has several dedicated codes there),
//! the quit confirmation, and the code picker.

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

use super::cells;
use super::theme;
use crate::client::app::{App, AttributionPrompt, HELP};
use crate::client::format;
use crate::client::sanitize::sanitize;
use crate::client::text;
use crate::protocol::CodeInfo;

/// A box of `w`×`h` centred in `area` (clamped to it).
pub(super) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

pub(super) fn frame(title: &str, area: Rect, buf: &mut Buffer) -> Rect {
    Clear.render(area, buf);
    let block = Block::new()
        .borders(Borders::ALL)
        .border_style(theme::focused_border())
        .title(Span::styled(format!(" {title} "), theme::title()));
    let inner = block.inner(area);
    block.render(area, buf);
    inner
}

/// Every key, from the same table the key handler documents.
pub struct HelpOverlay {
    pub scroll: u16,
}

impl HelpOverlay {
    /// One column of sections, `width` cells wide; descriptions wrap under themselves.
    fn column(sections: &[(&str, &[(&str, &str)])], width: usize) -> Vec<Line<'static>> {
        let key_w = sections
            .iter()
            .flat_map(|(_, keys)| keys.iter().map(|(k, _)| text::width(k)))
            .max()
            .unwrap_or(0)
            .min(width / 2)
            + 2;
        let what_w = width.saturating_sub(key_w + 2).max(8);
        let mut lines = Vec::new();
        for (i, (name, keys)) in sections.iter().enumerate() {
            if i > 0 {
                lines.push(Line::raw(""));
            }
            lines.push(Line::styled(name.to_string(), theme::bold()));
            for (k, what) in keys.iter() {
                for (n, part) in text::wrap(what, what_w).into_iter().enumerate() {
                    let key = if n == 0 {
                        text::fit(k, key_w)
                    } else {
                        " ".repeat(key_w)
                    };
                    lines.push(Line::from(vec![
                        Span::styled(format!("  {key}"), theme::key()),
                        Span::raw(part),
                    ]));
                }
            }
        }
        lines
    }
}

impl Widget for HelpOverlay {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let wide = area.width >= 110;
        let w = if wide {
            108
        } else {
            area.width.saturating_sub(4).min(78)
        };
        let cols: u16 = if wide { 2 } else { 1 };
        let col_w = (w.saturating_sub(2) / cols).saturating_sub(1) as usize;
        let columns = if wide {
            // Split where the taller of the two columns is shortest.
            (1..HELP.len())
                .map(|split| {
                    vec![
                        Self::column(&HELP[..split], col_w),
                        Self::column(&HELP[split..], col_w),
                    ]
                })
                .min_by_key(|c| c.iter().map(Vec::len).max().unwrap_or(0))
                .unwrap_or_default()
        } else {
            vec![Self::column(HELP, col_w)]
        };
        let rows = columns.iter().map(Vec::len).max().unwrap_or(0) as u16;
        let h = (rows + 2).min(area.height.saturating_sub(2));
        let outer = centered(area, w, h);
        let inner = frame("Keys · Esc closes · ↑↓ scroll", outer, buf);
        for (c, lines) in columns.iter().enumerate() {
            let x = inner.x + 1 + c as u16 * (col_w as u16 + 1);
            for (row, l) in lines
                .iter()
                .skip(self.scroll as usize)
                .take(inner.height as usize)
                .enumerate()
            {
                cells::set_line(buf, x, inner.y + row as u16, l, col_w as u16);
            }
        }
    }
}

/// Domain rule A4 made visible: the send waits for the agent's choice.
pub struct AttributionDialog<'a> {
    pub app: &'a App,
    pub prompt: &'a AttributionPrompt,
}

impl Widget for AttributionDialog<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let p = self.prompt;
        let code = sanitize(&p.code);
        let since = p
            .since
            .as_deref()
            .map(|s| format!(" (since {})", format::date_time(s, &self.app.tz)))
            .unwrap_or_default();
        let mut lines = vec![
            Line::raw(format!(
                "Replies from this subscriber on {code} now go to another business{since}."
            )),
            Line::raw(""),
            Line::raw(format!(
                "Sending on {code} makes your business the one this subscriber's replies come to \
                 again (the other business is not told who you are)."
            )),
            Line::raw(""),
            Line::from(vec![
                Span::styled(" r ", theme::key()),
                Span::raw(format!(" reclaim {code} and send")),
            ]),
        ];
        match p.alternatives.as_slice() {
            [] => lines.push(Line::styled(
                " d   (no dedicated code of yours in this country)",
                theme::dim(),
            )),
            [alt] => lines.push(Line::from(vec![
                Span::styled(" d ", theme::key()),
                Span::raw(format!(
                    " send from your dedicated code {} instead",
                    sanitize(alt)
                )),
            ])),
            several => {
                lines.push(Line::from(vec![
                    Span::styled(" d ", theme::key()),
                    Span::raw(" send from the chosen dedicated code instead:"),
                ]));
                let chosen = p.selected.min(several.len() - 1);
                for (i, alt) in several.iter().enumerate() {
                    let sel = i == chosen;
                    let mark = if sel { "▸" } else { " " };
                    let number = if i < 9 {
                        format!("{}", i + 1)
                    } else {
                        " ".into()
                    };
                    let style = if sel {
                        theme::selected().add_modifier(ratatui::style::Modifier::BOLD)
                    } else {
                        ratatui::style::Style::new()
                    };
                    lines.push(Line::from(vec![
                        Span::raw(format!("    {mark} ")),
                        Span::styled(number, theme::key()),
                        Span::styled(format!("  {}", sanitize(alt)), style),
                    ]));
                }
                lines.push(Line::styled(
                    "    ↑↓ choose, then d · or a digit sends from that code",
                    theme::dim(),
                ));
            }
        }
        lines.push(Line::from(vec![
            Span::styled(" Esc", theme::key()),
            Span::raw(" cancel; the text stays in the composer"),
        ]));
        let w = area.width.saturating_sub(4).min(66);
        let text_w = w.saturating_sub(2) as usize;
        let h: usize = lines
            .iter()
            .map(|l| text::wrapped_height(&l.to_string(), text_w))
            .sum();
        let outer = centered(area, w, h as u16 + 2);
        let inner = frame(&format!("Attribution lost on {code}"), outer, buf);
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .render(inner, buf);
    }
}

pub struct QuitDialog {
    pub unsent: usize,
}

impl Widget for QuitDialog {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let what = if self.unsent == 1 {
            "1 unsent draft".to_string()
        } else {
            format!("{} unsent drafts", self.unsent)
        };
        let lines = vec![
            Line::raw(format!("You have {what}. Quitting loses it.")),
            Line::raw(""),
            Line::from(vec![
                Span::styled(" y ", theme::key()),
                Span::raw(" quit   "),
                Span::styled(" n ", theme::key()),
                Span::raw(" stay"),
            ]),
        ];
        let outer = centered(area, area.width.saturating_sub(4).min(48), 5);
        let inner = frame("Quit?", outer, buf);
        Paragraph::new(lines)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true })
            .render(inner, buf);
    }
}

pub struct CodePicker<'a> {
    pub codes: &'a [CodeInfo],
    pub selected: usize,
    pub current: Option<&'a str>,
}

impl Widget for CodePicker<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let h = (self.codes.len() as u16 + 4).min(area.height.saturating_sub(2));
        let outer = centered(area, area.width.saturating_sub(4).min(48), h);
        let inner = frame("Reply from which code?", outer, buf);
        let rows = inner.height.saturating_sub(1) as usize;
        let start = self.selected.saturating_sub(rows.saturating_sub(1));
        for (n, (i, k)) in self
            .codes
            .iter()
            .enumerate()
            .skip(start)
            .take(rows)
            .enumerate()
        {
            let mark = if i == self.selected { "▸ " } else { "  " };
            let now = if Some(k.code.as_str()) == self.current {
                "  (now)"
            } else {
                ""
            };
            let text = format!(
                "{mark}{} {}{now}",
                format::code_badge(&sanitize(&k.code), k.kind, &sanitize(&k.country)),
                format::code_kind(k.kind)
            );
            let style = if i == self.selected {
                theme::selected()
            } else {
                ratatui::style::Style::new()
            };
            cells::set_line(
                buf,
                inner.x,
                inner.y + n as u16,
                &Line::styled(text, style),
                inner.width,
            );
        }
        let hint = Line::styled("Enter switch · Esc cancel", theme::dim());
        cells::set_line(
            buf,
            inner.x,
            inner.bottom().saturating_sub(1),
            &hint,
            inner.width,
        );
    }
}
