//! The ops view: for principals whose `hello` lists the `ops` stream (ops and owner), the
//! unattributed queue (`unattributed.list`, then live `unattributed.received`) and a live
//! feed of attribution changes across tenants (`attribution.changed`, both names).
//!
//! An unattributed message is given to a tenant with `unattributed.assign`. The tenants to
//! pick from are the principal's own (an owner sees every tenant) plus every tenant named in
//! an attribution change seen in this session; a principal of role `ops` has no tenants of
//! its own, so until changes have been seen the agent types the tenant id.

use std::collections::{BTreeMap, VecDeque};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;
use serde_json::{Value, json};

use super::inbox::{Load, View};
use super::{App, Effect, Focus, Overlay, Purpose, Screen, Tone};
use crate::client::format;
use crate::protocol::{
    ApiError, AttributionChangedData, Event, Message, TenantRef, UnattributedData, kind, method,
};

/// Changes kept in the feed; older ones fall off the bottom.
pub const FEED_MAX: usize = 200;
/// Most queue items asked for (the engine's page limit).
const QUEUE_PAGE: u32 = 200;

/// An inbound message no tenant owns, and why, when the engine said.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Unattributed {
    #[serde(flatten)]
    pub message: Message,
    /// Sent with `unattributed.received`; `unattributed.list` items carry it when the engine
    /// adds it to them.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct QueuePage {
    items: Vec<Unattributed>,
}

/// One line of the attribution feed.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributionMove {
    /// When the event was appended.
    pub at: String,
    pub change: AttributionChangedData,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ops {
    /// Newest first.
    pub queue: Vec<Unattributed>,
    pub selected: usize,
    /// Newest first, at most [`FEED_MAX`].
    pub feed: VecDeque<AttributionMove>,
    pub load: Load,
    /// Tenants named in attribution changes, by id.
    pub seen: BTreeMap<String, String>,
}

impl Default for Ops {
    fn default() -> Self {
        Ops {
            queue: Vec::new(),
            selected: 0,
            feed: VecDeque::new(),
            load: Load::Stale,
            seen: BTreeMap::new(),
        }
    }
}

impl Ops {
    pub fn selected(&self) -> Option<&Unattributed> {
        self.queue.get(self.selected)
    }

    fn clamp(&mut self) {
        self.selected = self.selected.min(self.queue.len().saturating_sub(1));
    }

    fn remove(&mut self, message: &str) -> bool {
        let before = self.queue.len();
        let selected_id = self.selected().map(|u| u.message.id.clone());
        self.queue.retain(|u| u.message.id != message);
        if let Some(id) = selected_id
            && let Some(i) = self.queue.iter().position(|u| u.message.id == id)
        {
            self.selected = i;
        }
        self.clamp();
        self.queue.len() != before
    }
}

/// Which tenant gets an unattributed message: a list to pick from, and a typed id last.
#[derive(Debug, Clone, PartialEq)]
pub struct AssignPicker {
    pub message: String,
    pub subscriber: String,
    pub code: String,
    pub options: Vec<TenantRef>,
    /// An index into `options`; `options.len()` is the typed id.
    pub selected: usize,
    pub typed: String,
}

impl AssignPicker {
    /// The tenant id Enter would assign to.
    pub fn choice(&self) -> Option<String> {
        match self.options.get(self.selected) {
            Some(t) => Some(t.id.clone()),
            None => {
                let t = self.typed.trim();
                (!t.is_empty()).then(|| t.to_string())
            }
        }
    }
}

impl App {
    /// `6`: the ops view, or back to the inbox.
    pub(super) fn toggle_ops(&mut self, fx: &mut Vec<Effect>) {
        if self.screen == Screen::Ops {
            self.leave_ops();
            return;
        }
        if !self.has_ops() {
            self.notify(
                Tone::Info,
                "The ops view is for ops and owner logins: this one does not see the ops stream",
            );
            return;
        }
        self.screen = Screen::Ops;
        if self.ops.load == Load::Stale {
            self.load_unattributed(fx);
        }
    }

    /// Back to the inbox, when this login has one.
    pub(super) fn leave_ops(&mut self) {
        if self.tenant.is_some() {
            self.screen = Screen::Inbox;
            self.focus = Focus::Inbox;
            self.composer.set_focused(false);
        }
    }

    pub(super) fn load_unattributed(&mut self, fx: &mut Vec<Effect>) {
        if !self.has_ops() || !self.is_online() || self.ops.load == Load::Loading {
            return;
        }
        self.ops.load = Load::Loading;
        self.call(
            method::UNATTRIBUTED_LIST,
            json!({ "limit": QUEUE_PAGE }),
            Purpose::Unattributed,
            fx,
        );
    }

    pub(super) fn on_ops_event(&mut self, e: &Event) {
        match e.kind.as_str() {
            kind::UNATTRIBUTED_RECEIVED => {
                let Ok(d) = serde_json::from_value::<UnattributedData>(e.data.clone()) else {
                    return tracing::warn!(kind = %e.kind, "event data not understood");
                };
                if self.ops.queue.iter().any(|u| u.message.id == d.message.id) {
                    return;
                }
                let item = Unattributed {
                    message: d.message,
                    reason: Some(d.reason),
                };
                // Newest first; the selection stays on the message it was on.
                if !self.ops.queue.is_empty() && self.ops.selected > 0 {
                    self.ops.selected += 1;
                }
                self.ops.queue.insert(0, item);
                self.ops.clamp();
            }
            kind::UNATTRIBUTED_ASSIGNED => {
                let message = e.data["message"].as_str().unwrap_or_default();
                self.ops.remove(message);
            }
            kind::ATTRIBUTION_CHANGED => {
                let Ok(change) = serde_json::from_value::<AttributionChangedData>(e.data.clone())
                else {
                    return tracing::warn!(kind = %e.kind, "event data not understood");
                };
                for t in change.from.iter().chain(std::iter::once(&change.to)) {
                    self.ops.seen.insert(t.id.clone(), t.name.clone());
                }
                self.ops.feed.push_front(AttributionMove {
                    at: e.ts.clone(),
                    change,
                });
                self.ops.feed.truncate(FEED_MAX);
            }
            _ => {}
        }
    }

    /// The ops stream was reset (or is new): the queue is loaded again.
    pub(super) fn ops_reset(&mut self, fx: &mut Vec<Effect>) {
        self.ops.load = Load::Stale;
        self.load_unattributed(fx);
    }

    pub(super) fn ops_key(&mut self, key: KeyEvent, fx: &mut Vec<Effect>) {
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            return;
        }
        let n = self.ops.queue.len();
        match key.code {
            KeyCode::Char('q') => self.quit(fx),
            KeyCode::Char('?') => self.overlay = Some(Overlay::Help { scroll: 0 }),
            KeyCode::Char('6') | KeyCode::Esc => self.leave_ops(),
            KeyCode::Char(c @ '1'..='5') if self.tenant.is_some() => {
                self.leave_ops();
                self.set_view(View::EVERY[(c as u8 - b'1') as usize], fx);
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.ops.selected = (self.ops.selected + 1).min(n.saturating_sub(1));
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.ops.selected = self.ops.selected.saturating_sub(1);
            }
            KeyCode::Home | KeyCode::Char('g') => self.ops.selected = 0,
            KeyCode::End | KeyCode::Char('G') => self.ops.selected = n.saturating_sub(1),
            KeyCode::Enter | KeyCode::Char('a') => self.pick_tenant(),
            KeyCode::Char('R') => {
                self.ops.load = Load::Stale;
                self.load_unattributed(fx);
            }
            _ => {}
        }
    }

    /// Opens the tenant picker for the selected unattributed message.
    fn pick_tenant(&mut self) {
        let Some(u) = self.ops.selected() else {
            self.notify(Tone::Info, "The unattributed queue is empty");
            return;
        };
        let mut tenants: BTreeMap<String, String> = self.ops.seen.clone();
        if let Some(p) = self.principal() {
            for t in &p.tenants {
                tenants.insert(t.id.clone(), t.name.clone());
            }
        }
        let options: Vec<TenantRef> = tenants
            .into_iter()
            .map(|(id, name)| TenantRef { id, name })
            .collect();
        self.overlay = Some(Overlay::AssignTenant(AssignPicker {
            message: u.message.id.clone(),
            subscriber: u.message.subscriber.clone(),
            code: u.message.code.clone(),
            options,
            selected: 0,
            typed: String::new(),
        }));
    }

    pub(super) fn assign_key(&mut self, mut p: AssignPicker, key: KeyEvent, fx: &mut Vec<Effect>) {
        let typed_row = p.options.len();
        match key.code {
            KeyCode::Esc => return,
            KeyCode::Enter => {
                match p.choice() {
                    Some(tenant) => self.assign(&p, tenant, fx),
                    None => {
                        self.notify(Tone::Info, "Type a tenant id, then Enter");
                        self.overlay = Some(Overlay::AssignTenant(p));
                    }
                }
                return;
            }
            KeyCode::Down => p.selected = (p.selected + 1).min(typed_row),
            KeyCode::Up => p.selected = p.selected.saturating_sub(1),
            KeyCode::Backspace => {
                p.selected = typed_row;
                p.typed.pop();
            }
            KeyCode::Char(c)
                if !key.modifiers.contains(KeyModifiers::CONTROL)
                    && (c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    && p.typed.len() < 64 =>
            {
                p.selected = typed_row;
                p.typed.push(c);
            }
            _ => {}
        }
        self.overlay = Some(Overlay::AssignTenant(p));
    }

    fn assign(&mut self, p: &AssignPicker, tenant: String, fx: &mut Vec<Effect>) {
        if !self.is_online() {
            self.notify(Tone::Warn, "Cannot assign: not connected");
            return;
        }
        self.call(
            method::UNATTRIBUTED_ASSIGN,
            json!({ "message": p.message, "tenant": tenant }),
            Purpose::Assign {
                message: p.message.clone(),
                subscriber: p.subscriber.clone(),
                tenant,
            },
            fx,
        );
    }

    /// `Brisa Café (brisa)` when the name is known, else the id.
    pub fn tenant_label(&self, id: &str) -> String {
        let own = self
            .principal()
            .and_then(|p| p.tenants.iter().find(|t| t.id == id))
            .map(|t| t.name.clone());
        match own.or_else(|| self.ops.seen.get(id).cloned()) {
            Some(name) => format!("{name} ({id})"),
            None => id.to_string(),
        }
    }

    pub(super) fn on_queue_answer(&mut self, result: Result<Value, ApiError>) {
        let page = result.and_then(|v| {
            serde_json::from_value::<QueuePage>(v)
                .map_err(|e| ApiError::internal(format!("unexpected answer: {e}")))
        });
        match page {
            Ok(page) => {
                // Reasons learnt from live events outlive a reload that does not carry them.
                let known: std::collections::HashMap<String, String> = self
                    .ops
                    .queue
                    .iter()
                    .filter_map(|u| Some((u.message.id.clone(), u.reason.clone()?)))
                    .collect();
                let selected = self.ops.selected().map(|u| u.message.id.clone());
                self.ops.queue = page
                    .items
                    .into_iter()
                    .map(|mut u| {
                        if u.reason.is_none() {
                            u.reason = known.get(&u.message.id).cloned();
                        }
                        u
                    })
                    .collect();
                self.ops.selected = selected
                    .and_then(|id| self.ops.queue.iter().position(|u| u.message.id == id))
                    .unwrap_or(0);
                self.ops.load = Load::Loaded;
            }
            Err(e) => {
                self.ops.load = Load::Loaded;
                self.notify(
                    Tone::Error,
                    format!("Could not load the unattributed queue: {}", e.message),
                );
            }
        }
    }

    pub(super) fn on_assign_answer(
        &mut self,
        message: &str,
        subscriber: &str,
        tenant: &str,
        result: Result<Value, ApiError>,
    ) {
        let to = self.tenant_label(tenant);
        match result {
            Ok(_) => {
                // The `unattributed.assigned` event may have taken it off the queue already.
                self.ops.remove(message);
                let who = format::phone(subscriber).into_owned();
                self.notify(Tone::Info, format!("{who} assigned to {to}"));
            }
            Err(e) => self.notify(
                Tone::Error,
                format!("Could not assign to {to}: {}", e.message),
            ),
        }
    }
}
