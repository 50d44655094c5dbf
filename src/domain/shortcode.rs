//! Short codes: 3–8 digit numbers bound to one country, and the rule that a code only
//! reaches subscribers of its own country (rule A5).
//!
//! Whether a code is shared or dedicated, and to whom, is configuration the engine holds;
//! this module only knows what a code *is*.

use std::fmt;

use crate::domain::country::Country;
use crate::domain::phone::Msisdn;

pub const MIN_DIGITS: usize = 3;
pub const MAX_DIGITS: usize = 8;

/// A short code such as `55123` in the US.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ShortCode {
    digits: String,
    country: Country,
}

/// Why a string is not a short code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShortCodeError {
    #[error("the short code is empty: expected 3 to 8 digits like 55123")]
    Empty,
    #[error("short code {input:?} contains {found:?}: a short code is 3 to 8 digits, like 55123")]
    NotDigits { input: String, found: char },
    #[error("short code {input} has {len} digits: a short code has 3 to 8, like 55123")]
    Length { input: String, len: usize },
}

/// A send or a reply that would cross a border (`country_mismatch`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "code {code} is in {code_country}; {subscriber} is in {subscriber_country}: a short code only reaches its own country"
)]
pub struct CountryMismatch {
    pub code: String,
    pub code_country: Country,
    pub subscriber: String,
    pub subscriber_country: Country,
}

impl ShortCode {
    /// Builds a code from 3–8 ASCII digits. Leading zeros are kept: they are part of the code.
    pub fn new(digits: &str, country: Country) -> Result<ShortCode, ShortCodeError> {
        if digits.is_empty() {
            return Err(ShortCodeError::Empty);
        }
        if let Some(found) = digits.chars().find(|c| !c.is_ascii_digit()) {
            return Err(ShortCodeError::NotDigits {
                input: digits.to_owned(),
                found,
            });
        }
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits.len()) {
            return Err(ShortCodeError::Length {
                input: digits.to_owned(),
                len: digits.len(),
            });
        }
        Ok(ShortCode {
            digits: digits.to_owned(),
            country,
        })
    }

    pub fn digits(&self) -> &str {
        &self.digits
    }

    pub fn country(&self) -> Country {
        self.country
    }

    /// Rule A5: `Ok` when the subscriber's number belongs to this code's country.
    pub fn reaches(&self, subscriber: &Msisdn) -> Result<(), CountryMismatch> {
        if subscriber.country() == self.country {
            return Ok(());
        }
        Err(CountryMismatch {
            code: self.digits.clone(),
            code_country: self.country,
            subscriber: subscriber.e164().to_owned(),
            subscriber_country: subscriber.country(),
        })
    }
}

impl fmt::Display for ShortCode {
    /// The digits alone, as a subscriber would type them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.digits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_three_to_eight_digits() {
        for digits in ["123", "55123", "898211", "00123", "12345678"] {
            let code = ShortCode::new(digits, Country::US).unwrap();
            assert_eq!(code.digits(), digits);
            assert_eq!(code.country(), Country::US);
            assert_eq!(code.to_string(), digits);
        }
    }

    #[test]
    fn refusals_say_what_a_code_is() {
        let cases: [(&str, ShortCodeError); 6] = [
            ("", ShortCodeError::Empty),
            (
                "12",
                ShortCodeError::Length {
                    input: "12".into(),
                    len: 2,
                },
            ),
            (
                "123456789",
                ShortCodeError::Length {
                    input: "123456789".into(),
                    len: 9,
                },
            ),
            (
                "55 123",
                ShortCodeError::NotDigits {
                    input: "55 123".into(),
                    found: ' ',
                },
            ),
            (
                "+55123",
                ShortCodeError::NotDigits {
                    input: "+55123".into(),
                    found: '+',
                },
            ),
            (
                "5512３",
                ShortCodeError::NotDigits {
                    input: "5512３".into(),
                    found: '３',
                },
            ),
        ];
        for (input, want) in cases {
            let err = ShortCode::new(input, Country::CO).unwrap_err();
            assert_eq!(err, want, "{input:?}");
            assert!(err.to_string().contains("3 to 8"), "{err}");
        }
    }

    #[test]
    fn reaches_only_its_own_country() {
        let us = ShortCode::new("55123", Country::US).unwrap();
        let co = ShortCode::new("85432", Country::CO).unwrap();
        let us_sub = Msisdn::parse("+14155550100").unwrap();
        let co_sub = Msisdn::parse("+573001234567").unwrap();
        let ca_sub = Msisdn::parse("+14165550100").unwrap();

        assert_eq!(us.reaches(&us_sub), Ok(()));
        assert_eq!(co.reaches(&co_sub), Ok(()));
        // Canada shares +1 with the US but is another country.
        assert!(us.reaches(&ca_sub).is_err());

        let err = us.reaches(&co_sub).unwrap_err();
        assert_eq!(
            err.to_string(),
            "code 55123 is in US; +573001234567 is in CO: a short code only reaches its own country"
        );
        assert_eq!(err.subscriber_country, Country::CO);
        assert_eq!(err.code_country, Country::US);
    }
}
