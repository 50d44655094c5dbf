//! Frames: one JSON object per WebSocket text frame, tagged by `"op"`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::errors::{ApiError, ErrorCode};
use super::objects::Principal;

/// Frames the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ServerFrame {
    Hello(Hello),
    Ev(Event),
    Synced(Synced),
    Reset(Reset),
    Reply(Reply),
    Live(Live),
    Error(ErrorFrame),
}

/// Frames the client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ClientFrame {
    Sync(Sync),
    Call(Call),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub proto: u32,
    pub server: String,
    pub conn: String,
    pub heartbeat_ms: u64,
    pub principal: Principal,
    pub streams: Vec<String>,
}

/// One durable event of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub stream: String,
    pub epoch: String,
    pub seq: u64,
    pub kind: String,
    /// RFC 3339 UTC with milliseconds.
    pub ts: String,
    pub data: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Synced {
    pub req: u64,
    pub stream: String,
    pub epoch: String,
    pub head: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetReason {
    Fresh,
    EpochChanged,
    TooOld,
    Ahead,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reset {
    pub req: u64,
    pub stream: String,
    pub epoch: String,
    pub head: u64,
    pub reason: ResetReason,
}

/// The answer to a `call`: exactly one of `result` and `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub req: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

impl Reply {
    pub fn into_result(self) -> Result<Value, ApiError> {
        match (self.result, self.error) {
            (_, Some(e)) => Err(e),
            (Some(v), None) => Ok(v),
            (None, None) => Ok(Value::Null),
        }
    }
}

/// Ephemeral data with no sequence number (traffic metrics for ops).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Live {
    pub kind: String,
    pub data: Value,
}

/// A frame the server did not understand, or a `sync` it refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorFrame {
    pub req: Option<u64>,
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sync {
    pub req: u64,
    pub streams: Vec<SyncStream>,
}

/// Where the client stands in one stream. `epoch` and `after` go together: if either is
/// null the server answers `reset fresh`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncStream {
    pub stream: String,
    #[serde(default)]
    pub epoch: Option<String>,
    #[serde(default)]
    pub after: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub req: u64,
    pub method: String,
    #[serde(default)]
    pub params: Value,
}
