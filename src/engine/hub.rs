//! Per-stream fan-out of committed events to connections.
//!
//! The router calls [`Hub::publish`] after each COMMIT, in commit order, from a plain thread:
//! publishing never blocks and never awaits. Each connection holds one [`Subscription`]: one
//! bounded queue (`engine.connection_queue` frames) fed from every stream it follows. A queue
//! that is full when an event arrives marks its connection a slow consumer
//! ([`SlowSignal`]); from then on it gets nothing more (its session closes with 4101 and the
//! client resumes from its cursor, so nothing is lost). Ephemeral `live` frames for the `ops`
//! stream are dropped rather than closing anyone. Dropping a `Subscription` unsubscribes it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::{Notify, mpsc};

use crate::protocol::stream;

/// One committed event, serialized once as a whole `ev` frame.
#[derive(Debug, Clone)]
pub struct PublishedEvent {
    pub stream: Arc<str>,
    pub seq: u64,
    pub frame: Arc<str>,
    /// When the router committed it (None for events read back from the store): the start of
    /// `shortbox_delivery_seconds`.
    pub committed: Option<std::time::Instant>,
}

/// What a connection's queue carries.
#[derive(Debug, Clone)]
pub enum HubItem {
    /// A committed event of a stream the connection follows.
    Event(PublishedEvent),
    /// An ephemeral `{"op":"live",…}` frame (the connection follows `ops`).
    Live(Arc<str>),
}

#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<HubInner>,
}

#[derive(Default)]
struct HubInner {
    streams: RwLock<HashMap<Arc<str>, Vec<Arc<Subscriber>>>>,
    next_id: AtomicU64,
    connections: AtomicUsize,
    slow_total: AtomicU64,
    delivered_total: AtomicU64,
    live_dropped_total: AtomicU64,
}

/// The hub's side of one connection.
struct Subscriber {
    id: u64,
    tx: mpsc::Sender<HubItem>,
    slow: Arc<SlowSignal>,
}

/// Raised once, when a connection's queue overflowed. Cheap to check from any thread.
#[derive(Debug, Default)]
pub struct SlowSignal {
    raised: AtomicBool,
    notify: Notify,
}

impl SlowSignal {
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }

    fn raise(&self) -> bool {
        let first = !self.raised.swap(true, Ordering::AcqRel);
        self.notify.notify_waiters();
        first
    }

    /// Completes when the signal is raised (at once if it already is).
    pub async fn raised(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_raised() {
                return;
            }
            notified.await;
        }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubStats {
    pub connections: usize,
    pub slow_consumers_total: u64,
    pub delivered_total: u64,
    pub live_dropped_total: u64,
}

impl Hub {
    pub fn new() -> Hub {
        Hub::default()
    }

    /// A new connection with a queue of `capacity` frames, following no stream yet.
    pub fn subscribe(&self, capacity: usize) -> Subscription {
        let capacity = capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner.connections.fetch_add(1, Ordering::Relaxed);
        let slow = Arc::new(SlowSignal::default());
        Subscription {
            hub: self.clone(),
            subscriber: Arc::new(Subscriber {
                id,
                tx,
                slow: slow.clone(),
            }),
            rx,
            slow,
            streams: HashSet::new(),
        }
    }

    /// Called by the router after COMMIT, in commit order. Never blocks.
    pub fn publish(&self, events: Vec<PublishedEvent>) {
        if events.is_empty() {
            return;
        }
        let streams = self.read();
        let mut delivered = 0u64;
        for event in events {
            let Some(subscribers) = streams.get(&event.stream) else {
                continue;
            };
            for sub in subscribers {
                if sub.slow.is_raised() {
                    // Its session is closing: anything more would follow a gap.
                    continue;
                }
                match sub.tx.try_send(HubItem::Event(event.clone())) {
                    Ok(()) => delivered += 1,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        if sub.slow.raise() {
                            self.inner.slow_total.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    // The session is gone; its subscription is being dropped.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
        self.inner
            .delivered_total
            .fetch_add(delivered, Ordering::Relaxed);
    }

    /// An ephemeral `{"op":"live",…}` frame for the connections that follow `ops`. A
    /// connection whose queue is more than half full misses it: live data never closes anyone.
    pub fn publish_live(&self, frame: Arc<str>) {
        let streams = self.read();
        let Some(subscribers) = streams.get(stream::OPS) else {
            return;
        };
        for sub in subscribers {
            if sub.slow.is_raised() || sub.tx.capacity() * 2 <= sub.tx.max_capacity() {
                self.inner
                    .live_dropped_total
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if sub.tx.try_send(HubItem::Live(frame.clone())).is_err() {
                self.inner
                    .live_dropped_total
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn stats(&self) -> HubStats {
        HubStats {
            connections: self.inner.connections.load(Ordering::Relaxed),
            slow_consumers_total: self.inner.slow_total.load(Ordering::Relaxed),
            delivered_total: self.inner.delivered_total.load(Ordering::Relaxed),
            live_dropped_total: self.inner.live_dropped_total.load(Ordering::Relaxed),
        }
    }

    /// How many connections follow `stream`.
    pub fn followers(&self, stream: &str) -> usize {
        self.read().get(stream).map_or(0, Vec::len)
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<Arc<str>, Vec<Arc<Subscriber>>>> {
        // A panic while holding the lock cannot leave the map half-updated (each update is one
        // push or one retain), so a poisoned lock is still usable.
        self.inner.streams.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<Arc<str>, Vec<Arc<Subscriber>>>> {
        self.inner
            .streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// One connection's subscription: its queue and the streams it follows.
pub struct Subscription {
    hub: Hub,
    subscriber: Arc<Subscriber>,
    rx: mpsc::Receiver<HubItem>,
    slow: Arc<SlowSignal>,
    streams: HashSet<Arc<str>>,
}

impl Subscription {
    /// Starts delivering `stream`'s events published from now on. Idempotent.
    pub fn follow(&mut self, stream: &str) {
        if self.streams.contains(stream) {
            return;
        }
        let name: Arc<str> = Arc::from(stream);
        self.hub
            .write()
            .entry(name.clone())
            .or_default()
            .push(self.subscriber.clone());
        self.streams.insert(name);
    }

    /// Stops delivering `stream`'s events (some may still be queued).
    pub fn unfollow(&mut self, stream: &str) {
        if let Some(name) = self.streams.take(stream) {
            remove(&mut self.hub.write(), &name, self.subscriber.id);
        }
    }

    pub fn follows(&self, stream: &str) -> bool {
        self.streams.contains(stream)
    }

    /// The next queued item; `None` only if the hub is gone.
    pub async fn recv(&mut self) -> Option<HubItem> {
        self.rx.recv().await
    }

    /// The next queued item if there is one.
    pub fn try_recv(&mut self) -> Option<HubItem> {
        self.rx.try_recv().ok()
    }

    /// Raised when this connection's queue overflowed.
    pub fn slow_signal(&self) -> Arc<SlowSignal> {
        self.slow.clone()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.streams.is_empty() {
            let mut streams = self.hub.write();
            for name in self.streams.drain() {
                remove(&mut streams, &name, self.subscriber.id);
            }
        }
        self.hub.inner.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

fn remove(streams: &mut HashMap<Arc<str>, Vec<Arc<Subscriber>>>, name: &str, id: u64) {
    if let Some(list) = streams.get_mut(name) {
        list.retain(|s| s.id != id);
        if list.is_empty() {
            streams.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(stream: &str, seq: u64) -> PublishedEvent {
        PublishedEvent {
            stream: Arc::from(stream),
            seq,
            frame: Arc::from(format!(r#"{{"op":"ev","stream":"{stream}","seq":{seq}}}"#)),
            committed: None,
        }
    }

    fn seq_of(item: Option<HubItem>) -> Option<(String, u64)> {
        match item {
            Some(HubItem::Event(e)) => Some((e.stream.to_string(), e.seq)),
            _ => None,
        }
    }

    #[test]
    fn events_reach_only_the_followers_of_their_stream_in_order() {
        let hub = Hub::new();
        let mut a = hub.subscribe(16);
        let mut b = hub.subscribe(16);
        a.follow("tenant:acme");
        b.follow("tenant:bistro");
        b.follow("tenant:acme");
        hub.publish(vec![
            event("tenant:acme", 1),
            event("tenant:bistro", 1),
            event("tenant:acme", 2),
        ]);

        assert_eq!(seq_of(a.try_recv()), Some(("tenant:acme".into(), 1)));
        assert_eq!(seq_of(a.try_recv()), Some(("tenant:acme".into(), 2)));
        assert!(a.try_recv().is_none());
        assert_eq!(seq_of(b.try_recv()), Some(("tenant:acme".into(), 1)));
        assert_eq!(seq_of(b.try_recv()), Some(("tenant:bistro".into(), 1)));
        assert_eq!(seq_of(b.try_recv()), Some(("tenant:acme".into(), 2)));
        assert_eq!(hub.stats().delivered_total, 5);
    }

    #[test]
    fn a_full_queue_raises_slow_and_gets_nothing_more() {
        let hub = Hub::new();
        let mut slow = hub.subscribe(2);
        let mut fine = hub.subscribe(16);
        slow.follow("ops");
        fine.follow("ops");
        hub.publish((1..=3).map(|s| event("ops", s)).collect());
        assert!(slow.slow_signal().is_raised());
        assert!(!fine.slow_signal().is_raised());
        // Drain and publish again: nothing arrives after the overflow.
        assert_eq!(seq_of(slow.try_recv()), Some(("ops".into(), 1)));
        assert_eq!(seq_of(slow.try_recv()), Some(("ops".into(), 2)));
        hub.publish(vec![event("ops", 4)]);
        assert!(slow.try_recv().is_none());
        assert_eq!((1..=4).filter(|_| fine.try_recv().is_some()).count(), 4);
        assert_eq!(hub.stats().slow_consumers_total, 1);
    }

    #[test]
    fn live_frames_are_dropped_rather_than_filling_a_queue() {
        let hub = Hub::new();
        let mut sub = hub.subscribe(4);
        sub.follow("ops");
        for _ in 0..10 {
            hub.publish_live(Arc::from(r#"{"op":"live"}"#));
        }
        assert!(!sub.slow_signal().is_raised());
        let queued = std::iter::from_fn(|| sub.try_recv()).count();
        assert_eq!(queued, 2, "live frames stop at half the queue");
        assert_eq!(hub.stats().live_dropped_total, 8);
    }

    #[test]
    fn dropping_a_subscription_unsubscribes_it() {
        let hub = Hub::new();
        let mut sub = hub.subscribe(4);
        sub.follow("tenant:acme");
        sub.follow("ops");
        assert_eq!(hub.followers("tenant:acme"), 1);
        assert_eq!(hub.stats().connections, 1);
        sub.unfollow("ops");
        assert_eq!(hub.followers("ops"), 0);
        drop(sub);
        assert_eq!(hub.followers("tenant:acme"), 0);
        assert_eq!(hub.stats().connections, 0);
        hub.publish(vec![event("tenant:acme", 1)]);
    }

    #[tokio::test]
    async fn slow_signal_wakes_a_waiter() {
        let signal = Arc::new(SlowSignal::default());
        let waiter = tokio::spawn({
            let signal = signal.clone();
            async move { signal.raised().await }
        });
        tokio::task::yield_now().await;
        signal.raise();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the waiter wakes")
            .expect("the waiter does not panic");
    }
}
