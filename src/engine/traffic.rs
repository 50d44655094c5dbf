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
}
