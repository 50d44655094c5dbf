//! What the engine said: connection state, `hello`, stream events, resets, and the answers
//! to calls, applied to the state.
//!
//! Events carry the full conversation summary they changed, so the inbox and the thread
//! update without another call. A reset (the stream could not be resumed) reloads what is on
//! screen with calls; a resume needs nothing but the replayed events.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::composer::Preview;
use super::inbox::Load;
use super::thread::{Older, SystemLine, Tone as LineTone};
use super::{
    App, AttributionPrompt, Conn, Effect, Focus, Overlay, Purpose, Session, Tone, subscriber,
};
use crate::client::format;
use crate::client::net::{CallId, NetEvent, NetStatus};
use crate::protocol::{
    ApiError, AttributionEventData, CodesListResult, ConsentEventData, ConsentState, Conversation,
    ConversationEventData, ConversationsListResult, Direction, ErrorCode, Event, Hello,
    HistoryResult, MessageEventData, PreviewResult, ResetReason, SendResult, SpendNoticeData, kind,
    stream,
};

fn parse<T: DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::internal(format!("unexpected answer: {e}")))
}

impl App {
    pub(super) fn on_net(&mut self, net: NetEvent, fx: &mut Vec<Effect>) {
        match net {
            NetEvent::Status(NetStatus::Connecting { attempt }) => {
                self.conn = Conn::Connecting { attempt };
            }
            NetEvent::Status(NetStatus::Retrying { after, reason }) => {
                let after = jiff::SignedDuration::try_from(after).unwrap_or_default();
                self.conn = Conn::Retrying {
                    at: self.now + after,
                    reason,
                };
            }
            NetEvent::Status(NetStatus::Stopped { reason, new_token }) => {
                self.conn = Conn::Stopped { reason, new_token };
            }
            NetEvent::Connected(hello) => self.on_connected(hello, fx),
            NetEvent::Event(e) => self.on_event(e, fx),
            NetEvent::Synced { stream } => {
                if self.is_current(&stream) {
                    self.refresh_stale(fx);
                } else if stream == stream::OPS && self.ops.load == Load::Stale {
                    self.load_unattributed(fx);
                }
            }
            NetEvent::Reset { stream, reason } => {
                if stream == stream::OPS {
                    self.ops_reset(fx);
                } else if self.is_current(&stream) {
                    self.reload_all(fx);
                    if reason != ResetReason::Fresh {
                        self.notify(
                            Tone::Info,
                            "Reloaded: the engine could not replay what was missed",
                        );
                    }
                }
            }
            NetEvent::Reply { call, result } => self.on_reply(call, result, fx),
            NetEvent::CallFailed { call, reason } => self.on_call_failed(call, &reason),
            NetEvent::Refused { code, message } => {
                self.notify(Tone::Error, format!("{code}: {message}"));
            }
            NetEvent::Live(_) => {}
        }
    }

    fn is_current(&self, s: &str) -> bool {
        stream::tenant_of(s).is_some_and(|t| Some(t) == self.tenant.as_deref())
    }

    fn on_connected(&mut self, hello: Hello, fx: &mut Vec<Effect>) {
        self.conn = Conn::Online;
        let tenants: Vec<String> = hello
            .principal
            .tenants
            .iter()
            .map(|t| t.id.clone())
            .collect();
        let streams = hello.streams.clone();
        self.session = Some(Session {
            principal: hello.principal,
            streams: hello.streams,
            server: hello.server,
        });
        let keep = self.tenant.as_ref().is_some_and(|t| tenants.contains(t));
        if !keep {
            match tenants.first() {
                Some(first) => self.set_tenant(first.clone(), false, fx),
                None => {
                    self.tenant = None;
                    self.inbox.load = Load::Loaded;
                }
            }
        }
        if self.has_ops() && self.tenant.is_none() {
            // An ops login has no inbox of its own: its screen is the ops view.
            self.screen = super::Screen::Ops;
        } else if !self.has_ops() {
            self.screen = super::Screen::Inbox;
        }
        // A tenant without a stream will not be reset or synced: load it now.
        let has_stream = self
            .tenant
            .as_ref()
            .is_some_and(|t| streams.contains(&stream::tenant(t)));
        if !has_stream {
            self.refresh_stale(fx);
        }
        self.resend_outbox(fx);
    }

    /// After a reset: everything on screen from this tenant is asked for again.
    fn reload_all(&mut self, fx: &mut Vec<Effect>) {
        self.reload_inbox(true, fx);
        self.load_latest(fx);
        self.codes = None;
        self.codes_loading = false;
        self.load_codes(fx);
        if self.composer.preview == Preview::Waiting {
            self.request_preview(fx);
        }
        self.load_consent(true, fx);
    }

    pub(super) fn apply_conversation(&mut self, c: Conversation) {
        if let Some(t) = self.thread.as_mut().filter(|t| t.conversation.id == c.id) {
            t.conversation = c.clone();
        }
        self.inbox.apply(c);
    }

    fn open_id(&self) -> Option<&str> {
        self.thread.as_ref().map(|t| t.id())
    }

    fn system_line(&mut self, e: &Event, conversation: &str, text: String, tone: LineTone) {
        if let Some(t) = self.thread.as_mut().filter(|t| t.id() == conversation) {
            let id = format!("{}#{}", e.stream, e.seq);
            t.push_system(SystemLine {
                id,
                at: e.ts.clone(),
                text,
                tone,
            });
        }
    }

    fn on_event(&mut self, e: Event, fx: &mut Vec<Effect>) {
        if e.stream == stream::OPS {
            return self.on_ops_event(&e);
        }
        let Some(tenant) = stream::tenant_of(&e.stream) else {
            return;
        };
        if Some(tenant) != self.tenant.as_deref() {
            if e.kind == kind::MESSAGE_RECEIVED {
                *self.tenant_news.entry(tenant.to_string()).or_default() += 1;
                if self.bell {
                    fx.push(Effect::Bell);
                }
            }
            return;
        }
        match e.kind.as_str() {
            kind::MESSAGE_RECEIVED | kind::MESSAGE_CREATED | kind::MESSAGE_STATUS => {
                let Ok(data) = parse::<MessageEventData>(e.data.clone()) else {
                    return tracing::warn!(kind = %e.kind, "event data not understood");
                };
                let m = data.message;
                if let Some(c) = data.conversation {
                    self.apply_conversation(c);
                }
                let conv = m.conversation.clone().unwrap_or_default();
                let open = self.open_id() == Some(conv.as_str());
                if e.kind == kind::MESSAGE_CREATED
                    && let Some(key) = m.client_msg_id.as_deref()
                    && self.composer.outgoing_by_key(key).is_some()
                {
                    self.composer.sent(&conv);
                }
                let inbound = e.kind == kind::MESSAGE_RECEIVED && m.direction == Direction::In;
                if open {
                    if let Some(t) = self.thread.as_mut() {
                        t.upsert(m);
                    }
                    if inbound && self.focus != Focus::Inbox {
                        self.mark_read(fx);
                    }
                } else if inbound && self.bell {
                    fx.push(Effect::Bell);
                }
            }
            kind::CONVERSATION_UPDATED => {
                let Ok(data) = parse::<ConversationEventData>(e.data.clone()) else {
                    return;
                };
                let c = data.conversation;
                let before = self
                    .thread
                    .as_ref()
                    .filter(|t| t.id() == c.id)
                    .map(|t| t.conversation.clone());
                if let Some(b) = before {
                    if b.status != c.status {
                        let text = format!("Status: {} → {}", b.status.as_str(), c.status.as_str());
                        self.system_line(&e, &c.id, text, LineTone::Info);
                    }
                    if b.code != c.code {
                        let text = format!(
                            "Replies now go out on {} ({})",
                            c.code,
                            format::code_kind(c.code_kind)
                        );
                        self.system_line(&e, &c.id, text, LineTone::Info);
                    }
                    if b.assignee != c.assignee {
                        let who = self.assignee_label(c.assignee.as_deref());
                        self.system_line(&e, &c.id, format!("Assigned to {who}"), LineTone::Info);
                    }
                }
                self.apply_conversation(c);
            }
            kind::ATTRIBUTION_LOST | kind::ATTRIBUTION_REGAINED => {
                let Ok(data) = parse::<AttributionEventData>(e.data.clone()) else {
                    return;
                };
                let lost = e.kind == kind::ATTRIBUTION_LOST;
                let id = data.conversation.id.clone();
                let text = if lost {
                    format!(
                        "Attribution lost on {}: replies from this subscriber now go to another business",
                        data.code
                    )
                } else {
                    format!(
                        "Attribution regained on {}: replies come here again",
                        data.code
                    )
                };
                let tone = if lost { LineTone::Warn } else { LineTone::Info };
                self.system_line(&e, &id, text, tone);
                if lost && self.open_id() == Some(id.as_str()) {
                    self.notify(Tone::Warn, format!("Attribution lost on {}", data.code));
                }
                self.apply_conversation(data.conversation);
            }
            kind::CONSENT_CHANGED => {
                let Ok(data) = parse::<ConsentEventData>(e.data.clone()) else {
                    return;
                };
                let state = match data.consent {
                    ConsentState::None => "none",
                    state => subscriber::consent_word(state),
                };
                let me = self.principal().map(|p| p.agent.clone());
                let source = subscriber::source_label(&data.source, me.as_deref());
                let open_sub = self
                    .thread
                    .as_ref()
                    .map(|t| (t.id().to_string(), t.conversation.subscriber.clone()));
                if let Some((id, _)) = open_sub.filter(|(_, s)| *s == data.subscriber) {
                    let tone = if data.consent == ConsentState::OptedOut {
                        LineTone::Warn
                    } else {
                        LineTone::Info
                    };
                    self.system_line(&e, &id, format!("Consent: {state} ({source})"), tone);
                }
                if let Some(c) = data.conversation {
                    self.apply_conversation(c);
                }
                self.consent_changed(&data.subscriber, fx);
            }
            kind::SPEND_NOTICE => {
                let Ok(d) = parse::<SpendNoticeData>(e.data.clone()) else {
                    return;
                };
                let (tone, what) = if d.percent >= 100 {
                    (
                        Tone::Error,
                        "Spend limit reached: paid sends are refused until next month",
                    )
                } else {
                    (Tone::Warn, "Spend near this month's limit")
                };
                self.notify(
                    tone,
                    format!(
                        "{what} ({}%: {} of {})",
                        d.percent,
                        format::money(d.spent_micros),
                        format::money(d.limit_micros)
                    ),
                );
                self.spend.insert(d.tenant.clone(), d);
            }
            _ => {}
        }
    }

    /// "you", an agent id, or "nobody".
    pub fn assignee_label(&self, assignee: Option<&str>) -> String {
        match assignee {
            None | Some("") => "nobody".into(),
            Some(a) if self.principal().is_some_and(|p| p.agent == a) => "you".into(),
            Some(a) => a.to_string(),
        }
    }

    fn on_reply(&mut self, call: CallId, result: Result<Value, ApiError>, fx: &mut Vec<Effect>) {
        let Some(purpose) = self.calls.remove(&call) else {
            return;
        };
        match purpose {
            Purpose::List {
                tenant,
                generation,
                asked_at,
                first,
            } => {
                if Some(&tenant) != self.tenant.as_ref() || generation != self.inbox.generation {
                    return;
                }
                match result.and_then(parse::<ConversationsListResult>) {
                    Ok(page) => {
                        self.inbox.take_page(page.items, page.next, first, asked_at);
                        let page = crate::client::ui::layout::inbox_page(self);
                        self.inbox.scroll_to_selection(page);
                        self.load_more_if_needed(fx);
                    }
                    Err(e) => {
                        self.inbox.load = Load::Loaded;
                        self.inbox.loading_more = false;
                        self.notify(
                            Tone::Error,
                            format!("Could not load conversations: {}", e.message),
                        );
                    }
                }
            }
            Purpose::History {
                conversation,
                latest,
            } => {
                if self.open_id() != Some(conversation.as_str()) {
                    return;
                }
                match result.and_then(parse::<HistoryResult>) {
                    Ok(page) => {
                        if let Some(t) = self.thread.as_mut() {
                            t.take_page(page.items, page.next, latest);
                        }
                        if latest && self.focus != Focus::Inbox {
                            self.mark_read(fx);
                        }
                    }
                    Err(e) => {
                        if let Some(t) = self.thread.as_mut() {
                            t.older = Older::Complete;
                        }
                        self.notify(
                            Tone::Error,
                            format!("Could not load history: {}", e.message),
                        );
                    }
                }
            }
            Purpose::Update { what, .. } => match result.and_then(parse::<Conversation>) {
                Ok(c) => {
                    if what != "mark read" {
                        let done = match what {
                            "resolve" => "Resolved".to_string(),
                            "reopen" => "Reopened".to_string(),
                            "mark unread" => "Marked unread".to_string(),
                            "assign" => "Assigned to you".to_string(),
                            "switch code" => format!("Replies now go out on {}", c.code),
                            other => other.to_string(),
                        };
                        self.notify(Tone::Info, done);
                    }
                    self.apply_conversation(c);
                }
                Err(e) => self.notify(Tone::Error, format!("Could not {what}: {}", e.message)),
            },
            Purpose::Send { conversation } => self.on_send_answer(conversation, result),
            Purpose::Preview {
                conversation,
                generation,
            } => {
                if self.composer.conversation.as_deref() != Some(conversation.as_str())
                    || self.composer.generation != generation
                {
                    return;
                }
                self.composer.preview = match result.and_then(parse::<PreviewResult>) {
                    Ok(p) => Preview::Ready(p),
                    Err(e) => Preview::Failed(e.message),
                };
            }
            Purpose::Codes { tenant } => {
                if Some(&tenant) != self.tenant.as_ref() {
                    return;
                }
                self.codes_loading = false;
                match result.and_then(parse::<CodesListResult>) {
                    Ok(r) => self.codes = Some(r.items),
                    Err(e) => {
                        self.codes = Some(Vec::new());
                        tracing::warn!(error = %e, "codes.list failed");
                    }
                }
            }
            Purpose::Consent { conversation } => self.on_consent_answer(conversation, result),
            Purpose::OptOut { subscriber, .. } => self.on_opt_out_answer(&subscriber, result, fx),
            Purpose::Unattributed => self.on_queue_answer(result),
            Purpose::Tenants => self.on_tenants_answer(result),
            Purpose::Assign {
                message,
                subscriber,
                tenant,
            } => self.on_assign_answer(&message, &subscriber, &tenant, result),
        }
    }

    fn on_send_answer(&mut self, conversation: String, result: Result<Value, ApiError>) {
        if !self.composer.outbox.contains_key(&conversation) {
            // Already settled by the `message.created` event.
            return;
        }
        match result.and_then(parse::<SendResult>) {
            Ok(r) => {
                if let Some(t) = self.thread.as_mut().filter(|t| t.id() == conversation) {
                    t.upsert(r.message);
                    t.scroll = super::thread::Scroll::Bottom;
                }
                self.composer.sent(&conversation);
            }
            Err(e) => {
                if e.code == ErrorCode::AttributionShifted {
                    self.attribution_refused(&conversation, &e);
                }
                self.composer.refused(&conversation, e);
            }
        }
    }

    /// The engine refused a send because attribution moved: ask what to do, offering the
    /// alternatives it named and the dedicated codes we know.
    fn attribution_refused(&mut self, conversation: &str, e: &ApiError) {
        let details = e.details.clone().unwrap_or(Value::Null);
        let conv = self
            .thread
            .as_ref()
            .filter(|t| t.id() == conversation)
            .map(|t| t.conversation.clone());
        let code = details["code"]
            .as_str()
            .map(str::to_string)
            .or_else(|| conv.as_ref().map(|c| c.code.clone()));
        let since = details["since"].as_str().map(str::to_string);
        let mut alternatives: Vec<String> = details["alternatives"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| {
                a.as_str()
                    .or_else(|| a["code"].as_str())
                    .map(str::to_string)
            })
            .collect();
        if let Some(c) = &conv {
            for k in self.dedicated_in(&c.country) {
                if !alternatives.contains(&k) {
                    alternatives.push(k);
                }
            }
        }
        self.overlay = Some(Overlay::Attribution(AttributionPrompt {
            conversation: conversation.to_string(),
            code: code.unwrap_or_default(),
            since,
            alternatives,
            selected: 0,
        }));
    }

    fn on_call_failed(&mut self, call: CallId, reason: &str) {
        let Some(purpose) = self.calls.remove(&call) else {
            return;
        };
        tracing::debug!(call, reason, ?purpose, "call lost");
        match purpose {
            Purpose::List {
                generation, first, ..
            } => {
                if generation == self.inbox.generation {
                    if first {
                        self.inbox.load = Load::Stale;
                    }
                    self.inbox.loading_more = false;
                }
            }
            Purpose::History {
                conversation,
                latest,
            } => {
                if let Some(t) = self.thread.as_mut().filter(|t| t.id() == conversation) {
                    if latest {
                        t.older = Older::NotLoaded;
                    } else if let Some(oldest) = t.oldest_message_id() {
                        t.older = Older::More(oldest.to_string());
                    }
                }
            }
            Purpose::Update { what, .. } => {
                if what != "mark read" {
                    self.notify(
                        Tone::Warn,
                        format!("Could not {what}: the connection dropped"),
                    );
                }
            }
            Purpose::Send { conversation } => {
                if let Some(o) = self.composer.outbox.get_mut(&conversation) {
                    o.call = None;
                }
            }
            Purpose::Preview { generation, .. } => {
                if generation == self.composer.generation && !self.composer.is_blank() {
                    self.composer.preview = Preview::Waiting;
                }
            }
            Purpose::Codes { .. } => self.codes_loading = false,
            Purpose::Consent { conversation } => self.consent_lost(&conversation),
            Purpose::OptOut { subscriber, .. } => {
                let who = format::phone(&subscriber).into_owned();
                self.notify(
                    Tone::Warn,
                    format!(
                        "The connection dropped before the engine answered: check the subscriber \
                         pane (s) to see whether the opt-out for {who} was recorded"
                    ),
                );
            }
            Purpose::Unattributed => self.ops.load = Load::Stale,
            Purpose::Tenants => self.tenants_lost(),
            Purpose::Assign { tenant, .. } => self.notify(
                Tone::Warn,
                format!("Could not assign to {tenant}: the connection dropped"),
            ),
        }
    }
}
