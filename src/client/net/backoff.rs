//! Reconnect delays: full jitter over an exponential cap (0.5 s doubling to 30 s).
//!
//! "Full jitter" picks the delay uniformly in `[0, cap)`, which spreads a crowd of clients
//! that lost the same engine at the same moment. The caller supplies the random fraction so
//! the schedule is testable; the attempt count resets after a minute of healthy connection.

use std::time::Duration;

const BASE: Duration = Duration::from_millis(500);
const MAX: Duration = Duration::from_secs(30);
/// A connection that lived this long was healthy: start the schedule over.
pub const HEALTHY: Duration = Duration::from_secs(60);
/// The pause the engine asks for with close code 4108.
pub const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Default)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// The cap for the next attempt.
    pub fn cap(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(16)).unwrap_or(u32::MAX);
        BASE.saturating_mul(factor).min(MAX)
    }

    /// The delay before the next attempt, for a random `fraction` in `[0, 1)`.
    pub fn next_delay(&mut self, fraction: f64) -> Duration {
        let d = self.cap().mul_f64(fraction.clamp(0.0, 1.0));
        self.attempt = self.attempt.saturating_add(1);
        d
    }

    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_double_to_thirty_seconds() {
        let mut b = Backoff::default();
        let caps: Vec<_> = (0..9)
            .map(|_| {
                let c = b.cap();
                b.next_delay(0.5);
                c.as_millis()
            })
            .collect();
        assert_eq!(
            caps,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        b.reset();
        assert_eq!(b.cap(), BASE);
    }

    #[test]
    fn delay_is_within_the_cap() {
        let mut b = Backoff::default();
        for _ in 0..100 {
            let cap = b.cap();
            assert!(b.next_delay(0.999) <= cap);
        }
        assert!(Backoff::default().next_delay(0.0).is_zero());
    }
}
