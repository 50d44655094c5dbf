//! `GET /healthz` (200 `ok` while serving) and `GET /metrics` (the engine's Prometheus text).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

pub(super) async fn healthz() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ok",
    )
        .into_response()
}

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.engine.metrics_text();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response()
}
