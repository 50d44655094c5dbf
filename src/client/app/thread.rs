//! The open conversation: its messages and system lines in time order, paging back through
//! history, and where the agent has scrolled to.
//!
//! Items are a sorted `VecDeque` keyed by (time, id), with a set of ids to drop duplicates: a
//! message may arrive by event, by the reply to a send, and again by a history page, and is
//! shown once. A deque because history arrives newest first: each older page goes in at the
//! front in time proportional to the page, not to the thread (paging back through a
//! million-message thread is linear, not quadratic). Outbound status only moves forward. The scroll position is anchored to an
//! item's key, not an index, so pages prepended above it and messages appended below it do
//! not move what the agent is reading.

use std::collections::{HashSet, VecDeque};

use jiff::Timestamp;

use crate::protocol::{Conversation, Message};

/// How a system line should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Info,
    Warn,
}

/// A line the thread shows that is not a message: attribution shifts, consent and status
/// changes.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemLine {
    pub id: String,
    pub at: String,
    pub text: String,
    pub tone: Tone,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// Both boxed: an item is two words, so moving items around is cheap.
    Message(Box<Message>),
    System(Box<SystemLine>),
}

pub type ItemKey = (Timestamp, String);

impl Item {
    pub fn id(&self) -> &str {
        match self {
            Item::Message(m) => &m.id,
            Item::System(s) => &s.id,
        }
    }

    pub fn at(&self) -> &str {
        match self {
            Item::Message(m) => &m.created_at,
            Item::System(s) => &s.at,
        }
    }

    pub fn key(&self) -> ItemKey {
        let (t, id) = self.key_parts();
        (t, id.to_string())
    }

    /// The key without copying the id.
    pub fn key_parts(&self) -> (Timestamp, &str) {
        let t = self.at().parse().unwrap_or(Timestamp::UNIX_EPOCH);
        (t, self.id())
    }
}

/// How far back the history is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Older {
    /// The first page has not arrived (or was lost with the connection).
    NotLoaded,
    Loading,
    /// More history exists before the oldest item: the `before` of the next page.
    More(String),
    Complete,
}

/// Where the view is: following the newest line, or anchored with an item at the bottom and
/// some of its lines hidden below the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scroll {
    Bottom,
    Anchored { key: ItemKey, hidden_below: usize },
}

pub struct Thread {
    pub conversation: Conversation,
    items: VecDeque<Item>,
    ids: HashSet<String>,
    pub older: Older,
    pub first_load_asked: bool,
    pub scroll: Scroll,
}

impl Thread {
    pub fn new(conversation: Conversation) -> Self {
        Thread {
            conversation,
            items: VecDeque::new(),
            ids: HashSet::new(),
            older: Older::NotLoaded,
            first_load_asked: false,
            scroll: Scroll::Bottom,
        }
    }

    pub fn id(&self) -> &str {
        &self.conversation.id
    }

    pub fn items(&self) -> &VecDeque<Item> {
        &self.items
    }

    pub fn last_message(&self) -> Option<&Message> {
        self.items.iter().rev().find_map(|i| match i {
            Item::Message(m) => Some(&**m),
            Item::System(_) => None,
        })
    }

    pub fn oldest_message_id(&self) -> Option<&str> {
        self.items.iter().find_map(|i| match i {
            Item::Message(m) => Some(m.id.as_str()),
            Item::System(_) => None,
        })
    }

    /// Adds or updates a message; returns true when something visible changed.
    pub fn upsert(&mut self, m: Message) -> bool {
        if self.ids.contains(&m.id) {
            let Some(i) = self.position(&m) else {
                return false;
            };
            let Item::Message(old) = &self.items[i] else {
                return false;
            };
            // Status moves forward only: a late "dispatched" never hides "delivered".
            if m.status.rank() < old.status.rank() || **old == m {
                return false;
            }
            self.items[i] = Item::Message(Box::new(m));
            return true;
        }
        self.insert(Item::Message(Box::new(m)));
        true
    }

    /// Where a message already held is: found by its key (a message's time does not change),
    /// else by a scan from the newest end.
    fn position(&self, m: &Message) -> Option<usize> {
        let t: Timestamp = m.created_at.parse().unwrap_or(Timestamp::UNIX_EPOCH);
        let key = (t, m.id.as_str());
        let at = self.items.partition_point(|it| it.key_parts() < key);
        if self.items.get(at).is_some_and(|it| it.id() == m.id) {
            return Some(at);
        }
        self.items.iter().rposition(|it| it.id() == m.id)
    }

    pub fn push_system(&mut self, line: SystemLine) {
        if !self.ids.contains(&line.id) {
            self.insert(Item::System(Box::new(line)));
        }
    }

    fn insert(&mut self, item: Item) {
        self.ids.insert(item.id().to_string());
        let key = item.key_parts();
        let at = if self.items.back().is_none_or(|last| last.key_parts() <= key) {
            self.items.len()
        } else {
            self.items.partition_point(|it| it.key_parts() <= key)
        };
        self.items.insert(at, item);
    }

    /// Takes a history page (newest last). `latest` is the first page: it replaces the
    /// messages held (system lines stay), since a reset may have changed history.
    pub fn take_page(&mut self, items: Vec<Message>, next: Option<String>, latest: bool) {
        if latest {
            self.items.retain(|i| matches!(i, Item::System(_)));
            self.ids = self.items.iter().map(|i| i.id().to_string()).collect();
        }
        let mut fresh: Vec<Item> = Vec::with_capacity(items.len());
        for m in items {
            if self.ids.contains(&m.id) {
                self.upsert(m);
            } else {
                self.ids.insert(m.id.clone());
                fresh.push(Item::Message(Box::new(m)));
            }
        }
        if !fresh.is_empty() {
            fresh.sort_by_cached_key(Item::key);
            let first = self.items.front().map(Item::key);
            let last = self.items.back().map(Item::key);
            let (fresh_first, fresh_last) =
                (fresh.first().map(Item::key), fresh.last().map(Item::key));
            if first.is_none() || fresh_last <= first {
                // An older page, the usual case: it goes in front, newest of it first.
                for item in fresh.into_iter().rev() {
                    self.items.push_front(item);
                }
            } else if fresh_first >= last {
                self.items.extend(fresh);
            } else {
                // Overlapping runs: merge them rather than inserting one by one.
                let old = std::mem::take(&mut self.items);
                let mut merged = VecDeque::with_capacity(old.len() + fresh.len());
                let (mut a, mut b) = (old.into_iter().peekable(), fresh.into_iter().peekable());
                loop {
                    let take_a = match (a.peek(), b.peek()) {
                        (Some(x), Some(y)) => x.key() <= y.key(),
                        (Some(_), None) => true,
                        (None, Some(_)) => false,
                        (None, None) => break,
                    };
                    merged.extend(if take_a { a.next() } else { b.next() });
                }
                self.items = merged;
            }
        }
        self.older = match next {
            Some(n) => Older::More(n),
            None => Older::Complete,
        };
    }

    /// The index of the item drawn at the bottom, and how many of its lines are hidden below.
    pub fn bottom(&self) -> Option<(usize, usize)> {
        if self.items.is_empty() {
            return None;
        }
        match &self.scroll {
            Scroll::Bottom => Some((self.items.len() - 1, 0)),
            Scroll::Anchored { key, hidden_below } => {
                let key = (key.0, key.1.as_str());
                let i = self.items.partition_point(|it| it.key_parts() <= key);
                Some((i.saturating_sub(1), *hidden_below))
            }
        }
    }

    /// Scrolls up (towards older) by `lines`, measuring items with `height` (items, index →
    /// lines). Returns true when the top of what is loaded came into reach.
    /// `page` is the rows the thread is drawn in: once the oldest loaded line is in view it
    /// stops (scrolling further would only leave rows empty below, and hide the newest).
    pub fn scroll_up(
        &mut self,
        lines: usize,
        page: usize,
        height: impl Fn(&VecDeque<Item>, usize) -> usize,
    ) -> bool {
        let Some((start, start_hidden)) = self.bottom() else {
            return true;
        };
        let (mut i, mut hidden) = (start, start_hidden);
        // Lines from the oldest loaded one down to the bottom of the view — counted only as
        // far as this scroll could need (a thread may hold a million messages): past
        // `page + lines` the count cannot fall to `page` within `lines` steps.
        let enough = page + lines;
        let mut above = 0;
        for k in (0..=i).rev() {
            above += height(&self.items, k);
            if above.saturating_sub(hidden) > enough {
                break;
            }
        }
        let mut above = above.saturating_sub(hidden);
        for _ in 0..lines {
            if above <= page {
                break;
            }
            if hidden + 1 < height(&self.items, i) {
                hidden += 1;
            } else if i > 0 {
                i -= 1;
                hidden = 0;
            } else {
                break;
            }
            above -= 1;
        }
        if (i, hidden) != (start, start_hidden) {
            self.scroll = Scroll::Anchored {
                key: self.items[i].key(),
                hidden_below: hidden,
            };
        }
        i < 20
    }

    /// Scrolls down (towards newer) by `lines`; back at the end it follows new lines again.
    pub fn scroll_down(&mut self, lines: usize, height: impl Fn(&VecDeque<Item>, usize) -> usize) {
        let Some((mut i, mut hidden)) = self.bottom() else {
            return;
        };
        for _ in 0..lines {
            if hidden > 0 {
                hidden -= 1;
            } else if i + 1 < self.items.len() {
                i += 1;
                hidden = height(&self.items, i).saturating_sub(1);
            } else {
                break;
            }
        }
        self.scroll = if i + 1 == self.items.len() && hidden == 0 {
            Scroll::Bottom
        } else {
            Scroll::Anchored {
                key: self.items[i].key(),
                hidden_below: hidden,
            }
        };
    }

    /// Shows the oldest loaded lines at the top of a view of `page` rows (when everything
    /// fits, the view keeps following the newest).
    pub fn scroll_to_top(&mut self, page: usize, height: impl Fn(&VecDeque<Item>, usize) -> usize) {
        let mut lines = 0;
        for (k, item) in self.items.iter().enumerate() {
            lines += height(&self.items, k);
            if lines >= page {
                self.scroll = if k + 1 == self.items.len() && lines == page {
                    Scroll::Bottom
                } else {
                    Scroll::Anchored {
                        key: item.key(),
                        hidden_below: lines - page,
                    }
                };
                return;
            }
        }
        self.scroll = Scroll::Bottom;
    }

    pub fn is_following(&self) -> bool {
        self.scroll == Scroll::Bottom
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testing::{ConvBuilder, at, inbound, outbound};
    use crate::protocol::MessageStatus;

    fn thread() -> Thread {
        Thread::new(ConvBuilder::new("c1", "+14155550100").build())
    }

    #[test]
    fn messages_are_kept_once_in_time_order() {
        let mut t = thread();
        t.upsert(inbound("m2", "c1", "second", &at(10, 2)));
        t.upsert(inbound("m1", "c1", "first", &at(10, 1)));
        t.upsert(inbound("m2", "c1", "second", &at(10, 2)));
        let ids: Vec<_> = t.items().iter().map(Item::id).collect();
        assert_eq!(ids, ["m1", "m2"]);
    }

    #[test]
    fn status_only_moves_forward() {
        let mut t = thread();
        let mut m = outbound("m1", "c1", "hi", &at(10, 1));
        m.status = MessageStatus::Delivered;
        t.upsert(m.clone());
        m.status = MessageStatus::Dispatched;
        assert!(!t.upsert(m));
        assert_eq!(t.last_message().unwrap().status, MessageStatus::Delivered);
    }

    #[test]
    fn older_pages_merge_and_keep_the_anchor() {
        let mut t = thread();
        let page2: Vec<_> = (10..20)
            .map(|i| inbound(&format!("m{i}"), "c1", "x", &at(10, i)))
            .collect();
        t.take_page(page2, Some("m10".into()), true);
        t.scroll_up(3, 6, |_, _| 2);
        let before = t.bottom().map(|(i, h)| (t.items()[i].id().to_string(), h));
        let page1: Vec<_> = (0..10)
            .map(|i| inbound(&format!("m{i:02}"), "c1", "x", &at(9, i)))
            .collect();
        t.take_page(page1, None, false);
        assert_eq!(t.items().len(), 20);
        assert_eq!(t.older, Older::Complete);
        let after = t.bottom().map(|(i, h)| (t.items()[i].id().to_string(), h));
        assert_eq!(before, after);
    }

    #[test]
    fn pages_before_after_and_across_the_held_ones_end_sorted_once() {
        let mut t = thread();
        let page = |r: std::ops::Range<u32>| -> Vec<Message> {
            r.map(|i| inbound(&format!("m{i:02}"), "c1", "x", &at(10, i)))
                .collect()
        };
        t.take_page(page(20..30), Some("m20".into()), true);
        t.take_page(page(10..20), Some("m10".into()), false);
        t.take_page(page(30..35), Some("m10".into()), false);
        t.take_page(page(5..25), None, false);
        let mut m = outbound("m12", "c1", "x", &at(10, 12));
        m.status = MessageStatus::Failed;
        assert!(t.upsert(m), "an old message found by its key");
        let ids: Vec<_> = t.items().iter().map(Item::id).collect();
        let want: Vec<_> = (5..35).map(|i| format!("m{i:02}")).collect();
        assert_eq!(ids, want);
        assert_eq!(t.older, Older::Complete);
    }

    #[test]
    fn scrolling_back_down_follows_again() {
        let mut t = thread();
        for i in 0..5 {
            t.upsert(inbound(&format!("m{i}"), "c1", "x", &at(10, i)));
        }
        t.scroll_up(4, 4, |_, _| 2);
        assert!(!t.is_following());
        t.scroll_down(100, |_, _| 2);
        assert!(t.is_following());
    }

    /// A thread shorter than its view does not scroll: the newest lines never leave it
    /// (scrolling up used to leave the rows below the anchor empty).
    #[test]
    fn a_thread_that_fits_its_view_stays_put() {
        let mut t = thread();
        for i in 0..3 {
            t.upsert(inbound(&format!("m{i}"), "c1", "x", &at(10, i)));
        }
        t.scroll_up(5, 10, |_, _| 2);
        assert!(t.is_following());
        t.scroll_to_top(10, |_, _| 2);
        assert!(t.is_following());
    }

    /// Scrolling up stops with the oldest line at the top of a full view, and the top of a
    /// longer thread is shown with the view full below it.
    #[test]
    fn scrolling_up_stops_at_the_oldest_line_with_the_view_full() {
        let mut t = thread();
        for i in 0..10 {
            t.upsert(inbound(&format!("m{i}"), "c1", "x", &at(10, i)));
        }
        t.scroll_up(100, 6, |_, _| 2);
        // Items 0..=2 fill the 6 rows.
        assert_eq!(t.bottom(), Some((2, 0)));
        t.scroll_down(100, |_, _| 2);
        assert!(t.is_following());
        t.scroll_to_top(5, |_, _| 2);
        // 5 rows: items 0, 1 and the first line of 2 (one of its lines hidden below).
        assert_eq!(t.bottom(), Some((2, 1)));
    }

    /// Scrolling measures about a page of items, however many are loaded: measuring them
    /// all made each page up take half a second with 800 000 messages in the thread.
    #[test]
    fn scrolling_up_measures_about_a_page_not_the_whole_thread() {
        let mut t = thread();
        for n in 0..20_000u32 {
            t.upsert(inbound(
                &format!("m{n:06}"),
                "c1",
                "hi",
                &format!(
                    "2026-11-22T10:{:02}:{:02}.{:03}Z",
                    n / 60_000 % 60,
                    n / 1000 % 60,
                    n % 1000
                ),
            ));
        }
        let calls = std::cell::Cell::new(0usize);
        let height = |_: &VecDeque<Item>, _: usize| {
            calls.set(calls.get() + 1);
            2
        };
        for _ in 0..10 {
            t.scroll_up(25, 50, height);
        }
        assert!(calls.get() < 10 * 200, "{} items measured", calls.get());
        assert!(!t.is_following());
    }
}
