//! The readers' side: a small pool of read-only connections that never block the writer.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::open;
use super::rows::{
    AGENT_ENTRY_COLUMNS, MESSAGE_COLUMNS, agent_entry_from_row, agent_from_row,
    conversation_from_row, conversation_select, message_from_row, parse_enum, unpack_event_data,
};
use crate::engine::store::{
    AgentEntry, AgentRow, ConsentEntry, ConversationQuery, StoreError, StoreRead, StoredEvent,
};
use crate::protocol::{Conversation, Message};

/// A small pool of read-only connections.
pub struct SqliteRead {
    pool: Mutex<Vec<Connection>>,
    path: PathBuf,
    /// The writer's newest entries of `conversation_messages`, when it runs in this process.
    pub(super) recent: Option<std::sync::Arc<Mutex<super::conv_index::Recent>>>,
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
            recent: None,
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
                    data: unpack_event_data(r, 5)?,
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
            // One snapshot for the mark, the messages after it and the entries up to it.
            let tx = c.unchecked_transaction()?;
            let mark: String = tx
                .prepare_cached(super::conv_index::MARK_VALUE_SQL)?
                .query_row([], |r| r.get(0))?;
            let listed = self.recent.as_ref().and_then(|recent| {
                super::conv_index::lock(recent).after(conversation, &mark, before)
            });
            let mut items: Vec<Message> = Vec::new();
            match listed {
                Some(ids) => {
                    // From the writer's memory: each id checked against this snapshot.
                    let mut st = tx.prepare_cached(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1 AND conversation = ?2"
                    ))?;
                    for id in ids {
                        if items.len() >= limit {
                            break;
                        }
                        if let Some(m) = st
                            .query_row(params![id, conversation], message_from_row)
                            .optional()?
                        {
                            items.push(m);
                        }
                    }
                }
                None => {
                    let mut st = tx.prepare_cached(&super::conv_index::tail_sql(
                        MESSAGE_COLUMNS,
                        before.is_some(),
                    ))?;
                    let rows = st.query_map(
                        params![conversation, before, limit as i64, mark],
                        message_from_row,
                    )?;
                    for m in rows {
                        items.push(m?);
                    }
                }
            }
            if items.len() < limit {
                let mut st = tx.prepare_cached(&super::conv_index::listed_sql(
                    MESSAGE_COLUMNS,
                    before.is_some(),
                ))?;
                let rows = st.query_map(
                    params![conversation, before, (limit - items.len()) as i64, mark],
                    message_from_row,
                )?;
                for m in rows {
                    items.push(m?);
                }
            }
            drop(tx);
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

    fn agents(&self) -> Result<Vec<AgentEntry>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {AGENT_ENTRY_COLUMNS} FROM agents ORDER BY created_at, id"
            ))?;
            let rows = st.query_map([], agent_entry_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn revoked_agents(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare_cached("SELECT id FROM agents WHERE revoked <> 0")?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
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
