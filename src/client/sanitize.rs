//! The one terminal sanitizer: every string that came from outside (message bodies, names,
//! error messages, tenant names) passes here at the render boundary.
//!
//! A terminal acts on what it is sent: ESC starts escape sequences (title changes, screen
//! clears, clipboard writes through OSC 52), other C0 controls move the cursor, C1 controls
//! (U+0080–U+009F) are 8-bit escape introducers in some terminals, and bidi controls reorder
//! what follows them. None of these may reach the terminal from a message body. The visible
//! ones are replaced by their Unicode control pictures (so an agent can see that a message
//! carried them), the invisible bidi controls are dropped, and tab and newline are kept for
//! the layout code, which expands and splits them.
//!
//! It also takes apart the emoji sequences terminals draw at different widths (skin tones,
//! zero-width joins between emoji, presentation selectors, tag sequences, flag pairs): the
//! layout counts cells, and a terminal that draws a sequence one cell wider than counted
//! shifts the rest of the line. What remains draws at the same width everywhere; a flag
//! reads as its country letters, `[CA]`.

use std::borrow::Cow;

/// Returns `s` with every control that could act on a terminal made inert. Borrows when `s`
/// is already clean, which is the common case.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    let Some((first, _)) = s.char_indices().find(|&(_, c)| needs_work(c)) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    let mut rest = s[first..].chars().peekable();
    while let Some(c) = rest.next() {
        match c {
            // CR LF is a newline; a lone CR would move the cursor back over the line.
            '\r' if rest.peek() == Some(&'\n') => {}
            '\r' => out.push('\n'),
            c if is_regional_indicator(c) => {
                let letter = |r: char| char::from(b'A' + (r as u32 - 0x1f1e6) as u8);
                match rest.peek().copied().filter(|&n| is_regional_indicator(n)) {
                    Some(n) => {
                        rest.next();
                        out.extend(['[', letter(c), letter(n), ']']);
                    }
                    None => out.push(letter(c)),
                }
            }
            c => push_inert(&mut out, c),
        }
    }
    if out.contains('\u{200d}') {
        out = drop_emoji_joins(&out);
    }
    Cow::Owned(out)
}

/// Drops a zero-width join next to an emoji (judged on what is left after the first pass,
/// so that sanitizing twice changes nothing); a join inside a word of an Indic script stays.
fn drop_emoji_joins(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == '\u{200d}' {
            let prev = out.chars().next_back();
            let next = chars[i + 1..].iter().copied().find(|&n| n != '\u{200d}');
            if prev.is_some_and(is_emoji) || next.is_some_and(is_emoji) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// True for a character the terminal must never receive as is (tab and newline are fine).
pub fn is_forbidden(c: char) -> bool {
    match c {
        '\t' | '\n' => false,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        _ => is_bidi_control(c),
    }
}

/// Bidirectional formatting controls: embeddings, overrides, isolates and marks.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}'
    )
}

fn needs_work(c: char) -> bool {
    is_forbidden(c)
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200d}' | '\u{fe0e}' | '\u{fe0f}'
        )
        || is_width_ambiguous_emoji_part(c)
}

/// Pieces of emoji sequences whose drawn width differs between terminals.
fn is_width_ambiguous_emoji_part(c: char) -> bool {
    is_regional_indicator(c) || matches!(c, '\u{1f3fb}'..='\u{1f3ff}' | '\u{e0000}'..='\u{e007f}')
}

fn is_regional_indicator(c: char) -> bool {
    matches!(c, '\u{1f1e6}'..='\u{1f1ff}')
}

/// Characters that take part in emoji sequences (pictographs and dingbats).
fn is_emoji(c: char) -> bool {
    matches!(c, '\u{1f000}'..='\u{1faff}' | '\u{2600}'..='\u{27bf}' | '\u{2b00}'..='\u{2bff}')
}

fn push_inert(out: &mut String, c: char) {
    match c {
        // Line and paragraph separators: some terminals break the line, some do not; make
        // the layout decide.
        '\u{2028}' | '\u{2029}' => out.push('\n'),
        // C0: the matching control picture (U+2400 + c), e.g. ESC → ␛.
        '\u{0}'..='\u{1f}' if c != '\t' && c != '\n' => {
            out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'))
        }
        '\u{7f}' => out.push('\u{2421}'),
        '\u{80}'..='\u{9f}' => out.push('\u{fffd}'),
        c if is_bidi_control(c) => {}
        // Presentation selectors, skin tones and tags: the base character stays.
        '\u{fe0e}' | '\u{fe0f}' | '\u{1f3fb}'..='\u{1f3ff}' | '\u{e0000}'..='\u{e007f}' => {}
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(sanitize("Hola, ¿qué tal? 👋"), Cow::Borrowed(_)));
        assert!(matches!(sanitize("a\tb\nc"), Cow::Borrowed(_)));
    }

    #[test]
    fn escapes_become_visible_and_inert() {
        assert_eq!(sanitize("\x1b]0;pwned\x07"), "␛]0;pwned␇");
        assert_eq!(sanitize("\x1b[2J"), "␛[2J");
        assert_eq!(sanitize("a\u{9b}31mb"), "a\u{fffd}31mb");
        assert_eq!(sanitize("x\u{7f}"), "x␡");
    }

    #[test]
    fn bidi_controls_are_dropped() {
        assert_eq!(sanitize("abc\u{202e}fed\u{202c}"), "abcfed");
        assert_eq!(sanitize("\u{2066}x\u{2069}\u{200f}\u{061c}"), "x");
    }

    #[test]
    fn emoji_sequences_come_apart_into_fixed_widths() {
        assert_eq!(sanitize("ok 👍🏽"), "ok 👍");
        assert_eq!(sanitize("👨\u{200d}👩\u{200d}👧"), "👨👩👧");
        assert_eq!(sanitize("❤\u{fe0f}"), "❤");
        assert_eq!(sanitize("to Canada 🇨🇦!"), "to Canada [CA]!");
        assert_eq!(sanitize("🇨"), "C");
        // A join inside an Indic word is not an emoji join.
        assert_eq!(sanitize("क्\u{200d}ष"), "क्\u{200d}ष");
        assert!(matches!(sanitize("🚚 ok"), Cow::Borrowed(_)));
    }

    #[test]
    fn carriage_returns_fold_into_newlines() {
        assert_eq!(sanitize("a\r\nb"), "a\nb");
        assert_eq!(sanitize("a\rb"), "a\nb");
        assert_eq!(sanitize("a\u{2028}b"), "a\nb");
    }

    proptest! {
        #[test]
        fn output_never_carries_a_control(s in any::<String>()) {
            let out = sanitize(&s);
            prop_assert!(!out.chars().any(is_forbidden), "{:?} -> {:?}", s, out);
        }

        #[test]
        fn controls_heavy_input_is_made_inert(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("\x1b".to_string()),
                    Just("\u{9b}".to_string()),
                    Just("\u{202e}".to_string()),
                    Just("\r".to_string()),
                    "[a-z ]{0,4}",
                    any::<char>().prop_map(|c| c.to_string()),
                ],
                0..40,
            )
        ) {
            let s = parts.concat();
            let out = sanitize(&s);
            prop_assert!(!out.chars().any(is_forbidden));
            // Clean output is a fixed point.
            let again = sanitize(&out);
            prop_assert_eq!(again.as_ref(), out.as_ref());
        }

        #[test]
        fn emoji_heavy_input_sanitizes_once_for_all(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just('\u{200d}'), Just('\u{fe0f}'), Just('\u{1f3fd}'), Just('\u{1f1e8}'),
                    Just('\u{1f1e6}'), Just('\u{2066}'), Just('😀'), Just('क'), Just('x'),
                    Just('\r'), Just('\u{e0067}'),
                ],
                0..30,
            )
        ) {
            let s: String = parts.into_iter().collect();
            let out = sanitize(&s);
            let again = sanitize(&out);
            prop_assert_eq!(again.as_ref(), out.as_ref());
        }
    }
}
