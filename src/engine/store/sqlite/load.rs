//! What [`Store::load`](super::Store::load) reads at start: everything the router keeps in
//! memory. The conversations with their last messages — 100 000 random reads into `messages`
//! on a large store, most of a cold start — are read on other threads, over slices of the id
//! range, while the writer's connection reads the rest.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::rows::{
    MESSAGE_COLUMNS, conversation_from_row, conversation_select, message_from_row, parse_enum,
};
use super::{SqliteStore, inbound_log, open, replay_journal};
use crate::engine::store::{Snapshot, StoreError};
use crate::protocol::ConsentState;

impl SqliteStore {
    pub(super) fn load_snapshot(
        &mut self,
        idempotency_since_ms: i64,
        inbound_since_ms: i64,
        inbound_limit: usize,
    ) -> Result<Snapshot, StoreError> {
        let started = std::time::Instant::now();
        // Summaries the router had not copied yet (a crash, a failed commit).
        replay_journal(&mut self.conn)?;
        let replayed = started.elapsed();
        // The conversations with their last messages (100 000 random reads into `messages`
        // on a large store: most of a cold start) are read by other threads meanwhile.
        let path = self.path.clone();
        std::thread::scope(|scope| {
            let conversations = std::thread::Builder::new()
                .name("shortbox-load".into())
                .spawn_scoped(scope, || {
                    let r = load_conversations(&path);
                    (r, started.elapsed())
                })
                .map_err(|source| StoreError::File {
                    path: self.path.display().to_string(),
                    source,
                })?;
            let snap = self.load_rest(
                started,
                replayed,
                inbound_since_ms,
                idempotency_since_ms,
                inbound_limit,
            );
            let (convs, took) = conversations
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            tracing::debug!(took = ?took - replayed, "conversations read");
            let mut snap = snap?;
            snap.conversations = convs?;
            Ok(snap)
        })
    }

    /// Everything [`Store::load`](super::Store::load) reads but the conversations.
    fn load_rest(
        &mut self,
        started: std::time::Instant,
        replayed: std::time::Duration,
        inbound_since_ms: i64,
        idempotency_since_ms: i64,
        inbound_limit: usize,
    ) -> Result<Snapshot, StoreError> {
        let c = &self.conn;
        let mut snap = Snapshot::default();
        let mut st = c.prepare("SELECT e164, country FROM subscribers")?;
        snap.subscribers = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut st =
            c.prepare("SELECT code, subscriber, tenant, since, message FROM attribution")?;
        snap.attribution = st
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut st = c.prepare(
            "SELECT tenant, key, fingerprint, message, at_ms FROM idempotency WHERE at_ms >= ?1",
        )?;
        snap.idempotency = st
            .query_map([idempotency_since_ms], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?;
        let cols = MESSAGE_COLUMNS
            .split(", ")
            .map(|c| format!("m.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut st = c.prepare(&format!(
            "SELECT {cols}, o.state FROM messages m LEFT JOIN outbox o ON o.message = m.id \
             WHERE m.direction = 'out' AND m.status IN ('queued', 'dispatched')"
        ))?;
        snap.pending_out = st
            .query_map([], |r| Ok((message_from_row(r)?, r.get(19)?)))?
            .collect::<Result<_, _>>()?;
        let mut st = c.prepare("SELECT tenant, month, spent_micros, notified FROM spend")?;
        snap.spend = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        let mut st = c.prepare(
            "SELECT s.stream, s.epoch, MAX(s.head, COALESCE((SELECT MAX(seq) FROM events e WHERE e.stream = s.stream), 0)) \
             FROM streams s",
        )?;
        snap.streams = st
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))
            })?
            .collect::<Result<_, _>>()?;
        let mut st = c.prepare("SELECT tenant, subscriber, state FROM consent")?;
        snap.consent = st
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    parse_enum::<ConsentState>(r.get_ref(2)?.as_str()?)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        let mut st = c.prepare("SELECT code, subscriber FROM code_blocks")?;
        snap.code_blocks = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let others = started.elapsed() - replayed;
        let floor = crate::engine::recent_inbound::uuid_v7_floor(inbound_since_ms);
        if self.inbound_log.is_some() {
            // Loaded again (after a failed commit): the file is kept as it is.
            snap.recent_inbound = inbound_log::index_newest(c, &floor, inbound_limit)?;
            snap.recent_inbound.reverse();
        } else {
            let started = std::time::Instant::now();
            tracing::debug!(?replayed, ?others, "store read: journal replayed, the rest");
            let dir = self.path.parent().unwrap_or(Path::new("."));
            let read = inbound_log::InboundLog::start(c, dir, inbound_since_ms, inbound_limit)?;
            tracing::debug!(
                from_file = read.from_file,
                from_index = read.from_index,
                took = ?started.elapsed(),
                "recent inbound carrier ids read"
            );
            snap.recent_inbound = read.entries;
            self.inbound_log = Some(read.log);
        }
        Ok(snap)
    }
}

/// Conversation ids are UUID v7: the range between the first and the last is cut into this
/// many slices, which the threads take in turn (slices of a busy period hold more).
const LOAD_SLICES: u128 = 16;
/// Threads reading them: random reads overlap on the disk (8 threads read 4 KiB pages about
/// three times as fast as one on these machines), and rows are decoded on both cores.
const LOAD_THREADS: usize = 4;

/// Every conversation with its last message, in id order.
fn load_conversations(
    path: &Path,
) -> Result<
    Vec<(
        crate::protocol::Conversation,
        crate::engine::store::ConversationExtra,
    )>,
    StoreError,
> {
    let first = open(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let (min, max): (Option<String>, Option<String>) =
        first.query_row("SELECT MIN(id), MAX(id) FROM conversations", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let bounds: Vec<String> = match (
        min.as_deref().and_then(|m| uuid::Uuid::try_parse(m).ok()),
        max.as_deref().and_then(|m| uuid::Uuid::try_parse(m).ok()),
    ) {
        (Some(lo), Some(hi)) if hi.as_u128() > lo.as_u128() + LOAD_SLICES => {
            let (lo, hi) = (lo.as_u128(), hi.as_u128());
            (1..LOAD_SLICES)
                .map(|i| uuid::Uuid::from_u128(lo + (hi - lo) / LOAD_SLICES * i).to_string())
                .collect()
        }
        _ => Vec::new(),
    };
    // Slice i holds the ids from bounds[i - 1] (included) to bounds[i] (excluded).
    let slices = bounds.len() + 1;
    let read = |conn: &Connection, i: usize| -> Result<Vec<_>, StoreError> {
        let mut sql = conversation_select().to_string();
        let mut args: Vec<&str> = Vec::new();
        if let Some(lo) = i.checked_sub(1).map(|j| bounds[j].as_str()) {
            sql.push_str(" WHERE c.id >= ?");
            args.push(lo);
        }
        if let Some(hi) = bounds.get(i) {
            sql.push_str(if args.is_empty() { " WHERE" } else { " AND" });
            sql.push_str(" c.id < ?");
            args.push(hi);
        }
        Ok(conn
            .prepare(&sql)?
            .query_map(rusqlite::params_from_iter(args), conversation_from_row)?
            .collect::<Result<_, _>>()?)
    };
    if slices == 1 {
        return read(&first, 0);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut parts: Vec<Option<Vec<_>>> = (0..slices).map(|_| None).collect();
    let mut conns = vec![first];
    for _ in 1..LOAD_THREADS {
        conns.push(open(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?);
    }
    std::thread::scope(|scope| -> Result<(), StoreError> {
        let workers: Vec<_> = conns
            .into_iter()
            .map(|conn| {
                let (next, read) = (&next, &read);
                std::thread::Builder::new()
                    .name("shortbox-load".into())
                    .spawn_scoped(scope, move || -> Result<Vec<_>, StoreError> {
                        let conn = &conn;
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if i >= slices {
                                return Ok(done);
                            }
                            done.push((i, read(conn, i)?));
                        }
                    })
            })
            .collect::<Result<_, _>>()
            .map_err(|source| StoreError::File {
                path: path.display().to_string(),
                source,
            })?;
        for w in workers {
            for (i, part) in w.join().unwrap_or_else(|p| std::panic::resume_unwind(p))? {
                parts[i] = Some(part);
            }
        }
        Ok(())
    })?;
    let mut all = Vec::with_capacity(parts.iter().flatten().map(Vec::len).sum());
    for part in parts.into_iter().flatten() {
        all.extend(part);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::store::Store;

    /// The conversations read in slices by several threads: each exactly once, in id order,
    /// with its last message — ids spread over years and bunched in one millisecond, and ids
    /// that fall exactly on a slice's bound.
    #[test]
    fn conversations_are_read_in_slices_each_once_in_order() {
        use crate::engine::store::{ConversationExtra, Write};
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(dir.path()).unwrap();
        let v7 =
            |ms: u128, n: u128| uuid::Uuid::from_u128((ms << 80) | (0x7 << 76) | (0x8 << 60) | n);
        let (lo, hi) = (v7(1_600_000_000_000, 0), v7(1_900_000_000_000, 5));
        let mut ids: Vec<uuid::Uuid> = vec![lo, hi];
        // Exactly on the bounds, and one below each.
        let step = (hi.as_u128() - lo.as_u128()) / LOAD_SLICES;
        for i in 1..LOAD_SLICES {
            ids.push(uuid::Uuid::from_u128(lo.as_u128() + step * i));
            ids.push(uuid::Uuid::from_u128(lo.as_u128() + step * i - 1));
        }
        for n in 1..300u128 {
            ids.push(v7(1_600_000_000_000 + n * 997_000_000, n));
            ids.push(v7(1_750_000_000_000, 1000 + n));
        }
        let mut writes = Vec::new();
        for (k, id) in ids.iter().enumerate() {
            let id = id.to_string();
            let mut c =
                crate::client::testing::ConvBuilder::new(&id, &format!("+1415555{k:04}")).build();
            if k % 3 == 0 {
                let m = crate::client::testing::inbound(
                    &format!("m-{id}"),
                    &id,
                    "hi",
                    "2026-11-22T10:00:00.000Z",
                );
                c.last_message = Some(m.clone());
                writes.push(Write::Message(Box::new(m), Default::default()));
            }
            writes.push(Write::Conversation(
                Box::new(c),
                ConversationExtra::default(),
            ));
        }
        store.apply(&writes).unwrap();
        let loaded = load_conversations(store.path()).unwrap();
        let mut expected: Vec<String> = ids.iter().map(|u| u.to_string()).collect();
        expected.sort();
        let got: Vec<String> = loaded.iter().map(|(c, _)| c.id.clone()).collect();
        let plain: Vec<String> = store
            .conn
            .prepare("SELECT id FROM conversations ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(plain.len(), expected.len(), "stored");
        let missing: Vec<_> = expected.iter().filter(|i| !got.contains(i)).collect();
        assert!(missing.is_empty(), "missing {missing:?}");
        assert!(
            got == expected,
            "{} read, {} stored, order differs",
            got.len(),
            expected.len()
        );
        for (c, _) in &loaded {
            let k = ids.iter().position(|u| u.to_string() == c.id).unwrap();
            assert_eq!(
                c.last_message.as_ref().map(|m| m.id.clone()),
                (k % 3 == 0).then(|| format!("m-{}", c.id))
            );
        }
    }
}
