//! B3 (storage rows per second with the real schema) and the data of B10 (restart with many
//! stored messages): the same writes the router makes, applied straight to `SqliteStore`.
//!
//! Per inbound message the router writes what [`Generator::inbound`] writes: the subscriber
//! (first time), the attribution upsert, the conversation upsert (with its last message), the
//! message, its event; and per batch the head of every stream it touched.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use shortbox::engine::clock::fmt_ms;
use shortbox::engine::store::{
    ConversationExtra, MessageExtra, SqliteStore, Store, StoredEvent, Write,
};
use shortbox::protocol::{
    Attribution, AttributionState, CodeKind, ConsentState, Conversation, ConversationStatus,
    Direction, Encoding, Message, MessageEventData, MessageStatus, RoutedBy,
};

use super::report::Summary;
use super::world::{SHARED_CODE, tenant_id, tenant_subscriber};

/// Makes the router's writes for a synthetic history: conversation `c` belongs to tenant
/// `c % tenants` and subscriber `c`; message `i` is in conversation `i % conversations`.
pub struct Generator {
    tenants: usize,
    conversations: u64,
    convs: HashMap<u64, (String, u32)>,
    subscribers: BTreeSet<u64>,
    heads: HashMap<String, (String, u64)>,
    touched: BTreeSet<String>,
}

impl Generator {
    pub fn new(tenants: usize, conversations: u64) -> Generator {
        Generator {
            tenants,
            conversations: conversations.max(1),
            convs: HashMap::new(),
            subscribers: BTreeSet::new(),
            heads: HashMap::new(),
            touched: BTreeSet::new(),
        }
    }

    /// The conversations made so far.
    pub fn conversation_ids(&self) -> Vec<String> {
        self.convs.values().map(|(id, _)| id.clone()).collect()
    }

    /// Appends the writes of message `i` at `ts_ms`: inbound when `inbound`, else an agent's
    /// delivered reply.
    pub fn message(&mut self, i: u64, ts_ms: i64, inbound: bool, writes: &mut Vec<Write>) {
        let c = i % self.conversations;
        let tenant = tenant_id((c % self.tenants as u64) as usize);
        let subscriber = tenant_subscriber(c);
        let ts = fmt_ms(ts_ms);
        if self.subscribers.insert(c) {
            writes.push(Write::Subscriber {
                e164: subscriber.clone(),
                country: "US".into(),
            });
        }
        let (conv_id, unread) = self
            .convs
            .entry(c)
            .or_insert_with(|| (uuid::Uuid::now_v7().to_string(), 0))
            .clone();
        let message = Message {
            id: uuid::Uuid::now_v7().to_string(),
            conversation: Some(conv_id.clone()),
            tenant: Some(tenant.clone()),
            direction: if inbound {
                Direction::In
            } else {
                Direction::Out
            },
            code: SHARED_CODE.into(),
            subscriber: subscriber.clone(),
            body: format!(
                "Synthetic message {i} of conversation {c}: is the blue one still in stock in size 9?"
            ),
            encoding: Encoding::Gsm7,
            segments: 1,
            cost_micros: if inbound { 0 } else { 7900 },
            status: if inbound {
                MessageStatus::Received
            } else {
                MessageStatus::Delivered
            },
            created_at: ts.clone(),
            client_msg_id: (!inbound).then(|| uuid::Uuid::new_v4().to_string()),
            author: (!inbound).then(|| "ag_bench".to_string()),
            routed_by: inbound.then_some(RoutedBy::Keyword),
            evidence: None,
            error: None,
            reclaim: false,
            opt_out_intent: false,
        };
        let unread = if inbound { unread + 1 } else { 0 };
        self.convs.insert(c, (conv_id.clone(), unread));
        if inbound {
            writes.push(Write::Attribution {
                code: SHARED_CODE.into(),
                subscriber: subscriber.clone(),
                tenant: tenant.clone(),
                since: ts.clone(),
                message: None,
            });
        }
        let conversation = Conversation {
            id: conv_id,
            tenant: tenant.clone(),
            subscriber,
            subscriber_name: None,
            code: SHARED_CODE.into(),
            code_kind: CodeKind::Shared,
            country: "US".into(),
            status: ConversationStatus::Open,
            snoozed_until: None,
            assignee: None,
            unread,
            last_message: Some(message.clone()),
            last_activity: ts.clone(),
            attribution: Attribution {
                state: AttributionState::Held,
                since: Some(ts.clone()),
            },
            consent: ConsentState::None,
            opt_out_intent: false,
        };
        writes.push(Write::Conversation(
            Box::new(conversation.clone()),
            ConversationExtra {
                last_inbound_ms: inbound.then_some(ts_ms),
            },
        ));
        writes.push(Write::Message(
            Box::new(message.clone()),
            MessageExtra {
                carrier: Some("sim".into()),
                carrier_id: Some(format!("gen-{i}")),
                unattributed_reason: None,
            },
        ));
        let stream = format!("tenant:{tenant}");
        let (epoch, head) = self.heads.entry(stream.clone()).or_insert_with(|| {
            (
                uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
                0,
            )
        });
        *head += 1;
        let data = MessageEventData {
            message,
            conversation: Some(conversation),
        };
        writes.push(Write::Event(StoredEvent {
            stream: stream.clone(),
            seq: *head,
            epoch: epoch.clone(),
            kind: if inbound {
                "message.received"
            } else {
                "message.created"
            }
            .into(),
            ts,
            data: serde_json::to_string(&data).unwrap_or_default(),
        }));
        self.touched.insert(stream);
    }

    /// Appends the stream heads the batch moved.
    pub fn finish_batch(&mut self, writes: &mut Vec<Write>) {
        for stream in std::mem::take(&mut self.touched) {
            let (epoch, head) = &self.heads[&stream];
            writes.push(Write::StreamHead {
                stream,
                epoch: epoch.clone(),
                head: *head,
            });
        }
    }
}

/// The latency of one 4 KiB write + fsync in `dir`, `n` times: what every durable commit
/// pays at least on this file system, now.
pub fn fsync_probe(dir: &Path, n: usize) -> anyhow::Result<Summary> {
    use std::io::{Seek, SeekFrom, Write as _};
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("fsync-probe-{}", std::process::id()));
    let mut file = std::fs::File::create(&path)?;
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let block = [7u8; 4096];
    for i in 0..n {
        file.seek(SeekFrom::Start((i % 16) as u64 * 4096))?;
        file.write_all(&block)?;
        let t = Instant::now();
        file.sync_data()?;
        let _ = h.record((t.elapsed().as_micros() as u64).max(1));
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(Summary::of(&h))
}

/// B3 for one batch size.
#[derive(Debug, Clone, Serialize)]
pub struct StorageResult {
    pub batch: usize,
    pub messages: u64,
    pub rows: u64,
    pub seconds: f64,
    pub messages_per_s: f64,
    pub rows_per_s: f64,
    /// Time of one `apply` (one transaction, one fsync), checkpoints included.
    pub commit: Summary,
    /// With `--history-every-ms`: a history page (50 messages) of a random conversation read
    /// meanwhile by the writer's own reader (the newest entries from its memory) …
    pub history_memory: Summary,
    /// … and by a reader without the writer's memory (another process).
    pub history_index: Summary,
}

impl StorageResult {
    pub fn human(&self) -> String {
        format!(
            "B3 batch {:>5}: {:>8.0} messages/s, {:>8.0} rows/s ({} messages in {:.1} s) | commit {}",
            self.batch,
            self.messages_per_s,
            self.rows_per_s,
            self.messages,
            self.seconds,
            self.commit.line()
        ) + &if self.history_memory.count > 0 {
            format!(
                "\n         history page while writing: writer's reader {} | other process {}",
                self.history_memory.line(),
                self.history_index.line()
            )
        } else {
            String::new()
        }
    }
}

/// Reads history pages of the conversations in `ids` every `every` until `stop`, alternating
/// between the two readers; returns their times (µs).
fn read_history_meanwhile(
    every: Duration,
    memory: shortbox::engine::store::SqliteRead,
    index: shortbox::engine::store::SqliteRead,
    ids: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<(Histogram<u64>, Histogram<u64>)> {
    use shortbox::engine::store::StoreRead;
    let mut hm = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut hi = hm.clone();
    let mut n = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(every);
        let id = {
            let ids = ids.lock().unwrap_or_else(|p| p.into_inner());
            if ids.is_empty() {
                continue;
            }
            ids[rand::random_range(0..ids.len())].clone()
        };
        n += 1;
        let (reader, h) = if n.is_multiple_of(2) {
            (&memory, &mut hm)
        } else {
            (&index, &mut hi)
        };
        let t = Instant::now();
        reader.history(&id, None, 50)?;
        let _ = h.record((t.elapsed().as_micros() as u64).max(1));
    }
    Ok((hm, hi))
}

/// Writes inbound messages in batches of `batch` for at most `max_messages` or `budget`,
/// on a fresh store in `dir`.
pub fn storage_run(
    dir: &Path,
    batch: usize,
    max_messages: u64,
    budget: Duration,
    conversations: u64,
    history_every: Option<Duration>,
) -> anyhow::Result<StorageResult> {
    let mut store = SqliteStore::open(dir)?;
    let mut g = Generator::new(8, conversations);
    let ids = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers = match history_every {
        Some(every) => {
            let (memory, index) = (
                store.reader(1)?,
                shortbox::engine::store::SqliteRead::open(store.path(), 1)?,
            );
            let (ids, stop) = (ids.clone(), stop.clone());
            Some(std::thread::spawn(move || {
                read_history_meanwhile(every, memory, index, ids, stop)
            }))
        }
        None => None,
    };
    let mut commit = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let now = shortbox::engine::clock::now_ms();
    let started = Instant::now();
    let (mut messages, mut rows) = (0u64, 0u64);
    let mut writes = Vec::with_capacity(batch * 6);
    while messages < max_messages && started.elapsed() < budget {
        writes.clear();
        for _ in 0..batch {
            g.message(messages, now, true, &mut writes);
            messages += 1;
        }
        g.finish_batch(&mut writes);
        rows += writes.len() as u64;
        let t = Instant::now();
        store.apply(&writes)?;
        let _ = commit.record((t.elapsed().as_micros() as u64).max(1));
        if readers.is_some() && messages % 20_000 < batch as u64 {
            *ids.lock().unwrap_or_else(|p| p.into_inner()) = g.conversation_ids();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (history_memory, history_index) = match readers {
        Some(r) => r
            .join()
            .map_err(|_| anyhow::anyhow!("the history reader panicked"))??,
        None => {
            let h = Histogram::<u64>::new(3)?;
            (h.clone(), h)
        }
    };
    Ok(StorageResult {
        batch,
        messages,
        rows,
        seconds,
        messages_per_s: messages as f64 / seconds,
        rows_per_s: rows as f64 / seconds,
        commit: Summary::of(&commit),
        history_memory: Summary::of(&history_memory),
        history_index: Summary::of(&history_index),
    })
}

/// Fills `dir` with `messages` messages over `conversations` conversations (half inbound,
/// half delivered replies), in transactions of 10 000 messages, dated over the last days.
pub fn generate_history(
    dir: &Path,
    tenants: usize,
    messages: u64,
    conversations: u64,
) -> anyhow::Result<()> {
    let mut store = SqliteStore::open(dir)?;
    let mut g = Generator::new(tenants, conversations);
    let now = shortbox::engine::clock::now_ms();
    let spacing_ms = (7 * 86_400_000 / messages.max(1) as i64).max(1);
    let mut writes = Vec::new();
    let started = Instant::now();
    let mut i = 0;
    while i < messages {
        writes.clear();
        let end = (i + 10_000).min(messages);
        while i < end {
            let ts = now - (messages - i) as i64 * spacing_ms;
            g.message(i, ts, i % 2 == 0, &mut writes);
            i += 1;
        }
        g.finish_batch(&mut writes);
        store.apply(&writes)?;
        if i % 500_000 == 0 || i == messages {
            eprintln!(
                "B10: generated {i} of {messages} messages ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
