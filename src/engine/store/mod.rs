//! Durable storage behind a trait, so that a PostgreSQL store can follow the embedded SQLite one.
//!
//! The router is the only writer: it decides everything in memory and hands the store one
//! [`Write`] list per batch, which the store applies in ONE transaction (one commit, one fsync).
//! A refused command produces no writes, so it "rolls back alone" by construction; if the commit
//! itself fails, the router reloads its state from the store. Readers (history, lists, replay,
//! tokens) use [`StoreRead`], which never blocks the writer.

pub mod schema;
pub mod sqlite;

use crate::protocol::{ConsentState, Conversation, Message, MessageStatus, Role};

pub use sqlite::{SqliteRead, SqliteStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the store at {path} is not safe to use: {reason}")]
    Unsafe { path: String, reason: String },
    /// The data was written by a newer build (a later schema version than this one knows).
    #[error(
        "the data was written by a newer shortbox (schema version {found}; this build knows up to {known}): run that version or a later one"
    )]
    TooNew { found: i64, known: usize },
    #[error("cannot create {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot use {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    /// Another engine runs on the same data directory.
    #[error("{0}")]
    InUse(String),
}

/// One durable event.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub stream: String,
    pub seq: u64,
    pub epoch: String,
    pub kind: String,
    pub ts: String,
    /// The event's `data`, as JSON text.
    pub data: String,
}

impl StoredEvent {
    /// The complete `ev` frame, serialized once.
    pub fn frame(&self) -> String {
        let mut s = String::with_capacity(self.data.len() + 128);
        s.push_str("{\"op\":\"ev\",\"stream\":");
        push_json_str(&mut s, &self.stream);
        s.push_str(",\"epoch\":");
        push_json_str(&mut s, &self.epoch);
        s.push_str(",\"seq\":");
        s.push_str(itoa(self.seq).as_str());
        s.push_str(",\"kind\":");
        push_json_str(&mut s, &self.kind);
        s.push_str(",\"ts\":");
        push_json_str(&mut s, &self.ts);
        s.push_str(",\"data\":");
        s.push_str(&self.data);
        s.push('}');
        s
    }
}

fn itoa(n: u64) -> String {
    n.to_string()
}

fn push_json_str(out: &mut String, s: &str) {
    // Stream names, epochs, kinds and timestamps are plain ASCII we generate, but escape anyway.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

/// An agent as stored (the token itself is never stored, only its SHA-256).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRow {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub tenants: Vec<String>,
    pub token_hash: [u8; 32],
}

/// An agent as `shortbox agent list` shows it: everything but the token's hash.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentEntry {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub tenants: Vec<String>,
    pub created_at: String,
    pub revoked: bool,
    /// When it was revoked (None for a revocation recorded before this was kept).
    pub revoked_at: Option<String>,
}

/// One change, applied in order inside the batch's transaction.
#[derive(Debug, Clone)]
pub enum Write {
    Subscriber {
        e164: String,
        country: String,
    },
    /// A conversation's summary, stored in `conversations` (a new one, or the router's sweep).
    Conversation(Box<Conversation>, ConversationExtra),
    /// A change of a conversation's summary, appended to the journal under `seq`; the row in
    /// `conversations` follows later (see [`Write::JournalTrim`]).
    ConversationJournal(u64, Box<Conversation>, ConversationExtra),
    /// Every journal entry below `below` is in `conversations` now: drop them.
    JournalTrim {
        below: u64,
    },
    Message(Box<Message>, MessageExtra),
    MessageStatus {
        id: String,
        status: MessageStatus,
        carrier_id: Option<String>,
        error: Option<String>,
    },
    /// The carrier that took an outbound message, and its id there.
    MessageCarrier {
        id: String,
        carrier: String,
        carrier_id: String,
    },
    /// Ops gave an unattributed message to a tenant.
    MessageAssigned {
        id: String,
        tenant: String,
        conversation: String,
    },
    Attribution {
        code: String,
        subscriber: String,
        tenant: String,
        since: String,
        message: Option<String>,
    },
    Idempotency {
        tenant: String,
        key: String,
        fingerprint: String,
        message: String,
        at_ms: i64,
    },
    /// A consent change of (tenant, subscriber), appended to its history too.
    Consent {
        tenant: String,
        subscriber: String,
        state: ConsentState,
        at: String,
        message: Option<String>,
        source: String,
    },
    /// (code, subscriber) blocked after an opt-out on that code, or unblocked on opt-in.
    CodeBlock {
        code: String,
        subscriber: String,
        at: String,
        message: Option<String>,
        blocked: bool,
    },
    /// Outbox state of an outbound message: `queued`, `dispatching`; `None` removes it.
    Outbox {
        message: String,
        state: Option<&'static str>,
    },
    Spend {
        tenant: String,
        month: String,
        spent_micros: i64,
        notified: u32,
    },
    Event(StoredEvent),
    StreamHead {
        stream: String,
        epoch: String,
        head: u64,
    },
    Agent(AgentRow),
    /// The agent's token is refused from now on. A second revocation changes nothing (the
    /// first time is kept).
    AgentRevoked {
        id: String,
        at: String,
    },
}

/// Conversation fields the router needs that are not on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConversationExtra {
    /// When the subscriber last wrote to this tenant (ms since the epoch), for the
    /// conversational consent window.
    pub last_inbound_ms: Option<i64>,
}

/// Message fields that are not on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageExtra {
    pub carrier: Option<String>,
    pub carrier_id: Option<String>,
    /// Why an inbound message is unattributed.
    pub unattributed_reason: Option<String>,
}

/// What the router loads at start.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub conversations: Vec<(Conversation, ConversationExtra)>,
    pub subscribers: Vec<(String, String)>,
    /// (code, subscriber, tenant, since, message)
    pub attribution: Vec<(String, String, String, String, Option<String>)>,
    /// (tenant, key, fingerprint, message id, at_ms), recent ones only.
    pub idempotency: Vec<(String, String, String, String, i64)>,
    /// Outbound messages not yet in a terminal state, with their outbox state.
    pub pending_out: Vec<(Message, Option<String>)>,
    /// (tenant, month, spent, notified)
    pub spend: Vec<(String, String, i64, u32)>,
    /// (stream, epoch, head)
    pub streams: Vec<(String, String, u64)>,
    /// (tenant, subscriber, state)
    pub consent: Vec<(String, String, ConsentState)>,
    /// (code, subscriber)
    pub code_blocks: Vec<(String, String)>,
    /// (message id, carrier, carrier id) of recent inbound messages, oldest first.
    pub recent_inbound: Vec<(String, String, String)>,
}

/// Where a stored inbound message came from, and whose it is.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundOrigin {
    pub carrier: String,
    pub carrier_id: String,
    pub tenant: Option<String>,
}

/// One entry of a subscriber's consent history with a tenant.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConsentEntry {
    pub state: ConsentState,
    pub at: String,
    pub message: Option<String>,
    pub source: String,
}

/// Query for a page of conversations.
#[derive(Debug, Clone, Default)]
pub struct ConversationQuery {
    pub tenant: String,
    pub status: Option<String>,
    pub unread: Option<bool>,
    pub attribution_lost: Option<bool>,
    pub text: Option<String>,
    /// Keyset cursor: (last_activity, id) of the last item of the previous page.
    pub after: Option<(String, String)>,
    pub limit: usize,
}

/// The single writer's side of the store.
pub trait Store: Send {
    /// Applies `writes` in one transaction and commits (durably) before returning.
    fn apply(&mut self, writes: &[Write]) -> Result<(), StoreError>;
    /// Everything the router keeps in memory: idempotency keys since `idempotency_since_ms`,
    /// and the carrier ids of at most `inbound_limit` inbound messages made since
    /// `inbound_since_ms`.
    fn load(
        &mut self,
        idempotency_since_ms: i64,
        inbound_since_ms: i64,
        inbound_limit: usize,
    ) -> Result<Snapshot, StoreError>;
    /// The carrier, carrier id and tenant of a stored inbound message.
    fn inbound_origin(&mut self, id: &str) -> Result<Option<InboundOrigin>, StoreError>;
    /// The outbound message a carrier knows by `carrier_id`.
    fn find_outbound(
        &mut self,
        carrier: &str,
        carrier_id: &str,
    ) -> Result<Option<String>, StoreError>;
    /// A stored message by id.
    fn message(&mut self, id: &str) -> Result<Option<Message>, StoreError>;
    /// Number of inbound messages in `conversation` newer than message `after`.
    fn unread_after(&mut self, conversation: &str, after: &str) -> Result<u32, StoreError>;
    /// Drops events older than `before_ms`; returns how many were dropped.
    fn prune_events(&mut self, before_ts: &str) -> Result<usize, StoreError>;
}

/// Readers' side: may run on any thread, concurrently with the writer.
pub trait StoreRead: Send + Sync {
    fn read_events(
        &self,
        stream: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// A stream's epoch and committed head.
    fn stream(&self, stream: &str) -> Result<Option<(String, u64)>, StoreError>;
    /// Oldest retained seq of a stream (None when it has no events).
    fn first_seq(&self, stream: &str) -> Result<Option<u64>, StoreError>;
    fn conversations(&self, q: &ConversationQuery) -> Result<Vec<Conversation>, StoreError>;
    fn conversation_tenant(&self, id: &str) -> Result<Option<String>, StoreError>;
    fn conversations_by_id(&self, id: &str) -> Result<Option<Conversation>, StoreError>;
    fn code_blocked(&self, code: &str, subscriber: &str) -> Result<bool, StoreError>;
    /// Messages of a conversation older than `before` (a message id), newest last.
    fn history(
        &self,
        conversation: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError>;
    fn unattributed(&self, limit: usize) -> Result<Vec<(Message, String)>, StoreError>;
    /// The agent whose token hashes to `hash`, unless it was revoked.
    fn agent_by_token_hash(&self, hash: &[u8; 32]) -> Result<Option<AgentRow>, StoreError>;
    /// Every agent, revoked ones too, oldest first.
    fn agents(&self) -> Result<Vec<AgentEntry>, StoreError>;
    /// The ids of revoked agents (polled by the engine to close their sessions).
    fn revoked_agents(&self) -> Result<Vec<String>, StoreError>;
    /// The consent history of (tenant, subscriber), oldest first.
    fn consent_history(
        &self,
        tenant: &str,
        subscriber: &str,
    ) -> Result<Vec<ConsentEntry>, StoreError>;
}
