//! Compliance keywords (rule A7): which whole messages are STOP, START, HELP or YES, and the
//! normalisation that makes "Stop.", " stop " and "ARRÊT" the same word.
//!
//! A message is a keyword only when *all* of it, normalised, is one of the listed words or
//! word pairs: "STOP PLEASE" is not the keyword STOP (it is opt-out *intent*, see
//! [`opt_out_intent`], which an agent confirms). Lists start with A7's words and grow per
//! tenant or per country with [`KeywordLists::extend`] (e.g. BAJA, AYUDA).
//!
//! Normalisation: trim, upper-case, fold Latin accents (Ê→E, Ñ→N, ß→SS), drop every character
//! that is neither a letter, a digit nor whitespace (punctuation, symbols, emoji), and collapse
//! runs of whitespace into one space. Punctuation is dropped, not turned into a space, so
//! "OPT-OUT" becomes "OPTOUT" and "don't" becomes "DONT".

use std::collections::BTreeSet;

mod intent;

pub use intent::{opt_out_intent, opt_out_intent_normalized};

/// What a compliance keyword asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeywordClass {
    /// Stop all messages from this code and this tenant.
    OptOut,
    /// Start (or resume) messages.
    OptIn,
    /// Send the HELP text.
    Help,
    /// Confirms a pending double opt-in; a plain reply otherwise.
    Yes,
}

/// A7's default keyword lists.
pub const DEFAULT_OPT_OUT: &[&str] = &[
    "STOP",
    "STOPALL",
    "STOP ALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
    "OPT OUT",
    "OPT-OUT",
    "ARRET",
    "REMOVE",
    "TD",
];
pub const DEFAULT_OPT_IN: &[&str] = &["START", "UNSTOP"];
pub const DEFAULT_HELP: &[&str] = &["HELP", "INFO"];
pub const DEFAULT_YES: &[&str] = &["YES"];

/// The keyword lists in force for one tenant on one code, stored normalised.
///
/// When a word is in several lists the first of opt-out, opt-in, help, yes wins, so a tenant
/// cannot turn STOP into anything but an opt-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeywordLists {
    opt_out: BTreeSet<String>,
    opt_in: BTreeSet<String>,
    help: BTreeSet<String>,
    yes: BTreeSet<String>,
}

impl Default for KeywordLists {
    fn default() -> Self {
        let mut lists = KeywordLists {
            opt_out: BTreeSet::new(),
            opt_in: BTreeSet::new(),
            help: BTreeSet::new(),
            yes: BTreeSet::new(),
        };
        lists.extend(KeywordClass::OptOut, DEFAULT_OPT_OUT);
        lists.extend(KeywordClass::OptIn, DEFAULT_OPT_IN);
        lists.extend(KeywordClass::Help, DEFAULT_HELP);
        lists.extend(KeywordClass::Yes, DEFAULT_YES);
        lists
    }
}

impl KeywordLists {
    /// Adds words to a class. Words are normalised like messages; words that normalise to
    /// nothing (e.g. "!!") are ignored.
    pub fn extend(&mut self, class: KeywordClass, words: &[&str]) {
        let set = self.set_mut(class);
        for word in words {
            let word = normalize(word);
            if !word.is_empty() {
                set.insert(word);
            }
        }
    }

    /// The class of a whole message, or `None` when it is not exactly a keyword.
    pub fn classify(&self, body: &str) -> Option<KeywordClass> {
        self.classify_normalized(&normalize(body))
    }

    /// [`classify`](Self::classify) for a body already passed through [`normalize`].
    pub fn classify_normalized(&self, body: &str) -> Option<KeywordClass> {
        if body.is_empty() {
            return None;
        }
        [
            KeywordClass::OptOut,
            KeywordClass::OptIn,
            KeywordClass::Help,
            KeywordClass::Yes,
        ]
        .into_iter()
        .find(|class| self.set(*class).contains(body))
    }

    /// The normalised words of a class, in alphabetical order.
    pub fn words(&self, class: KeywordClass) -> impl Iterator<Item = &str> {
        self.set(class).iter().map(String::as_str)
    }

    fn set(&self, class: KeywordClass) -> &BTreeSet<String> {
        match class {
            KeywordClass::OptOut => &self.opt_out,
            KeywordClass::OptIn => &self.opt_in,
            KeywordClass::Help => &self.help,
            KeywordClass::Yes => &self.yes,
        }
    }

    fn set_mut(&mut self, class: KeywordClass) -> &mut BTreeSet<String> {
        match class {
            KeywordClass::OptOut => &mut self.opt_out,
            KeywordClass::OptIn => &mut self.opt_in,
            KeywordClass::Help => &mut self.help,
            KeywordClass::Yes => &mut self.yes,
        }
    }
}

/// Normalises a message for keyword matching; see the module documentation.
pub fn normalize(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    normalize_with(body, |c| {
        out.push(c);
        true
    });
    out
}

/// How many bytes of a normalised body [`Normalized`] keeps on the stack: any one-segment SMS
/// (160 GSM-7 characters or 70 UCS-2 units), even when upper-casing lengthens it.
pub const NORMALIZED_INLINE: usize = 512;

/// A body passed through [`normalize`] without allocating: the normal form is written to a
/// buffer on the stack, and only a body whose normal form does not fit (a long message of
/// several segments) falls back to a `String` on the heap. The router decides every inbound
/// message on this.
pub struct Normalized {
    inline: [u8; NORMALIZED_INLINE],
    len: usize,
    heap: Option<String>,
}

impl Normalized {
    pub fn new(body: &str) -> Normalized {
        let mut n = Normalized {
            inline: [0; NORMALIZED_INLINE],
            len: 0,
            heap: None,
        };
        let fits = normalize_with(body, |c| {
            let end = n.len + c.len_utf8();
            match n.inline.get_mut(n.len..end) {
                Some(dst) => {
                    c.encode_utf8(dst);
                    n.len = end;
                    true
                }
                None => false,
            }
        });
        if !fits {
            n.heap = Some(normalize(body));
        }
        n
    }

    pub fn as_str(&self) -> &str {
        match &self.heap {
            Some(s) => s,
            // Only whole characters are ever written to the buffer.
            None => std::str::from_utf8(&self.inline[..self.len]).unwrap_or_default(),
        }
    }

    /// The normal form did not fit on the stack and was allocated.
    pub fn spilled(&self) -> bool {
        self.heap.is_some()
    }
}

/// The normalisation itself, character by character into `push`; stops (returning `false`)
/// as soon as `push` refuses one.
fn normalize_with(body: &str, mut push: impl FnMut(char) -> bool) -> bool {
    // Whether anything was written, and whether whitespace is waiting to become one space.
    let mut started = false;
    let mut space = false;
    let mut emit = |ch: char, started: &mut bool, space: &mut bool| {
        if *space {
            *space = false;
            if !push(' ') {
                return false;
            }
        }
        *started = true;
        push(ch)
    };
    for c in body.chars() {
        if c.is_whitespace() {
            space = started;
            continue;
        }
        if c.is_ascii() {
            // The common case, same rules without the Unicode tables.
            if c.is_ascii_alphanumeric() && !emit(c.to_ascii_uppercase(), &mut started, &mut space)
            {
                return false;
            }
            continue;
        }
        for upper in c.to_uppercase() {
            let ok = match fold_accent(upper) {
                Some(base) => base.chars().all(|b| emit(b, &mut started, &mut space)),
                None if upper.is_alphanumeric() => emit(upper, &mut started, &mut space),
                None => true,
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

/// The first word of a normalised message (`"Pizza, please!"` → `PIZZA`), used to route by a
/// tenant's registered keyword on a shared code (rule A2.2).
pub fn first_word(body: &str) -> Option<String> {
    first_word_normalized(&normalize(body)).map(str::to_owned)
}

/// [`first_word`] of a body already passed through [`normalize`].
pub fn first_word_normalized(body: &str) -> Option<&str> {
    body.split(' ').next().filter(|w| !w.is_empty())
}

/// The unaccented form of an upper-case Latin letter, if it has one.
fn fold_accent(c: char) -> Option<&'static str> {
    Some(match c {
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' | 'Ă' | 'Ą' => "A",
        'Æ' => "AE",
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => "C",
        'Ð' | 'Ď' | 'Đ' => "D",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => "E",
        'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' => "G",
        'Ĥ' | 'Ħ' => "H",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => "I",
        'Ĵ' => "J",
        'Ķ' => "K",
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ŀ' | 'Ł' => "L",
        'Ñ' | 'Ń' | 'Ņ' | 'Ň' => "N",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' | 'Ŏ' | 'Ő' => "O",
        'Œ' => "OE",
        'Ŕ' | 'Ŗ' | 'Ř' => "R",
        'Ś' | 'Ŝ' | 'Ş' | 'Š' => "S",
        'ẞ' => "SS",
        'Ţ' | 'Ť' | 'Ŧ' => "T",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => "U",
        'Ŵ' => "W",
        'Ý' | 'Ÿ' | 'Ŷ' => "Y",
        'Ź' | 'Ż' | 'Ž' => "Z",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use KeywordClass::*;

    #[test]
    fn normalize_table() {
        let cases = [
            ("  stop  ", "STOP"),
            ("Stop.", "STOP"),
            ("STOP!!!", "STOP"),
            ("opt-out", "OPTOUT"),
            ("opt   out", "OPT OUT"),
            ("\tstop\n all ", "STOP ALL"),
            ("ARRÊT", "ARRET"),
            ("arrêt", "ARRET"),
            ("Ayúdame", "AYUDAME"),
            ("señal", "SENAL"),
            ("straße", "STRASSE"),
            ("E\u{0301}TE", "ETE"), // decomposed accent
            ("don't", "DONT"),
            ("don’t text me", "DONT TEXT ME"),
            ("STOP 🛑", "STOP"),
            ("¿Qué?", "QUE"),
            ("- - -", ""),
            ("", ""),
            ("Order #123", "ORDER 123"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), want, "{input:?}");
        }
    }

    #[test]
    fn normalized_on_the_stack_is_normalize() {
        for input in [
            "  stop  ",
            "\tstop\n all ",
            "arrêt",
            "straße",
            "E\u{0301}TE",
            "don’t text me",
            "STOP 🛑",
            "¿Qué?",
            "- - -",
            "",
            "a\u{0B}b\u{85}c\u{3000}d",
            "ﬃ ΐ Ǆ",
        ] {
            let n = Normalized::new(input);
            assert_eq!(n.as_str(), normalize(input), "{input:?}");
            assert!(!n.spilled(), "{input:?}");
        }
    }

    #[test]
    fn normalized_spills_only_past_its_buffer() {
        // Exactly full, then one byte more; a two-byte letter that would straddle the end.
        let full = "a".repeat(NORMALIZED_INLINE);
        let over = "a".repeat(NORMALIZED_INLINE + 1);
        let straddle = format!("{}ω", "a".repeat(NORMALIZED_INLINE - 1));
        let spaced = format!("{} b", "a".repeat(NORMALIZED_INLINE - 1));
        for (input, spills) in [
            (&full, false),
            (&over, true),
            (&straddle, true),
            (&spaced, true),
        ] {
            let n = Normalized::new(input);
            assert_eq!(n.as_str(), normalize(input));
            assert_eq!(n.spilled(), spills, "{} bytes", input.len());
        }
        // "ÉTÉ" is 5 bytes folded to "ETE": what counts is the normal form, not the body.
        let accented = "é".repeat(NORMALIZED_INLINE);
        assert!(!Normalized::new(&accented).spilled());
        // Any one-segment message fits: 160 GSM-7 characters, or 70 UCS-2 units.
        let gsm = "Ω".repeat(160);
        let ucs2 = "ﬃ".repeat(70);
        assert!(!Normalized::new(&gsm).spilled());
        assert!(!Normalized::new(&ucs2).spilled());
    }

    #[test]
    fn every_default_keyword_and_its_variants() {
        let lists = KeywordLists::default();
        let table: [(&[&str], KeywordClass); 4] = [
            (DEFAULT_OPT_OUT, OptOut),
            (DEFAULT_OPT_IN, OptIn),
            (DEFAULT_HELP, Help),
            (DEFAULT_YES, Yes),
        ];
        for (words, class) in table {
            for word in words {
                let lower = word.to_lowercase();
                let title: String = word
                    .chars()
                    .enumerate()
                    .map(|(i, c)| if i == 0 { c } else { c.to_ascii_lowercase() })
                    .collect();
                for variant in [
                    word.to_string(),
                    lower.clone(),
                    title,
                    format!("  {lower}  "),
                    format!("{lower}."),
                    format!("{word}!"),
                    format!("\"{word}\""),
                    format!("\n{lower}\r\n"),
                ] {
                    assert_eq!(lists.classify(&variant), Some(class), "{variant:?}");
                }
            }
        }
    }

    #[test]
    fn spacing_punctuation_and_accent_variants() {
        let lists = KeywordLists::default();
        let cases = [
            ("stop   all", Some(OptOut)),
            ("Opt-Out", Some(OptOut)),
            ("opt out!", Some(OptOut)),
            ("OPT_OUT", Some(OptOut)),
            ("ARRÊT", Some(OptOut)),
            ("arrêt", Some(OptOut)),
            ("Stop 🛑", Some(OptOut)),
            ("¡STOP!", Some(OptOut)),
            ("un-stop", Some(OptIn)),
            ("Help?", Some(Help)),
            ("info...", Some(Help)),
            ("Yes!", Some(Yes)),
            ("yes.", Some(Yes)),
        ];
        for (body, want) in cases {
            assert_eq!(lists.classify(body), want, "{body:?}");
        }
    }

    #[test]
    fn not_keywords() {
        let lists = KeywordLists::default();
        for body in [
            "",
            "   ",
            "?!",
            "STOP PLEASE",
            "please stop",
            "stop texting me",
            "STOPP",
            "STO P",
            "HELP ME",
            "I need help",
            "yes please",
            "YESS",
            "start over",
            "the end",
            "quitting",
            "cancel my order",
            "BAJA",
            "AYUDA",
            "S T O P",
        ] {
            assert_eq!(lists.classify(body), None, "{body:?}");
        }
    }

    #[test]
    fn extend_per_tenant_and_country() {
        let mut lists = KeywordLists::default();
        lists.extend(OptOut, &["BAJA", "Cancelar"]);
        lists.extend(Help, &["ayuda"]);
        lists.extend(OptIn, &["PIZZA", "Alta", "!!"]);
        lists.extend(Yes, &["SÍ"]);
        let cases = [
            ("baja", Some(OptOut)),
            ("CANCELAR", Some(OptOut)),
            ("Ayuda", Some(Help)),
            ("pizza!", Some(OptIn)),
            ("si", Some(Yes)),
            ("Sí.", Some(Yes)),
            ("stop", Some(OptOut)),
            ("baja ya", None),
        ];
        for (body, want) in cases {
            assert_eq!(lists.classify(body), want, "{body:?}");
        }
        assert!(lists.words(OptIn).eq(["ALTA", "PIZZA", "START", "UNSTOP"]));
    }

    #[test]
    fn opt_out_wins_over_other_classes() {
        let mut lists = KeywordLists::default();
        lists.extend(OptIn, &["STOP"]);
        lists.extend(Help, &["END"]);
        assert_eq!(lists.classify("stop"), Some(OptOut));
        assert_eq!(lists.classify("end"), Some(OptOut));
    }

    #[test]
    fn first_word_table() {
        let cases = [
            ("Pizza, please!", Some("PIZZA")),
            ("  pizza", Some("PIZZA")),
            ("CAFÉ 2x1", Some("CAFE")),
            ("promo2024 yes", Some("PROMO2024")),
            ("¿Precio?", Some("PRECIO")),
            ("!!! ", None),
            ("", None),
        ];
        for (body, want) in cases {
            assert_eq!(first_word(body).as_deref(), want, "{body:?}");
        }
    }
}
