//! `POST /v1/carriers/{carrier}/inbound`: carrier-neutral JSON inbound, answered after commit.
//!
//! The server only reads the request: the bearer secret (header only; a secret in the query is
//! refused like any token), and the body, at most [`MAX_BODY`] bytes (413 beyond, checked on the
//! `Content-Length` first and again while reading) within [`BODY_TIMEOUT`] (408 after). The
//! engine checks the secret, parses, routes and commits; its refusals come back as
//! `IngressError` and go out with their status as `{"error":{"code","message"}}`.

use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::{AppState, auth, error_response, unauthorized};

/// Largest inbound body accepted.
pub(crate) const MAX_BODY: usize = 64 * 1024;
/// Longest time a client may take to send its body.
pub(crate) const BODY_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn inbound(
    State(state): State<AppState>,
    carrier: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let carrier = match carrier {
        Ok(Path(carrier)) => carrier,
        Err(rejection) => {
            return error_response(rejection.status(), "bad_request", rejection.body_text());
        }
    };
    if auth::query_has_token(uri.query()) {
        return unauthorized(
            "secrets are accepted only in the Authorization header: remove it from the URL",
        );
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return too_large();
    }
    let body = match tokio::time::timeout(BODY_TIMEOUT, read_limited(body, MAX_BODY)).await {
        Ok(Ok(body)) => body,
        Ok(Err(BodyError::TooLarge)) => return too_large(),
        Ok(Err(BodyError::Failed(e))) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("cannot read the body: {e}"),
            );
        }
        Err(_) => {
            return error_response(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!(
                    "the body did not arrive within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            );
        }
    };
    match state
        .engine
        .carrier_inbound(&carrier, auth::bearer(&headers), &body)
        .await
    {
        Ok(ack) => (StatusCode::OK, Json(ack)).into_response(),
        Err(e) => {
            let status =
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error_response(status, e.code, e.message)
        }
    }
}

fn too_large() -> Response {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the body is larger than {MAX_BODY} bytes: one message per request"),
    )
}

enum BodyError {
    TooLarge,
    Failed(axum::Error),
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BodyError::Failed)?;
        if buf.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}
