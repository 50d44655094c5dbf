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
    /// The batch's writes, COMMIT and fsync: what the disk decides.
    pub commits: Histogram,
    /// From a command's hand-over to the router until the batch that applies it starts.
    pub queued: Histogram,
    /// From the start of a batch until its answers and events are released (the router's
    /// decisions, the writes, COMMIT and fsync).
    pub batches: Histogram,
    /// From the COMMIT of an event until a WebSocket session's writer has flushed it.
    pub delivered: Histogram,
}

/// Upper bounds (seconds) of the latency histograms' buckets.
const BUCKETS: [f64; 12] = [
    0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.05, 0.1, 0.25, 1.0,
];

/// A latency histogram for `/metrics`: lock-free, cheap enough for every message.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations at or under each bound (not cumulative; the exposition sums them).
    buckets: [std::sync::atomic::AtomicU64; BUCKETS.len()],
    count: std::sync::atomic::AtomicU64,
    sum_micros: std::sync::atomic::AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, took: std::time::Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|le| secs <= *le) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(took.as_micros() as u64, Relaxed);
    }

    /// Prometheus text exposition under `name`.
    fn expose(&self, out: &mut String, name: &str, help: &str) {
        use std::sync::atomic::Ordering::Relaxed;
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} histogram\n"));
        let mut cumulative = 0;
        for (le, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Relaxed);
            out.push_str(&format!("{name}_bucket{{le=\"{le}\"}} {cumulative}\n"));
        }
        let count = self.count.load(Relaxed);
        out.push_str(&format!("{name}_bucket{{le=\"+Inf\"}} {count}\n"));
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        out.push_str(&format!("{name}_sum {sum}\n{name}_count {count}\n"));
    }
}

impl Traffic {
    pub fn add(&self, batch: &Counts) {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .merge(batch);
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
        self.commits.expose(
            &mut out,
            "shortbox_router_commit_seconds",
            "Time the router's commits took (writes, COMMIT, fsync).",
        );
        self.queued.expose(
            &mut out,
            "shortbox_router_queue_seconds",
            "Time commands waited for the router (hand-over to the start of their batch).",
        );
        self.batches.expose(
            &mut out,
            "shortbox_router_batch_seconds",
            "Time the router's batches took (decisions, writes, COMMIT, fsync).",
        );
        self.delivered.expose(
            &mut out,
            "shortbox_delivery_seconds",
            "Time from an event's COMMIT until a WebSocket session flushed it.",
        );
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
            t.commits
                .observe(std::time::Duration::from_secs_f64(ms / 1000.0));
        }
        let text = t.prometheus();
        for line in [
            "# TYPE shortbox_router_commit_seconds histogram",
            "shortbox_router_commit_seconds_bucket{le=\"0.0001\"} 0",
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
