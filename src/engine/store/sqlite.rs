//! The embedded store: SQLite in WAL mode with `synchronous=FULL`, checked at start.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};

use super::schema::MIGRATIONS;
use super::{
    AgentRow, ConsentEntry, ConversationExtra, ConversationQuery, Snapshot, Store, StoreError,
    StoreRead, StoredEvent, Write,
};
use crate::protocol::{
    Attribution, AttributionState, CodeKind, ConsentState, Conversation, ConversationStatus,
    Direction, Encoding, Message, MessageStatus, Role, RoutedBy,
};

/// The database file inside the data directory.
pub const DB_FILE: &str = "shortbox.db";

pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    _checkpointer: Checkpointer,
}

/// Copies the WAL back into the database from its own connection and thread, so that the
/// writer's commits never pay for a checkpoint (the writer's automatic checkpoints are off).
/// PASSIVE checkpoints never block the writer; the WAL restarts from its beginning once it has
/// been copied and no reader needs it.
struct Checkpointer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = open(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("shortbox-checkpoint".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::park_timeout(std::time::Duration::from_millis(200));
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                }
            })
            .map_err(|source| StoreError::Io {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
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

fn open(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
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
        conn.execute_batch("PRAGMA wal_autocheckpoint=0; PRAGMA cache_size=-32000;")?;
        migrate(&mut conn)?;
        let checkpointer = Checkpointer::start(&path)?;
        Ok(SqliteStore {
            conn,
            path,
            _checkpointer: checkpointer,
        })
    }

    /// A reader on the same database.
    pub fn reader(&self, connections: usize) -> Result<SqliteRead, StoreError> {
        SqliteRead::open(&self.path, connections)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version as usize > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "the database is at schema version {version}, newer than this build knows ({}); use a newer shortbox",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

fn status_str(s: MessageStatus) -> &'static str {
    s.as_str()
}

fn parse_enum<T: serde::de::DeserializeOwned>(s: &str) -> rusqlite::Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn enum_str<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

const MESSAGE_COLUMNS: &str = "id, conversation, tenant, direction, code, subscriber, body, encoding, segments, \
     cost_micros, status, created_at, client_msg_id, author, routed_by, evidence, error, reclaim, opt_out_intent";

fn message_from_row(r: &Row) -> rusqlite::Result<Message> {
    message_at(r, 0)
}

/// A message whose columns (`MESSAGE_COLUMNS`) start at column `o` of the row.
fn message_at(r: &Row, o: usize) -> rusqlite::Result<Message> {
    Ok(Message {
        id: r.get(o + 0)?,
        conversation: r.get(o + 1)?,
        tenant: r.get(o + 2)?,
        direction: if r.get_ref(o + 3)?.as_str()? == "in" {
            Direction::In
        } else {
            Direction::Out
        },
        code: r.get(o + 4)?,
        subscriber: r.get(o + 5)?,
        body: r.get(o + 6)?,
        encoding: if r.get_ref(o + 7)?.as_str()? == "ucs2" {
            Encoding::Ucs2
        } else {
            Encoding::Gsm7
        },
        segments: r.get(o + 8)?,
        cost_micros: r.get(o + 9)?,
        status: parse_enum(r.get_ref(o + 10)?.as_str()?)?,
        created_at: r.get(o + 11)?,
        client_msg_id: r.get(o + 12)?,
        author: r.get(o + 13)?,
        routed_by: match r.get_ref(o + 14)?.as_str_or_null()? {
            Some(s) => Some(parse_enum::<RoutedBy>(s)?),
            None => None,
        },
        evidence: r.get(o + 15)?,
        error: r.get(o + 16)?,
        reclaim: r.get::<_, i64>(o + 17)? != 0,
        opt_out_intent: r.get::<_, i64>(o + 18)? != 0,
    })
}

/// The conversation's columns (prefixed `c.`), then its last message's (`m.`, from column 18),
/// for `FROM conversations c LEFT JOIN messages m ON m.id = c.last_message_id`.
fn conversation_select() -> &'static str {
    static SELECT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SELECT.get_or_init(|| {
        let c = "c.id, c.tenant, c.subscriber, c.subscriber_name, c.code, c.code_kind, c.country, c.status, \
                 c.snoozed_until, c.assignee, c.unread, c.last_message_id, c.last_activity, c.attribution_state, \
                 c.attribution_since, c.consent, c.opt_out_intent, c.last_inbound_ms";
        let m = MESSAGE_COLUMNS.split(", ").map(|col| format!("m.{col}")).collect::<Vec<_>>().join(", ");
        format!("SELECT {c}, {m} FROM conversations c LEFT JOIN messages m ON m.id = c.last_message_id")
    })
}

fn conversation_from_row(r: &Row) -> rusqlite::Result<(Conversation, ConversationExtra)> {
    let last_message = match r.get_ref(18)?.as_str_or_null()? {
        Some(_) => Some(message_at(r, 18)?),
        None => None,
    };
    Ok((
        Conversation {
            id: r.get(0)?,
            tenant: r.get(1)?,
            subscriber: r.get(2)?,
            subscriber_name: r.get(3)?,
            code: r.get(4)?,
            code_kind: parse_enum::<CodeKind>(r.get_ref(5)?.as_str()?)?,
            country: r.get(6)?,
            status: parse_enum::<ConversationStatus>(r.get_ref(7)?.as_str()?)?,
            snoozed_until: r.get(8)?,
            assignee: r.get(9)?,
            unread: r.get(10)?,
            last_message,
            last_activity: r.get(12)?,
            attribution: Attribution {
                state: parse_enum::<AttributionState>(r.get_ref(13)?.as_str()?)?,
                since: r.get(14)?,
            },
            consent: parse_enum::<ConsentState>(r.get_ref(15)?.as_str()?)?,
            opt_out_intent: r.get::<_, i64>(16)? != 0,
        },
        ConversationExtra {
            last_inbound_ms: r.get(17)?,
        },
    ))
}

fn role_from(s: &str) -> rusqlite::Result<Role> {
    parse_enum(s)
}

fn agent_from_row(r: &Row) -> rusqlite::Result<AgentRow> {
    let tenants: String = r.get(3)?;
    let hash: Vec<u8> = r.get(4)?;
    let mut token_hash = [0u8; 32];
    if hash.len() == 32 {
        token_hash.copy_from_slice(&hash);
    }
    Ok(AgentRow {
        id: r.get(0)?,
        name: r.get(1)?,
        role: role_from(r.get_ref(2)?.as_str()?)?,
        tenants: serde_json::from_str(&tenants).unwrap_or_default(),
        token_hash,
    })
}

fn write_one(tx: &rusqlite::Transaction, w: &Write) -> rusqlite::Result<()> {
    match w {
        Write::Subscriber { e164, country } => {
            tx.prepare_cached("INSERT OR IGNORE INTO subscribers (e164, country) VALUES (?1, ?2)")?
                .execute(params![e164, country])?;
        }
        Write::Conversation(c, extra) => {
            let last = c.last_message.as_ref().map(|m| m.id.as_str());
            // An upsert, not INSERT OR REPLACE: the row is updated in place and only the indexes
            // whose keys change are touched.
            tx.prepare_cached(
                "INSERT INTO conversations (id, tenant, subscriber, subscriber_name, code, code_kind, country, \
                 status, snoozed_until, assignee, unread, last_message_id, last_activity, attribution_state, attribution_since, \
                 consent, opt_out_intent, last_inbound_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) \
                 ON CONFLICT (id) DO UPDATE SET subscriber_name = excluded.subscriber_name, code = excluded.code, \
                 code_kind = excluded.code_kind, country = excluded.country, status = excluded.status, \
                 snoozed_until = excluded.snoozed_until, assignee = excluded.assignee, unread = excluded.unread, \
                 last_message_id = excluded.last_message_id, last_activity = excluded.last_activity, \
                 attribution_state = excluded.attribution_state, attribution_since = excluded.attribution_since, \
                 consent = excluded.consent, opt_out_intent = excluded.opt_out_intent, \
                 last_inbound_ms = excluded.last_inbound_ms",
            )?
            .execute(params![
                c.id,
                c.tenant,
                c.subscriber,
                c.subscriber_name,
                c.code,
                enum_str(&c.code_kind),
                c.country,
                c.status.as_str(),
                c.snoozed_until,
                c.assignee,
                c.unread,
                last,
                c.last_activity,
                enum_str(&c.attribution.state),
                c.attribution.since,
                enum_str(&c.consent),
                c.opt_out_intent as i64,
                extra.last_inbound_ms,
            ])?;
        }
        Write::Message(m, extra) => {
            tx.prepare_cached(
                "INSERT INTO messages (id, conversation, tenant, direction, code, subscriber, body, encoding, segments, \
                 cost_micros, status, created_at, client_msg_id, author, routed_by, evidence, error, reclaim, opt_out_intent, \
                 carrier, carrier_id, unattributed) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
            )?
            .execute(params![
                m.id,
                m.conversation,
                m.tenant,
                if m.direction == Direction::In { "in" } else { "out" },
                m.code,
                m.subscriber,
                m.body,
                enum_str(&m.encoding),
                m.segments,
                m.cost_micros,
                status_str(m.status),
                m.created_at,
                m.client_msg_id,
                m.author,
                m.routed_by.as_ref().map(enum_str),
                m.evidence,
                m.error,
                m.reclaim as i64,
                m.opt_out_intent as i64,
                extra.carrier,
                extra.carrier_id,
                extra.unattributed_reason,
            ])?;
        }
        Write::MessageStatus {
            id,
            status,
            carrier_id,
            error,
        } => {
            tx.prepare_cached(
                "UPDATE messages SET status = ?2, carrier_id = COALESCE(?3, carrier_id), error = COALESCE(?4, error) WHERE id = ?1",
            )?
            .execute(params![id, status_str(*status), carrier_id, error])?;
        }
        Write::MessageCarrier {
            id,
            carrier,
            carrier_id,
        } => {
            tx.prepare_cached("UPDATE messages SET carrier = ?2, carrier_id = ?3 WHERE id = ?1")?
                .execute(params![id, carrier, carrier_id])?;
        }
        Write::MessageAssigned {
            id,
            tenant,
            conversation,
        } => {
            tx.prepare_cached("UPDATE messages SET tenant = ?2, conversation = ?3, routed_by = 'ops' WHERE id = ?1")?
                .execute(params![id, tenant, conversation])?;
        }
        Write::Attribution {
            code,
            subscriber,
            tenant,
            since,
            message,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO attribution (code, subscriber, tenant, since, message) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![code, subscriber, tenant, since, message])?;
        }
        Write::Idempotency {
            tenant,
            key,
            fingerprint,
            message,
            at_ms,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO idempotency (tenant, key, fingerprint, message, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![tenant, key, fingerprint, message, at_ms])?;
        }
        Write::Consent {
            tenant,
            subscriber,
            state,
            at,
            message,
            source,
        } => {
            let state = enum_str(state);
            tx.prepare_cached(
                "INSERT OR REPLACE INTO consent (tenant, subscriber, state, updated_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![tenant, subscriber, state, at])?;
            tx.prepare_cached(
                "INSERT INTO consent_history (tenant, subscriber, state, at, message, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![tenant, subscriber, state, at, message, source])?;
        }
        Write::CodeBlock {
            code,
            subscriber,
            at,
            message,
            blocked: true,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO code_blocks (code, subscriber, at, message) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![code, subscriber, at, message])?;
        }
        Write::CodeBlock {
            code,
            subscriber,
            blocked: false,
            ..
        } => {
            tx.prepare_cached("DELETE FROM code_blocks WHERE code = ?1 AND subscriber = ?2")?
                .execute(params![code, subscriber])?;
        }
        Write::Outbox {
            message,
            state: Some(state),
        } => {
            tx.prepare_cached("INSERT OR REPLACE INTO outbox (message, state) VALUES (?1, ?2)")?
                .execute(params![message, state])?;
        }
        Write::Outbox {
            message,
            state: None,
        } => {
            tx.prepare_cached("DELETE FROM outbox WHERE message = ?1")?
                .execute(params![message])?;
        }
        Write::Spend {
            tenant,
            month,
            spent_micros,
            notified,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO spend (tenant, month, spent_micros, notified) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![tenant, month, spent_micros, notified])?;
        }
        Write::Event(e) => {
            tx.prepare_cached("INSERT INTO events (stream, seq, epoch, kind, ts, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
                .execute(params![e.stream, e.seq as i64, e.epoch, e.kind, e.ts, e.data])?;
        }
        Write::StreamHead {
            stream,
            epoch,
            head,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO streams (stream, epoch, head) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![stream, epoch, *head as i64])?;
        }
        Write::Agent(a) => {
            tx.prepare_cached(
                "INSERT INTO agents (id, name, role, tenants, token_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, datetime('now'))",
            )?
            .execute(params![
                a.id,
                a.name,
                a.role.as_str(),
                serde_json::to_string(&a.tenants).unwrap_or_else(|_| "[]".into()),
                a.token_hash.as_slice()
            ])?;
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
        for w in writes {
            write_one(&tx, w)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn load(&mut self, idempotency_since_ms: i64) -> Result<Snapshot, StoreError> {
        let c = &self.conn;
        let mut snap = Snapshot::default();
        let mut st = c.prepare(conversation_select())?;
        snap.conversations = st
            .query_map([], conversation_from_row)?
            .collect::<Result<_, _>>()?;
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
        Ok(snap)
    }

    fn find_inbound(
        &mut self,
        carrier: &str,
        carrier_id: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT id, tenant FROM messages WHERE carrier = ?1 AND carrier_id = ?2 AND direction = 'in'")?
            .query_row(params![carrier, carrier_id], |r| Ok((r.get(0)?, r.get(1)?)))
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
            .conn
            .prepare_cached("SELECT COUNT(*) FROM messages WHERE conversation = ?1 AND direction = 'in' AND id > ?2")?
            .query_row(params![conversation, after], |r| r.get(0))?)
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

/// A small pool of read-only connections.
pub struct SqliteRead {
    pool: Mutex<Vec<Connection>>,
    path: PathBuf,
}

impl SqliteRead {
    pub fn open(path: &Path, connections: usize) -> Result<SqliteRead, StoreError> {
        let mut pool = Vec::new();
        for _ in 0..connections.max(1) {
            pool.push(open(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?);
        }
        Ok(SqliteRead {
            pool: Mutex::new(pool),
            path: path.to_path_buf(),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => open(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?,
        };
        let out = f(&conn);
        self.pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        out
    }
}

impl StoreRead for SqliteRead {
    fn read_events(
        &self,
        stream: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT stream, seq, epoch, kind, ts, data FROM events WHERE stream = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )?;
            let rows = st.query_map(params![stream, after as i64, limit as i64], |r| {
                Ok(StoredEvent {
                    stream: r.get(0)?,
                    seq: r.get::<_, i64>(1)? as u64,
                    epoch: r.get(2)?,
                    kind: r.get(3)?,
                    ts: r.get(4)?,
                    data: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn stream(&self, stream: &str) -> Result<Option<(String, u64)>, StoreError> {
        self.with(|c| {
            Ok(
                c.prepare_cached("SELECT epoch, head FROM streams WHERE stream = ?1")?
                    .query_row([stream], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
                    .optional()?,
            )
        })
    }

    fn first_seq(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        self.with(|c| {
            let v: Option<i64> = c
                .prepare_cached("SELECT MIN(seq) FROM events WHERE stream = ?1")?
                .query_row([stream], |r| r.get(0))?;
            Ok(v.map(|v| v as u64))
        })
    }

    fn conversations(&self, q: &ConversationQuery) -> Result<Vec<Conversation>, StoreError> {
        self.with(|c| {
            let mut sql = format!("{} WHERE c.tenant = ?1", conversation_select());
            let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(q.tenant.clone())];
            if let Some(status) = &q.status {
                args.push(Box::new(status.clone()));
                sql.push_str(&format!(" AND c.status = ?{}", args.len()));
            }
            match q.unread {
                Some(true) => sql.push_str(" AND c.unread > 0"),
                Some(false) => sql.push_str(" AND c.unread = 0"),
                None => {}
            }
            match q.attribution_lost {
                Some(true) => sql.push_str(" AND c.attribution_state = 'lost'"),
                Some(false) => sql.push_str(" AND c.attribution_state <> 'lost'"),
                None => {}
            }
            if let Some(text) = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                args.push(Box::new(format!("%{escaped}%")));
                let n = args.len();
                let digits: String = text.chars().filter(|c| c.is_ascii_digit()).collect();
                let digits_clause = if digits.len() >= 3 {
                    args.push(Box::new(format!("%{digits}%")));
                    format!(" OR c.subscriber LIKE ?{}", args.len())
                } else {
                    String::new()
                };
                sql.push_str(&format!(
                    " AND (c.subscriber LIKE ?{n} ESCAPE '\\' OR c.subscriber_name LIKE ?{n} ESCAPE '\\' \
                     OR c.id IN (SELECT conversation FROM messages WHERE tenant = ?1 AND body LIKE ?{n} ESCAPE '\\'){digits_clause})"
                ));
            }
            if let Some((activity, id)) = &q.after {
                args.push(Box::new(activity.clone()));
                let a = args.len();
                args.push(Box::new(id.clone()));
                let b = args.len();
                sql.push_str(&format!(" AND (c.last_activity < ?{a} OR (c.last_activity = ?{a} AND c.id < ?{b}))"));
            }
            args.push(Box::new(q.limit as i64));
            sql.push_str(&format!(" ORDER BY c.last_activity DESC, c.id DESC LIMIT ?{}", args.len()));
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map(rusqlite::params_from_iter(args.iter().map(|b| b.as_ref())), |r| {
                conversation_from_row(r).map(|(c, _)| c)
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn conversation_tenant(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            Ok(
                c.prepare_cached("SELECT tenant FROM conversations WHERE id = ?1")?
                    .query_row([id], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    fn conversations_by_id(&self, id: &str) -> Result<Option<Conversation>, StoreError> {
        self.with(|c| {
            Ok(
                c.prepare_cached(&format!("{} WHERE c.id = ?1", conversation_select()))?
                    .query_row([id], |r| conversation_from_row(r).map(|(c, _)| c))
                    .optional()?,
            )
        })
    }

    fn code_blocked(&self, code: &str, subscriber: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            Ok(
                c.prepare_cached("SELECT 1 FROM code_blocks WHERE code = ?1 AND subscriber = ?2")?
                    .query_row([code, subscriber], |_| Ok(()))
                    .optional()?
                    .is_some(),
            )
        })
    }

    fn history(
        &self,
        conversation: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation = ?1 AND (?2 IS NULL OR id < ?2) \
                 ORDER BY id DESC LIMIT ?3"
            ))?;
            let mut items: Vec<Message> = st
                .query_map(params![conversation, before, limit as i64], message_from_row)?
                .collect::<Result<_, _>>()?;
            items.reverse();
            Ok(items)
        })
    }

    fn unattributed(&self, limit: usize) -> Result<Vec<(Message, String)>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS}, unattributed FROM messages WHERE unattributed IS NOT NULL AND tenant IS NULL \
                 ORDER BY id DESC LIMIT ?1"
            ))?;
            let rows = st.query_map([limit as i64], |r| Ok((message_from_row(r)?, r.get(19)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn agent_by_token_hash(&self, hash: &[u8; 32]) -> Result<Option<AgentRow>, StoreError> {
        self.with(|c| {
            Ok(c.prepare_cached(
                "SELECT id, name, role, tenants, token_hash FROM agents WHERE token_hash = ?1 AND revoked = 0",
            )?
            .query_row([hash.as_slice()], agent_from_row)
            .optional()?)
        })
    }

    fn consent_history(
        &self,
        tenant: &str,
        subscriber: &str,
    ) -> Result<Vec<ConsentEntry>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT state, at, message, source FROM consent_history WHERE tenant = ?1 AND subscriber = ?2 ORDER BY id",
            )?;
            let rows = st.query_map(params![tenant, subscriber], |r| {
                Ok(ConsentEntry {
                    state: parse_enum(r.get_ref(0)?.as_str()?)?,
                    at: r.get(1)?,
                    message: r.get(2)?,
                    source: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}
