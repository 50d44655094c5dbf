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

use std::borrow::Cow;

/// Returns `s` with every control that could act on a terminal made inert. Borrows when `s`
/// is already clean, which is the common case.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    match s.char_indices().find(|&(_, c)| needs_work(c)) {
        None => Cow::Borrowed(s),
        Some((first, _)) => {
            let mut out = String::with_capacity(s.len() + 8);
            out.push_str(&s[..first]);
            let mut rest = s[first..].chars().peekable();
            while let Some(c) = rest.next() {
                if c == '\r' {
                    // CR LF is a newline; a lone CR would move the cursor back over the line.
                    if rest.peek() != Some(&'\n') {
                        out.push('\n');
                    }
                    continue;
                }
                push_inert(&mut out, c);
            }
            Cow::Owned(out)
        }
    }
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
    is_forbidden(c) || matches!(c, '\u{2028}' | '\u{2029}')
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
    }
}
