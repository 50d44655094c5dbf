//! Traffic counters: what the router committed, by tenant. They feed `/metrics` and the
//! ephemeral `live` frames ops sees (`{"op":"live","kind":"traffic",…}`, no `seq`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Inbound messages routed to each tenant.
    pub inbound: BTreeMap<String, u64>,
    pub unattributed: u64,
    /// Outbound messages accepted for each tenant (replies, campaigns, automatic answers).
    pub outbound: BTreeMap<String, u64>,
    pub dispatched: u64,
    pub failed: u64,
    pub batches: u64,
    pub commands: u64,
}

impl Counts {
    pub fn merge(&mut self, other: &Counts) {
        for (t, n) in &other.inbound {
            *self.inbound.entry(t.clone()).or_default() += n;
        }
        for (t, n) in &other.outbound {
            *self.outbound.entry(t.clone()).or_default() += n;
        }
        self.unattributed += other.unattributed;
        self.dispatched += other.dispatched;
        self.failed += other.failed;
        self.batches += other.batches;
        self.commands += other.commands;
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Counts) -> Counts {
        let diff = |now: &BTreeMap<String, u64>, then: &BTreeMap<String, u64>| {
            now.iter()
                .map(|(t, n)| (t.clone(), n - then.get(t).copied().unwrap_or(0)))
                .filter(|(_, n)| *n > 0)
                .collect()
        };
        Counts {
            inbound: diff(&self.inbound, &earlier.inbound),
            outbound: diff(&self.outbound, &earlier.outbound),
            unattributed: self.unattributed - earlier.unattributed,
            dispatched: self.dispatched - earlier.dispatched,
            failed: self.failed - earlier.failed,
            batches: self.batches - earlier.batches,
            commands: self.commands - earlier.commands,
        }
    }
}

#[derive(Debug, Default)]
pub struct Traffic {
    counts: Mutex<Counts>,
    commits: CommitTimes,
}

/// Upper bounds (seconds) of the commit-time histogram's buckets.
const COMMIT_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0,
];

/// How long the router's commits take (the batch's writes, COMMIT and its fsync): the part of
/// every acknowledgement's latency that the disk decides.
#[derive(Debug, Default)]
struct CommitTimes {
    /// Commits at or under each bound (not cumulative; the exposition sums them).
    buckets: [std::sync::atomic::AtomicU64; COMMIT_BUCKETS.len()],
    count: std::sync::atomic::AtomicU64,
    sum_micros: std::sync::atomic::AtomicU64,
}

impl Traffic {
    pub fn add(&self, batch: &Counts) {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .merge(batch);
    }

    /// Records one commit's duration.
    pub fn commit_took(&self, took: std::time::Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        let secs = took.as_secs_f64();
        if let Some(i) = COMMIT_BUCKETS.iter().position(|le| secs <= *le) {
            self.commits.buckets[i].fetch_add(1, Relaxed);
        }
        self.commits.count.fetch_add(1, Relaxed);
        self.commits
            .sum_micros
            .fetch_add(took.as_micros() as u64, Relaxed);
    }

    pub fn snapshot(&self) -> Counts {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Prometheus text exposition of the counters.
    pub fn prometheus(&self) -> String {
        let c = self.snapshot();
        let mut out = String::new();
        let mut family = |name: &str, help: &str, rows: Vec<(Option<&str>, u64)>| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
            for (tenant, n) in rows {
                match tenant {
                    Some(t) => out.push_str(&format!("{name}{{tenant=\"{t}\"}} {n}\n")),
                    None => out.push_str(&format!("{name} {n}\n")),
                }
            }
        };
        family(
            "shortbox_inbound_total",
            "Inbound messages routed to a tenant.",
            c.inbound
                .iter()
                .map(|(t, n)| (Some(t.as_str()), *n))
                .collect(),
        );
        family(
            "shortbox_unattributed_total",
            "Inbound messages left for ops.",
            vec![(None, c.unattributed)],
        );
        family(
            "shortbox_outbound_total",
            "Outbound messages accepted.",
            c.outbound
                .iter()
                .map(|(t, n)| (Some(t.as_str()), *n))
                .collect(),
        );
        family(
            "shortbox_dispatched_total",
            "Outbound messages handed to a carrier.",
            vec![(None, c.dispatched)],
        );
        family(
            "shortbox_failed_total",
            "Outbound messages that failed.",
            vec![(None, c.failed)],
        );
        family(
            "shortbox_router_batches_total",
            "Transactions the router committed.",
            vec![(None, c.batches)],
        );
        family(
            "shortbox_router_commands_total",
            "Commands the router applied.",
            vec![(None, c.commands)],
        );
        use std::sync::atomic::Ordering::Relaxed;
        let name = "shortbox_router_commit_seconds";
        out.push_str(&format!(
            "# HELP {name} Time the router's commits took (writes, COMMIT, fsync).\n# TYPE {name} histogram\n"
        ));
        let mut cumulative = 0;
        for (le, n) in COMMIT_BUCKETS.iter().zip(&self.commits.buckets) {
            cumulative += n.load(Relaxed);
            out.push_str(&format!("{name}_bucket{{le=\"{le}\"}} {cumulative}\n"));
        }
        let count = self.commits.count.load(Relaxed);
        out.push_str(&format!("{name}_bucket{{le=\"+Inf\"}} {count}\n"));
        let sum = self.commits.sum_micros.load(Relaxed) as f64 / 1e6;
        out.push_str(&format!("{name}_sum {sum}\n{name}_count {count}\n"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_and_exposition() {
        let t = Traffic::default();
        let mut b = Counts::default();
        b.inbound.insert("acme".into(), 3);
        b.unattributed = 1;
        t.add(&b);
        let first = t.snapshot();
        t.add(&b);
        let d = t.snapshot().since(&first);
        assert_eq!(d.inbound["acme"], 3);
        assert_eq!(d.unattributed, 1);
        let text = t.prometheus();
        assert!(
            text.contains("shortbox_inbound_total{tenant=\"acme\"} 6"),
            "{text}"
        );
        assert!(text.contains("# TYPE shortbox_unattributed_total counter"));
    }

    #[test]
    fn commit_times_are_a_cumulative_histogram() {
        let t = Traffic::default();
        for ms in [0.3, 0.7, 3.0, 3.0, 40.0, 5000.0] {
            t.commit_took(std::time::Duration::from_secs_f64(ms / 1000.0));
        }
        let text = t.prometheus();
        for line in [
            "# TYPE shortbox_router_commit_seconds histogram",
            "shortbox_router_commit_seconds_bucket{le=\"0.0005\"} 1",
            "shortbox_router_commit_seconds_bucket{le=\"0.001\"} 2",
            "shortbox_router_commit_seconds_bucket{le=\"0.002\"} 2",
            "shortbox_router_commit_seconds_bucket{le=\"0.005\"} 4",
            "shortbox_router_commit_seconds_bucket{le=\"0.05\"} 5",
            "shortbox_router_commit_seconds_bucket{le=\"1\"} 5",
            "shortbox_router_commit_seconds_bucket{le=\"+Inf\"} 6",
            "shortbox_router_commit_seconds_count 6",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
