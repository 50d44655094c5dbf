//! The router: the one writer. It takes commands from a queue, drains whatever else is waiting
//! (a bounded batch), decides each command against the in-memory [`State`], collects the
//! resulting writes and events, commits them in ONE transaction, and only then publishes the
//! events, answers the callers and hands outbound messages to the dispatcher.
//!
//! A refused command writes nothing, so it cannot disturb the others in its batch. If the commit
//! fails, the state is reloaded from the store and every caller of the batch gets `internal`.

mod attribution;
pub mod campaigns;
pub mod compliance;
mod conversations;
mod inbound;
mod outbound;
mod send;
mod summaries;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

pub use summaries::{FlushScope, SWEEP_PERIOD_MS};

use crate::config::Config;
use crate::engine::clock;
use crate::engine::hub::{Hub, PublishedEvent};
use crate::engine::state::{ConvState, State, StreamHead};
use crate::engine::store::{AgentRow, Store, StoredEvent, Write};
use crate::protocol::{
    ApiError, ConversationUpdateParams, Message, Role, SendParams, UnattributedAssignParams, stream,
};

pub use inbound::InboundCommand;

use super::{InboundAck, IngressError};

/// Who is asking, as the router needs it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub agent: String,
    pub role: Role,
    /// Tenants whose conversations the caller may read and write.
    pub tenants: Vec<String>,
}

impl Caller {
    pub fn may_use(&self, tenant: &str) -> bool {
        self.tenants.iter().any(|t| t == tenant)
    }

    pub fn is_ops(&self) -> bool {
        matches!(self.role, Role::Ops | Role::Owner)
    }
}

pub type Answer<T, E = ApiError> = oneshot::Sender<Result<T, E>>;

pub enum Command {
    Inbound(InboundCommand, Answer<InboundAck, IngressError>),
    Send {
        caller: Caller,
        params: SendParams,
        preview: bool,
        answer: Answer<serde_json::Value>,
    },
    Update {
        caller: Caller,
        params: ConversationUpdateParams,
        answer: Answer<serde_json::Value>,
    },
    Assign {
        caller: Caller,
        params: UnattributedAssignParams,
        answer: Answer<serde_json::Value>,
    },
    /// An agent records an opt-out for a conversation's subscriber.
    OptOut {
        caller: Caller,
        conversation: String,
        answer: Answer<serde_json::Value>,
    },
    /// The dispatcher is about to hand a message to its carrier: re-check and mark it.
    Claim {
        message: String,
        answer: oneshot::Sender<Option<Message>>,
    },
    /// The carrier accepted the message (`carrier` names the connection that took it).
    Dispatched {
        message: String,
        carrier: String,
        carrier_id: Option<String>,
    },
    /// A delivery receipt, or a carrier refusal. With `opted_out`, the carrier refused because
    /// the subscriber opted out with it: that is recorded as an opt-out.
    Status {
        message: String,
        status: crate::protocol::MessageStatus,
        error: Option<String>,
        opted_out: bool,
    },
    /// A status callback naming the carrier's message id. With `opted_out`, the carrier said the
    /// subscriber opted out: that is recorded as an opt-out (no confirmation: the carrier blocks).
    CarrierStatus {
        carrier: String,
        carrier_id: String,
        status: crate::protocol::MessageStatus,
        error: Option<String>,
        opted_out: bool,
    },
    AddAgent {
        row: AgentRow,
        answer: oneshot::Sender<Result<(), String>>,
    },
    /// An admin sends a campaign (marketing) to opted-in subscribers.
    Campaign {
        caller: Caller,
        params: crate::protocol::CampaignParams,
        answer: Answer<serde_json::Value>,
    },
    /// Release campaign messages whose quiet hours are over.
    Tick,
    /// Drop events past retention.
    Prune,
    /// A reader is about to read conversations: copy their summaries into the store first
    /// (they are written behind, see `summaries`). Answered once committed.
    FlushSummaries {
        scope: FlushScope,
        answer: oneshot::Sender<()>,
    },
}

/// A message ready for the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatchJob {
    pub message: Message,
    pub carrier: String,
    pub mps: u32,
}

/// What one batch will do once committed.
#[derive(Default)]
pub(crate) struct Batch {
    pub writes: Vec<Write>,
    pub published: Vec<PublishedEvent>,
    pub answers: Vec<Box<dyn FnOnce(bool) + Send>>,
    pub dispatch: Vec<DispatchJob>,
    pub touched: HashSet<String>,
    /// Inbound carrier ids seen in this batch (dedupe before they reach the store).
    pub seen_inbound: HashMap<(String, String), InboundAck>,
    /// What this batch adds to the traffic counters once committed.
    pub traffic: crate::engine::traffic::Counts,
}

impl Batch {
    /// Queues an answer for after the commit: the value when committed, `internal` otherwise.
    fn answer<T: Send + 'static, E: Send + 'static>(
        &mut self,
        tx: oneshot::Sender<Result<T, E>>,
        result: Result<T, E>,
        on_failure: impl FnOnce() -> E + Send + 'static,
    ) {
        self.answers.push(Box::new(move |committed| {
            let _ = tx.send(if committed { result } else { Err(on_failure()) });
        }));
    }
}

/// The handle others hold: a bounded queue into the router.
#[derive(Clone)]
pub struct RouterHandle {
    tx: mpsc::Sender<Queued>,
}

/// A command and when it was handed to the router (for `shortbox_router_queue_seconds`).
pub struct Queued(std::time::Instant, Command);

impl RouterHandle {
    pub async fn send(&self, cmd: Command) -> bool {
        self.tx
            .send(Queued(std::time::Instant::now(), cmd))
            .await
            .is_ok()
    }

    pub fn blocking_send(&self, cmd: Command) -> bool {
        self.tx
            .blocking_send(Queued(std::time::Instant::now(), cmd))
            .is_ok()
    }
}

pub struct Router {
    pub(crate) state: State,
    pub(crate) store: Box<dyn Store>,
    pub(crate) config: Arc<Config>,
    hub: Hub,
    dispatch: mpsc::UnboundedSender<DispatchJob>,
    clock: Arc<dyn clock::Clock>,
    traffic: Arc<crate::engine::traffic::Traffic>,
    /// Campaign messages waiting for quiet hours to end: release time (ms) → message ids.
    held: std::collections::BTreeMap<i64, Vec<String>>,
    /// Conversation summaries written behind (see `summaries`).
    summaries: summaries::Summaries,
    now_ms: i64,
    now: String,
}

/// What the router keeps in memory, from the store: idempotency keys of the last 48 hours
/// and the carrier ids of recent inbound messages (by their ids' time: the system clock's).
fn load(
    store: &mut dyn Store,
    now_ms: i64,
) -> Result<crate::engine::store::Snapshot, crate::engine::store::StoreError> {
    use crate::engine::recent_inbound::{CAPACITY, WINDOW_MS};
    let system_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    store.load(now_ms - 48 * 3600 * 1000, system_ms - WINDOW_MS, CAPACITY)
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("the engine could not store this change: {e}"))
}

impl Router {
    /// Loads the state and returns the router with its command queue.
    pub fn new(
        config: Arc<Config>,
        mut store: Box<dyn Store>,
        hub: Hub,
        dispatch: mpsc::UnboundedSender<DispatchJob>,
        clock: Arc<dyn clock::Clock>,
        traffic: Arc<crate::engine::traffic::Traffic>,
    ) -> Result<(Router, RouterHandle, mpsc::Receiver<Queued>), super::EngineError> {
        let snap = load(store.as_mut(), clock.now_ms())
            .map_err(|e| super::EngineError::Store(e.to_string()))?;
        let state = State::new(&config, snap);
        let (tx, rx) = mpsc::channel(16 * 1024);
        let now_ms = clock.now_ms();
        let mut router = Router {
            state,
            store,
            config,
            hub,
            dispatch,
            clock,
            traffic,
            held: Default::default(),
            summaries: Default::default(),
            now_ms,
            now: clock::fmt_ms(now_ms),
        };
        router
            .ensure_streams()
            .map_err(|e| super::EngineError::Store(e.to_string()))?;
        Ok((router, RouterHandle { tx }, rx))
    }

    /// Every tenant stream and the ops stream exist with an epoch from the start.
    fn ensure_streams(&mut self) -> Result<(), crate::engine::store::StoreError> {
        let mut names: Vec<String> = self
            .state
            .tenants
            .keys()
            .map(|t| stream::tenant(t))
            .collect();
        names.push(stream::OPS.to_string());
        let mut writes = Vec::new();
        for name in names {
            if let std::collections::hash_map::Entry::Vacant(slot) = self.state.streams.entry(name)
            {
                let epoch = new_epoch();
                writes.push(Write::StreamHead {
                    stream: slot.key().clone(),
                    epoch: epoch.clone(),
                    head: 0,
                });
                slot.insert(StreamHead { epoch, head: 0 });
            }
        }
        self.store.apply(&writes)
    }

    /// Messages accepted before a restart that still wait for their carrier.
    pub fn pending_jobs(&self) -> Vec<DispatchJob> {
        let mut jobs: Vec<DispatchJob> = self
            .state
            .pending_out
            .values()
            .filter(|m| m.status == crate::protocol::MessageStatus::Queued)
            .filter_map(|m| self.job_for(m))
            .collect();
        jobs.sort_by(|a, b| a.message.id.cmp(&b.message.id));
        jobs
    }

    fn job_for(&self, m: &Message) -> Option<DispatchJob> {
        let code = self.state.codes.get(&m.code)?;
        Some(DispatchJob {
            message: m.clone(),
            carrier: code.carrier.clone(),
            mps: code.mps,
        })
    }

    /// Runs until every handle is dropped. Call from a dedicated thread: it blocks.
    pub fn run(mut self, mut rx: mpsc::Receiver<Queued>) {
        let max = self.config.engine.batch_max.max(1);
        let mut commands = Vec::with_capacity(max);
        let traffic = self.traffic.clone();
        while let Some(Queued(at, first)) = rx.blocking_recv() {
            let started = std::time::Instant::now();
            traffic
                .queued
                .observe(started.saturating_duration_since(at));
            commands.push(first);
            while commands.len() < max {
                match rx.try_recv() {
                    Ok(Queued(at, c)) => {
                        traffic
                            .queued
                            .observe(started.saturating_duration_since(at));
                        commands.push(c);
                    }
                    Err(_) => break,
                }
            }
            self.apply_commands(commands.drain(..));
            traffic.batches.observe(started.elapsed());
        }
        self.shutdown();
    }

    /// Copies every conversation summary still behind into the store (the channel closed:
    /// the engine is stopping). After a crash the journal does the same at the next start.
    pub fn shutdown(&mut self) {
        let mut batch = Batch::default();
        self.flush_all(&mut batch);
        if let Err(e) = self.store.apply(&batch.writes) {
            tracing::warn!(error = %e, "copying conversation summaries at shutdown failed; the journal keeps them");
        }
    }

    /// Applies one batch of commands and commits it: what [`Router::run`] does for each batch.
    /// Public so that tests can drive the router through its command API without threads.
    pub fn apply_commands(&mut self, commands: impl IntoIterator<Item = Command>) {
        self.now_ms = self.clock.now_ms();
        self.now = clock::fmt_ms(self.now_ms);
        let mut batch = Batch::default();
        for cmd in commands {
            batch.traffic.commands += 1;
            self.apply(cmd, &mut batch);
        }
        self.commit(batch);
    }

    fn commit(&mut self, mut batch: Batch) {
        self.sweep(&mut batch);
        for name in std::mem::take(&mut batch.touched) {
            if let Some(h) = self.state.streams.get(&name) {
                batch.writes.push(Write::StreamHead {
                    stream: name,
                    epoch: h.epoch.clone(),
                    head: h.head,
                });
            }
        }
        // Negative control for the crash test: a build that acknowledges before COMMIT must be
        // caught losing acknowledged messages. Never enable it anywhere else.
        if cfg!(feature = "ack-before-commit") {
            for answer in std::mem::take(&mut batch.answers) {
                answer(true);
            }
        }
        let started = std::time::Instant::now();
        let applied = self.store.apply(&batch.writes);
        if !batch.writes.is_empty() {
            self.traffic.commits.observe(started.elapsed());
        }
        let committed = match applied {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "commit failed; reloading state from the store");
                self.reload();
                false
            }
        };
        if committed {
            batch.traffic.batches = 1;
            self.traffic.add(&batch.traffic);
            if !batch.published.is_empty() {
                let now = Some(std::time::Instant::now());
                for event in &mut batch.published {
                    event.committed = now;
                }
                self.hub.publish(std::mem::take(&mut batch.published));
            }
            for job in batch.dispatch.drain(..) {
                let _ = self.dispatch.send(job);
            }
        }
        for answer in batch.answers {
            answer(committed);
        }
    }

    fn reload(&mut self) {
        match load(self.store.as_mut(), self.clock.now_ms()) {
            Ok(snap) => {
                // Loading replayed and emptied the journal.
                self.state = State::new(&self.config, snap);
                self.summaries = Default::default();
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot reload state: the router stops");
                std::process::abort();
            }
        }
    }

    fn apply(&mut self, cmd: Command, batch: &mut Batch) {
        match cmd {
            Command::Inbound(cmd, answer) => {
                let result = self.inbound(cmd, batch);
                batch.answer(answer, result, || IngressError {
                    status: 503,
                    code: "unavailable",
                    message: "the engine could not store the message; retry later".into(),
                });
            }
            Command::Send {
                caller,
                params,
                preview,
                answer,
            } => {
                let result = if preview {
                    self.preview(&caller, params).and_then(to_value)
                } else {
                    self.send(&caller, params, batch).and_then(to_value)
                };
                batch.answer(answer, result, || internal("commit failed"));
            }
            Command::Update {
                caller,
                params,
                answer,
            } => {
                let result = self
                    .update_conversation(&caller, params, batch)
                    .and_then(to_value);
                batch.answer(answer, result, || internal("commit failed"));
            }
            Command::Assign {
                caller,
                params,
                answer,
            } => {
                let result = self.assign(&caller, params, batch).and_then(to_value);
                batch.answer(answer, result, || internal("commit failed"));
            }
            Command::OptOut {
                caller,
                conversation,
                answer,
            } => {
                let result = self
                    .agent_opt_out(&caller, &conversation, batch)
                    .and_then(to_value);
                batch.answer(answer, result, || internal("commit failed"));
            }
            Command::Campaign {
                caller,
                params,
                answer,
            } => {
                let result = self.campaign(&caller, params, batch).and_then(to_value);
                batch.answer(answer, result, || internal("commit failed"));
            }
            Command::Tick => self.release_held(batch),
            Command::FlushSummaries { scope, answer } => {
                self.flush_scope(&scope, batch);
                batch.answers.push(Box::new(move |_| {
                    let _ = answer.send(());
                }));
            }
            Command::Claim { message, answer } => {
                let claimed = self.claim(&message, batch);
                batch.answers.push(Box::new(move |committed| {
                    let _ = answer.send(if committed { claimed } else { None });
                }));
            }
            Command::Dispatched {
                message,
                carrier,
                carrier_id,
            } => self.dispatched(&message, &carrier, carrier_id, batch),
            Command::Status {
                message,
                status,
                error,
                opted_out,
            } => {
                if opted_out {
                    self.carrier_opt_out(&message, error.as_deref(), batch);
                }
                self.status(&message, status, error, batch)
            }
            Command::CarrierStatus {
                carrier,
                carrier_id,
                status,
                error,
                opted_out,
            } => self.carrier_status(&carrier, &carrier_id, status, error, opted_out, batch),
            Command::AddAgent { row, answer } => {
                batch.writes.push(Write::Agent(row));
                batch.answers.push(Box::new(move |committed| {
                    let _ = answer.send(if committed {
                        Ok(())
                    } else {
                        Err("commit failed".into())
                    });
                }));
            }
            Command::Prune => {
                let days = i64::from(self.config.engine.event_retention_days);
                let cut = clock::fmt_ms(self.now_ms - days * 86_400_000);
                match self.store.prune_events(&cut) {
                    Ok(n) if n > 0 => tracing::info!(events = n, "pruned events past retention"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning events failed"),
                }
            }
        }
    }

    /// Appends an event to `stream` (in this batch's transaction) and queues it for publishing.
    pub(crate) fn emit(
        &mut self,
        batch: &mut Batch,
        stream_name: &str,
        kind: &str,
        data: &impl Serialize,
    ) {
        let head = self
            .state
            .streams
            .entry(stream_name.to_string())
            .or_insert_with(|| StreamHead {
                epoch: new_epoch(),
                head: 0,
            });
        head.head += 1;
        let ev = StoredEvent {
            stream: stream_name.to_string(),
            seq: head.head,
            epoch: head.epoch.clone(),
            kind: kind.to_string(),
            ts: self.now.clone(),
            data: serde_json::to_string(data).unwrap_or_else(|_| "null".into()),
        };
        batch.touched.insert(ev.stream.clone());
        batch.published.push(PublishedEvent {
            stream: Arc::from(ev.stream.as_str()),
            seq: ev.seq,
            frame: Arc::from(ev.frame()),
            committed: None,
        });
        batch.writes.push(Write::Event(ev));
    }

    /// Stores a conversation's new summary: in memory, and in the store at once for a new
    /// conversation, else through the journal (see `summaries`).
    pub(crate) fn put_conversation(&mut self, cs: ConvState, batch: &mut Batch) {
        if self.state.conversations.contains_key(&cs.conv.id) {
            self.journal_conversation(&cs, batch);
        } else {
            batch
                .writes
                .push(Write::Conversation(Box::new(cs.conv.clone()), cs.extra));
        }
        self.state
            .conversation_index
            .entry((cs.conv.tenant.clone(), cs.conv.subscriber.clone()))
            .or_insert_with(|| cs.conv.id.clone());
        self.state.conversations.insert(cs.conv.id.clone(), cs);
    }

    pub(crate) fn now(&self) -> &str {
        &self.now
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.now_ms
    }
}

fn to_value<T: Serialize>(v: T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::internal(e.to_string()))
}

pub fn new_epoch() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
