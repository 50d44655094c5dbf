//! The ops view: for principals whose `hello` lists the `ops` stream (ops and owner), the
//! unattributed queue (`unattributed.list`, then live `unattributed.received`) and a live
//! feed of attribution changes across tenants (`attribution.changed`, both names).
//!
//! An unattributed message is given to a tenant with `unattributed.assign`, picked from a
//! list: the engine's `tenants.list` (every tenant, for ops and the owner), asked for with the
//! queue and again on each reset of the ops stream. Typing narrows the list. When the engine
//! cannot give the list (an older engine, the connection lost before it came), the picker
//! offers the tenants this session knows of — the principal's own and those named in
//! attribution changes — and a typed tenant id.

use std::collections::{BTreeMap, VecDeque};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;
use serde_json::{Value, json};

use super::inbox::{Load, View};
use super::{App, Effect, Focus, Overlay, Purpose, Screen, Tone};
use crate::client::format;
use crate::protocol::{
    ApiError, AttributionChangedData, Event, Message, TenantInfo, TenantsListResult,
    UnattributedData, kind, method,
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
    /// The engine's list of tenants (`tenants.list`).
    pub tenants: TenantList,
}

/// What `tenants.list` said, and whether it is being asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantList {
    /// The last answer, kept while a new one is asked for.
    pub items: Option<Vec<TenantInfo>>,
    pub loading: bool,
    /// Why the last ask failed.
    pub error: Option<String>,
}

impl Default for Ops {
    fn default() -> Self {
        Ops {
            queue: Vec::new(),
            selected: 0,
            feed: VecDeque::new(),
            load: Load::Stale,
            seen: BTreeMap::new(),
            tenants: TenantList::default(),
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

/// Longest filter the picker takes.
const FILTER_MAX: usize = 64;

/// Which tenant gets an unattributed message: a list to pick from, narrowed by what is typed.
#[derive(Debug, Clone, PartialEq)]
pub struct AssignPicker {
    pub message: String,
    pub subscriber: String,
    /// The code the message came to.
    pub code: String,
    /// Every tenant that may be picked, by name.
    pub options: Vec<TenantInfo>,
    /// True when `options` is the engine's whole list; otherwise a typed id may be assigned
    /// too (the engine refuses an unknown one with its reason).
    pub complete: bool,
    /// The engine's list is being asked for.
    pub loading: bool,
    /// Why the engine's list is not here.
    pub error: Option<String>,
    /// What has been typed: only tenants whose name, id, codes or keywords contain it show.
    pub filter: String,
    /// An index into [`AssignPicker::matches`].
    pub selected: usize,
}

impl AssignPicker {
    /// The options the filter lets through, in order.
    pub fn matches(&self) -> Vec<&TenantInfo> {
        let q = self.filter.trim().to_lowercase();
        self.options
            .iter()
            .filter(|t| {
                q.is_empty()
                    || t.name.to_lowercase().contains(&q)
                    || t.id.to_lowercase().contains(&q)
                    || t.codes.iter().any(|c| c.contains(&q))
                    || t.keywords
                        .iter()
                        .any(|k| k.word.to_lowercase().contains(&q))
            })
            .collect()
    }

    /// The filter as a tenant id, when the list is not the engine's and it looks like one.
    pub fn typed_id(&self) -> Option<&str> {
        let t = self.filter.trim();
        let plausible = !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        (!self.complete && plausible).then_some(t)
    }

    /// The tenant id Enter would assign to.
    pub fn choice(&self) -> Option<String> {
        match self.matches().get(self.selected) {
            Some(t) => Some(t.id.clone()),
            None => self.typed_id().map(str::to_string),
        }
    }

    fn clamp(&mut self) {
        self.selected = self.selected.min(self.matches().len().saturating_sub(1));
    }

    /// New options (the engine answered): the selection stays on its tenant when it can.
    fn set_options(&mut self, options: Vec<TenantInfo>, complete: bool) {
        let chosen = self.matches().get(self.selected).map(|t| t.id.clone());
        self.options = options;
        self.complete = complete;
        self.selected = chosen
            .and_then(|id| self.matches().iter().position(|t| t.id == id))
            .unwrap_or(0);
        self.clamp();
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
        if self.ops.tenants.items.is_none() {
            self.load_tenants(fx);
        }
    }

    /// Asks the engine for the tenants the picker offers.
    pub(super) fn load_tenants(&mut self, fx: &mut Vec<Effect>) {
        if !self.has_ops() || !self.is_online() || self.ops.tenants.loading {
            return;
        }
        self.ops.tenants.loading = true;
        self.call(method::TENANTS_LIST, json!({}), Purpose::Tenants, fx);
        self.refresh_picker();
    }

    /// The tenants to offer: the engine's list, else those this session knows of.
    fn tenant_options(&self) -> (Vec<TenantInfo>, bool) {
        if let Some(items) = &self.ops.tenants.items {
            return (items.clone(), true);
        }
        let mut known: BTreeMap<String, String> = self.ops.seen.clone();
        if let Some(p) = self.principal() {
            for t in &p.tenants {
                known.insert(t.id.clone(), t.name.clone());
            }
        }
        let mut options: Vec<TenantInfo> = known
            .into_iter()
            .map(|(id, name)| TenantInfo {
                id,
                name,
                countries: Vec::new(),
                codes: Vec::new(),
                keywords: Vec::new(),
            })
            .collect();
        options.sort_by(|a, b| (a.name.to_lowercase(), &a.id).cmp(&(b.name.to_lowercase(), &b.id)));
        (options, false)
    }

    /// Brings an open picker up to date with the tenant list.
    fn refresh_picker(&mut self) {
        let (options, complete) = self.tenant_options();
        let (loading, error) = (self.ops.tenants.loading, self.ops.tenants.error.clone());
        if let Some(Overlay::AssignTenant(p)) = self.overlay.as_mut() {
            p.set_options(options, complete);
            p.loading = loading;
            p.error = error;
        }
    }

    pub(super) fn on_tenants_answer(&mut self, result: Result<Value, ApiError>) {
        self.ops.tenants.loading = false;
        let list = result.and_then(|v| {
            serde_json::from_value::<TenantsListResult>(v)
                .map_err(|e| ApiError::internal(format!("unexpected answer: {e}")))
        });
        match list {
            Ok(list) => {
                self.ops.tenants.items = Some(list.items);
                self.ops.tenants.error = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "tenants.list failed");
                self.ops.tenants.error = Some(e.message);
            }
        }
        self.refresh_picker();
    }

    /// The connection dropped before `tenants.list` was answered.
    pub(super) fn tenants_lost(&mut self) {
        self.ops.tenants.loading = false;
        self.refresh_picker();
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
        // Tenants may have come or gone while the stream could not be resumed.
        self.load_tenants(fx);
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
            KeyCode::Enter | KeyCode::Char('a') => self.pick_tenant(fx),
            KeyCode::Char('R') => {
                self.ops.load = Load::Stale;
                self.load_unattributed(fx);
                self.load_tenants(fx);
            }
            _ => {}
        }
    }

    /// Opens the tenant picker for the selected unattributed message.
    fn pick_tenant(&mut self, fx: &mut Vec<Effect>) {
        let Some(u) = self.ops.selected() else {
            self.notify(Tone::Info, "The unattributed queue is empty");
            return;
        };
        let (message, subscriber, code) = (
            u.message.id.clone(),
            u.message.subscriber.clone(),
            u.message.code.clone(),
        );
        let (options, complete) = self.tenant_options();
        self.overlay = Some(Overlay::AssignTenant(AssignPicker {
            message,
            subscriber,
            code,
            options,
            complete,
            loading: self.ops.tenants.loading,
            error: self.ops.tenants.error.clone(),
            filter: String::new(),
            selected: 0,
        }));
        // After a refusal (an engine without the call) it is asked again on a reset or `R`,
        // not each time the picker opens.
        if self.ops.tenants.items.is_none() && self.ops.tenants.error.is_none() {
            self.load_tenants(fx);
        }
    }

    pub(super) fn assign_key(&mut self, mut p: AssignPicker, key: KeyEvent, fx: &mut Vec<Effect>) {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let last = p.matches().len().saturating_sub(1);
        // j and k move until something is typed; then they are letters of the filter.
        let moving = p.filter.is_empty() && !ctrl;
        match key.code {
            KeyCode::Esc => return,
            KeyCode::Enter => {
                match p.choice() {
                    Some(tenant) => self.assign(&p, tenant, fx),
                    None => {
                        let why = if p.options.is_empty() && p.loading {
                            "The tenant list is still loading".to_string()
                        } else if p.filter.trim().is_empty() {
                            "No tenant to assign to".to_string()
                        } else {
                            format!("No tenant matches “{}”", p.filter.trim())
                        };
                        self.notify(Tone::Info, why);
                        self.overlay = Some(Overlay::AssignTenant(p));
                    }
                }
                return;
            }
            KeyCode::Down => p.selected = (p.selected + 1).min(last),
            KeyCode::Char('j') if moving => p.selected = (p.selected + 1).min(last),
            KeyCode::Char('n') if ctrl => p.selected = (p.selected + 1).min(last),
            KeyCode::Up => p.selected = p.selected.saturating_sub(1),
            KeyCode::Char('k') if moving => p.selected = p.selected.saturating_sub(1),
            KeyCode::Char('p') if ctrl => p.selected = p.selected.saturating_sub(1),
            KeyCode::Home => p.selected = 0,
            KeyCode::End => p.selected = last,
            KeyCode::Backspace => {
                p.filter.pop();
                p.selected = 0;
            }
            KeyCode::Char('u') if ctrl => {
                p.filter.clear();
                p.selected = 0;
            }
            KeyCode::Char(c)
                if !ctrl && !c.is_control() && p.filter.chars().count() < FILTER_MAX =>
            {
                p.filter.push(c);
                p.selected = 0;
            }
            _ => {}
        }
        p.clamp();
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
        let listed = || {
            self.ops
                .tenants
                .items
                .iter()
                .flatten()
                .find(|t| t.id == id)
                .map(|t| t.name.clone())
        };
        match own
            .or_else(listed)
            .or_else(|| self.ops.seen.get(id).cloned())
        {
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
