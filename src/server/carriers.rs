//! Provider webhooks under `/v1/carriers/{carrier}/…`:
//!
//! - `POST …/twilio/inbound`: a Twilio-style inbound SMS (form-encoded, `X-Twilio-Signature`);
//!   `200` with empty TwiML once the message is committed.
//! - `POST …/twilio/status`: a Twilio-style status callback; `200` (empty) once applied.
//! - `POST …/sns`: an AWS SNS delivery (two-way SMS notification or subscription confirmation);
//!   `200` with the inbound acknowledgement, or `{"confirmed":true}`.
//!
//! The server only reads the request (body at most [`MAX_BODY`] bytes within
//! [`BODY_TIMEOUT`]); the engine checks signatures before anything else and answers after
//! commit. Refusals are `{"error":{"code","message"}}` with their status (403 for a signature
//! or a source that does not check out).

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt;

use super::ingress::{BODY_TIMEOUT, MAX_BODY};
use super::{AppState, error_response};
use crate::engine::IngressError;
use crate::engine::carriers::sns::SnsOutcome;
use crate::engine::carriers::twilio::{EMPTY_TWIML, TwilioHook};

/// The webhook routes, merged into the engine's router.
pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            "/v1/carriers/{carrier}/twilio/inbound",
            post(twilio_inbound),
        )
        .route("/v1/carriers/{carrier}/twilio/status", post(twilio_status))
        .route("/v1/carriers/{carrier}/sns", post(sns))
}

async fn twilio_inbound(
    state: State<AppState>,
    carrier: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    twilio(state, carrier, uri, headers, body, TwilioHook::Inbound).await
}

async fn twilio_status(
    state: State<AppState>,
    carrier: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    twilio(state, carrier, uri, headers, body, TwilioHook::Status).await
}

async fn twilio(
    State(state): State<AppState>,
    carrier: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
    hook: TwilioHook,
) -> Response {
    let carrier = match carrier {
        Ok(Path(c)) => c,
        Err(rejection) => {
            return error_response(rejection.status(), "bad_request", rejection.body_text());
        }
    };
    let body = match read_body(&headers, body).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    let target = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or_else(|| uri.path());
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok());
    match state
        .engine
        .twilio_webhook(&carrier, hook, target, signature, &body)
        .await
    {
        Ok(()) if hook == TwilioHook::Inbound => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/xml")],
            EMPTY_TWIML,
        )
            .into_response(),
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => refusal(e),
    }
}

async fn sns(
    State(state): State<AppState>,
    carrier: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let carrier = match carrier {
        Ok(Path(c)) => c,
        Err(rejection) => {
            return error_response(rejection.status(), "bad_request", rejection.body_text());
        }
    };
    let body = match read_body(&headers, body).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    match state.engine.sns_webhook(&carrier, &body).await {
        Ok(SnsOutcome::Inbound(ack)) => (StatusCode::OK, Json(ack)).into_response(),
        Ok(SnsOutcome::Confirmed) => (
            StatusCode::OK,
            Json(serde_json::json!({ "confirmed": true })),
        )
            .into_response(),
        Ok(SnsOutcome::Noted) => StatusCode::OK.into_response(),
        Err(e) => refusal(e),
    }
}

fn refusal(e: IngressError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error_response(status, e.code, e.message)
}

/// Why a body could not be read.
enum BodyError {
    TooLarge,
    Failed(String),
    Timeout,
}

impl BodyError {
    fn response(self) -> Response {
        match self {
            BodyError::TooLarge => error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is larger than {MAX_BODY} bytes: one message per request"),
            ),
            BodyError::Failed(e) => error_response(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("cannot read the body: {e}"),
            ),
            BodyError::Timeout => error_response(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!(
                    "the body did not arrive within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            ),
        }
    }
}

/// The body, at most [`MAX_BODY`] bytes (413 beyond, checked on `Content-Length` first),
/// within [`BODY_TIMEOUT`] (408 after).
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(BodyError::TooLarge.response());
    }
    let read = async {
        let mut stream = body.into_data_stream();
        let mut buf = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| BodyError::Failed(e.to_string()))?;
            if buf.len() + chunk.len() > MAX_BODY {
                return Err(BodyError::TooLarge);
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(buf))
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .unwrap_or(Err(BodyError::Timeout))
        .map_err(BodyError::response)
}
