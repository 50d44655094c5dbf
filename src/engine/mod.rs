//! The routing engine: one writer (the [`router`]) applies every change to the store, appends
//! events, commits, then publishes to the [`hub`] and hands outbound messages to the
//! [`dispatcher`], which sends them through the [`carriers`].
//!
//! [`Engine`] is the handle the server (and tests) use: a cheap clone of an `Arc`.

pub mod carriers;
pub mod clock;
pub mod decision;
pub mod dispatcher;
pub mod hub;
pub mod recent_inbound;
pub mod router;
pub mod state;
pub mod store;
pub mod traffic;

mod agents;
mod api;
mod auth;
mod revocation;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, EngineSettings};
use crate::protocol::{ApiError, Principal, Role};
use router::{Command, Router, RouterHandle};
use store::{SqliteRead, SqliteStore, StoreRead};

pub use agents::{
    Revocation, add_agent_offline, agents_table, list_agents_offline, revoke_agent_offline,
};
pub use hub::{Hub, PublishedEvent};

/// An authenticated caller and the streams it may read.
#[derive(Debug, Clone)]
pub struct AuthPrincipal {
    pub principal: Principal,
    pub streams: Vec<String>,
}

/// Where a stream stands in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPosition {
    pub epoch: String,
    /// The last committed `seq` (0 when the stream is empty).
    pub head: u64,
    /// The oldest retained `seq` (head + 1 when nothing is retained).
    pub first: u64,
}

/// What `POST /v1/carriers/{carrier}/inbound` answers after commit.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InboundAck {
    pub message: String,
    /// `tenant` or `unattributed`.
    pub routed: &'static str,
    pub tenant: Option<String>,
}

/// A refused carrier request: the HTTP status and the error body's code and message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct IngressError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl IngressError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> IngressError {
        IngressError {
            status,
            code,
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("storage: {0}")]
    Store(String),
    #[error("{0}")]
    Config(String),
    #[error("the engine has stopped")]
    Stopped,
    #[error(
        "{0} holds no shortbox store (shortbox.db): expected the data directory of an engine \
         (--data DIR, or engine.data_dir in the configuration)"
    )]
    NoStore(String),
    #[error(
        "no agent has the id or name {0:?}: expected an id (ag_…) or a name as `shortbox agent list` shows them"
    )]
    NoSuchAgent(String),
    #[error("several agents named {name:?} are active ({ids}): name the one you mean by its id")]
    AmbiguousAgent { name: String, ids: String },
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    hub: Hub,
    router: RouterHandle,
    reader: Arc<SqliteRead>,
    carriers: Arc<carriers::Carriers>,
    /// SHA-256 of the in-memory token of the local owner (embedded mode); never stored.
    local_owner: [u8; 32],
    local_owner_token: String,
    calls_total: AtomicU64,
    traffic: Arc<traffic::Traffic>,
    revoked: revocation::Revoked,
}

impl Engine {
    /// Opens (or creates) the store in `data_dir`, applies the configuration, and starts the
    /// router, the dispatcher and the carriers. Needs a Tokio runtime.
    pub async fn open(config: Config, data_dir: &Path) -> Result<Engine, EngineError> {
        Engine::open_with_clock(config, data_dir, Arc::new(clock::SystemClock)).await
    }

    /// As [`Engine::open`], reading the time from `clock` (tests walk it across quiet hours).
    pub async fn open_with_clock(
        config: Config,
        data_dir: &Path,
        clock: Arc<dyn clock::Clock>,
    ) -> Result<Engine, EngineError> {
        let config = Arc::new(config);
        let dir = data_dir.to_path_buf();
        let started = std::time::Instant::now();
        // The phone number metadata loads meanwhile (its patterns compile on first use).
        let _ = std::thread::Builder::new()
            .name("shortbox-warm".into())
            .spawn(crate::domain::phone::warm);
        let store = tokio::task::spawn_blocking(move || SqliteStore::open(&dir))
            .await
            .map_err(|e| EngineError::Store(e.to_string()))?
            .map_err(|e| EngineError::Store(e.to_string()))?;
        let reader = Arc::new(
            store
                .reader(4)
                .map_err(|e| EngineError::Store(e.to_string()))?,
        );
        tracing::debug!(took = ?started.elapsed(), "store opened");
        let hub = Hub::new();
        let (dispatch_tx, dispatch_rx) = mpsc::unbounded_channel();
        let traffic = Arc::new(traffic::Traffic::default());
        let (router, handle, rx) = Router::new(
            config.clone(),
            Box::new(store),
            hub.clone(),
            dispatch_tx,
            clock,
            traffic.clone(),
        )?;
        tracing::debug!(took = ?started.elapsed(), "router loaded");
        // Messages still queued at start may have reached their carrier before a crash: the
        // dispatcher reconciles them before anything else.
        let recovered = router.pending_jobs();
        let carriers = Arc::new(carriers::Carriers::build(&config, &handle)?);
        std::thread::Builder::new()
            .name("shortbox-router".into())
            .spawn(move || router.run(rx))
            .map_err(|e| EngineError::Store(format!("cannot start the router: {e}")))?;
        tokio::spawn(dispatcher::run(
            dispatch_rx,
            recovered,
            Arc::new(dispatcher::EnginePort::new(
                handle.clone(),
                carriers.clone(),
            )),
        ));
        let live_hub = hub.clone();
        let live_traffic = traffic.clone();
        tokio::spawn(async move {
            let period = std::time::Duration::from_secs(2);
            let mut every = tokio::time::interval(period);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut last = live_traffic.snapshot();
            loop {
                every.tick().await;
                let now = live_traffic.snapshot();
                let delta = now.since(&last);
                last = now;
                let frame = serde_json::json!({
                    "op": "live",
                    "kind": "traffic",
                    "data": { "window_ms": period.as_millis() as u64, "counts": delta },
                });
                live_hub.publish_live(Arc::from(frame.to_string()));
            }
        });
        let tick = handle.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                if !tick.send(Command::Tick).await {
                    return;
                }
            }
        });
        let prune = handle.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                every.tick().await;
                if !prune.send(Command::Prune).await {
                    return;
                }
            }
        });

        let revoked = revocation::Revoked::watch(reader.clone());

        let (local_owner_token, local_owner) = auth::new_token();
        Ok(Engine {
            inner: Arc::new(Inner {
                config,
                hub,
                router: handle,
                reader,
                carriers,
                local_owner,
                local_owner_token,
                calls_total: AtomicU64::new(0),
                traffic,
                revoked,
            }),
        })
    }

    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.inner.config.engine
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// A token for the local owner of an embedded engine: valid while this process runs,
    /// never written anywhere.
    pub fn local_owner_token(&self) -> &str {
        &self.inner.local_owner_token
    }

    /// The principal behind a bearer token, if the token is known and not revoked.
    pub async fn authenticate(&self, token: &str) -> Option<AuthPrincipal> {
        auth::authenticate(self, token).await
    }

    /// Completes once `agent` is revoked (at once if it already is), within about a second of
    /// the revocation's commit, whichever process made it. A session waits on this to close
    /// with 4401.
    pub fn revoked(&self, agent: &str) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.inner.revoked.of(agent)
    }

    /// Runs one protocol call on behalf of `who`.
    pub async fn call(
        &self,
        who: &AuthPrincipal,
        method: &str,
        params: Value,
    ) -> Result<Value, ApiError> {
        self.inner.calls_total.fetch_add(1, Ordering::Relaxed);
        api::call(self, who, method, params).await
    }

    pub async fn stream_position(&self, stream: &str) -> Result<StreamPosition, ApiError> {
        let reader = self.inner.reader.clone();
        let name = stream.to_string();
        let (found, first) = tokio::task::spawn_blocking(move || {
            let found = reader.stream(&name)?;
            let first = reader.first_seq(&name)?;
            Ok::<_, store::StoreError>((found, first))
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
        let (epoch, head) =
            found.ok_or_else(|| ApiError::not_found(format!("no stream {stream}")))?;
        Ok(StreamPosition {
            epoch,
            head,
            first: first.unwrap_or(head + 1),
        })
    }

    /// Committed events of `stream` with `seq > after`, oldest first, at most `limit`.
    pub async fn read_events(
        &self,
        stream: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<PublishedEvent>, ApiError> {
        let reader = self.inner.reader.clone();
        let name = stream.to_string();
        let events = tokio::task::spawn_blocking(move || reader.read_events(&name, after, limit))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(events
            .into_iter()
            .map(|e| PublishedEvent {
                stream: Arc::from(e.stream.as_str()),
                seq: e.seq,
                frame: Arc::from(e.frame()),
                committed: None,
            })
            .collect())
    }

    /// Carrier-neutral JSON inbound (`POST /v1/carriers/{carrier}/inbound`). Answers only after
    /// the message is committed.
    pub async fn carrier_inbound(
        &self,
        carrier: &str,
        bearer: Option<&str>,
        body: &[u8],
    ) -> Result<InboundAck, IngressError> {
        let cmd = api::parse_inbound(self.config(), carrier, bearer, body)?;
        self.inbound(cmd).await
    }

    /// Routes one inbound message already checked at the edge.
    pub async fn inbound(&self, cmd: router::InboundCommand) -> Result<InboundAck, IngressError> {
        let (tx, rx) = oneshot::channel();
        if !self.inner.router.send(Command::Inbound(cmd, tx)).await {
            return Err(IngressError::new(
                503,
                "unavailable",
                "the engine is shutting down; retry later",
            ));
        }
        rx.await.map_err(|_| {
            IngressError::new(
                503,
                "unavailable",
                "the engine is shutting down; retry later",
            )
        })?
    }

    /// A provider's status callback for the message it knows by `carrier_id`. Status only moves
    /// forward; `opted_out` records the subscriber's opt-out the provider reported. Answers
    /// after the change is committed (unknown ids change nothing).
    pub async fn carrier_status(
        &self,
        carrier: &str,
        carrier_id: &str,
        status: crate::protocol::MessageStatus,
        error: Option<String>,
        opted_out: bool,
    ) -> Result<(), IngressError> {
        let cmd = Command::CarrierStatus {
            carrier: carrier.to_string(),
            carrier_id: carrier_id.to_string(),
            status,
            error,
            opted_out,
        };
        if !self.inner.router.send(cmd).await {
            return Err(carriers::unavailable());
        }
        self.committed().await
    }

    /// Adds an agent and returns its token (only the token's hash is stored).
    pub async fn add_agent(
        &self,
        name: &str,
        role: Role,
        tenants: &[String],
    ) -> Result<String, EngineError> {
        let (token, row) = auth::new_agent(self.config(), name, role, tenants)?;
        let (tx, rx) = oneshot::channel();
        if !self
            .inner
            .router
            .send(Command::AddAgent { row, answer: tx })
            .await
        {
            return Err(EngineError::Stopped);
        }
        rx.await
            .map_err(|_| EngineError::Stopped)?
            .map_err(EngineError::Store)?;
        Ok(token)
    }

    /// Prometheus text for `GET /metrics`.
    pub fn metrics_text(&self) -> String {
        let mut out = self.inner.traffic.prometheus();
        let hub = self.inner.hub.stats();
        for (name, kind, help, value) in [
            (
                "shortbox_connections",
                "gauge",
                "Open WebSocket connections.",
                hub.connections as u64,
            ),
            (
                "shortbox_slow_consumers_total",
                "counter",
                "Connections closed as slow consumers (4101).",
                hub.slow_consumers_total,
            ),
            (
                "shortbox_events_delivered_total",
                "counter",
                "Events queued to connections.",
                hub.delivered_total,
            ),
            (
                "shortbox_live_dropped_total",
                "counter",
                "Live frames skipped for busy connections.",
                hub.live_dropped_total,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
        out.push_str(&format!(
            "# HELP shortbox_calls_total Protocol calls received.\n# TYPE shortbox_calls_total counter\nshortbox_calls_total {}\n",
            self.inner.calls_total.load(Ordering::Relaxed)
        ));
        out
    }

    /// What the router has committed so far, by tenant.
    pub fn traffic(&self) -> traffic::Counts {
        self.inner.traffic.snapshot()
    }

    /// The engine's counters and latency histograms (`/metrics`).
    pub(crate) fn traffic_stats(&self) -> &Arc<traffic::Traffic> {
        &self.inner.traffic
    }

    pub(crate) fn router(&self) -> &RouterHandle {
        &self.inner.router
    }

    pub(crate) fn reader(&self) -> &Arc<SqliteRead> {
        &self.inner.reader
    }
}
