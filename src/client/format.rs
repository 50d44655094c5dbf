//! How values look on screen: relative and clock times, phone numbers, money, code badges.
//!
//! Pure functions of their inputs; "now" and the time zone are passed in, so that snapshots
//! are deterministic. Inputs from the wire are returned unchanged when they cannot be parsed
//! (the render boundary sanitizes them like any other outside string).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::domain::phone::Msisdn;
use crate::protocol::{CodeKind, MessageStatus};

/// Parses an RFC 3339 time from the wire.
pub fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

/// Age of `t` as the inbox shows it: `now`, `5m`, `3h`, `2d`, then a date (`Nov 22`).
pub fn relative(now: Timestamp, t: &str, tz: &TimeZone) -> String {
    let Some(t) = parse_time(t) else {
        return String::new();
    };
    let secs = now.as_second() - t.as_second();
    match secs {
        ..60 => "now".to_string(),
        60..3_600 => format!("{}m", secs / 60),
        3_600..86_400 => format!("{}h", secs / 3_600),
        86_400..604_800 => format!("{}d", secs / 86_400),
        _ => t.to_zoned(tz.clone()).strftime("%b %d").to_string(),
    }
}

/// `HH:MM` in `tz`.
pub fn clock(t: &str, tz: &TimeZone) -> String {
    match parse_time(t) {
        Some(t) => t.to_zoned(tz.clone()).strftime("%H:%M").to_string(),
        None => String::new(),
    }
}

/// The calendar day of `t` in `tz`, as a key to compare days.
pub fn day_key(t: &str, tz: &TimeZone) -> Option<jiff::civil::Date> {
    parse_time(t).map(|t| t.to_zoned(tz.clone()).date())
}

/// `Sun 22 Nov 2026`.
pub fn day_label(t: &str, tz: &TimeZone) -> String {
    match parse_time(t) {
        Some(t) => t.to_zoned(tz.clone()).strftime("%a %d %b %Y").to_string(),
        None => String::new(),
    }
}

/// `Nov 22 10:04` in `tz`.
pub fn date_time(t: &str, tz: &TimeZone) -> String {
    match parse_time(t) {
        Some(t) => t.to_zoned(tz.clone()).strftime("%b %d %H:%M").to_string(),
        None => t.to_string(),
    }
}

/// `2026-11-22 08:02` in `tz`: a date that reads the same in every language.
pub fn date_ymd_hm(t: &str, tz: &TimeZone) -> String {
    match parse_time(t) {
        Some(t) => t
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M")
            .to_string(),
        None => t.to_string(),
    }
}

/// The country of a subscriber number (ISO alpha-2), from the number itself.
pub fn subscriber_country(e164: &str) -> Option<String> {
    Msisdn::parse(e164).ok().map(|m| m.country().to_string())
}

thread_local! {
    /// Formatted numbers: formatting parses the number again, and a frame shows dozens. A
    /// number that does not parse is kept too (as `None`), so it is not parsed every frame.
    static PHONES: RefCell<HashMap<String, Option<String>>> = RefCell::new(HashMap::new());
}

/// No E.164 number is longer (`+` and 15 digits); anything longer is shown as it came.
const PHONE_MAX: usize = 16;

/// A subscriber number for people (`+1 415-555-0100`, `+57 300 1234567`), by the domain's
/// formatter; anything that does not parse is shown as it came.
pub fn phone(e164: &str) -> Cow<'_, str> {
    if e164.len() > PHONE_MAX {
        return Cow::Borrowed(e164);
    }
    let shown = match PHONES.with(|m| m.borrow().get(e164).cloned()) {
        Some(hit) => hit,
        None => {
            let shown = Msisdn::parse(e164).ok().map(|m| m.display());
            PHONES.with(|m| {
                let mut m = m.borrow_mut();
                if m.len() > 20_000 {
                    m.clear();
                }
                m.insert(e164.to_string(), shown.clone());
            });
            shown
        }
    };
    match shown {
        Some(s) => Cow::Owned(s),
        None => Cow::Borrowed(e164),
    }
}

/// Micro-dollars as dollars: `$0.0237`.
pub fn money(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    format!("{sign}${}.{:04}", m / 1_000_000, (m % 1_000_000) / 100)
}

/// The badge of a short code: `S 55123 US` (shared) or `D 77001 US` (dedicated).
pub fn code_badge(code: &str, kind: CodeKind, country: &str) -> String {
    let k = match kind {
        CodeKind::Shared => 'S',
        CodeKind::Dedicated => 'D',
    };
    format!("{k} {code} {country}")
}

pub fn code_kind(kind: CodeKind) -> &'static str {
    match kind {
        CodeKind::Shared => "shared",
        CodeKind::Dedicated => "dedicated",
    }
}

/// Delivery state as a word, with a mark that reads at a glance.
pub fn delivery(status: MessageStatus) -> &'static str {
    match status {
        MessageStatus::Received => "received",
        MessageStatus::Queued => "◷ queued",
        MessageStatus::Dispatched => "→ dispatched",
        MessageStatus::Delivered => "✓ delivered",
        MessageStatus::Failed => "✗ failed",
        MessageStatus::Undelivered => "✗ undelivered",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-22T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn relative_times() {
        let tz = TimeZone::UTC;
        assert_eq!(relative(now(), "2026-11-22T11:59:30.000Z", &tz), "now");
        assert_eq!(relative(now(), "2026-11-22T12:00:30.000Z", &tz), "now");
        assert_eq!(relative(now(), "2026-11-22T11:55:00.000Z", &tz), "5m");
        assert_eq!(relative(now(), "2026-11-22T09:00:00.000Z", &tz), "3h");
        assert_eq!(relative(now(), "2026-11-20T12:00:00.000Z", &tz), "2d");
        assert_eq!(relative(now(), "2026-10-02T12:00:00.000Z", &tz), "Oct 02");
        assert_eq!(relative(now(), "garbage", &tz), "");
    }

    #[test]
    fn phones_and_money() {
        assert_eq!(phone("+14155550100"), "+1 415-555-0100");
        assert_eq!(phone("+573001234567"), "+57 300 1234567");
        assert_eq!(phone("not a number"), "not a number");
        assert_eq!(phone("not a number"), "not a number", "kept as it came");
        let long = "+1".repeat(40);
        assert_eq!(phone(&long), long);
        assert_eq!(money(23_700), "$0.0237");
        assert_eq!(money(100_000_000), "$100.0000");
        assert_eq!(code_badge("55123", CodeKind::Shared, "US"), "S 55123 US");
        assert_eq!(subscriber_country("+573001234567").as_deref(), Some("CO"));
        assert_eq!(subscriber_country("nope"), None);
        assert_eq!(
            date_ymd_hm("2026-11-22T08:02:00.000Z", &TimeZone::UTC),
            "2026-11-22 08:02"
        );
    }

    #[test]
    fn clock_in_zone() {
        let tz = TimeZone::get("America/New_York").unwrap();
        assert_eq!(clock("2026-11-22T15:04:00.000Z", &tz), "10:04");
        assert_eq!(
            day_label("2026-11-22T15:04:00.000Z", &TimeZone::UTC),
            "Sun 22 Nov 2026"
        );
    }
}
