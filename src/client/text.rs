//! Measuring, wrapping and truncating text by its display width in terminal cells.
//!
//! The views need the height of a message before they draw it (to draw only what is visible),
//! so wrapping is done here, once, by one rule: words break at spaces, a word longer than the
//! line breaks between characters, tabs expand to the next multiple of four columns, and
//! newlines start a new line. Input is expected to have passed [`super::sanitize`] already.

use std::borrow::Cow;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

const TAB: usize = 4;

/// Display width of `s` in cells.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

fn char_width(c: char) -> usize {
    UnicodeWidthChar::width(c).unwrap_or(0)
}

/// Cuts `s` to at most `max` cells, ending with `…` when something was cut. Newlines and
/// tabs become spaces, so the result is always one line.
pub fn truncate(s: &str, max: usize) -> Cow<'_, str> {
    let flat = if s.contains(['\n', '\t']) {
        Cow::Owned(s.replace(['\n', '\t'], " "))
    } else {
        Cow::Borrowed(s)
    };
    if width(&flat) <= max {
        return flat;
    }
    if max == 0 {
        return Cow::Borrowed("");
    }
    let mut out = String::new();
    let mut used = 0;
    for c in flat.chars() {
        let w = char_width(c);
        if used + w > max - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    Cow::Owned(out)
}

/// Pads or cuts `s` to exactly `cols` cells.
pub fn fit(s: &str, cols: usize) -> String {
    let cut = truncate(s, cols);
    let pad = cols.saturating_sub(width(&cut));
    let mut out = cut.into_owned();
    out.extend(std::iter::repeat_n(' ', pad));
    out
}

/// Wraps `s` into lines of at most `max` cells (at least one line, possibly empty).
pub fn wrap(s: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut lines = Vec::new();
    for paragraph in s.split('\n') {
        wrap_paragraph(&expand_tabs(paragraph), max, &mut lines);
    }
    lines
}

/// How many lines [`wrap`] would give, without keeping them.
pub fn wrapped_height(s: &str, max: usize) -> usize {
    wrap(s, max).len()
}

fn expand_tabs(line: &str) -> Cow<'_, str> {
    if !line.contains('\t') {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 8);
    let mut col = 0;
    for c in line.chars() {
        if c == '\t' {
            let n = TAB - col % TAB;
            out.extend(std::iter::repeat_n(' ', n));
            col += n;
        } else {
            out.push(c);
            col += char_width(c);
        }
    }
    Cow::Owned(out)
}

fn wrap_paragraph(p: &str, max: usize, lines: &mut Vec<String>) {
    let mut line = String::new();
    let mut used = 0;
    for word in split_keep_spaces(p) {
        let w = width(word);
        if used + w <= max {
            line.push_str(word);
            used += w;
            continue;
        }
        if word.trim().is_empty() {
            // A space at the end of a full line: the break replaces it.
            lines.push(std::mem::take(&mut line));
            used = 0;
            continue;
        }
        if used > 0 && w <= max {
            lines.push(std::mem::take(&mut line).trim_end().to_string());
            line.push_str(word);
            used = w;
            continue;
        }
        // Longer than a whole line: break between characters.
        for c in word.chars() {
            let cw = char_width(c);
            if used + cw > max && used > 0 {
                lines.push(std::mem::take(&mut line));
                used = 0;
            }
            line.push(c);
            used += cw;
        }
    }
    lines.push(line);
}

/// Splits into alternating runs of spaces and non-spaces, keeping both.
fn split_keep_spaces(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let space = first == ' ';
        let end = rest
            .find(|c: char| (c == ' ') != space)
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(end);
        rest = tail;
        Some(run)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wraps_at_spaces() {
        assert_eq!(
            wrap("hello brave new world", 11),
            ["hello brave", "new world"]
        );
        assert_eq!(wrap("", 5), [""]);
        assert_eq!(wrap("a\nb", 5), ["a", "b"]);
    }

    #[test]
    fn breaks_long_words() {
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
    }

    #[test]
    fn counts_wide_characters() {
        assert_eq!(wrap("日本語のテキスト", 6), ["日本語", "のテキ", "スト"]);
    }

    #[test]
    fn expands_tabs() {
        assert_eq!(wrap("a\tb", 20), ["a   b"]);
    }

    #[test]
    fn truncates_with_an_ellipsis() {
        assert_eq!(truncate("hello world", 8), "hello w…");
        assert_eq!(truncate("short", 8), "short");
        assert_eq!(fit("ab", 4), "ab  ");
        assert_eq!(truncate("a\nb", 8), "a b");
    }

    proptest! {
        #[test]
        fn no_line_is_wider_than_asked(s in "[a-z 日本\t\n]{0,200}", max in 2usize..40) {
            for line in wrap(&s, max) {
                prop_assert!(width(&line) <= max, "{line:?} wider than {max}");
            }
        }
    }
}
