//! The conversation summary, written behind.
//!
//! A conversation's summary (unread count, last message, last activity, …) changes with every
//! message. Rewriting its row and its place in the activity index on every message cost two
//! random pages of WAL per message, the largest share of the router's commit. Instead, every
//! change of a known conversation is appended to `conversation_journal` in the transaction that
//! makes it (an append: a fraction of a page), and the conversation is marked dirty; the rows in
//! `conversations` follow by a **sweep**: each commit copies the next few dirty conversations
//! in id order, as many as it takes to get round all of them in about [`SWEEP_PERIOD_MS`], so a
//! page of `conversations` is written about once per sweep whatever the traffic.
//!
//! When a sweep reaches the end, every journal entry made before it began is covered (each
//! conversation dirty at its start was copied, with its latest state, when the sweep passed
//! it) and is trimmed. Loading the store replays whatever is left in the journal (the newest
//! entry of each conversation), so a crash loses nothing a commit held.
//!
//! Readers of `conversations` ask the router to copy what they are about to read first
//! ([`Command::FlushSummaries`](super::Command::FlushSummaries)); new conversations are
//! written through at once.

use std::collections::BTreeSet;
use std::ops::Bound;

use super::{Batch, Router};
use crate::engine::state::ConvState;
use crate::engine::store::Write;

/// About how long one sweep over the dirty conversations takes.
pub const SWEEP_PERIOD_MS: i64 = 2_000;

/// Which dirty conversations a reader needs copied first.
#[derive(Debug, Clone)]
pub enum FlushScope {
    Tenant(String),
    Conversation(String),
}

pub(crate) struct Summaries {
    /// Conversations whose row in `conversations` is behind the router's state.
    dirty: BTreeSet<String>,
    /// The last id the current sweep copied (None: the sweep starts from the first id).
    cursor: Option<String>,
    /// The last journal entry's number.
    seq: u64,
    /// The first journal entry made after the current sweep began.
    sweep_from: u64,
    /// Journal entries below this one are trimmed.
    trimmed: u64,
    /// When the sweep last ran (the router's clock, ms).
    last_ms: Option<i64>,
}

impl Default for Summaries {
    fn default() -> Summaries {
        Summaries {
            dirty: BTreeSet::new(),
            cursor: None,
            seq: 0,
            sweep_from: 1,
            trimmed: 1,
            last_ms: None,
        }
    }
}

impl Summaries {
    /// Journal entries not trimmed yet.
    pub fn journalled(&self) -> u64 {
        (self.seq + 1).saturating_sub(self.trimmed)
    }
}

impl Router {
    /// Journals a change of a known conversation, and marks it dirty.
    pub(super) fn journal_conversation(&mut self, cs: &ConvState, batch: &mut Batch) {
        let s = &mut self.summaries;
        s.seq += 1;
        batch.writes.push(Write::ConversationJournal(
            s.seq,
            Box::new(cs.conv.clone()),
            cs.extra,
        ));
        if !s.dirty.contains(&cs.conv.id) {
            s.dirty.insert(cs.conv.id.clone());
        }
    }

    /// Copies every dirty conversation and trims the journal (at shutdown).
    pub(super) fn flush_all(&mut self, batch: &mut Batch) {
        let ids: Vec<String> = std::mem::take(&mut self.summaries.dirty)
            .into_iter()
            .collect();
        for id in ids {
            self.copy_summary(id, batch);
        }
        self.finish_sweep(batch);
    }

    /// Copies the dirty conversations a reader is about to read.
    pub(super) fn flush_scope(&mut self, scope: &FlushScope, batch: &mut Batch) {
        let ids: Vec<String> = match scope {
            FlushScope::Conversation(id) => {
                self.summaries.dirty.get(id).cloned().into_iter().collect()
            }
            FlushScope::Tenant(tenant) => self
                .summaries
                .dirty
                .iter()
                .filter(|id| {
                    self.state
                        .conversations
                        .get(id.as_str())
                        .is_some_and(|cs| &cs.conv.tenant == tenant)
                })
                .cloned()
                .collect(),
        };
        for id in ids {
            self.copy_summary(id, batch);
        }
    }

    /// The sweep's share of this commit (see the module's documentation).
    pub(super) fn sweep(&mut self, batch: &mut Batch) {
        let now = self.now_ms;
        let elapsed = now - self.summaries.last_ms.unwrap_or(now);
        self.summaries.last_ms = Some(now);
        let dirty = self.summaries.dirty.len();
        if dirty == 0 {
            // Everything journalled is covered: trim it (once, after the traffic stops).
            if self.summaries.journalled() > 0 {
                self.finish_sweep(batch);
            }
            return;
        }
        let share = (dirty as f64 * elapsed.max(0) as f64 / SWEEP_PERIOD_MS as f64).ceil();
        let quota = (share as usize).clamp(1, dirty);
        let next: Vec<String> = match &self.summaries.cursor {
            Some(after) => self
                .summaries
                .dirty
                .range::<str, _>((Bound::Excluded(after.as_str()), Bound::Unbounded))
                .take(quota)
                .cloned()
                .collect(),
            None => self.summaries.dirty.iter().take(quota).cloned().collect(),
        };
        let finished = next.len() < quota;
        if let Some(last) = next.last() {
            self.summaries.cursor = Some(last.clone());
        }
        for id in next {
            self.copy_summary(id, batch);
        }
        if finished {
            self.finish_sweep(batch);
        }
    }

    /// The sweep reached the end: trim what it covered and start the next one.
    fn finish_sweep(&mut self, batch: &mut Batch) {
        let s = &mut self.summaries;
        let below = if s.dirty.is_empty() {
            s.seq + 1
        } else {
            s.sweep_from
        };
        if below > s.trimmed {
            batch.writes.push(Write::JournalTrim { below });
            s.trimmed = below;
        }
        s.sweep_from = s.seq + 1;
        s.cursor = None;
    }

    fn copy_summary(&mut self, id: String, batch: &mut Batch) {
        self.summaries.dirty.remove(&id);
        if let Some(cs) = self.state.conversations.get(&id) {
            batch
                .writes
                .push(Write::Conversation(Box::new(cs.conv.clone()), cs.extra));
        }
    }
}
