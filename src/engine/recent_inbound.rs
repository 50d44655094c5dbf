//! The carrier ids of recent inbound messages, so that a carrier's redelivery of a message
//! already stored is answered with the first result — without an index lookup, or an index
//! insert, for every message.
//!
//! Carriers redeliver when they did not get our answer: within seconds or minutes. The router
//! remembers the carrier ids of the last [`CAPACITY`] inbound messages received within
//! [`WINDOW_MS`], and loads them from the store at start, so a redelivery after a crash is
//! recognised too. An entry is a 64-bit hash of (carrier, carrier id) and the message id (24
//! bytes); a hit is confirmed against the stored message before it is trusted, so a hash
//! collision can only cost a missed redelivery, never a dropped message.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

/// How many inbound messages are remembered at most (about 40 MiB at the most).
pub const CAPACITY: usize = 500_000;
/// How long a carrier id is remembered: 24 hours.
pub const WINDOW_MS: i64 = 24 * 3600 * 1000;

pub struct RecentInbound {
    hasher: std::hash::RandomState,
    ids: HashMap<u64, u128>,
    /// (key, received at ms), oldest first.
    order: VecDeque<(u64, i64)>,
    capacity: usize,
}

impl std::fmt::Debug for RecentInbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentInbound")
            .field("len", &self.order.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Default for RecentInbound {
    fn default() -> Self {
        RecentInbound::with_capacity(CAPACITY)
    }
}

impl RecentInbound {
    pub fn with_capacity(capacity: usize) -> RecentInbound {
        RecentInbound {
            hasher: Default::default(),
            ids: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    fn key(&self, carrier: &str, carrier_id: &str) -> u64 {
        self.hasher.hash_one((carrier, carrier_id))
    }

    /// The message id stored for this carrier message, if it is one of the remembered ones.
    pub fn get(&self, carrier: &str, carrier_id: &str) -> Option<String> {
        self.ids
            .get(&self.key(carrier, carrier_id))
            .map(|id| uuid::Uuid::from_u128(*id).to_string())
    }

    /// Remembers a stored inbound message; forgets the oldest past the window or the capacity.
    /// The time is the message id's own (UUID v7, the system clock's); ids that are not UUID
    /// v7 (never made by this engine) are not remembered.
    pub fn insert(&mut self, carrier: &str, carrier_id: &str, message: &str) {
        let Ok(id) = uuid::Uuid::parse_str(message) else {
            return;
        };
        if id.get_version_num() != 7 {
            return;
        }
        let at_ms = (id.as_u128() >> 80) as i64;
        let key = self.key(carrier, carrier_id);
        if self.ids.insert(key, id.as_u128()).is_none() {
            self.order.push_back((key, at_ms));
        }
        while let Some(&(oldest, at)) = self.order.front()
            && (self.order.len() > self.capacity || at < at_ms - WINDOW_MS)
        {
            self.order.pop_front();
            self.ids.remove(&oldest);
        }
    }

    /// Makes room for `n` more entries (at most the capacity) at once.
    pub fn reserve(&mut self, n: usize) {
        let n = n.min(self.capacity.saturating_sub(self.order.len()));
        self.ids.reserve(n);
        self.order.reserve(n);
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// The smallest UUID v7 string made at or after `ms`: ids compare as strings in time order,
/// so `id >= uuid_v7_floor(ms)` selects the messages made since `ms`.
pub fn uuid_v7_floor(ms: i64) -> String {
    uuid::Uuid::from_u128((ms.max(0) as u128) << 80).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: i64, n: u128) -> String {
        uuid::Uuid::from_u128(((ms as u128) << 80) | (0x7 << 76) | n).to_string()
    }

    #[test]
    fn remembers_and_answers_with_the_message_id() {
        let mut r = RecentInbound::default();
        let m = id(1_000, 1);
        r.insert("sim", "SIM-1", &m);
        assert_eq!(r.get("sim", "SIM-1"), Some(m));
        assert_eq!(r.get("sim", "SIM-2"), None);
        assert_eq!(
            r.get("twilio", "SIM-1"),
            None,
            "the carrier is part of the key"
        );
        // The separator between the two parts is not ambiguous.
        assert_eq!(r.get("si", "mSIM-1"), None);
    }

    #[test]
    fn forgets_past_the_window() {
        let mut r = RecentInbound::default();
        r.insert("sim", "old", &id(0, 1));
        r.insert("sim", "new", &id(WINDOW_MS, 2));
        assert!(
            r.get("sim", "old").is_some(),
            "exactly 24 h old is still inside"
        );
        r.insert("sim", "newer", &id(WINDOW_MS + 1, 3));
        assert_eq!(r.get("sim", "old"), None);
        assert!(r.get("sim", "new").is_some());
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn forgets_the_oldest_past_the_capacity() {
        let mut r = RecentInbound::with_capacity(10);
        for n in 0..13 {
            r.insert("sim", &format!("c{n}"), &id(5, n));
        }
        assert_eq!(r.len(), 10);
        assert_eq!(r.get("sim", "c0"), None);
        assert_eq!(r.get("sim", "c2"), None);
        assert!(r.get("sim", "c3").is_some());
        assert!(r.get("sim", "c12").is_some());
    }

    #[test]
    fn ignores_ids_it_did_not_make() {
        let mut r = RecentInbound::default();
        r.insert("sim", "x", "not-a-uuid");
        assert!(r.is_empty());
    }

    #[test]
    fn v7_floor_orders_with_real_ids() {
        let uuid_v7_ms = |id: &str| {
            uuid::Uuid::parse_str(id)
                .ok()
                .map(|id| (id.as_u128() >> 80) as i64)
        };
        let ms = 1_790_000_000_000;
        let real = uuid::Uuid::now_v7().to_string();
        let real_ms = uuid_v7_ms(&real).unwrap();
        assert!(real >= uuid_v7_floor(real_ms));
        assert!(real < uuid_v7_floor(real_ms + 1));
        assert_eq!(uuid_v7_ms(&uuid_v7_floor(ms)), Some(ms));
    }
}
