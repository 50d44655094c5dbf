//! The reply composer: a multi-line text area per conversation, its live preview, and the
//! sends that have left it but are not yet answered.
//!
//! Each conversation keeps its own draft while the agent looks elsewhere, and the draft lives
//! in memory through disconnects. A send takes the draft's idempotency key (`client_msg_id`,
//! a UUID) and locks the composer until the engine answers: if the connection drops first, the
//! same payload is sent again with the same key after reconnecting, so the engine creates the
//! message at most once. A refused send unlocks the composer with the text still in it.

use std::collections::HashMap;

use ratatui::crossterm::event::KeyEvent;
use ratatui::style::{Modifier, Style};
use ratatui_textarea::{TextArea, WrapMode};

use crate::client::net::CallId;
use crate::client::sanitize::is_forbidden;
use crate::protocol::{ApiError, PreviewResult, SendParams};

/// What the engine said about the text as it stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Preview {
    None,
    /// The text changed; a preview is due or asked for.
    Waiting,
    Ready(PreviewResult),
    Failed(String),
}

#[derive(Debug, Clone, Default)]
struct Draft {
    lines: Vec<String>,
    key: Option<String>,
}

/// A send that has left the composer and waits for the engine's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub params: SendParams,
    /// The call carrying it; `None` while waiting for the connection to come back.
    pub call: Option<CallId>,
}

pub struct Composer {
    textarea: TextArea<'static>,
    pub conversation: Option<String>,
    /// Bumped on every edit: previews of older text are dropped.
    pub generation: u64,
    pub preview: Preview,
    /// The engine's answer to the last refused send of this draft.
    pub refusal: Option<ApiError>,
    key: Option<String>,
    drafts: HashMap<String, Draft>,
    /// Sends in flight, by conversation.
    pub outbox: HashMap<String, Outgoing>,
}

impl Default for Composer {
    fn default() -> Self {
        Composer {
            textarea: new_textarea(Vec::new()),
            conversation: None,
            generation: 0,
            preview: Preview::None,
            refusal: None,
            key: None,
            drafts: HashMap::new(),
            outbox: HashMap::new(),
        }
    }
}

fn new_textarea(lines: Vec<String>) -> TextArea<'static> {
    let mut t = TextArea::new(lines);
    t.set_wrap_mode(WrapMode::WordOrGlyph);
    t.set_cursor_line_style(Style::default());
    t.set_placeholder_text("Type a reply · Enter sends · Alt-Enter: new line");
    t.set_max_histories(100);
    t
}

impl Composer {
    pub fn textarea(&self) -> &TextArea<'static> {
        &self.textarea
    }

    /// Shows the draft of `conversation`, keeping the one on screen for later.
    pub fn open(&mut self, conversation: &str) {
        if self.conversation.as_deref() == Some(conversation) {
            return;
        }
        self.stash();
        let draft = self.drafts.remove(conversation).unwrap_or_default();
        self.textarea = new_textarea(draft.lines);
        self.textarea
            .move_cursor(ratatui_textarea::CursorMove::Bottom);
        self.textarea.move_cursor(ratatui_textarea::CursorMove::End);
        self.key = draft.key;
        self.conversation = Some(conversation.to_string());
        self.generation += 1;
        self.preview = Preview::None;
        self.refusal = None;
    }

    /// Puts the draft on screen away (no conversation open).
    pub fn close(&mut self) {
        self.stash();
        self.textarea = new_textarea(Vec::new());
        self.conversation = None;
        self.key = None;
        self.generation += 1;
        self.preview = Preview::None;
        self.refusal = None;
    }

    fn stash(&mut self) {
        if let Some(c) = self.conversation.take() {
            let lines = self.textarea.lines().to_vec();
            if lines.iter().any(|l| !l.is_empty()) {
                self.drafts.insert(
                    c,
                    Draft {
                        lines,
                        key: self.key.take(),
                    },
                );
            }
        }
    }

    pub fn text(&self) -> String {
        self.textarea.lines().join("\n")
    }

    pub fn is_blank(&self) -> bool {
        self.textarea.lines().iter().all(|l| l.trim().is_empty())
    }

    /// Unsent text anywhere: on screen, in a stashed draft, or in flight.
    pub fn unsent(&self) -> usize {
        let here = usize::from(!self.is_blank());
        let stashed = self
            .drafts
            .values()
            .filter(|d| d.lines.iter().any(|l| !l.trim().is_empty()));
        here + stashed.count()
            + self
                .outbox
                .keys()
                .filter(|c| self.conversation.as_ref() != Some(c))
                .count()
    }

    /// True while the draft on screen is being sent.
    pub fn is_locked(&self) -> bool {
        self.conversation
            .as_ref()
            .is_some_and(|c| self.outbox.contains_key(c))
    }

    /// Feeds a key to the text area; returns true when the text changed.
    pub fn input(&mut self, key: KeyEvent) -> bool {
        let changed = self.textarea.input(key);
        if changed {
            self.edited();
        }
        changed
    }

    pub fn newline(&mut self) {
        self.textarea.insert_newline();
        self.edited();
    }

    /// Inserts pasted text, without the controls a terminal paste may carry.
    pub fn paste(&mut self, s: &str) -> bool {
        let clean: String = s
            .replace("\r\n", "\n")
            .replace('\r', "\n")
            .chars()
            .filter(|&c| !is_forbidden(c))
            .collect();
        let changed = self.textarea.insert_str(clean);
        if changed {
            self.edited();
        }
        changed
    }

    fn edited(&mut self) {
        self.generation += 1;
        self.preview = if self.is_blank() {
            Preview::None
        } else {
            Preview::Waiting
        };
        self.refusal = None;
    }

    /// The idempotency key of the draft on screen, made on first use.
    pub fn key(&mut self) -> String {
        self.key
            .get_or_insert_with(|| uuid::Uuid::new_v4().to_string())
            .clone()
    }

    /// A send of `conversation` went through: its draft is done.
    pub fn sent(&mut self, conversation: &str) {
        self.outbox.remove(conversation);
        if self.conversation.as_deref() == Some(conversation) {
            self.textarea = new_textarea(Vec::new());
            self.key = None;
            self.generation += 1;
            self.preview = Preview::None;
            self.refusal = None;
        } else {
            self.drafts.remove(conversation);
        }
    }

    /// A send of `conversation` was refused: unlock, keep the text, say why.
    pub fn refused(&mut self, conversation: &str, error: ApiError) {
        self.outbox.remove(conversation);
        if self.conversation.as_deref() == Some(conversation) {
            self.refusal = Some(error);
        }
    }

    pub fn set_focused(&mut self, focused: bool) {
        let cursor = if focused {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default()
        };
        self.textarea.set_cursor_style(cursor);
    }

    /// The outgoing send whose call is `call`.
    pub fn outgoing_by_call(&self, call: CallId) -> Option<&Outgoing> {
        self.outbox.values().find(|o| o.call == Some(call))
    }

    /// The outgoing send carrying `client_msg_id`.
    pub fn outgoing_by_key(&self, key: &str) -> Option<&Outgoing> {
        self.outbox.values().find(|o| o.params.client_msg_id == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::{KeyCode, KeyModifiers};

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn drafts_survive_switching_conversations() {
        let mut c = Composer::default();
        c.open("a");
        c.input(key('h'));
        c.input(key('i'));
        let k = c.key();
        c.open("b");
        assert!(c.is_blank());
        c.open("a");
        assert_eq!(c.text(), "hi");
        assert_eq!(c.key(), k);
        assert_eq!(c.unsent(), 1);
    }

    #[test]
    fn paste_drops_controls_and_keeps_lines() {
        let mut c = Composer::default();
        c.open("a");
        c.paste("one\r\ntwo\x1b[2J\u{202e}");
        assert_eq!(c.text(), "one\ntwo[2J");
    }

    #[test]
    fn a_refusal_keeps_the_text() {
        let mut c = Composer::default();
        c.open("a");
        c.paste("hello");
        c.refused(
            "a",
            ApiError::new(crate::protocol::ErrorCode::OptedOut, "opted out"),
        );
        assert_eq!(c.text(), "hello");
        assert!(c.refusal.is_some());
        c.sent("a");
        assert!(c.is_blank());
        assert!(c.refusal.is_none());
    }
}
