//! Quiet hours for campaigns (rule A10): no campaign message is dispatched between 21:00 and
//! 08:00 in the subscriber's local time; it waits for the window to open. Agent replies in a
//! live conversation are exempt (the caller decides which sends this applies to).
//!
//! The subscriber's zone is, in order: its own (when set and known to the time-zone
//! database), its country's when the country has a single zone (a short table below), its
//! NANP area code's for US and Canadian numbers (`assets/nanp_area_codes.tsv`), and
//! otherwise the tenant's. If even the tenant's zone is unknown, UTC.
//!
//! Times are wall-clock times, so a window stays 21:00–08:00 across daylight-saving changes:
//! the night it changes is an hour shorter or longer in absolute time.

use std::collections::HashMap;
use std::sync::OnceLock;

use jiff::Timestamp;
use jiff::civil::{self, Time};
use jiff::tz::TimeZone;

use crate::domain::country::Country;
use crate::domain::phone::Msisdn;

const AREA_CODES_TSV: &str = include_str!("../../assets/nanp_area_codes.tsv");

/// Countries with one time zone, by ISO alpha-2. Countries with several (US, CA, MX, BR, AR,
/// ES, PT, CL, EC, …) are absent on purpose.
const COUNTRY_ZONES: &[(&str, &str)] = &[
    ("AE", "Asia/Dubai"),
    ("AT", "Europe/Vienna"),
    ("BB", "America/Barbados"),
    ("BE", "Europe/Brussels"),
    ("BO", "America/La_Paz"),
    ("BS", "America/Nassau"),
    ("CH", "Europe/Zurich"),
    ("CO", "America/Bogota"),
    ("CR", "America/Costa_Rica"),
    ("DE", "Europe/Berlin"),
    ("DO", "America/Santo_Domingo"),
    ("FR", "Europe/Paris"),
    ("GB", "Europe/London"),
    ("GG", "Europe/Guernsey"),
    ("GT", "America/Guatemala"),
    ("HN", "America/Tegucigalpa"),
    ("IE", "Europe/Dublin"),
    ("IM", "Europe/Isle_of_Man"),
    ("IN", "Asia/Kolkata"),
    ("IT", "Europe/Rome"),
    ("JE", "Europe/Jersey"),
    ("JM", "America/Jamaica"),
    ("JP", "Asia/Tokyo"),
    ("KR", "Asia/Seoul"),
    ("NI", "America/Managua"),
    ("NL", "Europe/Amsterdam"),
    ("PA", "America/Panama"),
    ("PE", "America/Lima"),
    ("PR", "America/Puerto_Rico"),
    ("PY", "America/Asuncion"),
    ("SV", "America/El_Salvador"),
    ("TT", "America/Port_of_Spain"),
    ("UY", "America/Montevideo"),
    ("VE", "America/Caracas"),
];

/// The local hours in which campaigns wait. `start == end` means no quiet hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuietWindow {
    start: Time,
    end: Time,
}

impl Default for QuietWindow {
    /// 21:00 to 08:00.
    fn default() -> Self {
        QuietWindow {
            start: civil::time(21, 0, 0, 0),
            end: civil::time(8, 0, 0, 0),
        }
    }
}

impl QuietWindow {
    /// A window from `start` (inclusive) to `end` (exclusive), crossing midnight when
    /// `start > end`; per-country configuration builds these.
    pub fn new(start: Time, end: Time) -> QuietWindow {
        QuietWindow { start, end }
    }

    pub fn start(&self) -> Time {
        self.start
    }

    pub fn end(&self) -> Time {
        self.end
    }

    /// `true` when a local wall-clock time is inside the window.
    pub fn contains(&self, t: Time) -> bool {
        if self.start <= self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

/// The zone in which a subscriber's quiet hours are kept; see the module documentation.
/// Unknown zone names (a typo in configuration) are skipped, not fatal.
pub fn zone_for(subscriber_zone: Option<&str>, subscriber: &Msisdn, tenant_zone: &str) -> TimeZone {
    subscriber_zone
        .and_then(|name| TimeZone::get(name).ok())
        .or_else(|| country_zone(subscriber.country()).and_then(|name| TimeZone::get(name).ok()))
        .or_else(|| {
            subscriber
                .nanp_area_code()
                .and_then(area_code_zone)
                .and_then(|name| TimeZone::get(name).ok())
        })
        .or_else(|| TimeZone::get(tenant_zone).ok())
        .unwrap_or(TimeZone::UTC)
}

/// The IANA zone of a single-zone country.
pub fn country_zone(country: Country) -> Option<&'static str> {
    COUNTRY_ZONES
        .iter()
        .find(|(c, _)| *c == country.as_str())
        .map(|(_, zone)| *zone)
}

/// The IANA zone of a US or Canadian area code, from the shipped table.
pub fn area_code_zone(area_code: u16) -> Option<&'static str> {
    static TABLE: OnceLock<HashMap<u16, &'static str>> = OnceLock::new();
    TABLE
        .get_or_init(|| parse_area_codes(AREA_CODES_TSV))
        .get(&area_code)
        .copied()
}

/// Parses `area_code<TAB>zone` lines; comments (`#`), blank and malformed lines are skipped
/// (a test checks that the shipped table has no malformed line).
fn parse_area_codes(tsv: &'static str) -> HashMap<u16, &'static str> {
    tsv.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let (code, zone) = line.split_once('\t')?;
            Some((code.trim().parse().ok()?, zone.trim()))
        })
        .collect()
}

/// `None` when a campaign message may be dispatched at `now`; otherwise the instant the
/// window opens (its `end`, local time, today or tomorrow).
///
/// If the opening time does not exist that day (a DST gap) the message waits until just after
/// the gap; if it happens twice (a DST fold) the first one still ahead of `now` is used.
pub fn next_allowed(now: Timestamp, zone: &TimeZone, window: &QuietWindow) -> Option<Timestamp> {
    let local = now.to_zoned(zone.clone());
    if !window.contains(local.time()) {
        return None;
    }
    let today = local.date();
    let opens_on = if window.start > window.end && local.time() >= window.start {
        today.tomorrow().ok()?
    } else {
        today
    };
    let ambiguous = zone.to_ambiguous_timestamp(opens_on.to_datetime(window.end));
    [ambiguous.compatible().ok(), ambiguous.later().ok()]
        .into_iter()
        .flatten()
        .find(|t| *t > now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn ny() -> TimeZone {
        TimeZone::get("America/New_York").unwrap()
    }

    fn msisdn(s: &str) -> Msisdn {
        Msisdn::parse(s).unwrap()
    }

    #[test]
    fn window_contains() {
        let w = QuietWindow::default();
        let cases = [
            ((20, 59), false),
            ((21, 0), true),
            ((23, 59), true),
            ((0, 0), true),
            ((7, 59), true),
            ((8, 0), false),
            ((12, 0), false),
        ];
        for ((h, m), want) in cases {
            assert_eq!(w.contains(civil::time(h, m, 0, 0)), want, "{h}:{m}");
        }
        let day = QuietWindow::new(civil::time(12, 0, 0, 0), civil::time(14, 0, 0, 0));
        assert!(day.contains(civil::time(13, 0, 0, 0)));
        assert!(!day.contains(civil::time(14, 0, 0, 0)));
        assert!(!day.contains(civil::time(11, 0, 0, 0)));
        let none = QuietWindow::new(civil::time(9, 0, 0, 0), civil::time(9, 0, 0, 0));
        assert!(!none.contains(civil::time(9, 0, 0, 0)));
    }

    #[test]
    fn next_allowed_table_new_york() {
        let w = QuietWindow::default();
        let cases = [
            // An ordinary day (EDT, UTC-4).
            ("2026-07-15T12:00:00Z", None, "08:00 EDT: open"),
            (
                "2026-07-15T11:59:59Z",
                Some("2026-07-15T12:00:00Z"),
                "07:59:59: wait a second",
            ),
            ("2026-07-16T00:59:00Z", None, "20:59 EDT: still open"),
            (
                "2026-07-16T01:00:00Z",
                Some("2026-07-16T12:00:00Z"),
                "21:00 EDT: until 08:00",
            ),
            (
                "2026-07-16T04:00:00Z",
                Some("2026-07-16T12:00:00Z"),
                "midnight EDT",
            ),
            // Spring forward, 2026-03-08 02:00 EST → 03:00 EDT: 08:00 is 12:00Z, not 13:00Z.
            (
                "2026-03-08T02:00:00Z",
                Some("2026-03-08T12:00:00Z"),
                "21:00 EST the night before",
            ),
            (
                "2026-03-08T06:59:00Z",
                Some("2026-03-08T12:00:00Z"),
                "01:59 EST",
            ),
            (
                "2026-03-08T07:00:00Z",
                Some("2026-03-08T12:00:00Z"),
                "03:00 EDT",
            ),
            ("2026-03-08T12:00:00Z", None, "08:00 EDT"),
            // Fall back, 2026-11-01 02:00 EDT → 01:00 EST: 08:00 is 13:00Z.
            (
                "2026-11-01T01:00:00Z",
                Some("2026-11-01T13:00:00Z"),
                "21:00 EDT the night before",
            ),
            (
                "2026-11-01T05:30:00Z",
                Some("2026-11-01T13:00:00Z"),
                "01:30 EDT",
            ),
            (
                "2026-11-01T06:30:00Z",
                Some("2026-11-01T13:00:00Z"),
                "01:30 EST, again",
            ),
            (
                "2026-11-01T12:30:00Z",
                Some("2026-11-01T13:00:00Z"),
                "07:30 EST",
            ),
            ("2026-11-01T13:00:00Z", None, "08:00 EST"),
            ("2026-11-02T01:59:00Z", None, "20:59 EST"),
            (
                "2026-11-02T02:00:00Z",
                Some("2026-11-02T13:00:00Z"),
                "21:00 EST",
            ),
        ];
        for (now, want, why) in cases {
            assert_eq!(next_allowed(ts(now), &ny(), &w), want.map(ts), "{why}");
        }
    }

    #[test]
    fn next_allowed_when_the_opening_time_falls_in_a_dst_change() {
        // A window ending at 02:30 on the night 02:00–03:00 does not exist (spring forward).
        let gap = QuietWindow::new(civil::time(21, 0, 0, 0), civil::time(2, 30, 0, 0));
        let got = next_allowed(ts("2026-03-08T06:00:00Z"), &ny(), &gap); // 01:00 EST
        assert_eq!(
            got,
            Some(ts("2026-03-08T07:30:00Z")),
            "03:30 EDT, just after the gap"
        );

        // A window ending at 01:30 on the night 01:00–02:00 happens twice (fall back).
        let fold = QuietWindow::new(civil::time(21, 0, 0, 0), civil::time(1, 30, 0, 0));
        let first = next_allowed(ts("2026-11-01T05:10:00Z"), &ny(), &fold); // 01:10 EDT
        assert_eq!(first, Some(ts("2026-11-01T05:30:00Z")), "01:30 EDT");
        let second = next_allowed(ts("2026-11-01T06:10:00Z"), &ny(), &fold); // 01:10 EST
        assert_eq!(second, Some(ts("2026-11-01T06:30:00Z")), "01:30 EST");
    }

    #[test]
    fn next_allowed_in_other_zones() {
        let w = QuietWindow::default();
        let bogota = TimeZone::get("America/Bogota").unwrap();
        // 22:00 in Bogotá (UTC-5) waits until 08:00 = 13:00Z.
        assert_eq!(
            next_allowed(ts("2026-05-02T03:00:00Z"), &bogota, &w),
            Some(ts("2026-05-02T13:00:00Z"))
        );
        let none = QuietWindow::new(civil::time(8, 0, 0, 0), civil::time(8, 0, 0, 0));
        assert_eq!(
            next_allowed(ts("2026-05-02T03:00:00Z"), &bogota, &none),
            None
        );
    }

    #[test]
    fn zone_for_precedence() {
        let cases = [
            (
                Some("Europe/Madrid"),
                "+14155550100",
                "America/Bogota",
                "Europe/Madrid",
            ),
            (
                Some("Not/AZone"),
                "+573001234567",
                "America/New_York",
                "America/Bogota",
            ),
            (None, "+573001234567", "America/New_York", "America/Bogota"),
            (
                None,
                "+59894123456",
                "America/New_York",
                "America/Montevideo",
            ),
            (
                None,
                "+14155550100",
                "America/New_York",
                "America/Los_Angeles",
            ),
            (
                None,
                "+12125550101",
                "America/Los_Angeles",
                "America/New_York",
            ),
            (
                None,
                "+14255550182",
                "America/New_York",
                "America/Los_Angeles",
            ),
            (None, "+13125550100", "America/New_York", "America/Chicago"),
            (None, "+16025550100", "America/New_York", "America/Phoenix"),
            (None, "+14165550100", "America/Bogota", "America/Toronto"),
            (
                None,
                "+17875550100",
                "America/New_York",
                "America/Puerto_Rico",
            ),
            // 208 (Idaho) straddles two zones: the tenant's.
            (None, "+12085550100", "America/Bogota", "America/Bogota"),
            (None, "+4915112345678", "America/New_York", "Europe/Berlin"),
            (None, "+5491123456789", "America/Bogota", "America/Bogota"),
        ];
        for (own, number, tenant, want) in cases {
            let zone = zone_for(own, &msisdn(number), tenant);
            assert_eq!(zone.iana_name(), Some(want), "{own:?} {number} {tenant}");
        }
        let utc = zone_for(None, &msisdn("+5491123456789"), "Nowhere/Special");
        assert_eq!(utc, TimeZone::UTC);
    }

    #[test]
    fn area_code_table() {
        let cases = [
            (212, Some("America/New_York")),
            (415, Some("America/Los_Angeles")),
            (312, Some("America/Chicago")),
            (303, Some("America/Denver")),
            (602, Some("America/Phoenix")),
            (808, Some("Pacific/Honolulu")),
            (907, Some("America/Anchorage")),
            (313, Some("America/Detroit")),
            (317, Some("America/Indiana/Indianapolis")),
            (915, Some("America/Denver")),
            (416, Some("America/Toronto")),
            (514, Some("America/Toronto")),
            (604, Some("America/Vancouver")),
            (306, Some("America/Regina")),
            (902, Some("America/Halifax")),
            (709, Some("America/St_Johns")),
            (208, None),
            (850, None),
            (867, None),
            (800, None),
            (0, None),
        ];
        for (code, want) in cases {
            assert_eq!(area_code_zone(code), want, "{code}");
        }
    }

    #[test]
    fn shipped_tables_are_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for line in AREA_CODES_TSV
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (code, zone) = line.split_once('\t').unwrap_or_else(|| panic!("{line:?}"));
            let code: u16 = code.parse().unwrap_or_else(|_| panic!("{line:?}"));
            assert!((200..1000).contains(&code), "{line:?}");
            assert!(seen.insert(code), "{code} listed twice");
            assert!(TimeZone::get(zone).is_ok(), "unknown zone in {line:?}");
        }
        assert!(seen.len() > 300, "{} area codes", seen.len());
        for (country, zone) in COUNTRY_ZONES {
            Country::parse(country).unwrap();
            assert!(TimeZone::get(zone).is_ok(), "{country}: {zone}");
        }
    }
}
