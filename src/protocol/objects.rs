//! The objects frames carry: principals, messages, conversations, and event payloads.
//!
//! Times are RFC 3339 strings in UTC with milliseconds (`2026-11-22T10:00:00.123Z`); ids are
//! strings (UUIDv7 for messages and conversations); numbers are E.164 strings.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Agent,
    Admin,
    Ops,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Admin => "admin",
            Role::Ops => "ops",
            Role::Owner => "owner",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRef {
    pub id: String,
    pub name: String,
}

/// Who is connected: announced in `hello`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Principal {
    pub agent: String,
    pub name: String,
    pub role: Role,
    pub tenants: Vec<TenantRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    In,
    Out,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// Outbound: `queued → dispatched → delivered | failed | undelivered`; inbound: `received`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Received,
    Queued,
    Dispatched,
    Delivered,
    Failed,
    Undelivered,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Received => "received",
            MessageStatus::Queued => "queued",
            MessageStatus::Dispatched => "dispatched",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Failed => "failed",
            MessageStatus::Undelivered => "undelivered",
        }
    }

    /// Terminal states never change again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            MessageStatus::Delivered | MessageStatus::Failed | MessageStatus::Undelivered
        )
    }

    /// Position in the forward-only order of outbound states.
    pub fn rank(self) -> u8 {
        match self {
            MessageStatus::Received => 0,
            MessageStatus::Queued => 1,
            MessageStatus::Dispatched => 2,
            MessageStatus::Delivered | MessageStatus::Failed | MessageStatus::Undelivered => 3,
        }
    }
}

/// Which rule of domain rule A2 routed an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutedBy {
    Dedicated,
    Keyword,
    Attribution,
    Ops,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeKind {
    Shared,
    Dedicated,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    /// Absent for an unattributed inbound message.
    #[serde(default)]
    pub conversation: Option<String>,
    #[serde(default)]
    pub tenant: Option<String>,
    pub direction: Direction,
    pub code: String,
    pub subscriber: String,
    pub body: String,
    pub encoding: Encoding,
    pub segments: u32,
    pub cost_micros: i64,
    pub status: MessageStatus,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routed_by: Option<RoutedBy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// Why a delivery failed, as the carrier said it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The message reclaimed attribution on a shared code.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reclaim: bool,
    /// Set on inbound text that reads like an opt-out request without being a keyword.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub opt_out_intent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    Open,
    Pending,
    Resolved,
    Snoozed,
}

impl ConversationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Open => "open",
            ConversationStatus::Pending => "pending",
            ConversationStatus::Resolved => "resolved",
            ConversationStatus::Snoozed => "snoozed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributionState {
    /// This tenant owns replies on the shared code.
    Held,
    /// Another tenant wrote last: replies go there.
    Lost,
    /// Nobody holds the shared code for this subscriber.
    None,
    /// The code is this tenant's own.
    Dedicated,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    pub state: AttributionState,
    #[serde(default)]
    pub since: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    None,
    Pending,
    OptedIn,
    OptedOut,
}

/// A conversation summary: enough to draw a row of the inbox and the thread header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub tenant: String,
    pub subscriber: String,
    #[serde(default)]
    pub subscriber_name: Option<String>,
    /// The code replies go out on.
    pub code: String,
    pub code_kind: CodeKind,
    /// Country of the code (ISO 3166 alpha-2).
    pub country: String,
    pub status: ConversationStatus,
    #[serde(default)]
    pub snoozed_until: Option<String>,
    #[serde(default)]
    pub assignee: Option<String>,
    pub unread: u32,
    #[serde(default)]
    pub last_message: Option<Message>,
    pub last_activity: String,
    pub attribution: Attribution,
    pub consent: ConsentState,
    /// The subscriber wrote something that reads like an opt-out request.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub opt_out_intent: bool,
}

/// A short code as a tenant may use it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeInfo {
    pub code: String,
    pub country: String,
    pub kind: CodeKind,
    /// The owning tenant of a dedicated code.
    #[serde(default)]
    pub tenant: Option<String>,
    pub mps: u32,
}

/// Event kinds of v1.
pub mod kind {
    pub const MESSAGE_RECEIVED: &str = "message.received";
    pub const MESSAGE_CREATED: &str = "message.created";
    pub const MESSAGE_STATUS: &str = "message.status";
    pub const CONVERSATION_UPDATED: &str = "conversation.updated";
    pub const ATTRIBUTION_LOST: &str = "attribution.lost";
    pub const ATTRIBUTION_REGAINED: &str = "attribution.regained";
    pub const CONSENT_CHANGED: &str = "consent.changed";
    pub const SPEND_NOTICE: &str = "spend.notice";
    pub const UNATTRIBUTED_RECEIVED: &str = "unattributed.received";
    pub const UNATTRIBUTED_ASSIGNED: &str = "unattributed.assigned";
    pub const ATTRIBUTION_CHANGED: &str = "attribution.changed";
}

/// `data` of `message.received`, `message.created`, `message.status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageEventData {
    pub message: Message,
    #[serde(default)]
    pub conversation: Option<Conversation>,
}

/// `data` of `conversation.updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationEventData {
    pub conversation: Conversation,
}

/// `data` of `attribution.lost` and `attribution.regained` (tenant streams). Never names the
/// other tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributionEventData {
    pub conversation: Conversation,
    pub code: String,
    pub subscriber: String,
    pub since: String,
}

/// `data` of `attribution.changed` (ops stream): both tenants named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributionChangedData {
    pub code: String,
    pub subscriber: String,
    #[serde(default)]
    pub from: Option<TenantRef>,
    pub to: TenantRef,
    pub since: String,
    /// The dispatched outbound message that moved attribution.
    pub message: String,
}

/// `data` of `unattributed.received` (ops stream).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnattributedData {
    pub message: Message,
    pub reason: String,
}

/// `data` of `consent.changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentEventData {
    pub tenant: String,
    pub subscriber: String,
    pub consent: ConsentState,
    #[serde(default)]
    pub code: Option<String>,
    /// The keyword, person or carrier error behind the change.
    pub source: String,
    #[serde(default)]
    pub conversation: Option<Conversation>,
}

/// `data` of `spend.notice`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendNoticeData {
    pub tenant: String,
    /// 80 or 100.
    pub percent: u32,
    pub spent_micros: i64,
    pub limit_micros: i64,
    /// The calendar month (UTC) the notice is about, `YYYY-MM`.
    pub month: String,
}
