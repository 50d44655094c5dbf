//! Monthly spend in integer micro-dollars (rule A9): what a send costs, whether it fits under
//! the tenant's limit, and when the 80 % and 100 % notices are due.
//!
//! Money is `i64` micro-dollars (1 USD = 1 000 000) everywhere after configuration is read,
//! so sums are exact; arithmetic saturates instead of overflowing. Months are calendar
//! months in UTC, keyed `YYYY-MM`.
//!
//! **Limit 0** means the tenant may spend nothing: every send with a positive cost is
//! refused, free sends (cost 0) pass, and no notices are raised (there is no percentage of
//! nothing to cross). A negative limit is treated like 0. "No limit" is for the caller to
//! express by not checking (or with `i64::MAX`).

use jiff::Timestamp;
use jiff::tz::TimeZone;

pub const MICROS_PER_USD: i64 = 1_000_000;

/// The spend percentages that raise a notice on the tenant's stream.
pub const NOTICE_PERCENTS: [u32; 2] = [80, 100];

/// Converts dollars (from configuration) to micro-dollars, rounding half away from zero.
/// Non-finite input gives 0; out-of-range input saturates.
pub fn usd_to_micros(usd: f64) -> i64 {
    if !usd.is_finite() {
        return 0;
    }
    // `as` saturates at the i64 bounds.
    (usd * MICROS_PER_USD as f64).round() as i64
}

/// The cost of a message: segments × the price per segment of the subscriber's country.
pub fn cost_micros(segments: u32, price_micros_per_segment: i64) -> i64 {
    i64::from(segments).saturating_mul(price_micros_per_segment)
}

/// `true` when spending `cost` on top of `spent` would pass `limit` (`spend_limit`).
/// Reaching the limit exactly is allowed.
pub fn would_exceed(spent: i64, cost: i64, limit: i64) -> bool {
    spent.saturating_add(cost) > limit.max(0)
}

/// The notice percentages (80, 100, in that order) that a spend moving from `before` to
/// `after` crosses: each at most once, and only upwards (a refund crosses nothing). A jump
/// from 70 % to 120 % returns both. Remembering which notices a month already raised is
/// the caller's job; this only says what one change crossed.
pub fn notices_crossed(before: i64, after: i64, limit: i64) -> Vec<u32> {
    if limit <= 0 || after <= before {
        return Vec::new();
    }
    let (before, after, limit) = (i128::from(before), i128::from(after), i128::from(limit));
    NOTICE_PERCENTS
        .into_iter()
        .filter(|&pct| {
            let threshold = limit * i128::from(pct);
            before * 100 < threshold && after * 100 >= threshold
        })
        .collect()
}

/// The calendar month (UTC) an instant falls in: `2026-11`.
pub fn month_key(t: Timestamp) -> String {
    let date = t.to_zoned(TimeZone::UTC).date();
    format!("{:04}-{:02}", date.year(), date.month())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd_to_micros_rounds() {
        let cases = [
            (0.0, 0),
            (1.0, 1_000_000),
            (0.0079, 7_900),
            (0.00791, 7_910),
            (0.0000006, 1),
            (0.0000004, 0),
            (250.0, 250_000_000),
            (0.1 + 0.2, 300_000),
            (-1.5, -1_500_000),
            (f64::NAN, 0),
            (f64::INFINITY, 0),
            (1e300, i64::MAX),
        ];
        for (usd, want) in cases {
            assert_eq!(usd_to_micros(usd), want, "{usd}");
        }
    }

    #[test]
    fn cost_is_segments_times_price() {
        assert_eq!(cost_micros(0, 7_900), 0);
        assert_eq!(cost_micros(1, 7_900), 7_900);
        assert_eq!(cost_micros(10, 7_900), 79_000);
        assert_eq!(cost_micros(3, 0), 0);
        assert_eq!(cost_micros(u32::MAX, i64::MAX), i64::MAX);
    }

    #[test]
    fn would_exceed_table() {
        let cases = [
            (0, 100, 1_000, false, "well under"),
            (
                900,
                100,
                1_000,
                false,
                "reaching the limit exactly is allowed",
            ),
            (901, 100, 1_000, true, "one micro over"),
            (1_000, 0, 1_000, false, "a free send at the limit"),
            (1_000, 1, 1_000, true, "anything paid at the limit"),
            (0, 1, 0, true, "limit 0 refuses paid sends"),
            (0, 0, 0, false, "limit 0 lets free sends through"),
            (0, 1, -5, true, "a negative limit is 0"),
            (
                i64::MAX,
                1,
                i64::MAX,
                false,
                "saturates instead of wrapping",
            ),
        ];
        for (spent, cost, limit, want, why) in cases {
            assert_eq!(would_exceed(spent, cost, limit), want, "{why}");
        }
    }

    #[test]
    fn notices_table() {
        let none: Vec<u32> = vec![];
        let cases = [
            (0, 700, 1_000, none.clone(), "under 80%"),
            (700, 799, 1_000, none.clone(), "just under 80%"),
            (700, 800, 1_000, vec![80], "exactly 80%"),
            (799, 801, 1_000, vec![80], "across 80%"),
            (800, 900, 1_000, none.clone(), "80% already passed"),
            (900, 1_000, 1_000, vec![100], "exactly 100%"),
            (700, 1_200, 1_000, vec![80, 100], "both at once"),
            (1_000, 1_100, 1_000, none.clone(), "already at 100%"),
            (900, 700, 1_000, none.clone(), "a refund crosses nothing"),
            (800, 800, 1_000, none.clone(), "no change"),
            (0, 0, 0, none.clone(), "limit 0: nothing to cross"),
            (0, 5, 0, none.clone(), "limit 0 with spend: no notices"),
            (0, 5, -1, none.clone(), "negative limit: no notices"),
            (0, 1, 1, vec![80, 100], "tiny limit"),
            (0, 4, 5, vec![80], "80% of 5 is 4"),
            (3, 4, 5, vec![80], "3/5 = 60% to 4/5 = 80%"),
            (
                i64::MAX - 1,
                i64::MAX,
                i64::MAX,
                vec![100],
                "no overflow near the top",
            ),
        ];
        for (before, after, limit, want, why) in cases {
            assert_eq!(notices_crossed(before, after, limit), want, "{why}");
        }
    }

    #[test]
    fn month_key_is_utc() {
        let cases = [
            ("2026-11-01T00:00:00Z", "2026-11"),
            ("2026-10-31T23:59:59.999Z", "2026-10"),
            // 19:30 on Dec 31 in New York is already January in UTC.
            ("2026-12-31T19:30:00-05:00", "2027-01"),
            ("2026-03-01T02:00:00+05:00", "2026-02"),
            ("0999-01-15T00:00:00Z", "0999-01"),
        ];
        for (instant, want) in cases {
            let t: Timestamp = instant.parse().unwrap();
            assert_eq!(month_key(t), want, "{instant}");
        }
    }
}
