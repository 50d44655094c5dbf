//! Wall-clock time as the engine records it: milliseconds since the Unix epoch, written as
//! RFC 3339 UTC with milliseconds (`2026-11-22T10:00:00.123Z`), which sorts as text.

pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Where the router reads the time. The system clock in production; tests set it by hand to
/// walk across quiet hours and DST changes.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }
}

/// A clock that moves only when told to.
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn new(ms: i64) -> ManualClock {
        ManualClock(std::sync::atomic::AtomicI64::new(ms))
    }

    pub fn set(&self, ms: i64) {
        self.0.store(ms, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn fmt_ms(ms: i64) -> String {
    let ts = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let dt = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        ms.rem_euclid(1000)
    )
}

/// A stored time as people read it in a message: `2026-11-22 10:00 UTC`.
pub fn human(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => rfc3339.to_string(),
    }
}

/// Parses an RFC 3339 time into ms since the epoch.
pub fn parse_ms(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

/// The calendar month (UTC) of `ms`, `YYYY-MM`.
pub fn month_of(ms: i64) -> String {
    fmt_ms(ms)[..7].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_back() {
        let ms = 1_795_000_000_123;
        let s = fmt_ms(ms);
        assert_eq!(s.len(), 24);
        assert!(s.ends_with(".123Z"), "{s}");
        assert_eq!(parse_ms(&s), Some(ms));
        assert_eq!(month_of(ms), s[..7]);
        assert_eq!(fmt_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(human("2026-11-22T10:05:00.123Z"), "2026-11-22 10:05 UTC");
    }
}
