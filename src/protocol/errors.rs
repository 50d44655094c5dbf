//! Error codes carried in `reply.error` and `error` frames.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadFrame,
    UnknownMethod,
    InvalidParams,
    Unauthorized,
    Forbidden,
    NotFound,
    RateLimited,
    AttributionShifted,
    CountryMismatch,
    OptedOut,
    NoConsent,
    SpendLimit,
    BodyTooLong,
    EmptyBody,
    IdempotencyMismatch,
    Internal,
    /// Any code a newer server sends that this build does not know.
    #[serde(other)]
    Other,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::UnknownMethod => "unknown_method",
            ErrorCode::InvalidParams => "invalid_params",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::AttributionShifted => "attribution_shifted",
            ErrorCode::CountryMismatch => "country_mismatch",
            ErrorCode::OptedOut => "opted_out",
            ErrorCode::NoConsent => "no_consent",
            ErrorCode::SpendLimit => "spend_limit",
            ErrorCode::BodyTooLong => "body_too_long",
            ErrorCode::EmptyBody => "empty_body",
            ErrorCode::IdempotencyMismatch => "idempotency_mismatch",
            ErrorCode::Internal => "internal",
            ErrorCode::Other => "other",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error object of a refused call: a code to act on, a sentence a person can act on, and
/// the data behind it (for `attribution_shifted`: `since`, `code`, `alternatives`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParams, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}
