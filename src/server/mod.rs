//! The engine's network face (axum): `/v1/ws`, carrier webhooks, `/healthz`, `/metrics`.
//!
//! [`app`] builds the router; [`serve`] runs it on a listener until a shutdown future
//! completes. `serve` adds what a bare router cannot do: it drops TCP connections that have not
//! sent a complete request head within [`REQUEST_HEAD_TIMEOUT`] (see `conn`), and on shutdown
//! it closes every live WebSocket with 4100 and waits (a bounded time) for the sessions to end.
//! Every refusal is a JSON body `{"error":{"code","message"}}`.

mod auth;
mod carriers;
mod conn;
mod decode;
mod health;
mod ingress;
mod limits;
mod replay;
mod session;
mod writer;
mod ws;

use std::future::Future;
use std::time::Duration;

use axum::Json;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{mpsc, watch};

use crate::engine::Engine;

pub use conn::REQUEST_HEAD_TIMEOUT;

/// How long `serve` waits for WebSocket sessions to close after the shutdown signal.
const SESSION_DRAIN: Duration = Duration::from_secs(5);

/// The router of the engine's endpoints. Served with `axum::serve` directly it works, but
/// without the request-head timeout and the shutdown close of live sockets: use [`serve`].
pub fn app(engine: Engine) -> axum::Router {
    let (_stop, stop_rx) = watch::channel(false);
    let (alive, _) = mpsc::channel(1);
    router(AppState {
        engine,
        shutdown: Shutdown(stop_rx),
        alive,
    })
}

/// Serves `engine` on `listener` until `shutdown` completes, then closes live WebSockets with
/// 4100 (shutdown; clients resume elsewhere or later) and returns once they are gone.
pub async fn serve(
    engine: Engine,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stop_rx) = watch::channel(false);
    let (alive, mut alive_rx) = mpsc::channel::<()>(1);
    let state = AppState {
        engine,
        shutdown: Shutdown(stop_rx),
        alive,
    };
    let service = router(state).into_make_service_with_connect_info::<conn::ConnMeta>();
    let signal = async move {
        shutdown.await;
        // Sessions hold receivers; ignore the error when there is none.
        let _ = stop.send(true);
    };
    axum::serve(
        conn::GuardedListener::new(listener, REQUEST_HEAD_TIMEOUT),
        service,
    )
    .with_graceful_shutdown(signal)
    .await?;
    // Every HTTP connection has ended; upgraded sockets are closing with 4100. `recv` answers
    // `None` once the last session has dropped its `alive` sender.
    if tokio::time::timeout(SESSION_DRAIN, alive_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("some WebSocket sessions were still open {SESSION_DRAIN:?} after shutdown");
    }
    Ok(())
}

/// What every handler can reach.
#[derive(Clone)]
struct AppState {
    engine: Engine,
    shutdown: Shutdown,
    /// Each session holds a clone: `serve` knows when the last one ended.
    alive: mpsc::Sender<()>,
}

/// Becomes ready once the server is shutting down.
#[derive(Clone)]
struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    async fn wait(&mut self) {
        if self.0.wait_for(|stopping| *stopping).await.is_err() {
            // The sender is gone without a shutdown (a bare `app`): never.
            std::future::pending::<()>().await;
        }
    }

    fn is_stopping(&self) -> bool {
        *self.0.borrow()
    }
}

fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route(crate::protocol::WS_PATH, get(ws::upgrade))
        .route("/v1/carriers/{carrier}/inbound", post(ingress::inbound))
        .merge(carriers::routes())
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(conn::track_request))
        .with_state(state)
}

/// `{"error":{"code":…,"message":…}}` with `status`.
fn error_response(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message.into() } });
    (status, Json(body)).into_response()
}

/// 401 with the challenge that tells a client which scheme to use.
fn unauthorized(message: impl Into<String>) -> Response {
    let mut response = error_response(StatusCode::UNAUTHORIZED, "unauthorized", message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"shortbox\""),
    );
    response
}

async fn not_found(request: Request) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no endpoint at {}: see docs/protocol.md for the engine's endpoints",
            request.uri().path()
        ),
    )
}

async fn method_not_allowed(request: Request) -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} does not answer {}",
            request.uri().path(),
            request.method()
        ),
    )
}
