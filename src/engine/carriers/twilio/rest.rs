//! The REST side of a Twilio-compatible provider: `POST {base}/2010-04-01/Accounts/{sid}/
//! Messages.json` (form: `To`, `From`, `Body`, `StatusCallback`; basic auth with the account
//! SID and auth token), and `GET` of the same resource to find a message it already took.
//!
//! Retries, with jittered exponential back-off: connection failures, timeouts, 5xx and 429
//! (too many requests: it took nothing, so retrying is safe; its `Retry-After` is honoured up
//! to `backoff_max_ms`). Never on other 4xx: those are answers about the message (invalid
//! number, unsubscribed recipient…) and become its failure.
//!
//! A timeout or a 5xx is *ambiguous*: the provider may have created the message before the
//! answer was lost. Before sending again after one, the provider is asked whether it has the
//! message (same lookup as the reconciliation after a crash); only a clear "no" leads to a new
//! `POST`.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use serde::Deserialize;

use super::describe_error;
use crate::config::{Config, TwilioSettings};
use crate::engine::carriers::{Reconciled, SendOutcome, https};
use crate::protocol::Message;

/// Largest API answer read.
const MAX_ANSWER: usize = 1024 * 1024;
/// How far back (before the message was accepted by the engine) a provider's record may be
/// and still be ours: allows for clocks that disagree.
const CLOCK_SLACK_MS: i64 = 10 * 60 * 1000;

pub struct TwilioCarrier {
    id: String,
    account_sid: String,
    auth_token: String,
    messages_url: String,
    status_callback: String,
    http: reqwest::Client,
    attempts: u32,
    backoff: Duration,
    backoff_max: Duration,
    /// Provider ids that a reconciliation has matched to a message of ours: two identical
    /// texts to one subscriber must not both claim the same provider record.
    adopted: Mutex<HashSet<String>>,
}

/// Why one request did not get the message accepted.
#[derive(Debug)]
enum Failure {
    /// An answer about the message: do not retry.
    Refused { error: String, opted_out: bool },
    /// Try again. `ambiguous`: the provider may have taken it anyway.
    Retry {
        error: String,
        ambiguous: bool,
        after: Option<Duration>,
    },
}

#[derive(Deserialize)]
struct Created {
    #[serde(default)]
    sid: Option<String>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    code: Option<u32>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    messages: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    sid: String,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    date_created: Option<String>,
}

impl TwilioCarrier {
    /// The connection of `config.carriers[index]` (a twilio carrier whose settings were
    /// validated); fails when its auth token's environment variable is unset.
    pub fn from_config(config: &Config, index: usize) -> Result<TwilioCarrier, String> {
        let c = &config.carriers[index];
        let key = |k: &str| format!("{}: key `carriers[{index}].{k}`", config.source);
        let t = c
            .twilio
            .as_ref()
            .ok_or_else(|| format!("{}: expected the twilio settings", key("twilio")))?;
        let token = t.auth_token().ok_or_else(|| {
            format!(
                "{}: environment variable {} is not set (and no auth_token is given)",
                key("twilio.auth_token_env"),
                t.auth_token_env.as_deref().unwrap_or("?")
            )
        })?;
        let callback = match &t.status_callback {
            Some(cb) => cb.clone(),
            None => format!(
                "{}/v1/carriers/{}/twilio/status",
                config
                    .engine
                    .public_url
                    .as_deref()
                    .unwrap_or_default()
                    .trim_end_matches('/'),
                c.id
            ),
        };
        TwilioCarrier::new(&c.id, t, token, callback).map_err(|e| format!("{}: {e}", key("twilio")))
    }

    /// A connection with `settings`, authenticated by `auth_token`, asking for status callbacks
    /// at `status_callback`.
    pub fn new(
        id: &str,
        settings: &TwilioSettings,
        auth_token: String,
        status_callback: String,
    ) -> Result<TwilioCarrier, String> {
        let http = https::client(Vec::new(), Duration::from_millis(settings.timeout_ms))?;
        Ok(TwilioCarrier {
            id: id.to_string(),
            account_sid: settings.account_sid.clone(),
            auth_token,
            messages_url: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                settings.base_url.trim_end_matches('/'),
                settings.account_sid
            ),
            status_callback,
            http,
            attempts: settings.max_attempts.max(1),
            backoff: Duration::from_millis(settings.backoff_ms.max(1)),
            backoff_max: Duration::from_millis(settings.backoff_max_ms.max(settings.backoff_ms)),
            adopted: Mutex::new(HashSet::new()),
        })
    }

    /// The key of the webhook signatures.
    pub fn auth_token(&self) -> &str {
        &self.auth_token
    }

    /// Sends `m`, retrying where that is safe; see the module documentation.
    pub async fn send(&self, m: &Message) -> SendOutcome {
        let mut check_first = false;
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            if check_first {
                match self.find_sent(m).await {
                    Ok(Some(carrier_id)) => return SendOutcome::Accepted { carrier_id },
                    Ok(None) => {}
                    Err(e) => {
                        last = format!("{last}; then asking whether it arrived failed: {e}");
                        if attempt < self.attempts {
                            tokio::time::sleep(self.backoff(attempt, None)).await;
                        }
                        continue;
                    }
                }
            }
            match self.create(m).await {
                Ok(carrier_id) => return SendOutcome::Accepted { carrier_id },
                Err(Failure::Refused { error, opted_out }) => {
                    return SendOutcome::Refused { error, opted_out };
                }
                Err(Failure::Retry {
                    error,
                    ambiguous,
                    after,
                }) => {
                    tracing::info!(carrier = %self.id, message = %m.id, attempt, %error, "provider did not take the message");
                    last = error;
                    check_first = ambiguous;
                    if attempt < self.attempts {
                        tokio::time::sleep(self.backoff(attempt, after)).await;
                    }
                }
            }
        }
        if check_first {
            // The last attempt may have reached the provider: look once more before failing it.
            match self.find_sent(m).await {
                Ok(Some(carrier_id)) => return SendOutcome::Accepted { carrier_id },
                Ok(None) => {}
                Err(e) => {
                    return SendOutcome::Refused {
                        error: format!(
                            "in doubt: {last}; the provider could not be asked whether it took the message ({e}), so it is not sent again"
                        ),
                        opted_out: false,
                    };
                }
            }
        }
        SendOutcome::Refused {
            error: format!(
                "the provider did not take the message after {} attempts: {last}",
                self.attempts
            ),
            opted_out: false,
        }
    }

    /// Whether the provider already has `m` (asked again on failures, within the attempts).
    pub async fn reconcile(&self, m: &Message) -> Reconciled {
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            match self.find_sent(m).await {
                Ok(Some(carrier_id)) => return Reconciled::Sent { carrier_id },
                Ok(None) => return Reconciled::NotSent,
                Err(e) => last = e,
            }
            if attempt < self.attempts {
                tokio::time::sleep(self.backoff(attempt, None)).await;
            }
        }
        Reconciled::Unknown { error: last }
    }

    /// Jittered exponential back-off before attempt `attempt + 1`: a uniform draw from the
    /// upper half of `backoff · 2^(attempt-1)` (capped), or the provider's `Retry-After`.
    fn backoff(&self, attempt: u32, after: Option<Duration>) -> Duration {
        let doubled = self
            .backoff
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(self.backoff_max);
        let nanos = doubled.as_nanos() as u64;
        let jittered = Duration::from_nanos(rand::rng().random_range(nanos / 2..=nanos));
        match after {
            Some(a) => a.min(self.backoff_max).max(jittered),
            None => jittered,
        }
    }

    async fn create(&self, m: &Message) -> Result<String, Failure> {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("To", &m.subscriber)
            .append_pair("From", &m.code)
            .append_pair("Body", &m.body)
            .append_pair("StatusCallback", &self.status_callback)
            .finish();
        let sent = self
            .http
            .post(&self.messages_url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(form)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                // A refused or failed connection never carried the request: safe to retry.
                let ambiguous = !e.is_connect();
                let what = if e.is_timeout() {
                    "timed out".to_string()
                } else {
                    format!("request failed: {}", error_chain(&e))
                };
                return Err(Failure::Retry {
                    error: what,
                    ambiguous,
                    after: None,
                });
            }
        };
        let status = response.status();
        let after = retry_after(&response);
        let body = match https::body_limited(response, MAX_ANSWER).await {
            Ok(b) => b,
            Err(e) => {
                return Err(Failure::Retry {
                    error: format!("HTTP {}: {e}", status.as_u16()),
                    ambiguous: true,
                    after,
                });
            }
        };
        if status.is_success() {
            return match serde_json::from_slice::<Created>(&body)
                .ok()
                .and_then(|c| c.sid)
                .filter(|s| !s.is_empty())
            {
                Some(sid) => Ok(sid),
                None => Err(Failure::Retry {
                    error: format!("HTTP {} without a message sid", status.as_u16()),
                    ambiguous: true,
                    after,
                }),
            };
        }
        let api: Option<ApiError> = serde_json::from_slice(&body).ok();
        let code = api.as_ref().and_then(|a| a.code);
        let text = api.and_then(|a| a.message);
        let error = match code {
            Some(c) => describe_error(c, text.as_deref()),
            None => format!(
                "HTTP {}{}",
                status.as_u16(),
                text.map(|t| format!(": {t}")).unwrap_or_default()
            ),
        };
        if status.as_u16() == 429 {
            return Err(Failure::Retry {
                error,
                ambiguous: false,
                after,
            });
        }
        if status.is_server_error() {
            return Err(Failure::Retry {
                error,
                ambiguous: true,
                after,
            });
        }
        Err(Failure::Refused {
            error,
            opted_out: code == Some(super::UNSUBSCRIBED_RECIPIENT),
        })
    }

    /// The provider's id of a message it has for `m` (same recipient and text, not older than
    /// `m`, not already matched to another message), from its newest records to this pair.
    async fn find_sent(&self, m: &Message) -> Result<Option<String>, String> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("To", &m.subscriber)
            .append_pair("From", &m.code)
            .append_pair("PageSize", "50")
            .finish();
        let response = self
            .http
            .get(format!("{}?{query}", self.messages_url))
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "listing messages timed out".to_string()
                } else {
                    format!("listing messages failed: {}", error_chain(&e))
                }
            })?;
        let status = response.status();
        let body = https::body_limited(response, MAX_ANSWER).await?;
        if !status.is_success() {
            return Err(format!("listing messages: HTTP {}", status.as_u16()));
        }
        let page: Page = serde_json::from_slice(&body)
            .map_err(|e| format!("listing messages: unexpected answer: {e}"))?;
        let since = m
            .created_at
            .parse::<jiff::Timestamp>()
            .map(|t| t.as_millisecond() - CLOCK_SLACK_MS)
            .unwrap_or(i64::MIN);
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        let mut adopted = self.adopted.lock().unwrap_or_else(|p| p.into_inner());
        // The provider lists newest first: the oldest match pairs with the oldest of ours.
        let found = page.messages.iter().rev().find(|r| {
            r.body.as_deref() == Some(m.body.as_str())
                && r.to.as_deref().map(digits) == Some(digits(&m.subscriber))
                && created_ms(r.date_created.as_deref()).is_none_or(|at| at >= since)
                && !adopted.contains(&r.sid)
        });
        Ok(found.map(|r| {
            adopted.insert(r.sid.clone());
            r.sid.clone()
        }))
    }
}

/// A provider date (RFC 2822, like `Thu, 30 Jul 2015 20:12:31 +0000`) in ms since the epoch.
fn created_ms(date: Option<&str>) -> Option<i64> {
    let date = date?;
    jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(date)
        .or_else(|_| date.parse::<jiff::Timestamp>())
        .ok()
        .map(|t| t.as_millisecond())
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
