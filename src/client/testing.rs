//! Test support: fixture protocol objects and a harness that drives an [`App`] through its
//! real flows (hello, reset, list, history) without a socket, then renders it to a
//! `TestBackend`. Used by the unit tests, `tests/tui_*.rs` snapshots, and benches.

use std::collections::HashSet;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::{Value, json};

use crate::client::app::{App, AppConfig, Effect, Event};
use crate::client::net::{CallId, NetEvent};
use crate::protocol::{
    ApiError, Attribution, AttributionState, CodeInfo, CodeKind, ConsentState, Conversation,
    ConversationStatus, Direction, Encoding, Hello, Message, MessageStatus, Principal, ResetReason,
    Role, TenantRef, stream,
};

/// The "now" of every fixture: Sunday 22 November 2026, 12:00 UTC.
pub const NOW: &str = "2026-11-22T12:00:00Z";

pub fn now() -> Timestamp {
    NOW.parse().expect("fixture time")
}

/// `HH:MM` on the fixture day, as the wire writes times.
pub fn at(h: u32, m: u32) -> String {
    format!("2026-11-22T{h:02}:{m:02}:00.000Z")
}

fn principal(role: Role, tenants: &[(&str, &str)]) -> Principal {
    Principal {
        agent: "ag_ana".into(),
        name: "Ana".into(),
        role,
        tenants: tenants
            .iter()
            .map(|(id, name)| TenantRef {
                id: id.to_string(),
                name: name.to_string(),
            })
            .collect(),
    }
}

pub fn owner(tenants: &[(&str, &str)]) -> Principal {
    principal(Role::Owner, tenants)
}

pub fn agent(tenants: &[(&str, &str)]) -> Principal {
    principal(Role::Agent, tenants)
}

/// An ops login: no tenants of its own, the `ops` stream only.
pub fn ops_login() -> Principal {
    Principal {
        agent: "ag_olga".into(),
        name: "Olga".into(),
        role: Role::Ops,
        tenants: Vec::new(),
    }
}

/// A `hello` listing one stream per tenant of `p`, and `ops`.
pub fn hello_with_ops(p: Principal) -> Hello {
    let mut h = hello(p);
    h.streams.push(stream::OPS.into());
    h
}

/// A `hello` listing one stream per tenant of `p`.
pub fn hello(p: Principal) -> Hello {
    let streams = p.tenants.iter().map(|t| stream::tenant(&t.id)).collect();
    Hello {
        proto: 1,
        server: "shortbox/0.1.0".into(),
        conn: "c_test".into(),
        heartbeat_ms: 20_000,
        principal: p,
        streams,
    }
}

fn message(id: &str, conv: &str, direction: Direction, body: &str, when: &str) -> Message {
    Message {
        id: id.into(),
        conversation: Some(conv.into()),
        tenant: Some("acme".into()),
        direction,
        code: "55123".into(),
        subscriber: "+14155550100".into(),
        body: body.into(),
        encoding: Encoding::Gsm7,
        segments: 1,
        cost_micros: 7_900,
        status: if direction == Direction::In {
            MessageStatus::Received
        } else {
            MessageStatus::Delivered
        },
        created_at: when.into(),
        client_msg_id: None,
        author: (direction == Direction::Out).then(|| "ag_ana".into()),
        routed_by: None,
        evidence: None,
        error: None,
        reclaim: false,
        opt_out_intent: false,
    }
}

pub fn inbound(id: &str, conv: &str, body: &str, when: &str) -> Message {
    message(id, conv, Direction::In, body, when)
}

pub fn outbound(id: &str, conv: &str, body: &str, when: &str) -> Message {
    message(id, conv, Direction::Out, body, when)
}

pub fn code(code: &str, kind: CodeKind, country: &str) -> CodeInfo {
    CodeInfo {
        code: code.into(),
        country: country.into(),
        kind,
        tenant: (kind == CodeKind::Dedicated).then(|| "acme".into()),
        mps: 100,
    }
}

/// Builds a conversation summary with sensible defaults.
pub struct ConvBuilder(Conversation);

impl ConvBuilder {
    pub fn new(id: &str, subscriber: &str) -> Self {
        ConvBuilder(Conversation {
            id: id.into(),
            tenant: "acme".into(),
            subscriber: subscriber.into(),
            subscriber_name: None,
            code: "55123".into(),
            code_kind: CodeKind::Shared,
            country: "US".into(),
            status: ConversationStatus::Open,
            snoozed_until: None,
            assignee: None,
            unread: 0,
            last_message: None,
            last_activity: at(11, 0),
            attribution: Attribution {
                state: AttributionState::Held,
                since: None,
            },
            consent: ConsentState::OptedIn,
            opt_out_intent: false,
        })
    }

    pub fn name(mut self, n: &str) -> Self {
        self.0.subscriber_name = Some(n.into());
        self
    }

    pub fn code(mut self, code: &str, kind: CodeKind) -> Self {
        self.0.code = code.into();
        self.0.code_kind = kind;
        if kind == CodeKind::Dedicated {
            self.0.attribution.state = AttributionState::Dedicated;
        }
        self
    }

    pub fn status(mut self, s: ConversationStatus) -> Self {
        self.0.status = s;
        self
    }

    pub fn unread(mut self, n: u32) -> Self {
        self.0.unread = n;
        self
    }

    pub fn activity(mut self, when: &str) -> Self {
        self.0.last_activity = when.into();
        self
    }

    pub fn lost(mut self, since: &str) -> Self {
        self.0.attribution = Attribution {
            state: AttributionState::Lost,
            since: Some(since.into()),
        };
        self
    }

    pub fn consent(mut self, c: ConsentState) -> Self {
        self.0.consent = c;
        self
    }

    /// The subscriber wrote something that reads like an opt-out request.
    pub fn intent(mut self) -> Self {
        self.0.opt_out_intent = true;
        self
    }

    pub fn assignee(mut self, a: &str) -> Self {
        self.0.assignee = Some(a.into());
        self
    }

    /// Sets the last message (and the activity time to its time).
    pub fn last(mut self, m: Message) -> Self {
        self.0.last_activity = m.created_at.clone();
        self.0.last_message = Some(Message {
            subscriber: self.0.subscriber.clone(),
            ..m
        });
        self
    }

    pub fn build(self) -> Conversation {
        self.0
    }
}

/// An App with a log of what it asked for, answered by hand.
pub struct Harness {
    pub app: App,
    pub effects: Vec<Effect>,
    answered: HashSet<CallId>,
    seq: u64,
}

impl Harness {
    pub fn new(size: (u16, u16)) -> Self {
        let app = App::new(AppConfig {
            url: "ws://127.0.0.1:7878/v1/ws".into(),
            bell: true,
            tz: TimeZone::UTC,
            now: now(),
            size,
        });
        Harness {
            app,
            effects: Vec::new(),
            answered: HashSet::new(),
            seq: 0,
        }
    }

    pub fn send(&mut self, event: Event) -> Vec<Effect> {
        let fx = self.app.update(event);
        self.effects.extend(fx.iter().cloned());
        fx
    }

    pub fn net(&mut self, e: NetEvent) -> Vec<Effect> {
        self.send(Event::Net(e))
    }

    pub fn key(&mut self, code: KeyCode) -> Vec<Effect> {
        self.key_with(code, KeyModifiers::NONE)
    }

    pub fn key_with(&mut self, code: KeyCode, mods: KeyModifiers) -> Vec<Effect> {
        self.send(Event::Key(KeyEvent::new(code, mods)))
    }

    pub fn type_text(&mut self, s: &str) {
        for c in s.chars() {
            self.key(KeyCode::Char(c));
        }
    }

    /// `hello` and a fresh reset of every tenant stream: the App asks for what it shows.
    pub fn connect(&mut self, hello: Hello) {
        let streams = hello.streams.clone();
        self.net(NetEvent::Connected(hello));
        for s in streams {
            self.net(NetEvent::Reset {
                stream: s,
                reason: ResetReason::Fresh,
            });
        }
    }

    /// Calls of `method` not answered yet, oldest first.
    pub fn open_calls(&self, method: &str) -> Vec<(CallId, Value)> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Call {
                    id,
                    method: m,
                    params,
                } if *m == method && !self.answered.contains(id) => Some((*id, params.clone())),
                _ => None,
            })
            .collect()
    }

    /// The newest unanswered call of `method`.
    pub fn last_call(&self, method: &str) -> Option<(CallId, Value)> {
        self.open_calls(method).pop()
    }

    /// Answers the newest unanswered call of `method`.
    pub fn reply(&mut self, method: &str, result: Result<Value, ApiError>) -> Vec<Effect> {
        let (id, _) = self
            .last_call(method)
            .unwrap_or_else(|| panic!("no open {method} call"));
        self.answered.insert(id);
        self.net(NetEvent::Reply { call: id, result })
    }

    /// Fails every unanswered call, as a dropped connection does.
    pub fn drop_calls(&mut self, reason: &str) {
        let open: Vec<CallId> = self
            .effects
            .iter()
            .filter_map(|e| match e {
                Effect::Call { id, .. } if !self.answered.contains(id) => Some(*id),
                _ => None,
            })
            .collect();
        for id in open {
            self.answered.insert(id);
            self.net(NetEvent::CallFailed {
                call: id,
                reason: reason.into(),
            });
        }
    }

    /// A stream event on `tenant:<tenant>` with the next `seq`.
    pub fn event(&mut self, tenant: &str, kind: &str, data: Value) -> Vec<Effect> {
        self.seq += 1;
        let e = crate::protocol::Event {
            stream: stream::tenant(tenant),
            epoch: "E1".into(),
            seq: self.seq,
            kind: kind.into(),
            ts: at(11, 59),
            data,
        };
        self.net(NetEvent::Event(e))
    }

    /// An event on the `ops` stream with the next `seq`.
    pub fn ops_event(&mut self, kind: &str, data: Value) -> Vec<Effect> {
        self.seq += 1;
        let e = crate::protocol::Event {
            stream: stream::OPS.into(),
            epoch: "E1".into(),
            seq: self.seq,
            kind: kind.into(),
            ts: at(11, 59),
            data,
        };
        self.net(NetEvent::Event(e))
    }

    pub fn terminal(&self) -> Terminal<TestBackend> {
        let (w, h) = self.app.size;
        let mut t = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
        t.draw(|f| crate::client::ui::draw(f, &self.app))
            .expect("draw");
        t
    }

    /// The screen as text, one quoted line per row.
    pub fn render(&self) -> String {
        self.terminal().backend().to_string()
    }
}

/// A whole scene: who is signed in, the inbox, an open conversation, the tenant's codes.
pub struct Fixture {
    pub principal: Principal,
    pub conversations: Vec<Conversation>,
    pub open: Option<(String, Vec<Message>)>,
    pub codes: Vec<CodeInfo>,
    pub size: (u16, u16),
}

impl Fixture {
    /// Drives a fresh App through connect, reset, list, codes and (when asked) opening a
    /// conversation with its history, answering each call with the fixture's data.
    pub fn build(self) -> Harness {
        let mut h = Harness::new(self.size);
        h.connect(hello(self.principal));
        h.reply(
            "conversations.list",
            Ok(json!({ "items": self.conversations, "next": null })),
        );
        h.reply("codes.list", Ok(json!({ "items": self.codes })));
        if let Some((id, messages)) = self.open {
            let page = crate::client::ui::layout::inbox_page(&h.app);
            h.app.inbox.select_id(&id, page);
            h.key(KeyCode::Enter);
            h.reply(
                "conversations.history",
                Ok(json!({ "items": messages, "next": null })),
            );
            if h.last_call("conversations.update").is_some() {
                let conv = h.app.thread.as_ref().map(|t| Conversation {
                    unread: 0,
                    ..t.conversation.clone()
                });
                h.reply("conversations.update", Ok(json!(conv)));
            }
        }
        h
    }
}

/// The demo scene the snapshots use: five conversations of Acme Shoes, one with attribution
/// lost, one opted out, one resolved.
pub fn demo_conversations() -> Vec<Conversation> {
    vec![
        ConvBuilder::new("c1", "+14155550100")
            .name("Jane Doe")
            .unread(2)
            .last(inbound(
                "m13",
                "c1",
                "Is my order shipped? It was supposed to arrive Friday.",
                &at(11, 57),
            ))
            .build(),
        ConvBuilder::new("c2", "+14155550123")
            .lost(&at(10, 7))
            .unread(1)
            .last(inbound(
                "m22",
                "c2",
                "Do you still have the red sneakers in size 9?",
                &at(11, 40),
            ))
            .build(),
        ConvBuilder::new("c3", "+12125550199")
            .name("Marco Rossi")
            .code("77001", CodeKind::Dedicated)
            .assignee("ag_ana")
            .last(outbound(
                "m31",
                "c3",
                "Your order #4411 is on its way!",
                &at(9, 15),
            ))
            .build(),
        ConvBuilder::new("c4", "+13105550142")
            .consent(ConsentState::OptedOut)
            .last(inbound("m41", "c4", "STOP", &at(8, 2)))
            .build(),
        ConvBuilder::new("c5", "+16175550111")
            .name("Li Wei")
            .status(ConversationStatus::Resolved)
            .activity("2026-11-19T16:30:00.000Z")
            .last(outbound(
                "m51",
                "c5",
                "Thanks for shopping with us.",
                "2026-11-19T16:30:00.000Z",
            ))
            .build(),
    ]
}

/// An unattributed inbound message (no tenant, no conversation) on the shared code.
pub fn unattributed(id: &str, subscriber: &str, body: &str, when: &str) -> Message {
    Message {
        conversation: None,
        tenant: None,
        subscriber: subscriber.into(),
        ..inbound(id, "", body, when)
    }
}

/// A consent history answer: (state, at, source) oldest first.
pub fn consent_history(consent: &str, blocked: bool, items: &[(&str, &str, &str)]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|(state, at, source)| json!({ "state": state, "at": at, "message": null, "source": source }))
        .collect();
    json!({ "consent": consent, "code_blocked": blocked, "items": items })
}

/// The thread of `c1` in the demo scene.
pub fn demo_thread() -> Vec<Message> {
    let mut m12 = outbound(
        "m12",
        "c1",
        "Hi Jane! Let me check on that for you.",
        &at(11, 52),
    );
    m12.status = MessageStatus::Delivered;
    vec![
        inbound(
            "m10",
            "c1",
            "Hello, I ordered boots last week (order #4410).",
            "2026-11-21T18:02:00.000Z",
        ),
        outbound(
            "m11",
            "c1",
            "Thanks Jane, we got it. It ships Monday.",
            "2026-11-21T18:10:00.000Z",
        ),
        m12,
        inbound(
            "m13",
            "c1",
            "Is my order shipped? It was supposed to arrive Friday.",
            &at(11, 57),
        ),
    ]
}

/// The demo scene, Acme Shoes and Bolt Bikes, `c1` open or not.
pub fn demo(size: (u16, u16), open: bool) -> Harness {
    Fixture {
        principal: owner(&[("acme", "Acme Shoes"), ("bolt", "Bolt Bikes")]),
        conversations: demo_conversations(),
        open: open.then(|| ("c1".to_string(), demo_thread())),
        codes: vec![
            code("55123", CodeKind::Shared, "US"),
            code("77001", CodeKind::Dedicated, "US"),
        ],
        size,
    }
    .build()
}
