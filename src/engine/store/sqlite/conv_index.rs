//! Which messages each conversation holds: `conversation_messages`, written behind.
//!
//! A conversation's history is read through entries keyed `(conversation, id)`. Kept as an
//! index of `messages`, that entry landed on a random page for every message: 34 % of the WAL
//! at 10 000 msg/s, and commits twice as long (docs/benchmarks.md, seventh series). So the
//! writer keeps new entries in memory and writes them by a **sweep** in key order, as it does
//! the conversation summary: each commit writes the pending entries of the next few
//! conversations, as many as it takes to get round all of them in about [`ROUND_MS`]. The last
//! page of a busy conversation is then written about once per round, not once per message.
//!
//! The **mark** (`marks.conversation_messages`) is a message id such that every message with an
//! id up to it has its entry in the table. It moves when a round ends, to the newest id when
//! the round began (every entry pending then has been written since). Readers take the entries
//! up to the mark from the table and the messages after it from `messages` itself, whose key is
//! the id (UUID v7: time order), in one statement: one snapshot, no entry missed or counted
//! twice. What lies after the mark is at most about two rounds of traffic.
//!
//! At start the entries after the mark are read back from `messages`: a crash loses nothing.
//! An entry at or before the bound a round could still move the mark to (an id from a clock set
//! back, a message assigned to a conversation later) is written at once.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, Transaction, params};

/// About how long one round over the conversations with pending entries takes.
pub(super) const ROUND_MS: u64 = 1_000;

/// The mark's row in `marks`.
const MARK: &str = "conversation_messages";

pub(super) struct ConvIndex {
    /// Every message with an id up to this one has its entry in the table ("": none yet).
    mark: String,
    /// Entries not written yet: conversation → message ids.
    pending: BTreeMap<String, Vec<String>>,
    round: Option<Round>,
    /// The newest message id the writer has stored.
    newest: String,
    /// When the sweep last ran.
    last_step: Option<Instant>,
}

struct Round {
    /// The newest message id when the round began: the mark once it ends.
    top: String,
    /// The last conversation the round wrote.
    cursor: Option<String>,
    /// Conversations pending when it began (sets its pace).
    size: usize,
}

impl ConvIndex {
    /// The mark from the store, and the entries after it from `messages`.
    pub(super) fn load(conn: &Connection) -> rusqlite::Result<ConvIndex> {
        let mark: String = conn
            .query_row("SELECT value FROM marks WHERE name = ?1", [MARK], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or_default();
        let mut pending: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut st = conn.prepare(
            "SELECT conversation, id FROM messages WHERE id > ?1 AND conversation IS NOT NULL ORDER BY id",
        )?;
        let mut rows = st.query([&mark])?;
        while let Some(r) = rows.next()? {
            pending.entry(r.get(0)?).or_default().push(r.get(1)?);
        }
        let newest: Option<String> =
            conn.query_row("SELECT MAX(id) FROM messages", [], |r| r.get(0))?;
        Ok(ConvIndex {
            mark,
            pending,
            round: None,
            newest: newest.unwrap_or_default(),
            last_step: None,
        })
    }

    /// Ids up to this one may be covered by the mark before a later round writes them: their
    /// entries are written at once.
    fn write_through_up_to(&self) -> &str {
        self.round.as_ref().map_or(&self.mark, |r| &r.top)
    }

    /// A message was stored in `conversation`.
    pub(super) fn added(
        &mut self,
        tx: &Transaction,
        conversation: &str,
        id: &str,
    ) -> rusqlite::Result<()> {
        if id > self.newest.as_str() {
            self.newest = id.to_string();
        }
        if id <= self.write_through_up_to() {
            insert(tx, conversation, id)?;
        } else {
            self.pending
                .entry(conversation.to_string())
                .or_default()
                .push(id.to_string());
        }
        Ok(())
    }

    /// Message `id` is about to move to `conversation` (it was unattributed, or in another).
    pub(super) fn moving(
        &mut self,
        tx: &Transaction,
        id: &str,
        conversation: &str,
    ) -> rusqlite::Result<()> {
        let old: Option<Option<String>> = tx
            .prepare_cached("SELECT conversation FROM messages WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        let Some(old) = old else {
            return Ok(()); // no such message: the update changes nothing
        };
        if let Some(old) = old {
            tx.prepare_cached(
                "DELETE FROM conversation_messages WHERE conversation = ?1 AND id = ?2",
            )?
            .execute(params![old, id])?;
            if let Some(ids) = self.pending.get_mut(&old) {
                ids.retain(|p| p != id);
                if ids.is_empty() {
                    self.pending.remove(&old);
                }
            }
        }
        self.added(tx, conversation, id)
    }

    /// Writes the next conversations' pending entries; ends the round (moves the mark) when
    /// it has been round all of them.
    pub(super) fn step(&mut self, tx: &Transaction) -> rusqlite::Result<()> {
        let now = Instant::now();
        let since = self.last_step.map_or(Duration::ZERO, |t| now - t);
        self.last_step = Some(now);
        if self.round.is_none() {
            if self.pending.is_empty() {
                return Ok(());
            }
            self.round = Some(Round {
                top: self.newest.clone(),
                cursor: None,
                size: self.pending.len(),
            });
        }
        let round = self.round.as_mut().expect("a round is in progress");
        let share = round.size as u128 * since.as_micros() / (ROUND_MS as u128 * 1_000);
        let budget = (share as usize).max(1);
        let from = match &round.cursor {
            Some(c) => Bound::Excluded(c.clone()),
            None => Bound::Unbounded,
        };
        let next: Vec<String> = self
            .pending
            .range((from, Bound::Unbounded))
            .map(|(c, _)| c.clone())
            .take(budget.saturating_add(1))
            .collect();
        let ends = next.len() <= budget;
        for conversation in next.into_iter().take(budget) {
            if let Some(ids) = self.pending.remove(&conversation) {
                for id in &ids {
                    insert(tx, &conversation, id)?;
                }
            }
            round.cursor = Some(conversation);
        }
        if ends {
            let top = self.round.take().expect("a round is in progress").top;
            tx.prepare_cached(
                "INSERT INTO marks (name, value) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![MARK, top])?;
            self.mark = top;
        }
        Ok(())
    }
}

fn insert(tx: &Transaction, conversation: &str, id: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO conversation_messages (conversation, id) VALUES (?1, ?2)",
    )?
    .execute(params![conversation, id])?;
    Ok(())
}

/// The mark, inside a statement (one snapshot with the rest of it).
const MARK_SQL: &str = "(SELECT value FROM marks WHERE name = 'conversation_messages')";

/// A page of a conversation's history, newest first: `?1` conversation, `?3` limit, and with
/// `before`, `?2` the id to stay below. `columns` are the message's columns, unqualified.
pub(super) fn history_sql(columns: &str, before: bool) -> String {
    // `c.id`, not `m.id`, for the id: the planner then sees that the entries' key order is
    // the order asked for, and merges the two parts without sorting either.
    let qualified = columns
        .split(", ")
        .map(|c| match c.trim() {
            "id" => "c.id".to_string(),
            c => format!("m.{c}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let below_c = if before { " AND c.id < ?2" } else { "" };
    format!(
        "SELECT {qualified} FROM messages c INDEXED BY messages_listed_by_id JOIN messages m ON m.id = c.id \
         WHERE c.id > {MARK_SQL} AND c.conversation = ?1{below_c} \
         UNION ALL \
         SELECT {qualified} FROM conversation_messages c JOIN messages m ON m.id = c.id \
         WHERE c.conversation = ?1 AND c.id <= {MARK_SQL}{below_c} \
         ORDER BY 1 DESC LIMIT ?3"
    )
}

/// Inbound messages of `?1` with an id after `?2`.
pub(super) const UNREAD_AFTER_SQL: &str = "SELECT \
     (SELECT COUNT(*) FROM messages c INDEXED BY messages_listed_by_id JOIN messages m ON m.id = c.id \
       WHERE c.id > MAX(?2, (SELECT value FROM marks WHERE name = 'conversation_messages')) \
       AND c.conversation = ?1 AND m.direction = 'in') \
   + (SELECT COUNT(*) FROM conversation_messages c JOIN messages m ON m.id = c.id \
       WHERE c.conversation = ?1 AND c.id > ?2 AND c.id <= (SELECT value FROM marks WHERE name = 'conversation_messages') \
       AND m.direction = 'in')";

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let mut rows = st.raw_query();
        let mut out = Vec::new();
        while let Some(r) = rows.next().unwrap() {
            out.push(r.get::<_, String>(3).unwrap());
        }
        out.join(" | ")
    }

    /// Both parts of a history page are read in key order and merged, newest first: no
    /// sort, no scan (a conversation's page costs its own entries, whatever the store holds).
    #[test]
    fn history_and_unread_read_ranges_without_sorting() {
        let dir = tempfile::tempdir().unwrap();
        drop(crate::engine::store::SqliteStore::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(super::super::DB_FILE)).unwrap();
        for before in [false, true] {
            let p = plan(
                &conn,
                &history_sql(super::super::rows::MESSAGE_COLUMNS, before),
            );
            assert!(p.contains("MERGE (UNION ALL)"), "{p}");
            assert!(
                p.contains("SEARCH c USING COVERING INDEX messages_listed_by_id (id>?"),
                "{p}"
            );
            assert!(
                p.contains("SEARCH c USING PRIMARY KEY (conversation=? AND id<?)"),
                "{p}"
            );
            assert!(!p.contains("TEMP B-TREE") && !p.contains("SCAN"), "{p}");
        }
        let p = plan(&conn, UNREAD_AFTER_SQL);
        assert!(
            p.contains("SEARCH c USING COVERING INDEX messages_listed_by_id (id>?)"),
            "{p}"
        );
        assert!(
            p.contains("SEARCH c USING PRIMARY KEY (conversation=? AND id>? AND id<?)"),
            "{p}"
        );
        assert!(
            !p.contains("SCAN messages") && !p.contains("SCAN c "),
            "{p}"
        );
    }
}
