//! Carrier connections in the configuration: the kinds, their secrets (from the file or an
//! environment variable), and each kind's own settings and checks.

use std::path::PathBuf;

use serde::Deserialize;

use super::validate::is_http_url;
use super::{Config, ConfigError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CarrierKind {
    Sim,
    Twilio,
    Sns,
    Http,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarrierConfig {
    pub id: String,
    pub kind: CarrierKind,
    /// Bearer secret for `POST /v1/carriers/{id}/inbound`.
    #[serde(default)]
    pub inbound_secret: Option<String>,
    /// The name of an environment variable holding the inbound secret.
    #[serde(default)]
    pub inbound_secret_env: Option<String>,
    #[serde(default)]
    pub sim: SimSettings,
    /// Twilio-compatible REST API and webhooks (`kind = "twilio"` only, required there).
    #[serde(default)]
    pub twilio: Option<TwilioSettings>,
    /// AWS SNS two-way SMS (`kind = "sns"` only, required there).
    #[serde(default)]
    pub sns: Option<SnsSettings>,
}

/// A Twilio-compatible provider (`kind = "twilio"`): outbound through its Messages resource,
/// inbound and status callbacks through signed webhooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioSettings {
    /// The account SID: the basic-auth user and part of the API path.
    pub account_sid: String,
    /// The auth token: basic-auth password and the key of the webhook signatures.
    #[serde(default)]
    pub auth_token: Option<String>,
    /// The name of an environment variable holding the auth token (wins when set).
    #[serde(default)]
    pub auth_token_env: Option<String>,
    /// The API's base URL (another value for a compatible provider, or a local test server).
    #[serde(default = "default_twilio_base_url")]
    pub base_url: String,
    /// The `StatusCallback` sent with each message. Default: `engine.public_url` +
    /// `/v1/carriers/{id}/twilio/status`.
    #[serde(default)]
    pub status_callback: Option<String>,
    /// Time allowed for one API request, in milliseconds.
    #[serde(default = "default_twilio_timeout_ms")]
    pub timeout_ms: u64,
    /// Attempts per message (first try included) on timeouts, 5xx and 429.
    #[serde(default = "default_twilio_attempts")]
    pub max_attempts: u32,
    /// First back-off between attempts, in milliseconds; doubles each time, jittered.
    #[serde(default = "default_twilio_backoff_ms")]
    pub backoff_ms: u64,
    /// Longest back-off between attempts, in milliseconds.
    #[serde(default = "default_twilio_backoff_max_ms")]
    pub backoff_max_ms: u64,
}

fn default_twilio_base_url() -> String {
    "https://api.twilio.com".into()
}

fn default_twilio_timeout_ms() -> u64 {
    10_000
}

fn default_twilio_attempts() -> u32 {
    4
}

fn default_twilio_backoff_ms() -> u64 {
    250
}

fn default_twilio_backoff_max_ms() -> u64 {
    8_000
}

impl TwilioSettings {
    /// The auth token, from the named environment variable or the file.
    pub fn auth_token(&self) -> Option<String> {
        if let Some(var) = &self.auth_token_env
            && let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            return Some(v);
        }
        self.auth_token.clone()
    }
}

/// AWS two-way SMS delivered by SNS (`kind = "sns"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnsSettings {
    /// Topic ARNs whose messages (and subscription confirmations) are accepted.
    pub allowed_topics: Vec<String>,
    /// Where signing certificates may come from: the host of `SigningCertURL` and
    /// `SubscribeURL` (plus `:port` if the URL has one); `*` stands for one DNS label.
    #[serde(default = "default_sns_cert_host_pattern")]
    pub cert_host_pattern: String,
    /// PEM files of signing certificates to trust directly. When given, certificates are never
    /// fetched: a message must verify against one of these.
    #[serde(default)]
    pub trusted_certs: Vec<PathBuf>,
    /// PEM files of extra root certificates for the HTTPS fetches (a private endpoint, tests);
    /// the system's roots are always trusted.
    #[serde(default)]
    pub ca_certs: Vec<PathBuf>,
}

fn default_sns_cert_host_pattern() -> String {
    "sns.*.amazonaws.com".into()
}

/// Settings of the simulated carrier network (`kind = "sim"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimSettings {
    /// Simulated subscribers answer agents' messages.
    pub auto_reply: bool,
    /// Seed of the simulation's random choices (same seed, same run).
    pub seed: u64,
    /// Delay before a simulated subscriber answers, in milliseconds (a range).
    pub reply_delay_ms: [u64; 2],
    /// Delay before a delivery receipt, in milliseconds.
    pub receipt_delay_ms: u64,
    /// Share of messages that fail (per mille).
    pub failed_per_mille: u32,
    /// Share of messages that never get a receipt (per mille).
    pub silent_per_mille: u32,
    /// Background traffic: other tenants writing to demo subscribers, one message every N
    /// seconds on average (0: off). This is what makes attribution shift in the demo.
    pub chatter_every_s: u64,
    /// Play the scripted subscribers' opening lines on start (once: they are idempotent).
    pub openings: bool,
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings {
            auto_reply: false,
            seed: 7,
            reply_delay_ms: [1500, 6000],
            receipt_delay_ms: 400,
            failed_per_mille: 30,
            silent_per_mille: 10,
            chatter_every_s: 0,
            openings: false,
        }
    }
}

impl CarrierConfig {
    /// The inbound secret, from the file or from the named environment variable.
    pub fn inbound_secret(&self) -> Option<String> {
        if let Some(var) = &self.inbound_secret_env
            && let Ok(v) = std::env::var(var)
        {
            return Some(v);
        }
        self.inbound_secret.clone()
    }
}

impl Config {
    /// The settings each carrier kind needs, and only those.
    pub(super) fn validate_carrier_kind(
        &self,
        i: usize,
        c: &CarrierConfig,
    ) -> Result<(), ConfigError> {
        let key = |k: &str| format!("carriers[{i}].{k}");
        let kind = match c.kind {
            CarrierKind::Sim => "sim",
            CarrierKind::Twilio => "twilio",
            CarrierKind::Sns => "sns",
            CarrierKind::Http => "http",
        };
        if c.twilio.is_some() && c.kind != CarrierKind::Twilio {
            return Err(self.invalid(
                key("twilio"),
                format!(
                    "twilio settings belong to a carrier of kind \"twilio\", this one is {kind:?}"
                ),
            ));
        }
        if c.sns.is_some() && c.kind != CarrierKind::Sns {
            return Err(self.invalid(
                key("sns"),
                format!("sns settings belong to a carrier of kind \"sns\", this one is {kind:?}"),
            ));
        }
        match c.kind {
            CarrierKind::Sim => Ok(()),
            CarrierKind::Http => {
                if c.inbound_secret.is_none() && c.inbound_secret_env.is_none() {
                    return Err(self.invalid(
                        key("inbound_secret"),
                        "a carrier of kind \"http\" needs inbound_secret or inbound_secret_env (the bearer secret of its inbound endpoint)",
                    ));
                }
                Ok(())
            }
            CarrierKind::Twilio => {
                let Some(t) = &c.twilio else {
                    return Err(self.invalid(
                        key("twilio"),
                        "a carrier of kind \"twilio\" needs its settings: twilio = { account_sid = \"AC…\", auth_token_env = \"TWILIO_AUTH_TOKEN\" }",
                    ));
                };
                if t.account_sid.is_empty()
                    || !t.account_sid.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    return Err(self.invalid(
                        key("twilio.account_sid"),
                        format!("expected the account SID (letters and digits, like \"AC0123…\"), found {:?}", t.account_sid),
                    ));
                }
                if t.auth_token.is_none() && t.auth_token_env.is_none() {
                    return Err(self.invalid(
                        key("twilio.auth_token"),
                        "expected auth_token, or auth_token_env naming an environment variable that holds it",
                    ));
                }
                if t.auth_token.as_ref().is_some_and(|s| s.len() < 8) {
                    return Err(self.invalid(
                        key("twilio.auth_token"),
                        "expected the account's auth token (at least 8 characters)",
                    ));
                }
                if t.auth_token_env
                    .as_ref()
                    .is_some_and(|v| v.trim().is_empty())
                {
                    return Err(self.invalid(
                        key("twilio.auth_token_env"),
                        "expected the name of an environment variable",
                    ));
                }
                if !is_http_url(&t.base_url) {
                    return Err(self.invalid(
                        key("twilio.base_url"),
                        format!("expected a URL starting with https:// (or http:// for a local test server), found {:?}", t.base_url),
                    ));
                }
                if let Some(cb) = &t.status_callback
                    && !is_http_url(cb)
                {
                    return Err(self.invalid(
                        key("twilio.status_callback"),
                        format!("expected a URL starting with https:// or http://, found {cb:?}"),
                    ));
                }
                if self.engine.public_url.is_none() {
                    return Err(self.invalid(
                        "engine.public_url",
                        format!("carrier {:?} is a twilio carrier: set the URL the provider calls (its webhook signatures are checked against it), like \"https://sms.example.com\"", c.id),
                    ));
                }
                if !(100..=120_000).contains(&t.timeout_ms) {
                    return Err(self.invalid(
                        key("twilio.timeout_ms"),
                        "expected between 100 and 120000 (milliseconds)",
                    ));
                }
                if !(1..=10).contains(&t.max_attempts) {
                    return Err(
                        self.invalid(key("twilio.max_attempts"), "expected 1 to 10 attempts")
                    );
                }
                if t.backoff_ms == 0 || t.backoff_ms > t.backoff_max_ms {
                    return Err(self.invalid(
                        key("twilio.backoff_ms"),
                        "expected at least 1 (milliseconds) and at most backoff_max_ms",
                    ));
                }
                Ok(())
            }
            CarrierKind::Sns => {
                let Some(sns) = &c.sns else {
                    return Err(self.invalid(
                        key("sns"),
                        "a carrier of kind \"sns\" needs its settings: sns = { allowed_topics = [\"arn:aws:sns:…\"] }",
                    ));
                };
                if sns.allowed_topics.is_empty() {
                    return Err(self.invalid(
                        key("sns.allowed_topics"),
                        "expected at least one topic ARN, like \"arn:aws:sns:us-east-1:123456789012:sms-inbound\"",
                    ));
                }
                for (j, t) in sns.allowed_topics.iter().enumerate() {
                    if !t.starts_with("arn:") || t.split(':').count() != 6 {
                        return Err(self.invalid(
                            key(&format!("sns.allowed_topics[{j}]")),
                            format!("expected a topic ARN like \"arn:aws:sns:us-east-1:123456789012:sms-inbound\", found {t:?}"),
                        ));
                    }
                }
                let p = &sns.cert_host_pattern;
                if p.is_empty()
                    || p.contains("**")
                    || !p.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'*' | b':')
                    })
                    || p.split(['.', ':']).any(|label| label.is_empty())
                {
                    return Err(self.invalid(
                        key("sns.cert_host_pattern"),
                        format!("expected a host name where `*` stands for one label, like \"sns.*.amazonaws.com\", found {p:?}"),
                    ));
                }
                Ok(())
            }
        }
    }
}
