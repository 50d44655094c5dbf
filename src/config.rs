//! The TOML configuration: engine settings, tenants, codes, carriers, prices.
//!
//! Loading checks every key: a bad file is refused with a message that names the file, the key
//! and what was expected. Defaults are documented in `config.example.toml`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The demo workspace used when no configuration file is given.
pub const DEMO_CONFIG: &str = include_str!("../assets/demo.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: key `{key}`: {expected}")]
    Invalid {
        file: String,
        key: String,
        expected: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub engine: EngineSettings,
    #[serde(default)]
    pub client: ClientSettings,
    #[serde(default)]
    pub compliance: ComplianceSettings,
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
    #[serde(default)]
    pub codes: Vec<CodeConfig>,
    #[serde(default)]
    pub carriers: Vec<CarrierConfig>,
    /// USD per segment, by subscriber country (ISO 3166 alpha-2).
    #[serde(default)]
    pub pricing: BTreeMap<String, f64>,
    /// Where the configuration came from (for messages); not a key.
    #[serde(skip)]
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSettings {
    pub listen: String,
    /// The URL carriers call; webhook signatures are checked against it.
    pub public_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub event_retention_days: u32,
    pub conversational_window_hours: u32,
    pub heartbeat_ms: u64,
    /// Calls a connection may make per second (sustained); bursts of twice that pass.
    pub calls_per_second: u32,
    /// Frames queued for one connection before it is closed as a slow consumer (4101).
    pub connection_queue: usize,
    /// Most commands the router applies in one transaction.
    pub batch_max: usize,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            listen: "127.0.0.1:7878".into(),
            public_url: None,
            data_dir: None,
            event_retention_days: 30,
            conversational_window_hours: 24,
            heartbeat_ms: 20_000,
            calls_per_second: 50,
            connection_queue: 4096,
            batch_max: 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSettings {
    /// Ring the terminal bell on a new inbound message outside the open conversation.
    pub bell: bool,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings { bell: true }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComplianceSettings {
    /// HELP answer on a shared code when the subscriber is not attributed to any tenant.
    pub generic_help_text: String,
    /// STOP confirmation on a shared code when the subscriber is not attributed.
    pub generic_stop_text: String,
    /// Extra compliance keywords by code country, on top of the standard English lists.
    pub keywords: BTreeMap<String, CountryKeywords>,
    /// Local hours (subscriber's time) in which campaign messages wait: [start, end), "HH:MM".
    pub quiet_hours: [String; 2],
    /// Per-country quiet hours, overriding `quiet_hours`.
    pub quiet_hours_by_country: BTreeMap<String, [String; 2]>,
}

/// Parses "HH:MM" (24 h).
pub fn parse_hhmm(s: &str) -> Option<jiff::civil::Time> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    jiff::civil::Time::new(h, m, 0, 0).ok()
}

/// Extra compliance keywords for the codes of one country.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CountryKeywords {
    pub opt_out: Vec<String>,
    pub opt_in: Vec<String>,
    pub help: Vec<String>,
}

fn spanish_keywords() -> CountryKeywords {
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect();
    CountryKeywords {
        opt_out: words(&["BAJA", "CANCELAR", "SALIR", "PARAR"]),
        opt_in: words(&["ALTA", "INICIAR"]),
        help: words(&["AYUDA"]),
    }
}

impl Default for ComplianceSettings {
    fn default() -> Self {
        ComplianceSettings {
            generic_help_text: "Short code service. Text the keyword of the business you want to reach. Reply STOP to opt out.".into(),
            generic_stop_text: "You are unsubscribed from this short code. No more messages will be sent.".into(),
            keywords: [("CO".to_string(), spanish_keywords()), ("UY".to_string(), spanish_keywords())].into(),
            quiet_hours: ["21:00".into(), "08:00".into()],
            quiet_hours_by_country: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub id: String,
    pub name: String,
    #[serde(default = "default_timezone")]
    pub timezone: String,
    pub help_text: String,
    pub stop_text: String,
    #[serde(default)]
    pub welcome_text: Option<String>,
    #[serde(default = "default_spend_limit")]
    pub monthly_spend_limit_usd: f64,
    #[serde(default)]
    pub keywords: Vec<KeywordConfig>,
}

fn default_timezone() -> String {
    "UTC".into()
}

fn default_spend_limit() -> f64 {
    100.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeywordConfig {
    pub code: String,
    pub word: String,
    #[serde(default)]
    pub double_opt_in: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeKindConfig {
    Shared,
    Dedicated,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeConfig {
    pub code: String,
    pub country: String,
    pub kind: CodeKindConfig,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default = "default_mps")]
    pub mps: u32,
    pub carrier: String,
}

fn default_mps() -> u32 {
    100
}

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
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Config::parse(&text, &file)
    }

    /// The demo workspace.
    pub fn demo() -> Config {
        Config::parse(DEMO_CONFIG, "assets/demo.toml").expect("the demo workspace is valid")
    }

    /// Parses and checks configuration text; `file` names it in messages.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        config.source = file.to_string();
        config.validate()?;
        Ok(config)
    }

    fn invalid(&self, key: impl Into<String>, expected: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.source.clone(),
            key: key.into(),
            expected: expected.into(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let e = &self.engine;
        if e.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(self.invalid(
                "engine.listen",
                format!(
                    "expected an address and port like \"127.0.0.1:7878\", found {:?}",
                    e.listen
                ),
            ));
        }
        if let Some(url) = &e.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(self.invalid(
                "engine.public_url",
                format!("expected a URL starting with http:// or https://, found {url:?}"),
            ));
        }
        if e.heartbeat_ms < 100 {
            return Err(self.invalid(
                "engine.heartbeat_ms",
                "expected at least 100 (milliseconds)",
            ));
        }
        if e.event_retention_days == 0 {
            return Err(self.invalid("engine.event_retention_days", "expected at least 1 (days)"));
        }
        if e.calls_per_second == 0 {
            return Err(self.invalid("engine.calls_per_second", "expected at least 1"));
        }
        if e.connection_queue < 16 {
            return Err(self.invalid("engine.connection_queue", "expected at least 16 (frames)"));
        }
        if e.batch_max == 0 {
            return Err(self.invalid("engine.batch_max", "expected at least 1 (commands)"));
        }

        let hours = std::iter::once((
            "compliance.quiet_hours".to_string(),
            &self.compliance.quiet_hours,
        ))
        .chain(
            self.compliance
                .quiet_hours_by_country
                .iter()
                .map(|(c, h)| (format!("compliance.quiet_hours_by_country.{c}"), h)),
        );
        for (key, [start, end]) in hours {
            if parse_hhmm(start).is_none() || parse_hhmm(end).is_none() {
                return Err(self.invalid(
                    key,
                    format!("expected [\"HH:MM\", \"HH:MM\"] (24 h), found [{start:?}, {end:?}]"),
                ));
            }
        }

        let mut carriers = HashSet::new();
        for (i, c) in self.carriers.iter().enumerate() {
            if !is_slug(&c.id) {
                return Err(self.invalid(
                    format!("carriers[{i}].id"),
                    format!(
                        "expected lowercase letters, digits and '-' (a slug), found {:?}",
                        c.id
                    ),
                ));
            }
            if !carriers.insert(c.id.as_str()) {
                return Err(self.invalid(
                    format!("carriers[{i}].id"),
                    format!("carrier {:?} is defined twice", c.id),
                ));
            }
            if let Some(s) = &c.inbound_secret
                && s.len() < 8
            {
                return Err(self.invalid(
                    format!("carriers[{i}].inbound_secret"),
                    "expected a secret of at least 8 characters",
                ));
            }
            if c.sim.reply_delay_ms[0] > c.sim.reply_delay_ms[1] {
                return Err(self.invalid(
                    format!("carriers[{i}].sim.reply_delay_ms"),
                    "expected [min, max] with min <= max",
                ));
            }
            if c.sim.failed_per_mille + c.sim.silent_per_mille > 1000 {
                return Err(self.invalid(
                    format!("carriers[{i}].sim"),
                    "failed_per_mille + silent_per_mille must not exceed 1000",
                ));
            }
            self.validate_carrier_kind(i, c)?;
        }

        let mut tenants = HashSet::new();
        for (i, t) in self.tenants.iter().enumerate() {
            if !is_slug(&t.id) {
                return Err(self.invalid(
                    format!("tenants[{i}].id"),
                    format!(
                        "expected lowercase letters, digits and '-' (a slug), found {:?}",
                        t.id
                    ),
                ));
            }
            if !tenants.insert(t.id.as_str()) {
                return Err(self.invalid(
                    format!("tenants[{i}].id"),
                    format!("tenant {:?} is defined twice", t.id),
                ));
            }
            if t.name.trim().is_empty() {
                return Err(self.invalid(format!("tenants[{i}].name"), "expected a display name"));
            }
            if jiff::tz::TimeZone::get(&t.timezone).is_err() {
                return Err(self.invalid(
                    format!("tenants[{i}].timezone"),
                    format!(
                        "expected an IANA time zone like \"America/New_York\", found {:?}",
                        t.timezone
                    ),
                ));
            }
            if !has_contact(&t.help_text) {
                return Err(self.invalid(
                    format!("tenants[{i}].help_text"),
                    "expected a HELP text that carries a contact (a phone number, an e-mail address or a URL)",
                ));
            }
            if t.stop_text.trim().is_empty() {
                return Err(self.invalid(
                    format!("tenants[{i}].stop_text"),
                    "expected the STOP confirmation text",
                ));
            }
            if !(t.monthly_spend_limit_usd.is_finite() && t.monthly_spend_limit_usd >= 0.0) {
                return Err(self.invalid(
                    format!("tenants[{i}].monthly_spend_limit_usd"),
                    "expected a non-negative amount in USD",
                ));
            }
        }

        let mut codes = HashSet::new();
        for (i, c) in self.codes.iter().enumerate() {
            let key = |k: &str| format!("codes[{i}].{k}");
            if !(3..=8).contains(&c.code.len()) || !c.code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(self.invalid(
                    key("code"),
                    format!("expected 3 to 8 digits, found {:?}", c.code),
                ));
            }
            if !is_country(&c.country) {
                return Err(self.invalid(
                    key("country"),
                    format!(
                        "expected an ISO 3166 alpha-2 country like \"US\", found {:?}",
                        c.country
                    ),
                ));
            }
            if !codes.insert((c.code.as_str(), c.country.as_str())) {
                return Err(self.invalid(
                    key("code"),
                    format!("code {} in {} is defined twice", c.code, c.country),
                ));
            }
            match (c.kind, &c.tenant) {
                (CodeKindConfig::Dedicated, None) => {
                    return Err(
                        self.invalid(key("tenant"), "a dedicated code needs the id of its tenant")
                    );
                }
                (CodeKindConfig::Dedicated, Some(t)) if !tenants.contains(t.as_str()) => {
                    return Err(self.invalid(
                        key("tenant"),
                        format!("expected the id of a tenant, found {t:?}"),
                    ));
                }
                (CodeKindConfig::Shared, Some(_)) => {
                    return Err(self.invalid(
                        key("tenant"),
                        "a shared code has no tenant (remove the key, or make it dedicated)",
                    ));
                }
                _ => {}
            }
            if c.mps == 0 {
                return Err(self.invalid(key("mps"), "expected at least 1 message part per second"));
            }
            if !carriers.contains(c.carrier.as_str()) {
                return Err(self.invalid(
                    key("carrier"),
                    format!(
                        "expected the id of a carrier in [[carriers]], found {:?}",
                        c.carrier
                    ),
                ));
            }
        }
        // Code digits must be unique across countries too: carriers address codes by digits.
        let mut digits = HashSet::new();
        for (i, c) in self.codes.iter().enumerate() {
            if !digits.insert(c.code.as_str()) {
                return Err(self.invalid(
                    format!("codes[{i}].code"),
                    format!("code {} is used in two countries", c.code),
                ));
            }
        }

        let mut words = HashSet::new();
        for (i, t) in self.tenants.iter().enumerate() {
            for (j, k) in t.keywords.iter().enumerate() {
                let key = |s: &str| format!("tenants[{i}].keywords[{j}].{s}");
                let Some(code) = self.codes.iter().find(|c| c.code == k.code) else {
                    return Err(self.invalid(
                        key("code"),
                        format!("expected a code from [[codes]], found {:?}", k.code),
                    ));
                };
                if code.kind == CodeKindConfig::Dedicated
                    && code.tenant.as_deref() != Some(t.id.as_str())
                {
                    return Err(self.invalid(
                        key("code"),
                        format!("code {} is dedicated to another tenant", k.code),
                    ));
                }
                let word = k.word.trim();
                if word.is_empty()
                    || word.contains(char::is_whitespace)
                    || !word.chars().all(char::is_alphanumeric)
                {
                    return Err(self.invalid(
                        key("word"),
                        format!(
                            "expected one word of letters and digits, found {:?}",
                            k.word
                        ),
                    ));
                }
                if !words.insert((k.code.clone(), word.to_uppercase())) {
                    return Err(self.invalid(
                        key("word"),
                        format!("keyword {word} is already registered on code {}", k.code),
                    ));
                }
            }
        }

        for (country, price) in &self.pricing {
            if !is_country(country) {
                return Err(self.invalid(
                    format!("pricing.{country}"),
                    "expected an ISO 3166 alpha-2 country as the key",
                ));
            }
            if !(price.is_finite() && *price >= 0.0) {
                return Err(self.invalid(
                    format!("pricing.{country}"),
                    "expected a non-negative USD price per segment",
                ));
            }
        }
        Ok(())
    }

    /// The settings each carrier kind needs, and only those.
    fn validate_carrier_kind(&self, i: usize, c: &CarrierConfig) -> Result<(), ConfigError> {
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

    pub fn tenant(&self, id: &str) -> Option<&TenantConfig> {
        self.tenants.iter().find(|t| t.id == id)
    }

    pub fn carrier(&self, id: &str) -> Option<&CarrierConfig> {
        self.carriers.iter().find(|c| c.id == id)
    }
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}

fn is_country(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// A HELP text must tell the subscriber how to reach a person: a phone number (7+ digits),
/// an e-mail address or a web address.
pub fn has_contact(text: &str) -> bool {
    let digits = text.chars().filter(|c| c.is_ascii_digit()).count();
    let has_email = text.split_whitespace().any(|w| {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric());
        matches!(w.split_once('@'), Some((a, b)) if !a.is_empty() && b.contains('.'))
    });
    let has_url = text.split_whitespace().any(|w| {
        let w = w
            .trim_end_matches(|c: char| !c.is_alphanumeric())
            .to_ascii_lowercase();
        w.starts_with("http://")
            || w.starts_with("https://")
            || w.starts_with("www.")
            || [".com", ".example", ".org", ".net", ".co", ".uy", ".io"]
                .iter()
                .any(|t| w.ends_with(t) && w.len() > t.len())
    });
    digits >= 7 || has_email || has_url
}
