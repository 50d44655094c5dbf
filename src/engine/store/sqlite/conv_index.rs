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
//! the round began (every entry pending then has been written since). What lies after the mark
//! is at most about two rounds of traffic. A history page reads, in one read transaction, the
//! mark, the conversation's messages after it — from the writer's memory ([`Recent`]), each
//! checked against the snapshot, or else from the narrow index `messages_listed_by_id` (ids
//! are UUID v7: time order) — and its entries up to the mark from the table: no entry missed
//! or counted twice.
//!
//! At start the entries after the mark are read back from `messages`: a crash loses nothing.
//! An entry at or before the bound a round could still move the mark to (an id from a clock set
//! back, a message assigned to a conversation later) is written at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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
    /// The entries after the mark, for this writer's readers.
    recent: Arc<Mutex<Recent>>,
    /// The mark this commit moves from, if it moves it: the readers' floor once committed.
    moved_from: Option<String>,
}

/// The writer's newest entries, shared with its readers, so that a history page does not
/// read every message after the mark (2.9 ms at the median at 10 000 msg/s; from memory a few
/// point lookups). It holds every entry with an id after `floor`, which trails the mark by one
/// round: a reader whose snapshot saw the previous mark still finds everything it needs.
/// Entries are added before their commit and a moved message stays listed under its old
/// conversation until the floor passes it, so the memory may hold more than a reader's
/// snapshot: each id is checked against the snapshot. A reader whose mark is older than the
/// floor (its snapshot is two rounds old) reads the narrow index instead.
#[derive(Default)]
pub(super) struct Recent {
    /// Every entry with an id after this one is listed (None: nothing is known).
    floor: Option<String>,
    by_conversation: HashMap<String, BTreeSet<String>>,
}

impl Recent {
    /// The ids listed under `conversation` after `mark` and before `before`, newest first;
    /// None if the memory may lack some of them.
    pub(super) fn after(
        &self,
        conversation: &str,
        mark: &str,
        before: Option<&str>,
    ) -> Option<Vec<String>> {
        let floor = self.floor.as_deref()?;
        if mark < floor {
            return None;
        }
        let Some(ids) = self.by_conversation.get(conversation) else {
            return Some(Vec::new());
        };
        if before.is_some_and(|b| b <= mark) {
            return Some(Vec::new()); // (a range from above its end would panic)
        }
        let upper = before.map_or(Bound::Unbounded, Bound::Excluded);
        Some(
            ids.range::<str, _>((Bound::Excluded(mark), upper))
                .rev()
                .cloned()
                .collect(),
        )
    }

    fn list(&mut self, conversation: &str, id: &str) {
        if self.floor.as_deref().is_some_and(|f| id > f) {
            self.by_conversation
                .entry(conversation.to_string())
                .or_default()
                .insert(id.to_string());
        }
    }

    /// Forgets what no reader can need any more.
    fn raise_floor(&mut self, floor: String) {
        self.by_conversation.retain(|_, ids| {
            *ids = ids.split_off(&floor);
            ids.remove(&floor);
            !ids.is_empty()
        });
        self.floor = Some(floor);
    }
}

pub(super) fn lock(recent: &Mutex<Recent>) -> MutexGuard<'_, Recent> {
    recent.lock().unwrap_or_else(PoisonError::into_inner)
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
        let mut recent = Recent {
            floor: Some(mark.clone()),
            ..Recent::default()
        };
        let mut st = conn.prepare(
            "SELECT conversation, id FROM messages WHERE id > ?1 AND conversation IS NOT NULL ORDER BY id",
        )?;
        let mut rows = st.query([&mark])?;
        while let Some(r) = rows.next()? {
            let (conversation, id): (String, String) = (r.get(0)?, r.get(1)?);
            recent.list(&conversation, &id);
            pending.entry(conversation).or_default().push(id);
        }
        let newest: Option<String> =
            conn.query_row("SELECT MAX(id) FROM messages", [], |r| r.get(0))?;
        Ok(ConvIndex {
            mark,
            pending,
            round: None,
            newest: newest.unwrap_or_default(),
            last_step: None,
            recent: Arc::new(Mutex::new(recent)),
            moved_from: None,
        })
    }

    /// Inbound messages of `conversation` with an id after `after`, as the writer sees the
    /// store: the entries up to the mark from the table, the newer ones from memory (exact for
    /// the writer: everything after the mark is listed), each checked in `messages`.
    pub(super) fn unread_after(
        &self,
        conn: &Connection,
        conversation: &str,
        after: &str,
    ) -> rusqlite::Result<u32> {
        let from = after.max(self.mark.as_str());
        let listed = lock(&self.recent).after(conversation, from, None);
        let Some(ids) = listed else {
            // Not expected (the writer's mark is never below the memory's floor); the index
            // gives the same answer, slower.
            return conn
                .prepare_cached(UNREAD_AFTER_SQL)?
                .query_row(params![conversation, after], |r| r.get(0));
        };
        let mut newer = 0;
        let mut st = conn.prepare_cached(
            "SELECT 1 FROM messages WHERE id = ?1 AND conversation = ?2 AND direction = 'in'",
        )?;
        for id in ids {
            if st.exists(params![id, conversation])? {
                newer += 1;
            }
        }
        let listed: u32 = conn
            .prepare_cached(
                "SELECT COUNT(*) FROM conversation_messages c JOIN messages m ON m.id = c.id \
                 WHERE c.conversation = ?1 AND c.id > ?2 AND c.id <= ?3 AND m.direction = 'in'",
            )?
            .query_row(params![conversation, after, self.mark], |r| r.get(0))?;
        Ok(listed + newer)
    }

    /// What the readers share.
    pub(super) fn recent(&self) -> Arc<Mutex<Recent>> {
        self.recent.clone()
    }

    /// After a failed commit: reads everything again, in the memory the readers already share.
    pub(super) fn reload(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let fresh = ConvIndex::load(conn)?;
        let recent = std::mem::take(&mut *lock(&fresh.recent));
        *lock(&self.recent) = recent;
        let shared = self.recent.clone();
        *self = ConvIndex {
            recent: shared,
            ..fresh
        };
        Ok(())
    }

    /// The commit went through: a mark it moved becomes the readers' floor's next value.
    pub(super) fn committed(&mut self) {
        if let Some(from) = self.moved_from.take() {
            lock(&self.recent).raise_floor(from);
        }
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
        lock(&self.recent).list(conversation, id);
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
            self.moved_from = Some(std::mem::replace(&mut self.mark, top));
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

/// The mark, read first in a history page's transaction.
pub(super) const MARK_VALUE_SQL: &str =
    "SELECT value FROM marks WHERE name = 'conversation_messages'";

/// `columns` (a message's, unqualified) as selected from `messages m` joined to entries `c`.
/// `c.id`, not `m.id`, for the id: the planner then sees that the entries' key order is the
/// order asked for, and reads them newest first without sorting.
fn qualified(columns: &str) -> String {
    columns
        .split(", ")
        .map(|c| match c.trim() {
            "id" => "c.id".to_string(),
            c => format!("m.{c}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The messages of conversation `?1` after the mark `?4` (below `?2` with `before`), newest
/// first, at most `?3`: from the narrow index, when the writer's memory cannot say.
pub(super) fn tail_sql(columns: &str, before: bool) -> String {
    let below = if before { " AND c.id < ?2" } else { "" };
    format!(
        "SELECT {} FROM messages c INDEXED BY messages_listed_by_id JOIN messages m ON m.id = c.id \
         WHERE c.id > ?4 AND c.conversation = ?1{below} ORDER BY c.id DESC LIMIT ?3",
        qualified(columns)
    )
}

/// The listed entries of conversation `?1` up to the mark `?4` (below `?2` with `before`),
/// newest first, at most `?3`.
pub(super) fn listed_sql(columns: &str, before: bool) -> String {
    let below = if before { " AND c.id < ?2" } else { "" };
    format!(
        "SELECT {} FROM conversation_messages c JOIN messages m ON m.id = c.id \
         WHERE c.conversation = ?1 AND c.id <= ?4{below} ORDER BY c.id DESC LIMIT ?3",
        qualified(columns)
    )
}

/// Inbound messages of `?1` with an id after `?2`, from SQL alone.
const UNREAD_AFTER_SQL: &str = "SELECT \
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
                &tail_sql(super::super::rows::MESSAGE_COLUMNS, before),
            );
            assert!(
                p.contains("SEARCH c USING COVERING INDEX messages_listed_by_id (id>?"),
                "{p}"
            );
            assert!(!p.contains("TEMP B-TREE") && !p.contains("SCAN"), "{p}");
            let p = plan(
                &conn,
                &listed_sql(super::super::rows::MESSAGE_COLUMNS, before),
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

    fn message(id: &str, conversation: &str) -> crate::engine::store::Write {
        let m = crate::client::testing::inbound(id, conversation, "hi", "2026-11-22T10:00:00.000Z");
        crate::engine::store::Write::Message(Box::new(m), Default::default())
    }

    /// The memory the readers share lists every entry after the mark *before* the last one
    /// moved, not only after the current one: a reader whose snapshot still has the previous
    /// mark must find all it needs there (or be told to read the index). Checked after every
    /// commit of a run in which rounds end often, against the store itself.
    #[test]
    fn the_shared_memory_covers_the_previous_mark() {
        use crate::engine::store::Store;
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::engine::store::SqliteStore::open(dir.path()).unwrap();
        let mut marks: Vec<String> = vec![String::new()];
        let mut moves = 0;
        for n in 0..300u32 {
            let writes: Vec<_> = (0..1 + n % 3)
                .map(|k| message(&format!("{:06}", n * 10 + k), &format!("c{}", (n + k) % 4)))
                .collect();
            store.apply(&writes).unwrap();
            let mark = store.conv_index.mark.clone();
            if marks.last() != Some(&mark) {
                marks.push(mark);
                moves += 1;
            }
            let previous = &marks[marks.len().saturating_sub(2)];
            for c in 0..4 {
                let conversation = format!("c{c}");
                let truth: Vec<String> = store
                    .conn
                    .prepare("SELECT id FROM messages WHERE conversation = ?1 AND id > ?2 ORDER BY id DESC")
                    .unwrap()
                    .query_map(params![conversation, previous], |r| r.get(0))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                let listed = lock(&store.conv_index.recent).after(&conversation, previous, None);
                assert_eq!(listed, Some(truth), "{conversation} after {previous:?}");
            }
        }
        assert!(moves > 50, "the mark moved only {moves} times");
    }
}
