//! Results: latency summaries from HdrHistograms, one JSON object per run and one line for
//! people, and medians over repeated runs.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Summary {
    /// From a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Summary {
        if h.is_empty() {
            return Summary::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Summary {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }

    pub fn line(&self) -> String {
        format!(
            "p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2} ms",
            self.p50_ms, self.p90_ms, self.p99_ms, self.p999_ms, self.max_ms
        )
    }
}

/// What one load run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadResult {
    pub label: String,
    pub offered_rate: f64,
    pub duration_s: f64,
    pub scheduled: u64,
    pub acked: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Acknowledged messages per second after the warm-up.
    pub achieved_rate: f64,
    /// Bench messages received by all clients together (first copies).
    pub deliveries: u64,
    pub deliveries_per_s: f64,
    /// Acknowledged messages some healthy client never received.
    pub lost: u64,
    pub duplicates: u64,
    /// Messages the stalled clients never received (expected: they were cut off).
    pub stalled_lost: u64,
    /// Close codes the stalled clients got.
    pub stalled_closes: Vec<Option<u16>>,
    /// Scheduled time → arrival at a (healthy) client, per delivery.
    pub e2e: Summary,
    pub e2e_stalled: Option<Summary>,
    /// Scheduled time → HTTP 200 (the engine committed).
    pub ack: Summary,
    /// Scheduled time → a posting task starts the request: the generator's own delay (it
    /// shares the machine's cores with the engine), included in `ack` and `e2e`.
    pub post_lag: Summary,
    pub engine_cpu_s: f64,
    pub cpu_s_per_1000: f64,
    pub bench_cpu_s: f64,
    /// Cores busy with other processes of the machine during the measurement (neither the
    /// engine nor the generator): above ~0.2 the figures are not the machine's best.
    pub others_cores: f64,
    /// 1-minute load average at the end.
    pub load_average: f64,
    pub peak_rss_mib: f64,
    /// Resident set at the end of the drain.
    pub rss_end_mib: f64,
    /// Connections the engine closed as slow consumers (its `/metrics`).
    pub slow_consumers: f64,
    /// Where the time went inside the engine during the measurement (its `/metrics`
    /// histograms, warm-up subtracted).
    pub hops: Vec<Hop>,
    pub engine_start_ms: f64,
    pub clients: usize,
}

impl LoadResult {
    pub fn human(&self) -> String {
        format!(
            "{}: offered {:.0}/s achieved {:.0}/s ({} acked, {} errors, {} lost, {} dup) | e2e {} | ack p99 {:.2} ms | post lag p99 {:.2} ms | {:.0} deliveries/s to {} clients | engine {:.3} CPU-s/1000 msg, peak RSS {:.0} MiB | bench {:.1} CPU-s, others {:.2} cores{}",
            self.label,
            self.offered_rate,
            self.achieved_rate,
            self.acked,
            self.errors,
            self.lost,
            self.duplicates,
            self.e2e.line(),
            self.ack.p99_ms,
            self.post_lag.p99_ms,
            self.deliveries_per_s,
            self.clients,
            self.cpu_s_per_1000,
            self.peak_rss_mib,
            self.bench_cpu_s,
            self.others_cores,
            if self.hops.is_empty() {
                String::new()
            } else {
                format!(" | engine p99 ≤ ms: {}", self.hops_line())
            },
        )
    }

    /// The hops' p99 bounds, for the human line.
    pub fn hops_line(&self) -> String {
        self.hops
            .iter()
            .map(|h| {
                format!(
                    "{} {}",
                    h.name,
                    h.p99_le_ms.map_or("?".into(), |v| v.to_string())
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Nothing lost, duplicated or refused, and the offered rate kept.
    pub fn sound(&self) -> bool {
        self.lost == 0
            && self.errors == 0
            && self.duplicates == 0
            && self.achieved_rate >= 0.97 * self.offered_rate
    }
}

/// Several runs at one rate judged together: they pass if every run is [sound] and the
/// median p99 is within `p99_ms`. Returns the verdict, whether every run was sound, and the
/// run whose p99 is the median (the lower middle one of an even count).
///
/// [sound]: LoadResult::sound
pub fn judge(mut runs: Vec<LoadResult>, p99_ms: f64) -> (bool, bool, LoadResult) {
    assert!(!runs.is_empty(), "judge needs at least one run");
    let sound = runs.iter().all(LoadResult::sound);
    runs.sort_by(|a, b| a.e2e.p99_ms.total_cmp(&b.e2e.p99_ms));
    let median = runs.swap_remove((runs.len() - 1) / 2);
    (sound && median.e2e.p99_ms <= p99_ms, sound, median)
}

/// The engine's latency histograms along an inbound message's way, in order.
pub const HOPS: [&str; 4] = [
    "shortbox_router_queue_seconds",
    "shortbox_router_batch_seconds",
    "shortbox_router_commit_seconds",
    "shortbox_delivery_seconds",
];

/// One engine histogram over the measured window. Prometheus buckets only bound a quantile:
/// `p50_le_ms` is the upper bound of the bucket that holds the median (None past the last).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Hop {
    /// The metric's name without `shortbox_` and `_seconds`.
    pub name: String,
    pub count: u64,
    pub mean_ms: f64,
    pub p50_le_ms: Option<f64>,
    pub p99_le_ms: Option<f64>,
    /// Share of observations over 10 ms.
    pub over_10ms: f64,
}

/// One histogram as scraped: cumulative buckets (upper bound in seconds, count), sum, count.
type Scrape = (Vec<(f64, u64)>, f64, u64);

impl Hop {
    /// `name`'s histogram at `end` minus the one at `start` (a missing start counts as zero).
    pub fn between(name: &str, start: &str, end: &str) -> Option<Hop> {
        let parse = |text: &str| -> Option<Scrape> {
            let bucket = format!("{name}_bucket{{le=\"");
            let mut buckets = Vec::new();
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix(bucket.as_str()) {
                    let (le, n) = rest.split_once("\"} ")?;
                    let le = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().ok()?
                    };
                    buckets.push((le, n.trim().parse().ok()?));
                }
            }
            let sum = super::http::metric(text, &format!("{name}_sum"))?;
            let count = super::http::metric(text, &format!("{name}_count"))? as u64;
            (!buckets.is_empty()).then_some((buckets, sum, count))
        };
        let (end_buckets, end_sum, end_count) = parse(end)?;
        let (start_buckets, start_sum, start_count) =
            parse(start).unwrap_or_else(|| (Vec::new(), 0.0, 0));
        let count = end_count.saturating_sub(start_count);
        let cumulative: Vec<(f64, u64)> = end_buckets
            .iter()
            .map(|&(le, n)| {
                let before = start_buckets
                    .iter()
                    .find(|(l, _)| *l == le)
                    .map_or(0, |&(_, b)| b);
                (le, n.saturating_sub(before))
            })
            .collect();
        let quantile = |q: f64| {
            let rank = (q * count as f64).ceil() as u64;
            cumulative
                .iter()
                .find(|&&(_, n)| n >= rank.max(1))
                .and_then(|&(le, _)| le.is_finite().then_some(le * 1000.0))
        };
        let within_10ms = cumulative
            .iter()
            .find(|&&(le, _)| (le - 0.01).abs() < 1e-12)
            .map_or(0, |&(_, n)| n);
        Some(Hop {
            name: name
                .trim_start_matches("shortbox_")
                .trim_end_matches("_seconds")
                .to_string(),
            count,
            mean_ms: if count == 0 {
                0.0
            } else {
                (end_sum - start_sum) * 1000.0 / count as f64
            },
            p50_le_ms: quantile(0.50),
            p99_le_ms: quantile(0.99),
            over_10ms: if count == 0 {
                0.0
            } else {
                1.0 - within_10ms as f64 / count as f64
            },
        })
    }
}

/// Prints the JSON object (stdout) and the human line (stderr).
pub fn emit(value: &impl Serialize, human: &str) {
    match serde_json::to_string(value) {
        Ok(json) => println!("{json}"),
        Err(e) => eprintln!("cannot encode the result: {e}"),
    }
    eprintln!("{human}");
}

pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The medians of the figures that matter over several runs of the same load.
#[derive(Debug, Clone, Serialize)]
pub struct Medians {
    pub label: String,
    pub runs: usize,
    pub offered_rate: f64,
    pub achieved_rate: f64,
    pub e2e_p50_ms: f64,
    pub e2e_p99_ms: f64,
    pub e2e_p999_ms: f64,
    pub e2e_max_ms: f64,
    pub ack_p99_ms: f64,
    pub deliveries_per_s: f64,
    pub cpu_s_per_1000: f64,
    pub peak_rss_mib: f64,
    pub others_cores: f64,
    pub lost_total: u64,
    pub errors_total: u64,
}

impl Medians {
    pub fn of(label: &str, runs: &[LoadResult]) -> Medians {
        let m = |f: &dyn Fn(&LoadResult) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            median(&mut v)
        };
        Medians {
            label: label.to_string(),
            runs: runs.len(),
            offered_rate: m(&|r| r.offered_rate),
            achieved_rate: m(&|r| r.achieved_rate),
            e2e_p50_ms: m(&|r| r.e2e.p50_ms),
            e2e_p99_ms: m(&|r| r.e2e.p99_ms),
            e2e_p999_ms: m(&|r| r.e2e.p999_ms),
            e2e_max_ms: m(&|r| r.e2e.max_ms),
            ack_p99_ms: m(&|r| r.ack.p99_ms),
            deliveries_per_s: m(&|r| r.deliveries_per_s),
            cpu_s_per_1000: m(&|r| r.cpu_s_per_1000),
            peak_rss_mib: m(&|r| r.peak_rss_mib),
            others_cores: m(&|r| r.others_cores),
            lost_total: runs.iter().map(|r| r.lost).sum(),
            errors_total: runs.iter().map(|r| r.errors).sum(),
        }
    }

    pub fn human(&self) -> String {
        format!(
            "{} median of {}: offered {:.0}/s achieved {:.0}/s | e2e p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2} ms | ack p99 {:.2} ms | {:.0} deliveries/s | {:.3} CPU-s/1000 msg | peak RSS {:.0} MiB | lost {} errors {} | others {:.2} cores",
            self.label,
            self.runs,
            self.offered_rate,
            self.achieved_rate,
            self.e2e_p50_ms,
            self.e2e_p99_ms,
            self.e2e_p999_ms,
            self.e2e_max_ms,
            self.ack_p99_ms,
            self.deliveries_per_s,
            self.cpu_s_per_1000,
            self.peak_rss_mib,
            self.lost_total,
            self.errors_total,
            self.others_cores,
        )
    }
}

#[cfg(test)]
mod judge_tests {
    use super::{LoadResult, Summary, judge};

    fn run(p99_ms: f64, lost: u64) -> LoadResult {
        LoadResult {
            offered_rate: 1000.0,
            achieved_rate: 1000.0,
            lost,
            e2e: Summary {
                p99_ms,
                ..Summary::default()
            },
            ..LoadResult::default()
        }
    }

    #[test]
    fn the_median_p99_decides_and_every_run_must_be_sound() {
        // One disturbed run does not fail the rate; the median run is reported.
        let (passed, sound, median) = judge(vec![run(30.0, 0), run(12.0, 0), run(9.0, 0)], 15.0);
        assert!(passed && sound);
        assert_eq!(median.e2e.p99_ms, 12.0);
        // Two runs over the bound do.
        let (passed, _, median) = judge(vec![run(30.0, 0), run(16.0, 0), run(9.0, 0)], 15.0);
        assert!(!passed);
        assert_eq!(median.e2e.p99_ms, 16.0);
        // A loss anywhere fails the rate, even in a run that is not the median.
        let (passed, sound, _) = judge(vec![run(5.0, 1), run(6.0, 0), run(7.0, 0)], 15.0);
        assert!(!passed && !sound);
        // One run decides alone; an even count takes the lower middle.
        assert!(!judge(vec![run(15.5, 0)], 15.0).0);
        assert_eq!(
            judge(vec![run(20.0, 0), run(10.0, 0)], 15.0).2.e2e.p99_ms,
            10.0
        );
        // The rate must be kept.
        let mut slow = run(5.0, 0);
        slow.achieved_rate = 900.0;
        assert!(!judge(vec![slow], 15.0).1);
    }
}

#[cfg(test)]
mod hop_tests {
    use super::Hop;

    const START: &str = "\
shortbox_router_queue_seconds_bucket{le=\"0.001\"} 10
shortbox_router_queue_seconds_bucket{le=\"0.01\"} 10
shortbox_router_queue_seconds_bucket{le=\"0.1\"} 10
shortbox_router_queue_seconds_bucket{le=\"+Inf\"} 10
shortbox_router_queue_seconds_sum 0.005
shortbox_router_queue_seconds_count 10
";
    const END: &str = "\
shortbox_router_queue_seconds_bucket{le=\"0.001\"} 60
shortbox_router_queue_seconds_bucket{le=\"0.01\"} 108
shortbox_router_queue_seconds_bucket{le=\"0.1\"} 110
shortbox_router_queue_seconds_bucket{le=\"+Inf\"} 110
shortbox_router_queue_seconds_sum 0.205
shortbox_router_queue_seconds_count 110
";

    #[test]
    fn a_hop_is_the_difference_of_two_scrapes() {
        let hop = Hop::between("shortbox_router_queue_seconds", START, END).unwrap();
        assert_eq!(hop.name, "router_queue");
        assert_eq!(hop.count, 100);
        assert!((hop.mean_ms - 2.0).abs() < 1e-9, "{hop:?}");
        assert_eq!(hop.p50_le_ms, Some(1.0));
        // 98 of 100 within 10 ms: the 99th is in the 0.1 s bucket.
        assert_eq!(hop.p99_le_ms, Some(100.0));
        assert!((hop.over_10ms - 0.02).abs() < 1e-9, "{hop:?}");
        // Without a first scrape, everything counts.
        let all = Hop::between("shortbox_router_queue_seconds", "", END).unwrap();
        assert_eq!(all.count, 110);
        assert!(Hop::between("shortbox_missing_seconds", START, END).is_none());
    }
}
