//! The per-connection frame rate limit: a token bucket, and a second bucket for refusals.
//!
//! Every client frame (`call`, `sync`, or one the server could not read) takes a token from a
//! bucket that holds `2 × calls_per_second` and refills at `calls_per_second`; a frame that
//! finds it empty is answered `rate_limited` and not run. Refusals take from a second bucket
//! that holds `4 × calls_per_second` and refills at `3 × calls_per_second`: a client that keeps
//! sending at more than about four times its limit empties it and is closed with 4108 (it may
//! resume after five seconds). A one-off burst only closes the connection if it is larger than
//! six seconds' worth of allowed frames at once. Pure: time comes in as an argument.

use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Run the frame.
    Yes,
    /// Answer `rate_limited`.
    Limited,
    /// Close the connection with 4108.
    Close,
}

#[derive(Debug)]
pub(crate) struct CallLimiter {
    rate: f64,
    tokens: Bucket,
    strikes: Bucket,
}

#[derive(Debug)]
struct Bucket {
    level: f64,
    capacity: f64,
    refill_per_s: f64,
    at: Instant,
}

impl Bucket {
    fn new(capacity: f64, refill_per_s: f64, now: Instant) -> Bucket {
        Bucket {
            level: capacity,
            capacity,
            refill_per_s,
            at: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + elapsed * self.refill_per_s).min(self.capacity);
        self.at = now.max(self.at);
        if self.level >= 1.0 {
            self.level -= 1.0;
            true
        } else {
            false
        }
    }
}

impl CallLimiter {
    pub(crate) fn new(calls_per_second: u32, now: Instant) -> CallLimiter {
        let rate = f64::from(calls_per_second.max(1));
        CallLimiter {
            rate,
            tokens: Bucket::new(2.0 * rate, rate, now),
            strikes: Bucket::new(4.0 * rate, 3.0 * rate, now),
        }
    }

    pub(crate) fn admit(&mut self, now: Instant) -> Admit {
        if self.tokens.take(now) {
            Admit::Yes
        } else if self.strikes.take(now) {
            Admit::Limited
        } else {
            Admit::Close
        }
    }

    /// The sustained rate, for messages.
    pub(crate) fn rate(&self) -> f64 {
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run(limiter: &mut CallLimiter, start: Instant, per_second: u32, seconds: u32) -> [usize; 3] {
        let mut counts = [0; 3];
        let step = Duration::from_secs_f64(1.0 / f64::from(per_second));
        for i in 0..per_second * seconds {
            let verdict = limiter.admit(start + step * i);
            counts[verdict as usize] += 1;
            if verdict == Admit::Close {
                break;
            }
        }
        counts
    }

    #[test]
    fn a_burst_of_twice_the_rate_passes() {
        let now = Instant::now();
        let mut l = CallLimiter::new(10, now);
        assert!((0..20).all(|_| l.admit(now) == Admit::Yes));
        assert_eq!(l.admit(now), Admit::Limited);
    }

    #[test]
    fn the_rate_itself_is_sustained_forever() {
        let now = Instant::now();
        let mut l = CallLimiter::new(10, now);
        assert_eq!(run(&mut l, now, 10, 60), [600, 0, 0]);
    }

    #[test]
    fn three_times_the_rate_is_limited_but_not_closed() {
        let now = Instant::now();
        let mut l = CallLimiter::new(10, now);
        let [yes, limited, close] = run(&mut l, now, 30, 60);
        assert_eq!(close, 0);
        assert!((600..=625).contains(&yes), "{yes}");
        assert!(limited > 1000, "{limited}");
    }

    #[test]
    fn six_times_the_rate_is_closed_within_seconds() {
        let now = Instant::now();
        let mut l = CallLimiter::new(10, now);
        let [_, _, close] = run(&mut l, now, 60, 5);
        assert_eq!(close, 1);
    }

    #[test]
    fn a_flood_at_one_instant_is_closed_after_six_seconds_worth() {
        let now = Instant::now();
        let mut l = CallLimiter::new(5, now);
        let verdicts: Vec<Admit> = (0..40).map(|_| l.admit(now)).collect();
        assert_eq!(verdicts.iter().filter(|v| **v == Admit::Yes).count(), 10);
        assert_eq!(
            verdicts.iter().filter(|v| **v == Admit::Limited).count(),
            20
        );
        assert_eq!(verdicts[30], Admit::Close);
    }
}
