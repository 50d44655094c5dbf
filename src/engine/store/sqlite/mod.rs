//! The embedded store: SQLite in WAL mode with `synchronous=FULL`, checked at start.
//!
//! `mod.rs` opens the database (pragmas, migrations, the checkpointer) and implements the
//! writer's [`Store`]; `write.rs` turns each [`Write`] into SQL; `load.rs` reads what the
//! router keeps in memory at start; `conv_index.rs` and `inbound_log.rs` keep what is written
//! behind; `read.rs` is the readers' pool; `rows.rs` maps rows to protocol objects.

mod conv_index;
mod inbound_log;
mod load;
mod read;
mod rows;
mod write;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::schema::MIGRATIONS;
use super::{InboundOrigin, Snapshot, Store, StoreError, Write};
use crate::protocol::{Direction, Message};
use rows::{MESSAGE_COLUMNS, message_from_row};

pub use read::SqliteRead;
use write::{CONVERSATION_COLUMNS, CONVERSATION_UPSERT, write_one};

/// The database file inside the data directory.
pub const DB_FILE: &str = "shortbox.db";

pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// [`WAL_RESTART_PAGES`], smaller in tests.
    wal_restart_pages: i32,
    /// Checkpoints the writer had to run itself (the checkpointer did not catch up in time).
    writer_checkpoints: u64,
    checkpointer: Checkpointer,
    /// The entries of `conversation_messages` still to be written.
    conv_index: conv_index::ConvIndex,
    /// The recent inbound file, kept once an engine has loaded the store.
    inbound_log: Option<inbound_log::InboundLog>,
    /// This process has stored inbound messages without keeping the file (and so told the
    /// next engine not to trust it).
    inbound_unlogged: bool,
}

/// Copies the WAL back into the database from its own connection and thread, so that the
/// writer's commits rarely pay for a checkpoint (the writer's automatic checkpoints are off).
/// PASSIVE checkpoints never block the writer; the WAL restarts from its beginning once it has
/// been copied completely and no reader needs it.
///
/// Under sustained load a background pass rarely copies *everything*: the writer appends
/// while it copies, so the WAL would grow without bound (every new frame then extends the
/// file, which costs the writer more than the frame itself, and a crash replays all of it).
/// So once the WAL holds [`WAL_RESTART_PAGES`] frames, the writer asks the checkpointer to
/// hurry: it runs passes back to back, each copying only what arrived during the one before,
/// until one ends with nothing left between two commits; the writer's next commit then
/// starts the WAL again from its beginning. Only if the WAL reaches twice that size does the
/// writer run the checkpoint itself between two batches, which bounds the WAL whatever
/// happens. (The writer used to do it at once: 13–28 ms with the commits stalled behind it,
/// every 0.65 s at 10 000 msg/s — the largest part of B1's p99. After hurried passes, what
/// is left for the writer is short: 1.5–2.6 ms.)
struct Checkpointer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    hurry: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Passes run so far (read by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    passes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Held for each checkpoint, the checkpointer's and the writer's: a PASSIVE checkpoint
    /// gives up at once while another one runs, so the writer's, which bounds the WAL, waits
    /// for its turn (a hurried pass is short) instead of giving up.
    gate: std::sync::Arc<std::sync::Mutex<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        use std::sync::atomic::Ordering::Relaxed;
        let conn = open(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hurry = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let passes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let gate = std::sync::Arc::new(std::sync::Mutex::new(()));
        let (flag, rush, count, turns) =
            (stop.clone(), hurry.clone(), passes.clone(), gate.clone());
        let thread = std::thread::Builder::new()
            .name("shortbox-checkpoint".into())
            .spawn(move || {
                let mut pause = IDLE_PAUSE;
                let mut last_copied = -1;
                while !flag.load(Relaxed) {
                    if !rush.load(Relaxed) {
                        std::thread::park_timeout(pause);
                    }
                    count.fetch_add(1, Relaxed);
                    // (frames in the WAL, frames copied to the database so far)
                    let pass = {
                        let _turn = lock_gate(&turns);
                        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                        })
                    };
                    pause = match pass {
                        Ok((frames, copied)) => {
                            if copied >= frames {
                                // Copied up to the last commit it saw: unless the writer
                                // committed meanwhile, its next commit restarts the WAL.
                                rush.store(false, Relaxed);
                            } else if copied == last_copied && rush.load(Relaxed) {
                                // No progress: a reader still needs the rest. Do not spin.
                                std::thread::park_timeout(STALLED_PAUSE);
                            }
                            last_copied = copied;
                            // Frames were copied: more are likely coming; keep up with them.
                            if copied > 0 { BUSY_PAUSE } else { IDLE_PAUSE }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "WAL checkpoint failed");
                            rush.store(false, Relaxed);
                            IDLE_PAUSE
                        }
                    };
                }
            })
            .map_err(|source| StoreError::Io {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Checkpointer {
            stop,
            hurry,
            passes,
            gate,
            thread: Some(thread),
        })
    }

    /// Asks for passes back to back until one copies everything it sees.
    fn hurry(&self) {
        if !self.hurry.swap(true, std::sync::atomic::Ordering::Relaxed)
            && let Some(t) = &self.thread
        {
            t.thread().unpark();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn lock_gate(gate: &std::sync::Mutex<()>) -> std::sync::MutexGuard<'_, ()> {
    gate.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The background checkpointer's pause when the WAL was empty, and while frames keep coming.
const IDLE_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);
const BUSY_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);
/// Between hurried passes that copied nothing (a reader holds the frames that are left).
const STALLED_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// WAL frames (pages of 4 KiB) after which the checkpointer hurries to get the WAL started
/// again from its beginning: 128 MiB (twice that: the writer does it). The WAL file, once
/// grown to its largest, is overwritten in place (no more extending).
const WAL_RESTART_PAGES: i32 = 32768;

thread_local! {
    /// Frames in the WAL after this thread's last commit (set by the WAL hook).
    static WAL_FRAMES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

fn record_wal_frames(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.set(frames);
    Ok(())
}

pub(super) fn open(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// Sets and reads back the pragmas durability depends on; refuses to run on a mismatch.
fn check_pragmas(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
    let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
    let unsafe_store = |reason: String| StoreError::Unsafe {
        path: path.display().to_string(),
        reason,
    };
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(unsafe_store(format!(
            "journal_mode is {mode}, expected wal"
        )));
    }
    if sync != 2 {
        return Err(unsafe_store(format!(
            "synchronous is {sync}, expected 2 (FULL)"
        )));
    }
    if fk != 1 {
        return Err(unsafe_store("foreign_keys could not be enabled".into()));
    }
    Ok(())
}

impl SqliteStore {
    /// Opens or creates the store in `dir`, runs pending migrations, and checks durability
    /// settings.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let mut conn = open(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )?;
        check_pragmas(&conn, &path)?;
        conn.execute_batch("PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=-8000;")?;
        // After `wal_autocheckpoint=0`, which would replace it.
        conn.wal_hook(Some(record_wal_frames));
        migrate(&mut conn)?;
        let conv_index = conv_index::ConvIndex::load(&conn)?;
        let checkpointer = Checkpointer::start(&path)?;
        Ok(SqliteStore {
            conn,
            path,
            wal_restart_pages: WAL_RESTART_PAGES,
            writer_checkpoints: 0,
            checkpointer,
            conv_index,
            inbound_log: None,
            inbound_unlogged: false,
        })
    }

    /// A reader on the same database.
    pub fn reader(&self, connections: usize) -> Result<SqliteRead, StoreError> {
        let mut read = SqliteRead::open(&self.path, connections)?;
        read.recent = Some(self.conv_index.recent());
        Ok(read)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Copies the newest journal entry of every conversation into `conversations` and empties
/// the journal: what the router had not yet copied when it stopped (or failed a commit).
fn replay_journal(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    let replayed = tx.execute(
        &format!(
            "INSERT INTO conversations ({CONVERSATION_COLUMNS}) \
             SELECT {CONVERSATION_COLUMNS} FROM conversation_journal \
             WHERE seq IN (SELECT MAX(seq) FROM conversation_journal GROUP BY id) \
             {CONVERSATION_UPSERT}"
        ),
        [],
    )?;
    tx.execute("DELETE FROM conversation_journal", [])?;
    tx.commit()?;
    if replayed > 0 {
        tracing::info!(
            conversations = replayed,
            "conversation summaries restored from the journal"
        );
    }
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version as usize > MIGRATIONS.len() {
        return Err(StoreError::TooNew {
            found: version,
            known: MIGRATIONS.len(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        // An existing store is being upgraded: on a large one this can take a while (building
        // an index over millions of messages), so say so before and after.
        let started = std::time::Instant::now();
        if version > 0 {
            tracing::info!(
                "upgrading the store to schema version {} (on a large store this can take a minute)",
                i + 1
            );
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        if version > 0 {
            tracing::info!(took = ?started.elapsed(), "store upgraded to schema version {}", i + 1);
        }
    }
    Ok(())
}

impl Store for SqliteStore {
    fn apply(&mut self, writes: &[Write]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        let index = &mut self.conv_index;
        let mut log = self.inbound_log.as_mut();
        let mut unlogged = false;
        let done = (|| {
            for w in writes {
                if let Write::MessageAssigned {
                    id, conversation, ..
                } = w
                {
                    index.moving(&tx, id, conversation)?;
                }
                write_one(&tx, w)?;
                if let Write::Message(m, extra) = w {
                    if let Some(conversation) = &m.conversation {
                        index.added(&tx, conversation, &m.id)?;
                    }
                    if m.direction == Direction::In
                        && let (Some(carrier), Some(carrier_id)) =
                            (&extra.carrier, &extra.carrier_id)
                    {
                        let untrust = match log.as_deref_mut() {
                            Some(log) => log.added(&m.id, carrier, carrier_id),
                            // Written by a process that does not keep the recent inbound
                            // file (a tool, a generator): the next engine must not trust
                            // that file to hold everything before its last entry.
                            None => {
                                !self.inbound_unlogged && !std::mem::replace(&mut unlogged, true)
                            }
                        };
                        if untrust {
                            inbound_log::untrust(&tx)?;
                        }
                    }
                }
            }
            index.step(&tx)?;
            tx.commit()
        })();
        if let Err(e) = done {
            // Rolled back: what the index holds in memory is read again from the store.
            if let Some(log) = &mut self.inbound_log {
                log.rolled_back();
            }
            self.conv_index.reload(&self.conn)?;
            return Err(e.into());
        }
        self.conv_index.committed();
        if let Some(log) = &mut self.inbound_log {
            log.committed();
        }
        self.inbound_unlogged |= unlogged;
        let frames = WAL_FRAMES.get();
        if frames >= 2 * self.wal_restart_pages {
            // The checkpointer did not get the WAL restarted in time: copy the rest between
            // two batches, after the checkpointer's pass in progress. Only a reader still
            // using the WAL postpones the restart to a later batch.
            self.writer_checkpoints += 1;
            let started = std::time::Instant::now();
            let pass = {
                let _turn = lock_gate(&self.checkpointer.gate);
                self.conn
                    .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            };
            tracing::debug!(frames, took = ?started.elapsed(), "the writer checkpointed the WAL");
            if let Err(e) = pass {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
        } else if frames >= self.wal_restart_pages {
            self.checkpointer.hurry();
        }
        Ok(())
    }

    fn load(
        &mut self,
        idempotency_since_ms: i64,
        inbound_since_ms: i64,
        inbound_limit: usize,
    ) -> Result<Snapshot, StoreError> {
        self.load_snapshot(idempotency_since_ms, inbound_since_ms, inbound_limit)
    }

    fn inbound_origin(&mut self, id: &str) -> Result<Option<InboundOrigin>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT carrier, carrier_id, tenant FROM messages \
                 WHERE id = ?1 AND direction = 'in' AND carrier_id IS NOT NULL",
            )?
            .query_row([id], |r| {
                Ok(InboundOrigin {
                    carrier: r.get(0)?,
                    carrier_id: r.get(1)?,
                    tenant: r.get(2)?,
                })
            })
            .optional()?)
    }

    fn find_outbound(
        &mut self,
        carrier: &str,
        carrier_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT id FROM messages WHERE carrier = ?1 AND carrier_id = ?2 AND direction = 'out'")?
            .query_row(params![carrier, carrier_id], |r| r.get(0))
            .optional()?)
    }

    fn message(&mut self, id: &str) -> Result<Option<Message>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1"
            ))?
            .query_row([id], message_from_row)
            .optional()?)
    }

    fn unread_after(&mut self, conversation: &str, after: &str) -> Result<u32, StoreError> {
        Ok(self
            .conv_index
            .unread_after(&self.conn, conversation, after)?)
    }

    /// `seq` grows with time in each stream, so the oldest rows of each stream are read in
    /// order until one is recent enough: no index on time is needed, and the rows read are
    /// the ones being dropped.
    fn prune_events(&mut self, before_ts: &str) -> Result<usize, StoreError> {
        let streams: Vec<String> = self
            .conn
            .prepare("SELECT stream FROM streams")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut dropped = 0;
        for stream in streams {
            let keep_from: Option<i64> = self
                .conn
                .prepare_cached(
                    "SELECT seq FROM events WHERE stream = ?1 AND ts >= ?2 ORDER BY seq LIMIT 1",
                )?
                .query_row(params![stream, before_ts], |r| r.get(0))
                .optional()?;
            dropped += match keep_from {
                Some(seq) => self.conn.execute(
                    "DELETE FROM events WHERE stream = ?1 AND seq < ?2",
                    params![stream, seq],
                )?,
                None => self
                    .conn
                    .execute("DELETE FROM events WHERE stream = ?1", [&stream])?,
            };
        }
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::store::{StoreRead, StoredEvent};

    /// Commits back to back (as under load) keep the WAL near the restart size: without the
    /// writer's own checkpoint it grows with everything written.
    #[test]
    fn the_wal_stays_bounded_under_back_to_back_commits() {
        let (_dir, mut store) = small_wal_store();
        let mut seq = 0;
        let mut most = 0;
        for _ in 0..400 {
            let writes = event_batch(&mut seq);
            store.apply(&writes).unwrap();
            most = most.max(WAL_FRAMES.get());
        }
        // ~3 pages per commit: 1 200 pages were written in all; the writer's own checkpoint
        // at twice the restart size is the bound.
        assert!(most < 2 * 64 + 40, "the WAL reached {most} frames");
    }

    /// A store whose WAL restarts at 64 frames.
    fn small_wal_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(dir.path()).unwrap();
        store.wal_restart_pages = 64;
        (dir, store)
    }

    /// Waits (up to 10 s) for the hurried checkpointer to copy everything it sees.
    fn wait_until_caught_up(store: &SqliteStore) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while store
            .checkpointer
            .hurry
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the checkpointer never caught up"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Eight events of 1 500 bytes that do not compress (random hex digits), so that each
    /// commit writes about three pages.
    fn event_batch(seq: &mut u64) -> Vec<Write> {
        (0..8)
            .map(|_| {
                *seq += 1;
                let data = (0..1500)
                    .map(|_| char::from_digit(rand::random_range(0..16), 16).unwrap())
                    .collect();
                Write::Event(event(*seq, data))
            })
            .collect()
    }

    fn event(seq: u64, data: String) -> StoredEvent {
        StoredEvent {
            stream: "tenant:acme".into(),
            seq,
            epoch: "e".into(),
            kind: "message.received".into(),
            ts: "2026-11-22T10:00:00.000Z".into(),
            data,
        }
    }

    /// Long event data is stored packed and read back as it was written; short data, and text
    /// a store wrote before packing existed, read as text.
    #[test]
    fn event_data_is_packed_and_read_back_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(dir.path()).unwrap();
        let message = r#"{"id":"01a20601-94f1-7065-98b8-35b959ab400a","tenant":"acme","body":"see you at the corner shop around noon, thanks ✓","status":"received","created_at":"2026-11-23T01:24:56.689Z"}"#;
        let long =
            format!(r#"{{"message":{message},"conversation":{{"last_message":{message}}}}}"#);
        let short = r#"{"tenant":"acme"}"#.to_string();
        store
            .apply(&[
                Write::Event(event(1, long.clone())),
                Write::Event(event(2, short.clone())),
            ])
            .unwrap();
        // An event as an earlier version stored it: JSON text, however long.
        store
            .conn
            .execute(
                "INSERT INTO events (stream, seq, epoch, kind, ts, data) VALUES ('tenant:acme', 3, 'e', 'k', 't', ?1)",
                [&long],
            )
            .unwrap();
        let types: Vec<(String, i64)> = store
            .conn
            .prepare("SELECT typeof(data), length(data) FROM events ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(types[0].0, "blob");
        assert!(
            (types[0].1 as usize) < long.len() * 3 / 4,
            "packed {} of {} bytes",
            types[0].1,
            long.len()
        );
        assert_eq!(types[1].0, "text");
        assert_eq!(types[2].0, "text");
        let read = store.reader(1).unwrap();
        let data: Vec<String> = read
            .read_events("tenant:acme", 0, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.data)
            .collect();
        assert_eq!(data, [long.clone(), short, long]);
    }

    /// A store from a newer build is refused with what to do, and left as it was.
    #[test]
    fn a_store_from_a_newer_build_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path()).unwrap());
        let path = dir.path().join("shortbox.db");
        let newer = MIGRATIONS.len() as i64 + 1;
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", newer)
            .unwrap();
        let err = SqliteStore::open(dir.path())
            .err()
            .expect("a newer store opened");
        let msg = err.to_string();
        assert!(msg.contains("newer shortbox"), "{msg}");
        assert!(msg.contains(&format!("schema version {newer}")), "{msg}");
        let version: i64 = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, newer);
    }

    /// A damaged packed event is an error for its reader, never a panic or a huge allocation.
    #[test]
    fn damaged_packed_event_data_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let read = store.reader(1).unwrap();
        let damaged: [&[u8]; 4] = [
            b"\x01\x00",                     // shorter than its length
            &[0xff, 0xff, 0xff, 0x7f, 0x10], // claims 2 GiB
            &[100, 0, 0, 0, 0xf0, 1, 2],     // a block that ends inside a literal run
            &[2, 0, 0, 0, 0x20, 0xff, 0xfe], // two bytes that are not UTF-8
        ];
        for (i, blob) in damaged.iter().enumerate() {
            let stream = format!("s{i}");
            store
                .conn
                .execute(
                    "INSERT INTO events (stream, seq, epoch, kind, ts, data) VALUES (?1, 1, 'e', 'k', 't', ?2)",
                    params![stream, blob],
                )
                .unwrap();
            match read.read_events(&stream, 0, 10) {
                Err(e) => assert!(e.to_string().contains("data"), "{i}: {e}"),
                Ok(events) => panic!("{i}: damaged data read as {:?}", events[0].data),
            }
        }
    }

    /// Past the restart size the checkpointer, not the writer, gets the WAL started again:
    /// the next commit after it caught up writes from the WAL's beginning.
    #[test]
    fn the_checkpointer_restarts_the_wal_without_the_writer() {
        let (_dir, mut store) = small_wal_store();
        let mut seq = 0;
        while WAL_FRAMES.get() < 64 {
            store.apply(&event_batch(&mut seq)).unwrap();
        }
        let grown = WAL_FRAMES.get();
        assert!(
            grown < 2 * 64,
            "{grown} frames: the writer would checkpoint"
        );
        // Commits pause; the hurried checkpointer copies everything and stops hurrying.
        wait_until_caught_up(&store);
        store.apply(&event_batch(&mut seq)).unwrap();
        let after = WAL_FRAMES.get();
        assert!(
            after < grown,
            "the WAL did not restart: {grown} → {after} frames"
        );
        assert_eq!(store.writer_checkpoints, 0);
    }

    /// While a reader holds frames the checkpointer cannot copy, a hurried checkpointer waits
    /// between passes instead of spinning; once the reader is done, the WAL restarts.
    #[test]
    fn a_hurried_checkpointer_does_not_spin_behind_a_reader() {
        use std::sync::atomic::Ordering::Relaxed;
        let (_dir, mut store) = small_wal_store();
        let mut seq = 0;
        store.apply(&event_batch(&mut seq)).unwrap();
        // A reader's snapshot from before the WAL grows: the frames after it stay uncopied.
        let reader = open(&store.path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap();
        while WAL_FRAMES.get() < 64 {
            store.apply(&event_batch(&mut seq)).unwrap();
        }
        let hurry = store.checkpointer.hurry.clone();
        let passes = store.checkpointer.passes.clone();
        let before = passes.load(Relaxed);
        std::thread::sleep(std::time::Duration::from_millis(300));
        let during = passes.load(Relaxed) - before;
        assert!(hurry.load(Relaxed), "the checkpointer stopped hurrying");
        // At most one pass per 5 ms pause (60 in 300 ms); a spinning loop runs thousands.
        assert!(during <= 120, "{during} passes in 300 ms behind a reader");
        reader.execute_batch("COMMIT").unwrap();
        wait_until_caught_up(&store);
        let grown = WAL_FRAMES.get();
        store.apply(&event_batch(&mut seq)).unwrap();
        assert!(WAL_FRAMES.get() < grown, "the WAL did not restart");
    }
}
