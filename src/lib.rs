//! shortbox: a terminal inbox for live SMS conversations over shared and dedicated short codes.
//!
//! - [`protocol`]: wire types of protocol v1, shared by engine and client.
//! - [`domain`]: the rules the engine decides by, pure and table-tested.
//! - [`config`]: the TOML configuration and its checks.
//! - [`engine`]: router (the single writer), store, hub, dispatcher, carriers.
//! - [`server`]: the axum app: WebSocket sessions, carrier webhooks, health, metrics.
//! - [`client`]: the TUI; speaks `protocol` only.
//! - [`tls`]: rustls client configuration shared by carrier APIs and `wss://` connections.

pub mod client;
pub mod config;
pub mod domain;
pub mod engine;
pub mod protocol;
pub mod server;
pub mod tls;
