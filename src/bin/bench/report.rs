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
#[derive(Debug, Clone, Serialize)]
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
    pub engine_start_ms: f64,
    pub clients: usize,
}

impl LoadResult {
    pub fn human(&self) -> String {
        format!(
            "{}: offered {:.0}/s achieved {:.0}/s ({} acked, {} errors, {} lost, {} dup) | e2e {} | ack p99 {:.2} ms | {:.0} deliveries/s to {} clients | engine {:.3} CPU-s/1000 msg, peak RSS {:.0} MiB | bench {:.1} CPU-s, others {:.2} cores",
            self.label,
            self.offered_rate,
            self.achieved_rate,
            self.acked,
            self.errors,
            self.lost,
            self.duplicates,
            self.e2e.line(),
            self.ack.p99_ms,
            self.deliveries_per_s,
            self.clients,
            self.cpu_s_per_1000,
            self.peak_rss_mib,
            self.bench_cpu_s,
            self.others_cores,
        )
    }

    /// Nothing lost, nothing refused, the offered rate kept, and p99 within `p99_ms`.
    pub fn passes(&self, p99_ms: f64) -> bool {
        self.lost == 0
            && self.errors == 0
            && self.duplicates == 0
            && self.achieved_rate >= 0.97 * self.offered_rate
            && self.e2e.p99_ms <= p99_ms
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
