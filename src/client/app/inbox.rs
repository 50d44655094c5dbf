//! The inbox: the conversations of the current view, kept in a map plus an ordered index.
//!
//! The engine filters and pages the list (`conversations.list`); this store holds the pages
//! loaded so far and keeps them current from events. The index is a sorted `Vec` of
//! (newest activity first, id) keys, so an event moves one row in O(log n + memmove) and the
//! views read rows by position without touching the rest: 100 000 conversations cost nothing
//! to draw. Selection is kept by id, so rows that move under it do not move the cursor.

use std::cmp::Reverse;
use std::collections::HashMap;

use jiff::Timestamp;

use crate::protocol::{AttributionState, Conversation, ConversationFilter, ConversationStatus};

/// The saved views of the inbox, each a server-side filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    All,
    Unread,
    Lost,
    Open,
    Resolved,
}

impl View {
    pub const EVERY: [View; 5] = [
        View::All,
        View::Unread,
        View::Lost,
        View::Open,
        View::Resolved,
    ];

    pub fn label(self) -> &'static str {
        match self {
            View::All => "All",
            View::Unread => "Unread",
            View::Lost => "Attribution lost",
            View::Open => "Open",
            View::Resolved => "Resolved",
        }
    }

    pub fn filter(self, query: Option<&str>) -> ConversationFilter {
        let mut f = ConversationFilter {
            query: query.map(str::to_string),
            ..ConversationFilter::default()
        };
        match self {
            View::All => {}
            View::Unread => f.unread = Some(true),
            View::Lost => f.attribution_lost = Some(true),
            View::Open => f.status = Some(ConversationStatus::Open),
            View::Resolved => f.status = Some(ConversationStatus::Resolved),
        }
        f
    }

    /// Whether a conversation changed by an event still belongs to this view.
    pub fn matches(self, c: &Conversation) -> bool {
        match self {
            View::All => true,
            View::Unread => c.unread > 0,
            View::Lost => c.attribution.state == AttributionState::Lost,
            View::Open => c.status == ConversationStatus::Open,
            View::Resolved => c.status == ConversationStatus::Resolved,
        }
    }
}

/// A local approximation of the engine's `filter.query`: number, name, or last message text.
pub fn query_matches(query: &str, c: &Conversation) -> bool {
    let q = query.trim().to_lowercase();
    if q.is_empty() {
        return true;
    }
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    if digits.len() >= 3 && c.subscriber.contains(&digits) {
        return true;
    }
    let name = c
        .subscriber_name
        .as_deref()
        .unwrap_or_default()
        .to_lowercase();
    let body = c
        .last_message
        .as_ref()
        .map(|m| m.body.to_lowercase())
        .unwrap_or_default();
    name.contains(&q) || body.contains(&q) || c.subscriber.contains(&q)
}

type Key = (Reverse<Timestamp>, String);

fn key_of(c: &Conversation) -> Key {
    let t = c.last_activity.parse().unwrap_or(Timestamp::UNIX_EPOCH);
    (Reverse(t), c.id.clone())
}

struct Entry {
    conv: Conversation,
    key: Key,
    /// The event clock when an event last changed this entry.
    touched: u64,
}

/// Where the first page of the current view stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// Not asked for, or the last ask was lost with the connection.
    Stale,
    Loading,
    Loaded,
}

pub struct Inbox {
    entries: HashMap<String, Entry>,
    order: Vec<Key>,
    selected: Option<String>,
    offset: usize,
    pub view: View,
    pub query: Option<String>,
    pub load: Load,
    /// The cursor of the next page, when there is one.
    pub next: Option<String>,
    pub loading_more: bool,
    /// Bumped by every new request for the first page; older answers are dropped.
    pub generation: u64,
    clock: u64,
}

impl Default for Inbox {
    fn default() -> Self {
        Inbox {
            entries: HashMap::new(),
            order: Vec::new(),
            selected: None,
            offset: 0,
            view: View::All,
            query: None,
            load: Load::Stale,
            next: None,
            loading_more: false,
            generation: 0,
            clock: 0,
        }
    }
}

impl Inbox {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The conversation shown at row `i`.
    pub fn row(&self, i: usize) -> Option<&Conversation> {
        self.order.get(i).map(|k| &self.entries[&k.1].conv)
    }

    pub fn get(&self, id: &str) -> Option<&Conversation> {
        self.entries.get(id).map(|e| &e.conv)
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn selected_id(&self) -> Option<&str> {
        self.selected.as_deref()
    }

    pub fn selected(&self) -> Option<&Conversation> {
        self.selected.as_deref().and_then(|id| self.get(id))
    }

    /// Row of the selection.
    pub fn selected_index(&self) -> Option<usize> {
        let e = self.entries.get(self.selected.as_deref()?)?;
        self.order.binary_search(&e.key).ok()
    }

    /// The event clock, to tag a request for the first page with.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// Starts over for a new view, query or tenant; returns the generation to tag the
    /// request with.
    pub fn restart(&mut self, keep_rows: bool) -> u64 {
        if !keep_rows {
            self.entries.clear();
            self.order.clear();
            self.offset = 0;
        }
        self.next = None;
        self.loading_more = false;
        self.load = Load::Loading;
        self.generation += 1;
        self.generation
    }

    /// Takes a page from `conversations.list`. `first` replaces what is held, except rows an
    /// event changed after the request was sent (`asked_at`, an event clock): those are newer.
    pub fn take_page(
        &mut self,
        items: Vec<Conversation>,
        next: Option<String>,
        first: bool,
        asked_at: u64,
    ) {
        if first {
            let keep: Vec<String> = self
                .entries
                .iter()
                .filter(|(_, e)| e.touched > asked_at)
                .map(|(id, _)| id.clone())
                .collect();
            let mut kept: HashMap<String, Entry> = HashMap::new();
            for id in keep {
                if let Some(e) = self.entries.remove(&id) {
                    kept.insert(id, e);
                }
            }
            self.entries = kept;
            self.order = self.entries.values().map(|e| e.key.clone()).collect();
            self.order.sort();
            self.load = Load::Loaded;
        }
        for c in items {
            if self
                .entries
                .get(&c.id)
                .is_some_and(|e| e.touched > asked_at)
            {
                continue;
            }
            self.put(c, 0);
        }
        self.next = next;
        self.loading_more = false;
        self.fix_selection(None);
    }

    /// Applies a conversation an event or a reply carried: updates it, adds it, or drops it
    /// when it no longer belongs to the view.
    pub fn apply(&mut self, c: Conversation) {
        self.clock += 1;
        let belongs =
            self.view.matches(&c) && self.query.as_deref().is_none_or(|q| query_matches(q, &c));
        if belongs {
            let clock = self.clock;
            self.put(c, clock);
        } else {
            self.remove(&c.id);
        }
    }

    fn put(&mut self, c: Conversation, touched: u64) {
        let key = key_of(&c);
        if let Some(old) = self.entries.get(&c.id)
            && let Ok(i) = self.order.binary_search(&old.key)
        {
            self.order.remove(i);
        }
        let at = self.order.binary_search(&key).unwrap_or_else(|i| i);
        self.order.insert(at, key.clone());
        let touched = touched.max(self.entries.get(&c.id).map_or(0, |e| e.touched));
        self.entries.insert(
            c.id.clone(),
            Entry {
                conv: c,
                key,
                touched,
            },
        );
        if self.selected.is_none() {
            self.fix_selection(None);
        }
    }

    fn remove(&mut self, id: &str) {
        let Some(e) = self.entries.remove(id) else {
            return;
        };
        if let Ok(i) = self.order.binary_search(&e.key) {
            self.order.remove(i);
            if self.selected.as_deref() == Some(id) {
                self.selected = None;
                self.fix_selection(Some(i));
            }
        }
    }

    /// Keeps a valid selection: the current one, else the row at `near`, else the first.
    fn fix_selection(&mut self, near: Option<usize>) {
        if self
            .selected
            .as_deref()
            .is_some_and(|id| self.entries.contains_key(id))
        {
            return;
        }
        let i = near.unwrap_or(0).min(self.order.len().saturating_sub(1));
        self.selected = self.order.get(i).map(|k| k.1.clone());
    }

    /// Moves the selection by `delta` rows (clamped) and keeps it inside a window of `page`
    /// rows.
    pub fn move_by(&mut self, delta: isize, page: usize) {
        if self.order.is_empty() {
            return;
        }
        let cur = self.selected_index().unwrap_or(0) as isize;
        let to = (cur + delta).clamp(0, self.order.len() as isize - 1) as usize;
        self.select_index(to, page);
    }

    pub fn select_index(&mut self, i: usize, page: usize) {
        if let Some(k) = self.order.get(i) {
            self.selected = Some(k.1.clone());
        }
        self.scroll_to_selection(page);
    }

    pub fn select_id(&mut self, id: &str, page: usize) {
        if self.entries.contains_key(id) {
            self.selected = Some(id.to_string());
            self.scroll_to_selection(page);
        }
    }

    /// Adjusts the first shown row so the selection is visible in `page` rows.
    pub fn scroll_to_selection(&mut self, page: usize) {
        let page = page.max(1);
        let Some(i) = self.selected_index() else {
            self.offset = 0;
            return;
        };
        if i < self.offset {
            self.offset = i;
        } else if i >= self.offset + page {
            self.offset = i + 1 - page;
        }
        self.offset = self.offset.min(self.order.len().saturating_sub(1));
    }

    /// The first row to draw in `page` rows: the stored offset, moved just enough to show the
    /// selection (the view calls this; it does not change the store).
    pub fn window_start(&self, page: usize) -> usize {
        let page = page.max(1);
        let mut offset = self.offset.min(self.order.len().saturating_sub(page));
        if let Some(i) = self.selected_index() {
            if i < offset {
                offset = i;
            } else if i >= offset + page {
                offset = i + 1 - page;
            }
        }
        offset
    }

    /// True when the selection is close enough to the end of what is loaded to ask for the
    /// next page.
    pub fn wants_more(&self) -> bool {
        self.next.is_some()
            && !self.loading_more
            && self.load == Load::Loaded
            && self.selected_index().unwrap_or(0) + 50 >= self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::{ConvBuilder, at};

    fn conv(id: &str, minute: u32) -> Conversation {
        ConvBuilder::new(id, "+14155550100")
            .activity(&at(10, minute))
            .build()
    }

    #[test]
    fn rows_are_newest_first_and_move_on_activity() {
        let mut inbox = Inbox::default();
        inbox.take_page(
            vec![conv("a", 1), conv("b", 2), conv("c", 3)],
            None,
            true,
            0,
        );
        let ids: Vec<_> = (0..3).map(|i| inbox.row(i).unwrap().id.clone()).collect();
        assert_eq!(ids, ["c", "b", "a"]);
        inbox.apply(conv("a", 9));
        assert_eq!(inbox.row(0).unwrap().id, "a");
        assert_eq!(inbox.len(), 3);
    }

    #[test]
    fn selection_follows_its_conversation() {
        let mut inbox = Inbox::default();
        inbox.take_page(vec![conv("a", 1), conv("b", 2)], None, true, 0);
        inbox.select_id("a", 10);
        assert_eq!(inbox.selected_index(), Some(1));
        inbox.apply(conv("c", 5));
        assert_eq!(inbox.selected_id(), Some("a"));
        assert_eq!(inbox.selected_index(), Some(2));
    }

    #[test]
    fn a_conversation_leaving_the_view_is_dropped() {
        let mut inbox = Inbox {
            view: View::Open,
            ..Inbox::default()
        };
        inbox.take_page(vec![conv("a", 1), conv("b", 2)], None, true, 0);
        inbox.select_id("b", 10);
        let mut b = conv("b", 3);
        b.status = ConversationStatus::Resolved;
        inbox.apply(b);
        assert_eq!(inbox.len(), 1);
        assert_eq!(inbox.selected_id(), Some("a"));
    }

    #[test]
    fn a_page_does_not_overwrite_newer_event_data() {
        let mut inbox = Inbox::default();
        let asked = inbox.clock();
        let mut fresh = conv("a", 9);
        fresh.unread = 4;
        inbox.apply(fresh);
        inbox.take_page(vec![conv("a", 1), conv("b", 2)], None, true, asked);
        assert_eq!(inbox.get("a").unwrap().unread, 4);
        assert_eq!(inbox.row(0).unwrap().id, "a");
        assert_eq!(inbox.len(), 2);
    }

    #[test]
    fn window_keeps_the_selection_visible() {
        let mut inbox = Inbox::default();
        let items = (0..100)
            .map(|i| conv(&format!("c{i:03}"), i % 60))
            .collect();
        inbox.take_page(items, None, true, 0);
        inbox.move_by(30, 10);
        let start = inbox.window_start(10);
        let sel = inbox.selected_index().unwrap();
        assert!(sel >= start && sel < start + 10);
    }
}
