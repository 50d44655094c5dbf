//! Subscriber phone numbers (MSISDNs) in E.164, and the country each one belongs to.
//!
//! A subscriber's country comes from its number, never from the short code it wrote to
//! (rule A5), so parsing decides the country once and the rest of the engine trusts it.
//!
//! **Acceptance rule.** After trimming surrounding whitespace, the input must be `+` followed
//! by 7 to 15 ASCII digits, with nothing in between (no spaces, dashes or brackets: those are
//! a display format, not an address). The `phonenumber` crate (libphonenumber metadata) must
//! then parse it, call it valid, and place it in a region (ISO alpha-2). The stored form is the
//! input digits unchanged, so what the carrier sends is what the engine keys on; input the
//! crate would silently rewrite (a trunk 0 after the country code, `+4407911…`) is refused
//! with the canonical form as a suggestion.
//!
//! The fictional 555-01xx range used in demos and tests (`+14155550100`..`+14155550199`,
//! `+12125550101`, `+14255550182`) is valid US numbering in the crate's metadata, so it needs
//! no special case; a test pins this, so a metadata update that changes it is noticed.
//! One workaround is built in: the crate finds no region for some valid numbers whose
//! national part starts with 0 (Italian landlines); those take the main country of their
//! calling code (IT for +39).
//!
//! The metadata takes ~0.2 s to load on first use: call [`warm`] once at start-up, off the UI
//! path. After that a parse costs ~20 µs and touches only the crate's own caches; a number
//! parsed before is answered from a bounded memo of valid numbers in well under a microsecond.

use std::fmt;
use std::str::FromStr;

use phonenumber::metadata::{DATABASE, Metadata};
use phonenumber::{Mode, ParseError, PhoneNumber};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::country::Country;

/// The example shown in error messages when no better one is known.
const EXAMPLE: &str = "+14155550100";
/// E.164 allows at most 15 digits; no assigned number has fewer than 7.
const MIN_DIGITS: usize = 7;
const MAX_DIGITS: usize = 15;

/// A subscriber's number in E.164 (`+` and digits) with the country it belongs to.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Msisdn {
    e164: String,
    country: Country,
}

/// Why a string is not a subscriber number. Each variant says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("the phone number is empty: expected E.164 like {EXAMPLE}")]
    Empty,
    #[error(
        "{input:?} is an alphanumeric sender, not a phone number: only E.164 numbers like {EXAMPLE} can be subscribers"
    )]
    Alphanumeric { input: String },
    #[error(
        "{input} is missing the leading +: expected E.164 like {EXAMPLE}; if it starts with the country code, write +{input}"
    )]
    MissingPlus { input: String },
    #[error(
        "{input:?} contains {found:?}: expected E.164, a + and digits only (no spaces, dashes or brackets), like {EXAMPLE}"
    )]
    InvalidCharacter { input: String, found: char },
    #[error("{input} is not a complete phone number: {expected}")]
    TooShort { input: String, expected: String },
    #[error("{input} is too long for a phone number: {expected}")]
    TooLong { input: String, expected: String },
    #[error(
        "{input} does not start with a country calling code in use: expected E.164 like {EXAMPLE}"
    )]
    UnknownCountry { input: String },
    #[error(
        "{input} is in +{calling_code}, a service that belongs to no country (freephone, satellite, …): subscribers need a country's number"
    )]
    NonGeographic { input: String, calling_code: u16 },
    #[error(
        "{input} is not in E.164 form (a national prefix follows the country code): did you mean {canonical}?"
    )]
    NotCanonical { input: String, canonical: String },
    #[error("{input} is not a valid {country} number: {expected}")]
    Invalid {
        input: String,
        country: Country,
        expected: String,
    },
}

/// Loads the `phonenumber` metadata and compiles the patterns for the countries the demo
/// and the default configuration use (US, CA, CO, UY). Idempotent and cheap after the
/// first call; call it at start-up from a background thread.
pub fn warm() {
    for sample in [
        "+14155550100",
        "+14165550100",
        "+573001234567",
        "+59894123456",
    ] {
        if let Ok(m) = Msisdn::parse(sample) {
            let _ = m.display();
        }
    }
}

/// Numbers already found valid, with their country. A parse by `phonenumber` costs ~20 µs
/// (its patterns are regular expressions), and the same subscribers write again and again:
/// every inbound webhook parses its sender. Only valid numbers are kept, keyed by the exact
/// input, so the answer is the one a full parse gives. Bounded: emptied when full.
const MEMO_CAPACITY: usize = 100_000;

fn memo() -> &'static std::sync::Mutex<std::collections::HashMap<String, Country>> {
    static MEMO: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, Country>>> =
        std::sync::OnceLock::new();
    MEMO.get_or_init(Default::default)
}

fn memo_get(input: &str) -> Option<Country> {
    memo().lock().ok()?.get(input).copied()
}

fn memo_put(input: &str, country: Country) {
    if let Ok(mut memo) = memo().lock() {
        if memo.len() >= MEMO_CAPACITY {
            memo.clear();
        }
        memo.insert(input.to_owned(), country);
    }
}

impl Msisdn {
    /// Parses an E.164 number; see the module documentation for the exact rule.
    pub fn parse(input: &str) -> Result<Msisdn, PhoneError> {
        let input = input.trim();
        let digits = check_form(input)?;
        let owned = || input.to_owned();

        if digits.len() < MIN_DIGITS {
            return Err(PhoneError::TooShort {
                input: owned(),
                expected: format!(
                    "E.164 numbers have at least {MIN_DIGITS} digits, like {EXAMPLE}"
                ),
            });
        }
        if digits.len() > MAX_DIGITS {
            return Err(PhoneError::TooLong {
                input: owned(),
                expected: format!("E.164 allows at most {MAX_DIGITS} digits, like {EXAMPLE}"),
            });
        }

        if let Some(country) = memo_get(input) {
            return Ok(Msisdn {
                e164: input.to_owned(),
                country,
            });
        }

        let number = match phonenumber::parse(None, input) {
            Ok(number) => number,
            Err(ParseError::InvalidCountryCode) => {
                return Err(PhoneError::UnknownCountry { input: owned() });
            }
            Err(ParseError::TooLong) => {
                return Err(PhoneError::TooLong {
                    input: owned(),
                    expected: format!("expected E.164 like {EXAMPLE}"),
                });
            }
            Err(_) => {
                return Err(PhoneError::TooShort {
                    input: owned(),
                    expected: format!("expected E.164 like {EXAMPLE}"),
                });
            }
        };

        let calling_code = number.code().value();
        let main_region = main_region(calling_code);
        if main_region.is_none() {
            return Err(PhoneError::NonGeographic {
                input: owned(),
                calling_code,
            });
        }

        // The number's own region; failing that (see the module documentation), the main
        // country of its calling code.
        let Some(meta) = region_of(&number).or(main_region) else {
            return Err(PhoneError::UnknownCountry { input: owned() });
        };
        let country =
            Country::parse(meta.id()).map_err(|_| PhoneError::UnknownCountry { input: owned() })?;

        if !phonenumber::is_valid(&number) {
            let national_len = digits.len() - calling_code.to_string().len();
            return Err(length_error(
                input,
                national_len,
                calling_code,
                country,
                meta,
            ));
        }

        // The crate strips a national trunk prefix written after the country code (+44 0…);
        // that is not E.164, and the number stored must be the one that was given.
        let national = number.national();
        let canonical_national = format!(
            "{}{}",
            "0".repeat(national.zeros().into()),
            national.value()
        );
        if digits.strip_prefix(calling_code.to_string().as_str())
            != Some(canonical_national.as_str())
        {
            let canonical = number.format().mode(Mode::E164).to_string();
            return Err(PhoneError::NotCanonical {
                input: owned(),
                canonical,
            });
        }

        memo_put(input, country);
        Ok(Msisdn {
            e164: input.to_owned(),
            country,
        })
    }

    /// The number as stored and sent to carriers: `+14155550100`.
    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// The subscriber's country, from the number.
    pub fn country(&self) -> Country {
        self.country
    }

    /// The number for people: `+1 415-555-0100`, `+57 300 1234567`. Parses again, so a view
    /// that renders many numbers per frame should keep the result.
    pub fn display(&self) -> String {
        match phonenumber::parse(None, &self.e164) {
            Ok(n) => n.format().mode(Mode::International).to_string(),
            Err(_) => self.e164.clone(),
        }
    }

    /// The three-digit area code of a North American (+1) number, e.g. 415.
    pub fn nanp_area_code(&self) -> Option<u16> {
        let national = self.e164.strip_prefix("+1")?;
        if national.len() != 10 {
            return None;
        }
        national[..3].parse().ok()
    }
}

/// Checks the shape (`+` then digits) and returns the digits.
fn check_form(input: &str) -> Result<&str, PhoneError> {
    if input.is_empty() {
        return Err(PhoneError::Empty);
    }
    let owned = || input.to_owned();
    let Some(digits) = input.strip_prefix('+') else {
        if input.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneError::MissingPlus { input: owned() });
        }
        if input.chars().any(char::is_alphabetic) {
            return Err(PhoneError::Alphanumeric { input: owned() });
        }
        let found = input.chars().find(|c| !c.is_ascii_digit()).unwrap_or('?');
        return Err(PhoneError::InvalidCharacter {
            input: owned(),
            found,
        });
    };
    if let Some(found) = digits.chars().find(|c| !c.is_ascii_digit()) {
        return Err(PhoneError::InvalidCharacter {
            input: owned(),
            found,
        });
    }
    if digits.is_empty() {
        return Err(PhoneError::TooShort {
            input: owned(),
            expected: format!("expected digits after the +, like {EXAMPLE}"),
        });
    }
    Ok(digits)
}

fn region_of(number: &PhoneNumber) -> Option<&'static Metadata> {
    let id = number.country().id()?;
    DATABASE.by_id(id.as_ref())
}

/// The metadata of the main country of a calling code (US for +1, GB for +44), or `None` for
/// non-geographic codes such as +800.
fn main_region(calling_code: u16) -> Option<&'static Metadata> {
    let regions = DATABASE.region(&calling_code)?;
    let first = regions.first()?;
    if *first == "001" {
        return None;
    }
    DATABASE.by_id(*first)
}

/// Builds the error for a number that parsed but is not valid in `country`, telling whether
/// it is short, long, or the right length with an impossible prefix.
fn length_error(
    input: &str,
    national_len: usize,
    calling_code: u16,
    country: Country,
    meta: &Metadata,
) -> PhoneError {
    let d = meta.descriptors();
    let mobile: Vec<u16> = d
        .mobile()
        .map(|m| m.possible_length().to_vec())
        .unwrap_or_default();
    let fixed: Vec<u16> = d
        .fixed_line()
        .map(|m| m.possible_length().to_vec())
        .unwrap_or_default();
    let shortest = mobile.iter().chain(&fixed).min().copied();
    let shortest_mobile = mobile.iter().min().copied().or(shortest);
    let longest = mobile.iter().chain(&fixed).max().copied();
    let example = d
        .mobile()
        .and_then(|m| m.example())
        .map(|e| format!("+{calling_code}{e}"))
        .unwrap_or_else(|| EXAMPLE.to_owned());
    let lengths = match mobile.as_slice() {
        [] => String::from("a different number of"),
        [n] => n.to_string(),
        [rest @ .., last] => {
            let rest: Vec<String> = rest.iter().map(u16::to_string).collect();
            format!("{} or {last}", rest.join(", "))
        }
    };
    let expected = format!(
        "{country} mobile numbers have {lengths} digits after +{calling_code}, like {example}"
    );
    let input = input.to_owned();
    let len = u16::try_from(national_len).unwrap_or(u16::MAX);
    match (shortest_mobile, longest) {
        (Some(min), _) if len < min => PhoneError::TooShort { input, expected },
        (_, Some(max)) if len > max => PhoneError::TooLong { input, expected },
        _ => {
            let expected = format!("no {country} number starts that way; they look like {example}");
            PhoneError::Invalid {
                input,
                country,
                expected,
            }
        }
    }
}

impl fmt::Display for Msisdn {
    /// The E.164 form; use [`Msisdn::display`] for people.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

impl FromStr for Msisdn {
    type Err = PhoneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Msisdn::parse(s)
    }
}

impl Serialize for Msisdn {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.e164)
    }
}

impl<'de> Deserialize<'de> for Msisdn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Msisdn::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn country(s: &str) -> Country {
        Country::parse(s).unwrap()
    }

    #[test]
    fn accepts_demo_and_real_looking_numbers() {
        let cases = [
            ("+14155550100", "US", "+1 415-555-0100", Some(415)),
            ("+14155550199", "US", "+1 415-555-0199", Some(415)),
            ("+12125550101", "US", "+1 212-555-0101", Some(212)),
            ("+14255550182", "US", "+1 425-555-0182", Some(425)),
            ("+14165550100", "CA", "+1 416-555-0100", Some(416)),
            ("+17875550100", "PR", "+1 787-555-0100", Some(787)),
            ("+573001234567", "CO", "+57 300 1234567", None),
            ("+59894123456", "UY", "+598 94 123 456", None),
            ("+447911123456", "GG", "+44 7911 123456", None),
            ("+4915112345678", "DE", "+49 1511 2345678", None),
            ("+390612345678", "IT", "+39 06 1234 5678", None),
            ("  +14155550100\t\n", "US", "+1 415-555-0100", Some(415)),
        ];
        for (input, want_country, want_display, area) in cases {
            let m = Msisdn::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(m.e164(), input.trim(), "{input}");
            assert_eq!(m.country(), country(want_country), "{input}");
            assert_eq!(m.display(), want_display, "{input}");
            assert_eq!(m.nanp_area_code(), area, "{input}");
            assert_eq!(m.to_string(), input.trim());
        }
    }

    #[test]
    fn every_demo_number_in_the_555_01xx_range_is_us() {
        for n in 100..200 {
            let m = Msisdn::parse(&format!("+1415555{n:04}")).unwrap();
            assert_eq!(m.country(), Country::US);
        }
    }

    #[test]
    fn refusals_name_the_problem() {
        use PhoneError as E;
        type Check = fn(&PhoneError) -> bool;
        let cases: [(&str, Check, &str); 16] = [
            ("", |e| matches!(e, E::Empty), "empty"),
            ("   ", |e| matches!(e, E::Empty), "empty"),
            (
                "ACMEBANK",
                |e| matches!(e, E::Alphanumeric { .. }),
                "alphanumeric sender",
            ),
            (
                "Info-Alert",
                |e| matches!(e, E::Alphanumeric { .. }),
                "alphanumeric sender",
            ),
            (
                "14155550100",
                |e| matches!(e, E::MissingPlus { .. }),
                "missing the leading +",
            ),
            (
                "+1 415 555 0100",
                |e| matches!(e, E::InvalidCharacter { found: ' ', .. }),
                "' '",
            ),
            (
                "+1-415-555-0100",
                |e| matches!(e, E::InvalidCharacter { found: '-', .. }),
                "'-'",
            ),
            (
                "+1415555O100",
                |e| matches!(e, E::InvalidCharacter { found: 'O', .. }),
                "'O'",
            ),
            (
                "(415) 555-0100",
                |e| matches!(e, E::InvalidCharacter { found: '(', .. }),
                "'('",
            ),
            ("+", |e| matches!(e, E::TooShort { .. }), "not a complete"),
            (
                "+1415",
                |e| matches!(e, E::TooShort { .. }),
                "at least 7 digits",
            ),
            (
                "+5730012345",
                |e| matches!(e, E::TooShort { .. }),
                "CO mobile numbers have 10 digits",
            ),
            (
                "+1415555010",
                |e| matches!(e, E::TooShort { .. }),
                "US mobile numbers have 10",
            ),
            (
                "+1234567890123456",
                |e| matches!(e, E::TooLong { .. }),
                "at most 15",
            ),
            (
                "+57300123456789",
                |e| matches!(e, E::TooLong { .. }),
                "too long",
            ),
            (
                "+999123456",
                |e| matches!(e, E::UnknownCountry { .. }),
                "country calling code",
            ),
        ];
        for (input, check, text) in cases {
            let err = Msisdn::parse(input).expect_err(input);
            assert!(check(&err), "{input:?} gave {err:?}");
            assert!(err.to_string().contains(text), "{input:?}: {err}");
        }
    }

    #[test]
    fn refuses_non_geographic_and_invalid_prefixes() {
        let err = Msisdn::parse("+80012345678").unwrap_err();
        assert!(
            matches!(
                err,
                PhoneError::NonGeographic {
                    calling_code: 800,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("belongs to no country"));

        // Right length for the US, but area codes never start with 0 or 1.
        let err = Msisdn::parse("+10155550100").unwrap_err();
        assert_eq!(
            err.to_string(),
            "+10155550100 is not a valid US number: no US number starts that way; \
             they look like +12015550123"
        );

        // A national trunk 0 kept after the country code is not E.164.
        let err = Msisdn::parse("+4407911123456").unwrap_err();
        assert_eq!(
            err.to_string(),
            "+4407911123456 is not in E.164 form (a national prefix follows the country code): \
             did you mean +447911123456?"
        );
    }

    #[test]
    fn short_co_number_message_is_actionable() {
        let msg = Msisdn::parse("+5730012345").unwrap_err().to_string();
        assert_eq!(
            msg,
            "+5730012345 is not a complete phone number: CO mobile numbers have 10 digits \
             after +57, like +573211234567"
        );
    }

    #[test]
    fn nanp_area_code_only_for_plus_one() {
        assert_eq!(
            Msisdn::parse("+12125550101").unwrap().nanp_area_code(),
            Some(212)
        );
        assert_eq!(
            Msisdn::parse("+573001234567").unwrap().nanp_area_code(),
            None
        );
    }

    #[test]
    fn serde_uses_e164_and_validates() {
        let m = Msisdn::parse("+573001234567").unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, "\"+573001234567\"");
        assert_eq!(serde_json::from_str::<Msisdn>(&json).unwrap(), m);
        assert!(serde_json::from_str::<Msisdn>("\"573001234567\"").is_err());
    }
}
