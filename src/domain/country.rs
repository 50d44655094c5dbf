//! ISO 3166 alpha-2 country codes, the unit that binds short codes and subscribers (rule A5).
//!
//! A [`Country`] is two ASCII uppercase letters and nothing more: it checks the form, not
//! whether the code is assigned, so a configuration can name any country a carrier serves.
//! It is `Copy` and orders alphabetically, so it works as a map key and in sorted listings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ISO 3166 alpha-2 country code such as `US`, `CO` or `UY`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

/// Why a string is not a country code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountryError {
    #[error(
        "{input:?} is not a country code: expected two uppercase letters (ISO 3166 alpha-2) like US, CO or UY"
    )]
    NotAlpha2 { input: String },
}

impl Country {
    pub const US: Country = Country(*b"US");
    pub const CA: Country = Country(*b"CA");
    pub const CO: Country = Country(*b"CO");
    pub const UY: Country = Country(*b"UY");

    /// Parses exactly two ASCII uppercase letters. Lowercase and surrounding whitespace are
    /// refused rather than fixed, so that configuration and wire data stay canonical.
    pub fn parse(input: &str) -> Result<Country, CountryError> {
        match input.as_bytes() {
            &[a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok(Country([a, b])),
            _ => Err(CountryError::NotAlpha2 {
                input: input.to_owned(),
            }),
        }
    }

    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII uppercase letters by construction.
        std::str::from_utf8(&self.0).expect("a Country holds two ASCII letters")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Country({})", self.as_str())
    }
}

impl FromStr for Country {
    type Err = CountryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Country::parse(s)
    }
}

impl Serialize for Country {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Country::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_two_uppercase_letters() {
        for (input, want) in [("US", "US"), ("CO", "CO"), ("UY", "UY"), ("ZZ", "ZZ")] {
            let c = Country::parse(input).unwrap();
            assert_eq!(c.as_str(), want);
            assert_eq!(c.to_string(), want);
        }
    }

    #[test]
    fn refuses_anything_else() {
        for input in ["", "U", "us", "Us", "USA", " US", "US ", "U1", "ÜS", "--"] {
            let err = Country::parse(input).unwrap_err();
            assert!(
                err.to_string().contains("expected two uppercase letters"),
                "{input:?}: {err}"
            );
        }
    }

    #[test]
    fn constants_match_parse() {
        assert_eq!(Country::parse("US").unwrap(), Country::US);
        assert_eq!(Country::parse("CA").unwrap(), Country::CA);
        assert_eq!(Country::parse("CO").unwrap(), Country::CO);
        assert_eq!(Country::parse("UY").unwrap(), Country::UY);
    }

    #[test]
    fn orders_alphabetically_and_debugs_readably() {
        let mut v = vec![Country::UY, Country::US, Country::CO];
        v.sort();
        assert_eq!(v, vec![Country::CO, Country::US, Country::UY]);
        assert_eq!(format!("{:?}", Country::US), "Country(US)");
    }

    #[test]
    fn serde_round_trip_as_string() {
        let json = serde_json::to_string(&Country::CO).unwrap();
        assert_eq!(json, "\"CO\"");
        assert_eq!(serde_json::from_str::<Country>(&json).unwrap(), Country::CO);
        assert!(serde_json::from_str::<Country>("\"co\"").is_err());
    }
}
