//! Wire types of protocol v1 (client ⇄ engine), shared by both sides.
//!
//! Types only, no behaviour: frames (`frames`), the objects they carry (`objects`), call
//! parameters and results (`calls`), and error codes (`errors`). The full contract, with
//! examples, is in `docs/protocol.md`.

pub mod calls;
pub mod errors;
pub mod frames;
pub mod objects;

pub use calls::*;
pub use errors::*;
pub use frames::*;
pub use objects::*;

/// The protocol version announced in `hello`.
pub const PROTO: u32 = 1;
/// The WebSocket subprotocol both sides must agree on.
pub const SUBPROTOCOL: &str = "shortbox.v1";
/// Largest client frame the server accepts (bigger: close 1009).
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;
/// The path of the WebSocket endpoint.
pub const WS_PATH: &str = "/v1/ws";

/// WebSocket close codes used by the engine (see the table in `docs/protocol.md`).
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    pub const INVALID_UTF8: u16 = 1007;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const RESTART: u16 = 1012;
    pub const SHUTDOWN: u16 = 4100;
    pub const SLOW_CONSUMER: u16 = 4101;
    pub const HEARTBEAT_TIMEOUT: u16 = 4103;
    pub const RATE_LIMITED: u16 = 4108;
    pub const PROTOCOL_VIOLATION: u16 = 4400;
    pub const TOKEN_INVALID: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;

    /// What a client should do after the server closed with `code`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Advice {
        /// Reconnect (with back-off) and resume from the cursor.
        Resume,
        /// Resume, but wait at least five seconds first.
        ResumeAfterPause,
        /// Do not retry the same thing.
        Stop,
        /// The token is not accepted: ask for another.
        NewToken,
    }

    pub fn advice(code: u16) -> Advice {
        match code {
            RATE_LIMITED => Advice::ResumeAfterPause,
            INVALID_UTF8 | TOO_BIG | PROTOCOL_VIOLATION | FORBIDDEN => Advice::Stop,
            TOKEN_INVALID => Advice::NewToken,
            _ => Advice::Resume,
        }
    }
}

/// Names of streams.
pub mod stream {
    /// The cross-tenant stream seen by ops and the owner.
    pub const OPS: &str = "ops";

    pub fn tenant(id: &str) -> String {
        format!("tenant:{id}")
    }

    /// The tenant id of a `tenant:<id>` stream.
    pub fn tenant_of(stream: &str) -> Option<&str> {
        stream.strip_prefix("tenant:")
    }
}
