//! Consent of the open conversation's subscriber (rules A6, A7): what the subscriber pane
//! shows (`consent.history`: this tenant's consent, its history, the code block), why the
//! composer is closed after an opt-out, and the one-key action that records an opt-out an
//! agent read in a message. Intent is only flagged by the engine, never acted on by itself:
//! the agent confirms it here, after a y/n question, with `conversations.opt_out`.
//!
//! The consent history is asked for when it is needed (the pane is open, or the conversation
//! is opted out and the composer must say since when), and again whenever `consent.changed`
//! touches the subscriber.

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use serde_json::{Value, json};

use super::{App, Effect, Focus, Overlay, Purpose, Tone};
use crate::client::format;
use crate::protocol::{
    ApiError, ConsentHistoryResult, ConsentState, Conversation, Direction, method,
};

/// Where the consent history of the open conversation stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsentLoad {
    /// Asked for while offline, or the answer was lost with the connection.
    NotLoaded,
    Loading,
    Ready(ConsentHistoryResult),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConsentView {
    pub conversation: String,
    pub load: ConsentLoad,
}

impl ConsentView {
    pub fn ready(&self) -> Option<&ConsentHistoryResult> {
        match &self.load {
            ConsentLoad::Ready(r) => Some(r),
            _ => None,
        }
    }
}

/// The question asked before recording an opt-out.
#[derive(Debug, Clone, PartialEq)]
pub struct OptOutPrompt {
    pub conversation: String,
    pub subscriber: String,
    /// The message the engine flagged as reading like an opt-out request, when there is one.
    pub flagged: Option<String>,
}

/// Consent as a word.
pub fn consent_word(c: ConsentState) -> &'static str {
    match c {
        ConsentState::None => "no consent recorded",
        ConsentState::Pending => "pending confirmation",
        ConsentState::OptedIn => "opted in",
        ConsentState::OptedOut => "opted out",
    }
}

/// What was behind a consent change, for people: the keyword (`STOP`), `recorded by you`,
/// `recorded by ag_bo`, or `carrier: <error>`.
pub fn source_label(source: &str, me: Option<&str>) -> String {
    if let Some(agent) = source.strip_prefix("agent:") {
        if Some(agent) == me {
            return "recorded by you".into();
        }
        return format!("recorded by {agent}");
    }
    if let Some(e) = source.strip_prefix("carrier:") {
        return format!("carrier: {}", e.trim());
    }
    source.to_string()
}

impl App {
    /// Why the composer of the open conversation is closed, as a sentence; `None` when it is
    /// open. Only a tenant opt-out closes it: a code block alone still lets the agent switch
    /// to another code (the preview says so).
    pub fn composer_closed(&self) -> Option<String> {
        let t = self.thread.as_ref()?;
        let c = &t.conversation;
        if c.consent != ConsentState::OptedOut {
            return None;
        }
        let who = format::phone(&c.subscriber).into_owned();
        let when = self.opted_out_since().map(|(at, source)| {
            let me = self.principal().map(|p| p.agent.as_str());
            format!(
                " on {} ({})",
                format::date_ymd_hm(&at, &self.tz),
                source_label(&source, me)
            )
        });
        Some(format!(
            "{who} opted out{}: nothing can be sent.",
            when.unwrap_or_default()
        ))
    }

    /// When and why the open conversation's subscriber last opted out, from the history.
    pub fn opted_out_since(&self) -> Option<(String, String)> {
        let r = self.consent_of_open()?;
        r.items
            .iter()
            .rev()
            .find(|i| i.state == ConsentState::OptedOut)
            .map(|i| (i.at.clone(), i.source.clone()))
    }

    /// The consent history of the open conversation, once it has arrived.
    pub fn consent_of_open(&self) -> Option<&ConsentHistoryResult> {
        let open = self.thread.as_ref()?.id();
        self.consent
            .as_ref()
            .filter(|v| v.conversation == open)
            .and_then(ConsentView::ready)
    }

    fn consent_needed(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| {
            self.subscriber_pane || t.conversation.consent == ConsentState::OptedOut
        })
    }

    /// Asks for the open conversation's consent history when something on screen needs it
    /// and it is not here (or `again`: it changed).
    pub(super) fn load_consent(&mut self, again: bool, fx: &mut Vec<Effect>) {
        if !self.consent_needed() {
            return;
        }
        let Some(id) = self.thread.as_ref().map(|t| t.id().to_string()) else {
            return;
        };
        let current = self.consent.as_ref().filter(|v| v.conversation == id);
        let wanted = match current.map(|v| &v.load) {
            None | Some(ConsentLoad::NotLoaded) => true,
            Some(ConsentLoad::Loading) => false,
            Some(ConsentLoad::Ready(_) | ConsentLoad::Failed(_)) => again,
        };
        if !wanted {
            return;
        }
        if !self.is_online() {
            self.consent = Some(ConsentView {
                conversation: id,
                load: ConsentLoad::NotLoaded,
            });
            return;
        }
        // A reload keeps what is shown until the answer replaces it.
        if !matches!(current.map(|v| &v.load), Some(ConsentLoad::Ready(_))) {
            self.consent = Some(ConsentView {
                conversation: id.clone(),
                load: ConsentLoad::Loading,
            });
        }
        self.call(
            method::CONSENT_HISTORY,
            json!({ "conversation": id }),
            Purpose::Consent { conversation: id },
            fx,
        );
    }

    /// `s`: shows or hides the subscriber pane. From the inbox it opens the selected
    /// conversation first.
    pub(super) fn toggle_subscriber_pane(&mut self, fx: &mut Vec<Effect>) {
        if self.subscriber_pane && self.focus != Focus::Inbox {
            self.subscriber_pane = false;
            return;
        }
        if self.focus == Focus::Inbox {
            let Some(c) = self.inbox.selected().cloned() else {
                return;
            };
            self.open_conversation(c, fx);
        }
        if self.thread.is_none() {
            return;
        }
        self.subscriber_pane = true;
        // The pane takes the inbox's column: the keyboard goes to the thread.
        self.focus_on(Focus::Thread, fx);
        self.load_consent(false, fx);
    }

    /// `o` (Ctrl-O in the composer): asks before recording an opt-out for the conversation
    /// the action applies to.
    pub(super) fn ask_opt_out(&mut self) {
        let Some(c) = self.target().cloned() else {
            return;
        };
        if c.consent == ConsentState::OptedOut {
            let who = format::phone(&c.subscriber).into_owned();
            self.notify(Tone::Info, format!("{who} has already opted out"));
            return;
        }
        let flagged = self.flagged_message(&c);
        self.overlay = Some(Overlay::ConfirmOptOut(OptOutPrompt {
            conversation: c.id,
            subscriber: c.subscriber,
            flagged,
        }));
    }

    /// The newest inbound message of `c` that reads like an opt-out request.
    fn flagged_message(&self, c: &Conversation) -> Option<String> {
        let in_thread = self
            .thread
            .as_ref()
            .filter(|t| t.id() == c.id)
            .and_then(|t| {
                t.items().iter().rev().find_map(|i| match i {
                    super::thread::Item::Message(m)
                        if m.direction == Direction::In && m.opt_out_intent =>
                    {
                        Some(m.body.clone())
                    }
                    _ => None,
                })
            });
        in_thread.or_else(|| {
            c.last_message
                .as_ref()
                .filter(|m| m.opt_out_intent)
                .map(|m| m.body.clone())
        })
    }

    pub(super) fn opt_out_key(
        &mut self,
        prompt: OptOutPrompt,
        key: KeyEvent,
        fx: &mut Vec<Effect>,
    ) {
        match key.code {
            KeyCode::Char('y' | 'Y') => self.record_opt_out(prompt, fx),
            KeyCode::Char('n' | 'N') | KeyCode::Esc => {
                self.notify(Tone::Info, "No opt-out recorded");
            }
            _ => self.overlay = Some(Overlay::ConfirmOptOut(prompt)),
        }
    }

    fn record_opt_out(&mut self, prompt: OptOutPrompt, fx: &mut Vec<Effect>) {
        if !self.is_online() {
            self.notify(
                Tone::Warn,
                "Cannot record the opt-out: not connected. Try again once connected.",
            );
            return;
        }
        self.call(
            method::CONVERSATIONS_OPT_OUT,
            json!({ "conversation": prompt.conversation }),
            Purpose::OptOut {
                conversation: prompt.conversation.clone(),
                subscriber: prompt.subscriber,
            },
            fx,
        );
    }

    pub(super) fn on_consent_answer(
        &mut self,
        conversation: String,
        result: Result<Value, ApiError>,
    ) {
        let Some(view) = self
            .consent
            .as_mut()
            .filter(|v| v.conversation == conversation)
        else {
            return;
        };
        match result.and_then(|v| {
            serde_json::from_value::<ConsentHistoryResult>(v)
                .map_err(|e| ApiError::internal(format!("unexpected answer: {e}")))
        }) {
            Ok(r) => view.load = ConsentLoad::Ready(r),
            Err(e) => view.load = ConsentLoad::Failed(e.message),
        }
    }

    pub(super) fn on_opt_out_answer(
        &mut self,
        subscriber: &str,
        result: Result<Value, ApiError>,
        fx: &mut Vec<Effect>,
    ) {
        let who = format::phone(subscriber).into_owned();
        match result.and_then(|v| {
            serde_json::from_value::<Conversation>(v)
                .map_err(|e| ApiError::internal(format!("unexpected answer: {e}")))
        }) {
            Ok(c) => {
                self.notify(
                    Tone::Info,
                    format!("Opt-out recorded for {who}: one confirmation goes out, then nothing"),
                );
                self.apply_conversation(c);
                self.load_consent(true, fx);
            }
            Err(e) => self.notify(
                Tone::Error,
                format!("Could not record the opt-out for {who}: {}", e.message),
            ),
        }
    }

    /// A `consent.changed` touched `subscriber`: what the pane or the composer shows of it
    /// is asked for again.
    pub(super) fn consent_changed(&mut self, subscriber: &str, fx: &mut Vec<Effect>) {
        let open = self
            .thread
            .as_ref()
            .is_some_and(|t| t.conversation.subscriber == subscriber);
        if open {
            self.load_consent(true, fx);
        }
    }

    /// The consent call was lost with the connection: ask again after reconnecting.
    pub(super) fn consent_lost(&mut self, conversation: &str) {
        if let Some(v) = self
            .consent
            .as_mut()
            .filter(|v| v.conversation == conversation && v.load == ConsentLoad::Loading)
        {
            v.load = ConsentLoad::NotLoaded;
        }
    }
}
