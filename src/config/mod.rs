//! The TOML configuration: engine settings, tenants, codes, carriers, prices.
//!
//! Loading checks every key: a bad file is refused with a message that names the file, the key
//! and what was expected. Defaults are documented in `config.example.toml`. Carrier settings
//! are in `carriers.rs`, the checks in `validate.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod carriers;
mod validate;

pub use carriers::*;
pub use validate::has_contact;

pub const DEMO_CONFIG: &str = include_str!("../../assets/demo.toml");

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
    /// This tenant's own compliance words, on top of the standard lists and its code
    /// country's (e.g. `{ opt_out = ["UNSUB"], help = ["SOPORTE"] }`).
    #[serde(default)]
    pub compliance_keywords: CountryKeywords,
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

    pub(super) fn invalid(
        &self,
        key: impl Into<String>,
        expected: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            file: self.source.clone(),
            key: key.into(),
            expected: expected.into(),
        }
    }

    pub fn tenant(&self, id: &str) -> Option<&TenantConfig> {
        self.tenants.iter().find(|t| t.id == id)
    }

    pub fn carrier(&self, id: &str) -> Option<&CarrierConfig> {
        self.carriers.iter().find(|c| c.id == id)
    }
}
