//! How many SMS segments a body takes, and whether it may be sent at all (rule A8).
//!
//! A body whose every character is in the GSM 03.38 default alphabet (basic table, plus the
//! extension table whose characters take an escape and so count two septets) is sent as
//! GSM-7: up to 160 septets in one segment, else 153 per segment. Anything else is UCS-2:
//! up to 70 UTF-16 units in one segment, else 67 per segment. Segments are packed greedily,
//! and an escape pair or a surrogate pair that does not fit in what is left of a segment goes
//! whole into the next one, so a split body can need one more segment than `units / 153`.
//!
//! Segments of a split body carry a user data header, which is why they hold less; the
//! numbers here are what carriers bill, so cost (rule A8) is `segments × price`.

/// The most segments a body may take (`body_too_long` beyond this).
pub const MAX_SEGMENTS: u32 = 10;

const GSM7_SINGLE: u32 = 160;
const GSM7_MULTI: u32 = 153;
const UCS2_SINGLE: u32 = 70;
const UCS2_MULTI: u32 = 67;

/// The character set a body is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    /// `gsm7` or `ucs2`, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "gsm7",
            Encoding::Ucs2 => "ucs2",
        }
    }

    /// Units a single-segment body may hold.
    pub fn single_capacity(self) -> u32 {
        match self {
            Encoding::Gsm7 => GSM7_SINGLE,
            Encoding::Ucs2 => UCS2_SINGLE,
        }
    }

    /// Units each segment of a split body may hold.
    pub fn multi_capacity(self) -> u32 {
        match self {
            Encoding::Gsm7 => GSM7_MULTI,
            Encoding::Ucs2 => UCS2_MULTI,
        }
    }
}

/// The size of a body as the carrier will see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SegmentCount {
    pub encoding: Encoding,
    /// Septets (GSM-7, extension characters counting two) or UTF-16 units (UCS-2).
    pub units: u32,
    /// 0 for an empty body, which cannot be sent.
    pub segments: u32,
    /// Units still free in the last segment (for an empty body: a whole single segment).
    pub remaining_in_segment: u32,
}

/// Why a body cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the message is empty: write something to send")]
    Empty,
    #[error(
        "the message needs {segments} SMS segments; at most {MAX_SEGMENTS} are allowed: shorten it"
    )]
    TooLong { segments: u32 },
}

/// Septets a character takes in GSM-7: 1 in the basic table, 2 in the extension table,
/// `None` when GSM-7 cannot carry it.
pub fn gsm7_septets(c: char) -> Option<u32> {
    match c {
        // Basic table, in table order, by row.
        '@' | '£' | '$' | '¥' | 'è' | 'é' | 'ù' | 'ì' | 'ò' | 'Ç' | '\n' | 'Ø' | 'ø' | '\r'
        | 'Å' | 'å' => Some(1),
        '\u{0394}' | '_' | '\u{03A6}' | '\u{0393}' | '\u{039B}' | '\u{03A9}' | '\u{03A0}'
        | '\u{03A8}' | '\u{03A3}' | '\u{0398}' | '\u{039E}' | 'Æ' | 'æ' | 'ß' | 'É' => Some(1),
        ' ' | '!' | '"' | '#' | '¤' | '%' | '&' | '\'' | '(' | ')' | '*' | '+' | ',' | '-'
        | '.' | '/' => Some(1),
        '0'..='9' | ':' | ';' | '<' | '=' | '>' | '?' => Some(1),
        '¡' | 'A'..='Z' | 'Ä' | 'Ö' | 'Ñ' | 'Ü' | '§' => Some(1),
        '¿' | 'a'..='z' | 'ä' | 'ö' | 'ñ' | 'ü' | 'à' => Some(1),
        // Extension table: an escape septet plus the character.
        '\u{000C}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€' => Some(2),
        _ => None,
    }
}

/// Counts the segments of `body`. Never fails; see [`check_body`] for the sending rules.
pub fn count(body: &str) -> SegmentCount {
    let gsm: Option<u32> = body.chars().map(gsm7_septets).sum();
    match gsm {
        Some(units) => pack(Encoding::Gsm7, units, body.chars().filter_map(gsm7_septets)),
        None => {
            let units = body.encode_utf16().count() as u32;
            pack(
                Encoding::Ucs2,
                units,
                body.chars().map(|c| c.len_utf16() as u32),
            )
        }
    }
}

/// Rule A8: refuses empty (or whitespace-only) bodies and bodies of more than
/// [`MAX_SEGMENTS`] segments.
pub fn check_body(body: &str) -> Result<SegmentCount, BodyError> {
    if body.trim().is_empty() {
        return Err(BodyError::Empty);
    }
    let count = count(body);
    if count.segments > MAX_SEGMENTS {
        return Err(BodyError::TooLong {
            segments: count.segments,
        });
    }
    Ok(count)
}

/// Packs characters of the given widths into segments, greedily, never splitting one.
fn pack(encoding: Encoding, units: u32, widths: impl Iterator<Item = u32>) -> SegmentCount {
    let single = encoding.single_capacity();
    if units <= single {
        let segments = u32::from(units > 0);
        return SegmentCount {
            encoding,
            units,
            segments,
            remaining_in_segment: single - units,
        };
    }
    let capacity = encoding.multi_capacity();
    let mut segments = 1;
    let mut used = 0;
    for width in widths {
        if used + width > capacity {
            segments += 1;
            used = 0;
        }
        used += width;
    }
    SegmentCount {
        encoding,
        units,
        segments,
        remaining_in_segment: capacity - used,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rep(s: &str, n: usize) -> String {
        s.repeat(n)
    }

    fn check(body: &str, encoding: Encoding, units: u32, segments: u32, remaining: u32, why: &str) {
        let got = count(body);
        let want = SegmentCount {
            encoding,
            units,
            segments,
            remaining_in_segment: remaining,
        };
        assert_eq!(got, want, "{why}");
    }

    #[test]
    fn gsm7_boundaries() {
        use Encoding::Gsm7;
        let cases = [
            (rep("a", 1), 1, 1, 159, "one character"),
            (rep("a", 160), 160, 1, 0, "160 fits one segment"),
            (rep("a", 161), 161, 2, 145, "161 splits into 153 + 8"),
            (rep("a", 306), 306, 2, 0, "153 × 2"),
            (rep("a", 307), 307, 3, 152, "153 × 2 + 1"),
            (rep("a", 459), 459, 3, 0, "153 × 3"),
            (rep("a", 460), 460, 4, 152, "153 × 3 + 1"),
            (rep("a", 1530), 1530, 10, 0, "153 × 10 is the most"),
            (rep("a", 1531), 1531, 11, 152, "one more is an 11th segment"),
        ];
        for (body, units, segments, remaining, why) in cases {
            check(&body, Gsm7, units, segments, remaining, why);
        }
    }

    #[test]
    fn gsm7_extension_characters_count_two_and_are_never_split() {
        use Encoding::Gsm7;
        let cases = [
            (
                format!("{}€", rep("a", 158)),
                160,
                1,
                0,
                "extension at the end of one segment",
            ),
            (
                format!("{}€", rep("a", 159)),
                161,
                2,
                145,
                "one septet over: split",
            ),
            (
                format!("{}€{}", rep("a", 151), rep("b", 10)),
                163,
                2,
                143,
                "€ ends segment 1",
            ),
            (
                format!("{}€{}", rep("a", 152), rep("b", 10)),
                164,
                2,
                141,
                "€ pushed whole to 2",
            ),
            (
                format!("{}€{}", rep("a", 152), rep("b", 152)),
                306,
                3,
                152,
                "the push costs one",
            ),
            (
                format!("{}{}", rep("a", 306), "{"),
                308,
                3,
                151,
                "{ starts segment 3",
            ),
            (
                rep("[]", 80),
                320,
                3,
                137,
                "pairs only: 76 + 76 + 8 of them",
            ),
            (
                "\u{000C}".to_owned(),
                2,
                1,
                158,
                "form feed is an extension character",
            ),
            (
                "^{}\\[~]|€".to_owned(),
                18,
                1,
                142,
                "every extension character",
            ),
        ];
        for (body, units, segments, remaining, why) in cases {
            check(&body, Gsm7, units, segments, remaining, why);
        }
    }

    #[test]
    fn ucs2_boundaries() {
        use Encoding::Ucs2;
        let cases = [
            (rep("á", 1), 1, 1, 69, "á is not in GSM 03.38"),
            (rep("á", 70), 70, 1, 0, "70 fits one segment"),
            (rep("á", 71), 71, 2, 63, "71 splits into 67 + 4"),
            (rep("á", 134), 134, 2, 0, "67 × 2"),
            (rep("á", 135), 135, 3, 66, "67 × 2 + 1"),
            (rep("á", 670), 670, 10, 0, "67 × 10 is the most"),
            (rep("á", 671), 671, 11, 66, "an 11th segment"),
            (rep("😀", 35), 70, 1, 0, "35 emoji are 70 units"),
            (rep("😀", 36), 72, 2, 61, "36 emoji: 33 + 3 pairs"),
        ];
        for (body, units, segments, remaining, why) in cases {
            check(&body, Ucs2, units, segments, remaining, why);
        }
    }

    #[test]
    fn ucs2_surrogate_pairs_are_never_split() {
        use Encoding::Ucs2;
        let cases = [
            (
                format!("{}😀{}", rep("á", 65), rep("b", 10)),
                77,
                2,
                57,
                "😀 ends segment 1",
            ),
            (
                format!("{}😀{}", rep("á", 66), rep("b", 10)),
                78,
                2,
                55,
                "😀 pushed whole to 2",
            ),
            (
                format!("{}😀{}", rep("á", 66), rep("b", 67)),
                135,
                3,
                65,
                "the push costs one",
            ),
        ];
        for (body, units, segments, remaining, why) in cases {
            check(&body, Ucs2, units, segments, remaining, why);
        }
    }

    #[test]
    fn encoding_of_mixed_text() {
        let cases = [
            ("Your code is 1234", Encoding::Gsm7, 17),
            ("Mañana a las 10: ¿vienes? Ñandú", Encoding::Ucs2, 31), // ú is not GSM
            ("Mañana a las 10: ¿vienes?", Encoding::Gsm7, 25),
            ("Total: 5€ [promo]", Encoding::Gsm7, 20),
            ("Tu código es 1234", Encoding::Ucs2, 17), // ó is not GSM
            ("Ça va? Déjà vu", Encoding::Gsm7, 14),
            ("ça va? Déjà vu", Encoding::Ucs2, 14), // lower-case ç is not GSM
            ("ΔΦΓΛΩΠΨΣΘΞ", Encoding::Gsm7, 10),
            ("tab\there", Encoding::Ucs2, 8),
            ("back`tick", Encoding::Ucs2, 9),
            ("line\r\nbreak", Encoding::Gsm7, 11),
            ("Thanks 👍", Encoding::Ucs2, 9),
        ];
        for (body, encoding, units) in cases {
            let got = count(body);
            assert_eq!(
                (got.encoding, got.units, got.segments),
                (encoding, units, 1),
                "{body:?}"
            );
        }
    }

    #[test]
    fn empty_body_counts_zero_segments() {
        check("", Encoding::Gsm7, 0, 0, 160, "empty");
    }

    #[test]
    fn check_body_refuses_empty_and_too_long() {
        for body in ["", " ", "\n\t  ", "\u{3000}"] {
            assert_eq!(check_body(body), Err(BodyError::Empty), "{body:?}");
        }
        assert_eq!(check_body(&rep("a", 1530)).unwrap().segments, 10);
        assert_eq!(
            check_body(&rep("a", 1531)),
            Err(BodyError::TooLong { segments: 11 })
        );
        assert_eq!(check_body(&rep("á", 670)).unwrap().segments, 10);
        assert_eq!(
            check_body(&rep("á", 671)),
            Err(BodyError::TooLong { segments: 11 })
        );
        assert_eq!(check_body(" hi ").unwrap().segments, 1);
        let msg = check_body(&rep("a", 1531)).unwrap_err().to_string();
        assert_eq!(
            msg,
            "the message needs 11 SMS segments; at most 10 are allowed: shorten it"
        );
    }

    fn gsm_heavy() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec![
                'a', 'Z', ' ', '€', '[', '^', 'é', 'Δ', '\n', 'á', '😀',
            ]),
            0..2000,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    fn assert_bounds(body: &str) -> Result<(), TestCaseError> {
        let c = count(body);
        let per_char_max: u32 = match c.encoding {
            Encoding::Gsm7 => body.chars().map(|ch| gsm7_septets(ch).unwrap()).sum(),
            Encoding::Ucs2 => body.encode_utf16().count() as u32,
        };
        prop_assert_eq!(c.units, per_char_max);
        if c.units == 0 {
            prop_assert_eq!(c.segments, 0);
        } else if c.units <= c.encoding.single_capacity() {
            prop_assert_eq!(c.segments, 1);
        } else {
            let cap = c.encoding.multi_capacity();
            // Never fewer than a perfect packing, never more than one wasted unit per segment.
            prop_assert!(c.segments >= c.units.div_ceil(cap));
            prop_assert!(c.segments <= c.units.div_ceil(cap - 1));
            prop_assert!(c.remaining_in_segment < cap);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn any_string_is_counted_within_bounds(body in any::<String>()) {
            assert_bounds(&body)?;
        }

        #[test]
        fn gsm_and_pairs_mix_is_counted_within_bounds(body in gsm_heavy()) {
            assert_bounds(&body)?;
        }
    }
}
