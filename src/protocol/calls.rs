//! Parameters and results of the calls (`{"op":"call","method":…,"params":…}`).

use serde::{Deserialize, Serialize};

use super::objects::{CodeInfo, Conversation, ConversationStatus, Encoding, Message};

/// Method names.
pub mod method {
    pub const CONVERSATIONS_LIST: &str = "conversations.list";
    pub const CONVERSATIONS_HISTORY: &str = "conversations.history";
    pub const CONVERSATIONS_UPDATE: &str = "conversations.update";
    pub const MESSAGES_SEND: &str = "messages.send";
    pub const MESSAGES_PREVIEW: &str = "messages.preview";
    /// Extension: the codes a tenant may send on.
    pub const CODES_LIST: &str = "codes.list";
    /// Extension (ops): the unattributed queue.
    pub const UNATTRIBUTED_LIST: &str = "unattributed.list";
    /// Extension (ops): give an unattributed message to a tenant.
    pub const UNATTRIBUTED_ASSIGN: &str = "unattributed.assign";
    /// Extension (admin): send a campaign to opted-in subscribers.
    pub const CAMPAIGNS_SEND: &str = "campaigns.send";
    /// Extension: an agent confirms that the subscriber asked to opt out.
    pub const CONVERSATIONS_OPT_OUT: &str = "conversations.opt_out";
    /// Extension: the subscriber's consent with this tenant, and its history.
    pub const CONSENT_HISTORY: &str = "consent.history";
    /// Extension: the tenants this principal may name (ops and owner: every tenant).
    pub const TENANTS_LIST: &str = "tenants.list";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationRef {
    pub conversation: String,
}

/// One change of consent, oldest first in `consent.history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentChange {
    pub state: super::objects::ConsentState,
    pub at: String,
    /// The inbound message behind it, when there is one.
    #[serde(default)]
    pub message: Option<String>,
    /// The keyword (normalised), `agent:<id>`, or a carrier error.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentHistoryResult {
    pub consent: super::objects::ConsentState,
    /// Whether the conversation's current code is blocked for this subscriber.
    pub code_blocked: bool,
    pub items: Vec<ConsentChange>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ConversationStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution_lost: Option<bool>,
    /// Matches the subscriber's number, name, or the text of the last message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationsListParams {
    pub tenant: String,
    #[serde(default)]
    pub filter: ConversationFilter,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Items newest activity first; `next` is the cursor of the following page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationsListResult {
    pub items: Vec<Conversation>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryParams {
    pub conversation: String,
    /// A message id: return messages older than it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Messages newest last; `next` is the `before` of the previous (older) page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryResult {
    pub items: Vec<Message>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationUpdateParams {
    pub conversation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ConversationStatus>,
    /// An agent id, `"me"` for the caller, or `""` to unassign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// A message id: everything up to it counts as read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_up_to: Option<String>,
    /// Extension: `true` marks the conversation unread again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread: Option<bool>,
    /// Extension: the code replies go out on from now on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SendParams {
    /// The idempotency key (a UUID).
    pub client_msg_id: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// With `conversation`: switch to this code. Without: the code to send on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reclaim: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendResult {
    pub message: Message,
    pub duplicate: bool,
}

/// Something that would refuse, hold or cost more than expected, said before sending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// An error code (`attribution_shifted`, `opted_out`, …) or a notice (`quiet_hours`,
    /// `spend_near_limit`, `multi_segment`).
    pub code: String,
    pub message: String,
    /// True when the send would be refused as it stands.
    #[serde(default)]
    pub blocking: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviewResult {
    pub encoding: Encoding,
    pub segments: u32,
    pub cost_micros: i64,
    /// Characters (GSM-7 septets or UTF-16 units) still free in the last segment.
    pub remaining_in_segment: u32,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodesListParams {
    pub tenant: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodesListResult {
    pub items: Vec<CodeInfo>,
}

/// `tenants.list` takes no parameters; any field given is refused, so a typo is not silently
/// ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantsListParams {}

/// Sorted by name (then id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantsListResult {
    pub items: Vec<TenantInfo>,
}

/// A tenant as a picker shows it: who it is and where it sends from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantInfo {
    pub id: String,
    pub name: String,
    /// Countries of its dedicated codes and of the shared codes its keywords are on, sorted.
    #[serde(default)]
    pub countries: Vec<String>,
    /// Its dedicated codes, sorted.
    #[serde(default)]
    pub codes: Vec<String>,
    /// Its keywords, by code then word.
    #[serde(default)]
    pub keywords: Vec<TenantKeyword>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TenantKeyword {
    pub code: String,
    pub word: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnattributedListParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// Newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnattributedListResult {
    pub items: Vec<UnattributedItem>,
}

/// An inbound message no tenant owns, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnattributedItem {
    #[serde(flatten)]
    pub message: Message,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnattributedAssignParams {
    pub message: String,
    pub tenant: String,
}

/// A marketing message to many subscribers: only those opted in with the tenant receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignParams {
    pub tenant: String,
    pub code: String,
    pub body: String,
    /// E.164 numbers; default: every subscriber opted in with the tenant in the code's country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<String>>,
}

/// A recipient a campaign left out, and why (an error code of `messages.send`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignSkip {
    pub subscriber: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignResult {
    pub campaign: String,
    /// Messages queued for dispatch now.
    pub queued: u32,
    /// Messages held for the end of the subscriber's quiet hours.
    pub held: u32,
    pub skipped: Vec<CampaignSkip>,
}
