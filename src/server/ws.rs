//! `GET /v1/ws`: everything decided before the upgrade.
//!
//! In order: a token in the query string → 401 (whatever the header says); no bearer token,
//! or one the engine does not know → 401; subprotocols offered but `shortbox.v1` not among
//! them → 400; not a valid WebSocket upgrade → axum's status (400/405/426) with a JSON body.
//! A client that offers no subprotocol at all is accepted, and the answer names none (RFC 6455
//! forbids echoing one that was not offered): `websocat ws://…/v1/ws` and other scripts work
//! without extra flags, and the first frame, `hello` with `"proto":1`, says what they speak.
//! The upgraded socket refuses client frames over 64 KiB (close 1009, see `session`).

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;

use super::conn::Conn;
use super::{AppState, auth, error_response, session, unauthorized};
use crate::protocol::{MAX_CLIENT_FRAME, SUBPROTOCOL};

/// How much a session reads from its socket at a time. The WebSocket library zero-fills this
/// much of its buffer before every read, including the reads that find nothing, and a session
/// tries one each time it wakes to send events; its default of 128 KiB made that zeroing 6 % of
/// the engine's network threads at 10 000 msg/s (docs/benchmarks.md, sixth series). Client
/// frames are small; a larger one still arrives whole, the buffer grows to its length.
const READ_BUFFER: usize = 8 * 1024;

pub(super) async fn upgrade(
    State(state): State<AppState>,
    conn: Conn,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if auth::query_has_token(uri.query()) {
        return unauthorized(
            "tokens are accepted only in the Authorization header (a token in a URL leaks into logs): \
             remove it from the query and send `Authorization: Bearer <token>`",
        );
    }
    let Some(token) = auth::bearer(&headers) else {
        return unauthorized(
            "missing token: send `Authorization: Bearer <token>` (see `shortbox agent add`)",
        );
    };
    let Some(who) = state.engine.authenticate(token).await else {
        return unauthorized("the token is not valid or was revoked: ask an admin for a new one");
    };
    let offered = offered_protocols(&headers);
    if !offered.is_empty() && !offered.iter().any(|p| p == SUBPROTOCOL) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "unsupported_subprotocol",
            format!(
                "this server speaks the WebSocket subprotocol {SUBPROTOCOL}; offered: {}",
                offered.join(", ")
            ),
        );
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            return error_response(rejection.status(), "bad_upgrade", rejection.body_text());
        }
    };
    let mut ws = ws
        .read_buffer_size(READ_BUFFER)
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME);
    if !offered.is_empty() {
        ws = ws.protocols([SUBPROTOCOL]);
    }
    let guard = conn.guard();
    if let Some(guard) = &guard {
        guard.mark_upgraded();
    }
    let remote = conn.remote();
    ws.on_failed_upgrade(move |e| tracing::debug!("WebSocket upgrade from {remote:?} failed: {e}"))
        .on_upgrade(move |socket| session::run(socket, state, Arc::new(who), guard))
}

/// Every subprotocol named in `Sec-WebSocket-Protocol` headers (comma-separated, possibly
/// several headers).
fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}
