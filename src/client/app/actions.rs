//! What the agent's actions do to the state, and the calls they make: opening a conversation,
//! paging, sending, changing a conversation, switching view, search and tenant.

use serde_json::{Value, json};

use super::composer::{Outgoing, Preview};
use super::inbox::{Load, View};
use super::thread::{Older, Thread};
use super::{
    App, AttributionPrompt, Effect, Focus, Overlay, PREVIEW_DEBOUNCE, Purpose, Timer, Tone,
};
use crate::client::ui;
use crate::protocol::{
    AttributionState, CodeKind, Conversation, ConversationStatus, ConversationUpdateParams,
    SendParams, method,
};

/// Page sizes asked of the engine.
const LIST_PAGE: u32 = 200;
const HISTORY_PAGE: u32 = 100;

impl App {
    pub(super) fn quit(&mut self, fx: &mut Vec<Effect>) {
        let unsent = self.composer.unsent();
        let asked = matches!(self.overlay, Some(Overlay::ConfirmQuit { .. }));
        if unsent > 0 && !asked {
            self.overlay = Some(Overlay::ConfirmQuit { unsent });
        } else {
            fx.push(Effect::Quit);
        }
    }

    pub(super) fn focus_on(&mut self, focus: Focus, fx: &mut Vec<Effect>) {
        if focus != Focus::Inbox && self.thread.is_none() {
            return;
        }
        self.focus = focus;
        self.composer.set_focused(focus == Focus::Composer);
        if focus == Focus::Inbox {
            // The subscriber pane stands in the inbox's column: going back closes it.
            self.subscriber_pane = false;
        } else {
            self.mark_read(fx);
        }
    }

    pub(super) fn open_selected(&mut self, fx: &mut Vec<Effect>) {
        if let Some(c) = self.inbox.selected().cloned() {
            self.open_conversation(c, fx);
        }
    }

    /// Opens `c` in the thread pane, loads its latest history and puts the cursor in the
    /// composer.
    pub fn open_conversation(&mut self, c: Conversation, fx: &mut Vec<Effect>) {
        let same = self.thread.as_ref().is_some_and(|t| t.id() == c.id);
        if !same {
            self.composer.open(&c.id);
            self.thread = Some(Thread::new(c));
            self.load_latest(fx);
            self.load_consent(false, fx);
        }
        // Nothing can be typed to an opted-out subscriber: the thread takes the keyboard.
        let focus = if self.composer_closed().is_some() {
            Focus::Thread
        } else {
            Focus::Composer
        };
        self.focus_on(focus, fx);
    }

    pub(super) fn load_latest(&mut self, fx: &mut Vec<Effect>) {
        let online = self.is_online();
        let Some(t) = self.thread.as_mut() else {
            return;
        };
        if !online {
            t.older = Older::NotLoaded;
            return;
        }
        t.older = Older::Loading;
        t.first_load_asked = true;
        let conversation = t.id().to_string();
        let params = json!({ "conversation": conversation, "limit": HISTORY_PAGE });
        self.call(
            method::CONVERSATIONS_HISTORY,
            params,
            Purpose::History {
                conversation,
                latest: true,
            },
            fx,
        );
    }

    pub(super) fn load_older(&mut self, fx: &mut Vec<Effect>) {
        let online = self.is_online();
        let Some(t) = self.thread.as_mut() else {
            return;
        };
        let Older::More(before) = t.older.clone() else {
            return;
        };
        if !online {
            return;
        }
        t.older = Older::Loading;
        let conversation = t.id().to_string();
        let params =
            json!({ "conversation": conversation, "before": before, "limit": HISTORY_PAGE });
        self.call(
            method::CONVERSATIONS_HISTORY,
            params,
            Purpose::History {
                conversation,
                latest: false,
            },
            fx,
        );
    }

    pub(super) fn scroll_thread(&mut self, lines: isize, fx: &mut Vec<Effect>) {
        let width = ui::layout::thread_width(self);
        let page = ui::layout::thread_page(self);
        let ctx = ui::thread::Measure::new(self, width);
        let Some(t) = self.thread.as_mut() else {
            return;
        };
        let height = |items: &_, i| ctx.item_height(items, i);
        if lines < 0 {
            if t.scroll_up(lines.unsigned_abs(), page, height) {
                self.load_older(fx);
            }
        } else {
            t.scroll_down(lines as usize, height);
        }
    }

    /// Shows the oldest loaded lines of the open thread at the top of its view.
    pub fn thread_to_top(&mut self) {
        let width = ui::layout::thread_width(self);
        let page = ui::layout::thread_page(self);
        let ctx = ui::thread::Measure::new(self, width);
        if let Some(t) = self.thread.as_mut() {
            t.scroll_to_top(page, |items: &_, i| ctx.item_height(items, i));
        }
    }

    /// Marks the open conversation read up to its newest message, once per message.
    pub(super) fn mark_read(&mut self, fx: &mut Vec<Effect>) {
        let Some(t) = self.thread.as_ref() else {
            return;
        };
        if t.conversation.unread == 0 || !self.is_online() {
            return;
        }
        let last = t
            .last_message()
            .map(|m| m.id.clone())
            .or_else(|| t.conversation.last_message.as_ref().map(|m| m.id.clone()));
        let Some(last) = last else { return };
        let conversation = t.id().to_string();
        let params = ConversationUpdateParams {
            conversation: conversation.clone(),
            read_up_to: Some(last),
            ..Default::default()
        };
        self.update_call(conversation, params, "mark read", fx);
    }

    fn update_call(
        &mut self,
        conversation: String,
        params: ConversationUpdateParams,
        what: &'static str,
        fx: &mut Vec<Effect>,
    ) {
        if !self.is_online() {
            self.notify(Tone::Warn, format!("Cannot {what}: not connected"));
            return;
        }
        let params = serde_json::to_value(params).unwrap_or(Value::Null);
        self.call(
            method::CONVERSATIONS_UPDATE,
            params,
            Purpose::Update { conversation, what },
            fx,
        );
    }

    pub(super) fn toggle_resolved(&mut self, fx: &mut Vec<Effect>) {
        let Some((id, status)) = self.target().map(|c| (c.id.clone(), c.status)) else {
            return;
        };
        let (status, what) = if status == ConversationStatus::Resolved {
            (ConversationStatus::Open, "reopen")
        } else {
            (ConversationStatus::Resolved, "resolve")
        };
        let params = ConversationUpdateParams {
            conversation: id.clone(),
            status: Some(status),
            ..Default::default()
        };
        self.update_call(id, params, what, fx);
    }

    pub(super) fn mark_unread(&mut self, fx: &mut Vec<Effect>) {
        let Some(id) = self.target().map(|c| c.id.clone()) else {
            return;
        };
        let params = ConversationUpdateParams {
            conversation: id.clone(),
            unread: Some(true),
            ..Default::default()
        };
        self.update_call(id, params, "mark unread", fx);
    }

    pub(super) fn assign_to_me(&mut self, fx: &mut Vec<Effect>) {
        let Some(id) = self.target().map(|c| c.id.clone()) else {
            return;
        };
        let params = ConversationUpdateParams {
            conversation: id.clone(),
            assignee: Some("me".into()),
            ..Default::default()
        };
        self.update_call(id, params, "assign", fx);
    }

    pub(super) fn pick_code(&mut self, fx: &mut Vec<Effect>) {
        let Some(c) = self.target().cloned() else {
            return;
        };
        let Some(codes) = self.codes.as_ref() else {
            self.load_codes(fx);
            self.notify(Tone::Info, "Loading the tenant's codes… press c again");
            return;
        };
        let codes: Vec<_> = codes
            .iter()
            .filter(|k| k.country == c.country)
            .cloned()
            .collect();
        if codes.iter().all(|k| k.code == c.code) {
            self.notify(
                Tone::Info,
                format!("No other code in {} for this tenant", c.country),
            );
            return;
        }
        let selected = codes.iter().position(|k| k.code == c.code).unwrap_or(0);
        self.overlay = Some(Overlay::CodePicker {
            conversation: c.id,
            codes,
            selected,
        });
    }

    pub(super) fn set_code(&mut self, conversation: &str, code: &str, fx: &mut Vec<Effect>) {
        let params = ConversationUpdateParams {
            conversation: conversation.to_string(),
            code: Some(code.to_string()),
            ..Default::default()
        };
        self.update_call(conversation.to_string(), params, "switch code", fx);
    }

    /// Dedicated codes of the tenant in `country`.
    pub(super) fn dedicated_in(&self, country: &str) -> Vec<String> {
        self.codes
            .iter()
            .flatten()
            .filter(|k| k.kind == CodeKind::Dedicated && k.country == country)
            .map(|k| k.code.clone())
            .collect()
    }

    /// Enter in the composer: send, or first ask when attribution on the code is lost.
    pub(super) fn send(&mut self, fx: &mut Vec<Effect>) {
        if self.composer.is_locked() {
            self.notify(Tone::Info, "Already sending; waiting for the engine");
            return;
        }
        if self.composer.is_blank() {
            self.notify(Tone::Info, "Nothing to send");
            return;
        }
        let Some(t) = self.thread.as_ref() else {
            return;
        };
        let c = &t.conversation;
        if c.attribution.state == AttributionState::Lost {
            let prompt = AttributionPrompt {
                conversation: c.id.clone(),
                code: c.code.clone(),
                since: c.attribution.since.clone(),
                alternatives: self.dedicated_in(&c.country),
                selected: 0,
            };
            self.overlay = Some(Overlay::Attribution(prompt));
            return;
        }
        let id = c.id.clone();
        self.send_now(&id, false, None, fx);
    }

    /// Puts the composer's text in the outbox and sends it when connected.
    pub(super) fn send_now(
        &mut self,
        conversation: &str,
        reclaim: bool,
        code: Option<String>,
        fx: &mut Vec<Effect>,
    ) {
        if self.composer.conversation.as_deref() != Some(conversation) {
            return;
        }
        let params = SendParams {
            client_msg_id: self.composer.key(),
            body: self.composer.text().trim_end().to_string(),
            conversation: Some(conversation.to_string()),
            code,
            reclaim,
            ..Default::default()
        };
        self.composer.refusal = None;
        self.composer
            .outbox
            .insert(conversation.to_string(), Outgoing { params, call: None });
        if self.is_online() {
            self.dispatch_send(conversation, fx);
        } else {
            self.notify(
                Tone::Warn,
                "Not connected: the reply goes out when the connection is back",
            );
        }
    }

    fn dispatch_send(&mut self, conversation: &str, fx: &mut Vec<Effect>) {
        let Some(out) = self.composer.outbox.get(conversation) else {
            return;
        };
        let params = serde_json::to_value(&out.params).unwrap_or(Value::Null);
        let purpose = Purpose::Send {
            conversation: conversation.to_string(),
        };
        let id = self.call(method::MESSAGES_SEND, params, purpose, fx);
        if let Some(out) = self.composer.outbox.get_mut(conversation) {
            out.call = Some(id);
        }
    }

    /// After reconnecting: sends that lost their call go again, with the same key.
    pub(super) fn resend_outbox(&mut self, fx: &mut Vec<Effect>) {
        let mut waiting: Vec<String> = self
            .composer
            .outbox
            .iter()
            .filter(|(_, o)| o.call.is_none())
            .map(|(c, _)| c.clone())
            .collect();
        waiting.sort();
        for c in waiting {
            self.dispatch_send(&c, fx);
        }
    }

    pub(super) fn on_paste(&mut self, text: &str, fx: &mut Vec<Effect>) {
        if let Some(q) = self.search.as_mut() {
            q.push_str(&text.replace(['\n', '\r', '\t'], " "));
            return;
        }
        if self.focus == Focus::Composer
            && self.composer_closed().is_none()
            && !self.composer.is_locked()
            && self.composer.paste(text)
        {
            self.schedule_preview(fx);
        }
    }

    pub(super) fn schedule_preview(&mut self, fx: &mut Vec<Effect>) {
        if self.composer.preview == Preview::Waiting {
            let generation = self.composer.generation;
            fx.push(Effect::Schedule {
                after: PREVIEW_DEBOUNCE,
                timer: Timer::Preview { generation },
            });
        }
    }

    pub(super) fn preview_due(&mut self, generation: u64, fx: &mut Vec<Effect>) {
        if generation != self.composer.generation || !self.is_online() {
            return;
        }
        self.request_preview(fx);
    }

    pub(super) fn request_preview(&mut self, fx: &mut Vec<Effect>) {
        let Some(conversation) = self.composer.conversation.clone() else {
            return;
        };
        if self.composer.is_blank() {
            self.composer.preview = Preview::None;
            return;
        }
        let params = json!({
            "client_msg_id": self.composer.key(),
            "body": self.composer.text().trim_end(),
            "conversation": conversation,
        });
        let generation = self.composer.generation;
        self.call(
            method::MESSAGES_PREVIEW,
            params,
            Purpose::Preview {
                conversation,
                generation,
            },
            fx,
        );
    }

    pub(super) fn set_view(&mut self, view: View, fx: &mut Vec<Effect>) {
        if self.inbox.view != view {
            self.inbox.view = view;
            self.reload_inbox(false, fx);
        }
    }

    pub(super) fn apply_query(&mut self, q: String, fx: &mut Vec<Effect>) {
        let q = q.trim();
        let q = (!q.is_empty()).then(|| q.to_string());
        if q != self.inbox.query {
            self.inbox.query = q;
            self.reload_inbox(false, fx);
        }
    }

    pub(super) fn switch_tenant(&mut self, delta: isize, fx: &mut Vec<Effect>) {
        let Some(p) = self.principal() else { return };
        let ids: Vec<String> = p.tenants.iter().map(|t| t.id.clone()).collect();
        if ids.len() < 2 {
            self.notify(Tone::Info, "Only one tenant to show");
            return;
        }
        let i = self
            .tenant
            .as_ref()
            .and_then(|t| ids.iter().position(|x| x == t))
            .unwrap_or(0);
        let n = ids.len() as isize;
        let next = ids[(i as isize + delta).rem_euclid(n) as usize].clone();
        self.set_tenant(next, true, fx);
    }

    /// Shows `tenant`'s inbox; `load` asks for it now (else the stream's sync will).
    pub(super) fn set_tenant(&mut self, tenant: String, load: bool, fx: &mut Vec<Effect>) {
        self.composer.close();
        self.thread = None;
        self.consent = None;
        self.subscriber_pane = false;
        self.focus = Focus::Inbox;
        self.tenant_news.remove(&tenant);
        self.tenant = Some(tenant);
        self.codes = None;
        self.codes_loading = false;
        self.inbox.restart(false);
        self.inbox.load = Load::Stale;
        if load {
            self.reload_inbox(false, fx);
            self.load_codes(fx);
        }
    }

    /// Asks for the first page of the current view again.
    pub(super) fn reload_inbox(&mut self, keep_rows: bool, fx: &mut Vec<Effect>) {
        let generation = self.inbox.restart(keep_rows);
        let Some(tenant) = self.tenant.clone() else {
            self.inbox.load = Load::Loaded;
            return;
        };
        if !self.is_online() {
            self.inbox.load = Load::Stale;
            return;
        }
        let filter = self.inbox.view.filter(self.inbox.query.as_deref());
        let params = json!({ "tenant": tenant, "filter": filter, "limit": LIST_PAGE });
        let asked_at = self.inbox.clock();
        let purpose = Purpose::List {
            tenant,
            generation,
            asked_at,
            first: true,
        };
        self.call(method::CONVERSATIONS_LIST, params, purpose, fx);
    }

    pub(super) fn load_more_if_needed(&mut self, fx: &mut Vec<Effect>) {
        if !self.inbox.wants_more() || !self.is_online() {
            return;
        }
        let (Some(tenant), Some(cursor)) = (self.tenant.clone(), self.inbox.next.clone()) else {
            return;
        };
        self.inbox.loading_more = true;
        let filter = self.inbox.view.filter(self.inbox.query.as_deref());
        let params =
            json!({ "tenant": tenant, "filter": filter, "cursor": cursor, "limit": LIST_PAGE });
        let purpose = Purpose::List {
            tenant,
            generation: self.inbox.generation,
            asked_at: self.inbox.clock(),
            first: false,
        };
        self.call(method::CONVERSATIONS_LIST, params, purpose, fx);
    }

    pub(super) fn load_codes(&mut self, fx: &mut Vec<Effect>) {
        let Some(tenant) = self.tenant.clone() else {
            return;
        };
        if self.codes_loading || !self.is_online() {
            return;
        }
        self.codes_loading = true;
        self.call(
            method::CODES_LIST,
            json!({ "tenant": tenant }),
            Purpose::Codes { tenant },
            fx,
        );
    }

    /// After a resume: ask again for whatever was lost with the last connection.
    pub(super) fn refresh_stale(&mut self, fx: &mut Vec<Effect>) {
        if self.inbox.load == Load::Stale {
            self.reload_inbox(true, fx);
        }
        if self
            .thread
            .as_ref()
            .is_some_and(|t| t.older == Older::NotLoaded)
        {
            self.load_latest(fx);
        }
        if self.codes.is_none() {
            self.load_codes(fx);
        }
        if self.composer.preview == Preview::Waiting {
            self.request_preview(fx);
        }
        self.load_consent(false, fx);
        self.load_more_if_needed(fx);
    }
}
