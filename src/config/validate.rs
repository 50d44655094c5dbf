//! The checks a configuration must pass, each refusal naming the file, the key and what was
//! expected.

use std::collections::HashSet;

use super::{CodeKindConfig, Config, ConfigError, parse_hhmm};

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

pub(super) fn is_http_url(s: &str) -> bool {
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
