//! B9: the outbound throttle, 20 codes × 100 message parts per second over 10 s, with the
//! dispatcher's own token bucket (`shortbox::engine::dispatcher::Bucket`).
//!
//! Two ways: *simulated* (the bucket driven with a clock that moves 1 ms at a time; exact and
//! instant), and *real time* (20 lanes on the Tokio runtime, each looping like a dispatcher
//! lane: take from the bucket, sleep what it says, send; 10 s of wall clock, so timer slack
//! and a busy machine show).

use std::time::Duration;

use serde::Serialize;
use shortbox::engine::dispatcher::Bucket;
use tokio::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct ThrottleResult {
    pub mode: &'static str,
    pub codes: usize,
    pub mps: u32,
    pub parts_per_message: u32,
    pub seconds: f64,
    /// Parts sent per code over the whole run.
    pub min_parts: u64,
    pub max_parts: u64,
    /// Rate after the first second, per code, as a share of `mps` (1.0 = exact).
    pub worst_rate_ratio: f64,
    pub best_rate_ratio: f64,
    /// The most parts one code sent in any one-second window (a carrier counting per second
    /// sees this).
    pub max_parts_in_1s: u64,
    /// Parts sent over the whole run as a share of `mps × seconds`.
    pub total_ratio: f64,
}

impl ThrottleResult {
    pub fn human(&self) -> String {
        format!(
            "B9 {}: {} codes × {} MPS, {}-part messages, {:.0} s: parts per code {}..{} ({:.1}% of {} × {:.0} s); steady rate after the first second {:.2}%..{:.2}% of the limit; at most {} parts in one second",
            self.mode,
            self.codes,
            self.mps,
            self.parts_per_message,
            self.seconds,
            self.min_parts,
            self.max_parts,
            self.total_ratio * 100.0,
            self.mps,
            self.seconds,
            self.worst_rate_ratio * 100.0,
            self.best_rate_ratio * 100.0,
            self.max_parts_in_1s,
        )
    }
}

/// The most parts in any window of one second, from each send's time (ms) and parts.
fn max_in_window(sends: &[(u64, u32)]) -> u64 {
    let (mut best, mut sum, mut start) = (0u64, 0u64, 0usize);
    for &(t, parts) in sends {
        sum += u64::from(parts);
        while sends[start].0 + 1000 <= t {
            sum -= u64::from(sends[start].1);
            start += 1;
        }
        best = best.max(sum);
    }
    best
}

fn summarize(
    mode: &'static str,
    mps: u32,
    parts: u32,
    seconds: f64,
    sent: &[u64],
    windows: &[Vec<(u64, u32)>],
) -> ThrottleResult {
    // The rate after the first second, whatever the bucket allows at the start.
    let ratios: Vec<f64> = windows
        .iter()
        .map(|w| {
            let later: u64 = w
                .iter()
                .filter(|(t, _)| *t >= 1000)
                .map(|(_, p)| u64::from(*p))
                .sum();
            later as f64 / (seconds - 1.0) / f64::from(mps)
        })
        .collect();
    let off = |r: &f64| (r - 1.0).abs();
    let worst = ratios
        .iter()
        .copied()
        .max_by(|a, b| off(a).total_cmp(&off(b)))
        .unwrap_or(0.0);
    let best = ratios
        .iter()
        .copied()
        .min_by(|a, b| off(a).total_cmp(&off(b)))
        .unwrap_or(0.0);
    let max = sent.iter().copied().max().unwrap_or(0);
    ThrottleResult {
        mode,
        codes: sent.len(),
        mps,
        parts_per_message: parts,
        seconds,
        min_parts: sent.iter().copied().min().unwrap_or(0),
        max_parts: max,
        worst_rate_ratio: worst,
        best_rate_ratio: best,
        max_parts_in_1s: windows.iter().map(|w| max_in_window(w)).max().unwrap_or(0),
        total_ratio: max as f64 / (f64::from(mps) * seconds),
    }
}

/// Every code always has a message waiting; the clock moves in 1 ms steps.
pub fn simulated(codes: usize, mps: u32, parts: u32, seconds: u64) -> ThrottleResult {
    let start = Instant::now();
    let mut buckets: Vec<Bucket> = (0..codes).map(|_| Bucket::new(mps)).collect();
    let mut sent = vec![0u64; codes];
    let mut windows = vec![Vec::new(); codes];
    let mut now = start;
    for ms in 0..seconds * 1000 {
        now += Duration::from_millis(1);
        for ((b, n), w) in buckets
            .iter_mut()
            .zip(sent.iter_mut())
            .zip(windows.iter_mut())
        {
            while b.take(parts, now).is_zero() {
                *n += u64::from(parts);
                w.push((ms + 1, parts));
            }
        }
    }
    summarize("simulated", mps, parts, seconds as f64, &sent, &windows)
}

/// 20 lanes for `seconds` of wall clock, each a dispatcher lane's loop with a carrier that
/// answers at once.
pub async fn real_time(codes: usize, mps: u32, parts: u32, seconds: u64) -> ThrottleResult {
    let begin = Instant::now();
    let end = begin + Duration::from_secs(seconds);
    let lanes: Vec<_> = (0..codes)
        .map(|_| {
            tokio::spawn(async move {
                let mut bucket = Bucket::new(mps);
                let mut sent = 0u64;
                let mut window = Vec::new();
                loop {
                    let now = Instant::now();
                    if now >= end {
                        return (sent, window);
                    }
                    let wait = bucket.take(parts, now);
                    if wait.is_zero() {
                        sent += u64::from(parts);
                        window.push(((now - begin).as_millis() as u64, parts));
                    } else {
                        tokio::time::sleep(wait.min(end - now)).await;
                    }
                }
            })
        })
        .collect();
    let mut sent = Vec::new();
    let mut windows = Vec::new();
    for lane in lanes {
        let (n, w) = lane.await.unwrap_or_default();
        sent.push(n);
        windows.push(w);
    }
    summarize("real time", mps, parts, seconds as f64, &sent, &windows)
}
