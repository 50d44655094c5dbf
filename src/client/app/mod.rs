//! The App: all client state, changed only by [`App::update`], which is pure.
//!
//! Events come in (keys, pastes, protocol traffic from the network task, connection state,
//! timer ticks); effects go out (calls to send, a bell, a timer to set, quit). No IO, no
//! async, no clock: "now" arrives with ticks, so tests drive the App event by event and
//! snapshots are deterministic. The loop drains every queued event, then draws once if
//! [`App::take_dirty`] says something changed.
//!
//! Submodules: `inbox` and `thread` hold data, `composer` the reply being written, `keys`
//! maps keys to actions, `actions` carries the actions out, `incoming` applies what the
//! engine said; `subscriber` holds consent (the subscriber pane, recording an opt-out) and
//! `ops` the cross-tenant view (unattributed queue, attribution changes).

mod actions;
pub mod composer;
pub mod inbox;
mod incoming;
mod keys;
pub mod ops;
pub mod subscriber;
pub mod thread;

pub use keys::HELP;

#[cfg(test)]
mod ops_tests;
#[cfg(test)]
mod subscriber_tests;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use ratatui::crossterm::event::KeyEvent;
use serde_json::Value;

use crate::client::net::{CallId, NetEvent};
use crate::protocol::{CodeInfo, Principal};
use composer::Composer;
use inbox::Inbox;
use ops::{AssignPicker, Ops};
use subscriber::{ConsentView, OptOutPrompt};
use thread::Thread;

/// Everything the App reacts to.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Key(KeyEvent),
    Paste(String),
    Resize(u16, u16),
    /// The clock moved (about once a second).
    Tick(Timestamp),
    Net(NetEvent),
    Timer(Timer),
}

impl From<NetEvent> for Event {
    fn from(e: NetEvent) -> Self {
        Event::Net(e)
    }
}

/// A timer the App asked for with [`Effect::Schedule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The composer's text has been still long enough to ask for a preview.
    Preview { generation: u64 },
}

/// What the loop does for the App.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Call {
        id: CallId,
        method: &'static str,
        params: Value,
    },
    Schedule {
        after: Duration,
        timer: Timer,
    },
    Bell,
    ReconnectNow,
    Quit,
}

/// How long the composer waits after the last keystroke before asking for a preview.
pub const PREVIEW_DEBOUNCE: Duration = Duration::from_millis(250);

/// What fills the screen between the two bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// The tenant's inbox, thread and composer.
    Inbox,
    /// Ops: the unattributed queue and the live attribution changes across tenants.
    Ops,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Inbox,
    Thread,
    Composer,
}

/// The connection as the agent sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Conn {
    Connecting { attempt: u32 },
    Online,
    Retrying { at: Timestamp, reason: String },
    Stopped { reason: String, new_token: bool },
}

/// A modal box over the screen; it takes every key until closed.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    Help {
        scroll: u16,
    },
    ConfirmQuit {
        unsent: usize,
    },
    Attribution(AttributionPrompt),
    CodePicker {
        conversation: String,
        codes: Vec<CodeInfo>,
        selected: usize,
    },
    /// "Record an opt-out for +1…? y/n"
    ConfirmOptOut(OptOutPrompt),
    /// Ops: which tenant gets an unattributed message.
    AssignTenant(AssignPicker),
}

/// The question asked before sending where attribution was lost (domain rule A4).
#[derive(Debug, Clone, PartialEq)]
pub struct AttributionPrompt {
    pub conversation: String,
    pub code: String,
    pub since: Option<String>,
    /// Dedicated codes of the tenant in the subscriber's country.
    pub alternatives: Vec<String>,
    /// The alternative `d` sends from (when there are several, the agent chooses).
    pub selected: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Info,
    Warn,
    Error,
}

/// A short message in the status bar that goes away by itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub text: String,
    pub tone: Tone,
    pub until: Timestamp,
}

/// What a call was for, to know what to do with its answer.
#[derive(Debug, Clone, PartialEq)]
enum Purpose {
    List {
        tenant: String,
        generation: u64,
        asked_at: u64,
        first: bool,
    },
    History {
        conversation: String,
        latest: bool,
    },
    Update {
        conversation: String,
        what: &'static str,
    },
    Send {
        conversation: String,
    },
    Preview {
        conversation: String,
        generation: u64,
    },
    Codes {
        tenant: String,
    },
    Consent {
        conversation: String,
    },
    OptOut {
        conversation: String,
        subscriber: String,
    },
    Unattributed,
    Tenants,
    Assign {
        message: String,
        subscriber: String,
        tenant: String,
    },
}

/// The session `hello` described.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub principal: Principal,
    pub streams: Vec<String>,
    pub server: String,
}

pub struct AppConfig {
    /// The engine URL, shown in the status bar.
    pub url: String,
    /// Ring the bell on inbound messages outside the open conversation.
    pub bell: bool,
    /// The zone times are shown in.
    pub tz: TimeZone,
    pub now: Timestamp,
    /// Terminal size (columns, rows).
    pub size: (u16, u16),
}

pub struct App {
    pub url: String,
    pub bell: bool,
    pub tz: TimeZone,
    pub now: Timestamp,
    pub size: (u16, u16),
    pub conn: Conn,
    pub session: Option<Session>,
    /// The tenant whose inbox is shown.
    pub tenant: Option<String>,
    /// New inbound messages in tenants not on screen.
    pub tenant_news: HashMap<String, u32>,
    pub inbox: Inbox,
    pub thread: Option<Thread>,
    pub composer: Composer,
    /// Codes of the current tenant (`codes.list`).
    pub codes: Option<Vec<CodeInfo>>,
    codes_loading: bool,
    pub screen: Screen,
    pub focus: Focus,
    /// The subscriber pane is shown (beside the open conversation).
    pub subscriber_pane: bool,
    /// Consent of the open conversation's subscriber (`consent.history`), once asked for.
    pub consent: Option<ConsentView>,
    /// The latest `spend.notice` of each tenant, shown in the status bar for its month.
    pub spend: HashMap<String, crate::protocol::SpendNoticeData>,
    pub ops: Ops,
    pub overlay: Option<Overlay>,
    /// The search being typed (`/`), before it is applied.
    pub search: Option<String>,
    pub notice: Option<Notice>,
    next_call: CallId,
    calls: HashMap<CallId, Purpose>,
    dirty: bool,
}

impl App {
    pub fn new(config: AppConfig) -> Self {
        App {
            url: config.url,
            bell: config.bell,
            tz: config.tz,
            now: config.now,
            size: config.size,
            conn: Conn::Connecting { attempt: 1 },
            session: None,
            tenant: None,
            tenant_news: HashMap::new(),
            inbox: Inbox::default(),
            thread: None,
            composer: Composer::default(),
            codes: None,
            codes_loading: false,
            screen: Screen::Inbox,
            focus: Focus::Inbox,
            subscriber_pane: false,
            consent: None,
            spend: HashMap::new(),
            ops: Ops::default(),
            overlay: None,
            search: None,
            notice: None,
            next_call: 1,
            calls: HashMap::new(),
            dirty: true,
        }
    }

    /// Applies one event; returns what the loop must do. Pure: no IO, no clock.
    pub fn update(&mut self, event: Event) -> Vec<Effect> {
        let mut fx = Vec::new();
        match event {
            Event::Tick(now) => self.on_tick(now),
            Event::Resize(w, h) => {
                self.size = (w, h);
                self.dirty = true;
            }
            Event::Key(key) => {
                self.dirty = true;
                self.on_key(key, &mut fx);
            }
            Event::Paste(text) => {
                self.dirty = true;
                self.on_paste(&text, &mut fx);
            }
            Event::Net(net) => {
                // Ops traffic metrics are not shown: they change nothing on screen.
                if !matches!(net, NetEvent::Live(_)) {
                    self.dirty = true;
                }
                self.on_net(net, &mut fx);
            }
            Event::Timer(Timer::Preview { generation }) => self.preview_due(generation, &mut fx),
        }
        fx
    }

    /// True once after anything visible changed: the loop draws then.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn is_online(&self) -> bool {
        self.conn == Conn::Online
    }

    /// Whether this session may see the ops stream (ops and owner).
    pub fn has_ops(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| s.streams.iter().any(|x| x == crate::protocol::stream::OPS))
    }

    pub fn principal(&self) -> Option<&Principal> {
        self.session.as_ref().map(|s| &s.principal)
    }

    /// The display name of the tenant on screen.
    pub fn tenant_name(&self) -> Option<&str> {
        let id = self.tenant.as_deref()?;
        let p = self.principal()?;
        p.tenants
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.name.as_str())
    }

    /// The conversation an action applies to: the open one from the thread or composer, the
    /// selected row from the inbox.
    pub fn target(&self) -> Option<&crate::protocol::Conversation> {
        match self.focus {
            Focus::Inbox => self.inbox.selected(),
            Focus::Thread | Focus::Composer => self.thread.as_ref().map(|t| &t.conversation),
        }
    }

    /// Calls waiting for an answer, by method (for tests and the status bar).
    pub fn pending_calls(&self) -> usize {
        self.calls.len()
    }

    fn call(
        &mut self,
        method: &'static str,
        params: Value,
        purpose: Purpose,
        fx: &mut Vec<Effect>,
    ) -> CallId {
        let id = self.next_call;
        self.next_call += 1;
        self.calls.insert(id, purpose);
        fx.push(Effect::Call { id, method, params });
        id
    }

    fn notify(&mut self, tone: Tone, text: impl Into<String>) {
        let secs = if tone == Tone::Error { 8 } else { 4 };
        self.notice = Some(Notice {
            text: text.into(),
            tone,
            until: self.now + jiff::SignedDuration::from_secs(secs),
        });
        self.dirty = true;
    }

    fn on_tick(&mut self, now: Timestamp) {
        let before = self.now;
        self.now = now;
        if self.notice.as_ref().is_some_and(|n| n.until <= now) {
            self.notice = None;
            self.dirty = true;
        }
        if matches!(self.conn, Conn::Retrying { .. }) && before.as_second() != now.as_second() {
            self.dirty = true;
        }
        if !self.dirty && self.visible_times_changed(before, now) {
            self.dirty = true;
        }
    }

    /// Whether any relative time on screen reads differently at `now` than at `before`.
    fn visible_times_changed(&self, before: Timestamp, now: Timestamp) -> bool {
        let rows = crate::client::ui::layout::inbox_page(self);
        let start = self.inbox.window_start(rows);
        (start..(start + rows).min(self.inbox.len())).any(|i| {
            self.inbox.row(i).is_some_and(|c| {
                let f = |t| crate::client::format::relative(t, &c.last_activity, &self.tz);
                f(before) != f(now)
            })
        })
    }
}
