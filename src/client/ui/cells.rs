//! Writing a line into the buffer: [`set_line`] does what `Buffer::set_line` does, with a fast
//! path for the common case.
//!
//! ratatui splits every span into grapheme clusters and measures each before writing a cell;
//! at 200×50 that was most of a frame's cost. Most of what the screen shows needs none of it:
//! printable ASCII, and the width-1 characters of blocks whose characters never join their
//! neighbours (Latin-1 and Latin Extended-A letters, punctuation, arrows, box drawing and
//! geometric shapes: `·`, `─`, `▸`, `●`, `→`, `é`) are one grapheme and one cell each. Spans made
//! only of those are written cell by cell directly; any other span (a combining mark, an emoji,
//! CJK, a control) goes through `Buffer::set_stringn` as before. The result is the same cell for
//! cell: the tests below compare the two for every such character and for random lines.

use ratatui::buffer::Buffer;
use ratatui::text::Line;
use unicode_width::UnicodeWidthStr;

/// Whether `c` is one grapheme and one cell whatever surrounds it, as long as its neighbours
/// are such characters too.
fn one_cell(c: char) -> bool {
    match c as u32 {
        0x20..=0x7e => true,
        // Not U+00AD, the soft hyphen: a format character.
        0xa0..=0xac
        | 0xae..=0x17f
        | 0x2010..=0x2027
        | 0x2030..=0x205e
        | 0x2190..=0x21ff
        | 0x2500..=0x25ff => {
            // As ratatui measures it; this also drops the shapes shown as wide emoji.
            UnicodeWidthStr::width(c.encode_utf8(&mut [0; 4]) as &str) == 1
        }
        _ => false,
    }
}

/// `buf.set_line(x, y, line, max_width)`, faster for ASCII spans. Returns where the line
/// ended. A row outside the buffer is left alone (ratatui would panic).
pub fn set_line(buf: &mut Buffer, x: u16, y: u16, line: &Line<'_>, max_width: u16) -> (u16, u16) {
    let area = buf.area;
    if y < area.top() || y >= area.bottom() || x < area.left() {
        return (x, y);
    }
    let mut remaining = max_width;
    let mut x = x;
    for span in line {
        if remaining == 0 {
            break;
        }
        let style = line.style.patch(span.style);
        let content = span.content.as_ref();
        let end = if content.chars().all(one_cell) {
            let room = area.right().saturating_sub(x).min(remaining) as usize;
            let start = (y - area.y) as usize * area.width as usize + (x - area.x) as usize;
            let mut n = 0;
            for c in content.chars().take(room) {
                buf.content[start + n].set_char(c).set_style(style);
                n += 1;
            }
            x + n as u16
        } else {
            buf.set_stringn(x, y, content, remaining as usize, style).0
        };
        remaining = remaining.saturating_sub(end.saturating_sub(x));
        x = end;
    }
    (x, y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ratatui::layout::Rect;
    use ratatui::style::{Color, Modifier, Style};
    use ratatui::text::Span;

    fn style(n: u8) -> Style {
        match n % 4 {
            0 => Style::new(),
            1 => Style::new().fg(Color::Indexed(n)),
            2 => Style::new().bg(Color::Red).add_modifier(Modifier::BOLD),
            _ => Style::new()
                .fg(Color::Green)
                .remove_modifier(Modifier::BOLD),
        }
    }

    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ -~]{0,30}",
            "[ -~·─▸●◆→…éñ\u{a0}\u{ad}]{0,30}",
            "[a-z ·─]{0,10}[éü東字😀\u{301}\u{200d}\u{fe0f}\t\u{1b}◽][a-z ·▸]{0,10}",
            Just(String::new()),
        ]
    }

    /// Every character the fast path takes, alone and between others, as ratatui writes it.
    #[test]
    fn each_one_cell_character_is_written_as_ratatui_writes_it() {
        let area = Rect::new(0, 0, 8, 1);
        let taken: Vec<char> = (0x20u32..0x2600)
            .filter_map(char::from_u32)
            .filter(|c| one_cell(*c))
            .collect();
        assert!(taken.len() >= 750, "{}", taken.len());
        assert!(!taken.contains(&'\u{ad}') && !taken.contains(&'◽'));
        for c in taken {
            for text in [c.to_string(), format!("a{c}{c}b")] {
                let line = Line::raw(text.clone());
                let mut theirs = Buffer::empty(area);
                let mut ours = Buffer::empty(area);
                let a = theirs.set_line(1, 0, &line, 6);
                let b = set_line(&mut ours, 1, 0, &line, 6);
                assert_eq!((a, &theirs), (b, &ours), "{text:?}");
            }
        }
    }

    proptest! {
        /// Cell for cell what ratatui writes, for ASCII, wide, combining and control text,
        /// any widths and positions, over a row that already holds something.
        #[test]
        fn writes_what_ratatui_writes(
            spans in prop::collection::vec((piece(), any::<u8>()), 0..6),
            line_style in any::<u8>(),
            x in 0u16..30,
            max in 0u16..40,
        ) {
            let line = Line::from(
                spans
                    .iter()
                    .map(|(t, s)| Span::styled(t.clone(), style(*s)))
                    .collect::<Vec<_>>(),
            )
            .style(style(line_style));
            let area = Rect::new(2, 1, 24, 3);
            let mut theirs = Buffer::filled(area, ratatui::buffer::Cell::new("x"));
            let mut ours = theirs.clone();
            let x = area.x + x;
            let a = theirs.set_line(x, 2, &line, max);
            let b = set_line(&mut ours, x, 2, &line, max);
            prop_assert_eq!(a, b);
            prop_assert_eq!(theirs, ours);
        }
    }

    #[test]
    fn a_row_outside_the_buffer_is_left_alone() {
        let area = Rect::new(0, 0, 5, 1);
        let mut buf = Buffer::empty(area);
        let line = Line::raw("hello");
        assert_eq!(set_line(&mut buf, 0, 3, &line, 5), (0, 3));
        assert_eq!(buf, Buffer::empty(area));
        set_line(&mut buf, 2, 0, &line, 5);
        assert_eq!(buf, Buffer::with_lines(["  hel"]));
    }
}
