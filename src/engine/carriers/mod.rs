//! Carrier connections, by the carrier id a code names: where outbound messages go (the
//! simulator, a Twilio-compatible REST API) and what checks each provider's webhooks need (the
//! Twilio auth token, the SNS topics and signing certificates).
//!
//! [`Carriers::build`] reads the `[[carriers]]` of the configuration once at start (secrets from
//! the file or the environment); the dispatcher sends through [`Carriers::send`], and after a
//! restart asks [`Carriers::reconcile`] whether a message it may have handed over already went.

pub mod https;
pub mod sim;
pub mod sns;
pub mod twilio;

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{CarrierKind, CodeConfig, Config};
use crate::engine::router::{Command, RouterHandle};
use crate::engine::{EngineError, IngressError};
use crate::protocol::Message;

/// An outbound connection.
pub enum Carrier {
    Sim(Arc<sim::SimCarrier>),
    Twilio(Arc<twilio::TwilioCarrier>),
}

/// What became of one hand-over to a carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The carrier took the message and knows it by this id.
    Accepted { carrier_id: String },
    /// The carrier did not take it (for good, or after every retry). `opted_out`: it said the
    /// subscriber unsubscribed (Twilio 21610).
    Refused { error: String, opted_out: bool },
}

/// Whether a message left `dispatching` by a crash reached the carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// The carrier has it: record it as dispatched, do not send again.
    Sent { carrier_id: String },
    /// The carrier does not have it: send it.
    NotSent,
    /// The carrier could not be asked; sending could duplicate it.
    Unknown { error: String },
}

#[derive(Default)]
pub struct Carriers {
    by_id: HashMap<String, Carrier>,
    twilio: HashMap<String, Arc<twilio::TwilioCarrier>>,
    sns: HashMap<String, Arc<sns::SnsCarrier>>,
}

impl Carriers {
    /// Connects every configured carrier. Starts the simulator's drivers, so it needs a Tokio
    /// runtime. Fails with a message naming the key when a secret or a file is missing.
    pub fn build(config: &Config, router: &RouterHandle) -> Result<Carriers, EngineError> {
        let mut carriers = Carriers::default();
        for (i, c) in config.carriers.iter().enumerate() {
            match c.kind {
                CarrierKind::Sim => {
                    let sim = Arc::new(sim::SimCarrier::new(&c.id, c.sim.clone(), router.clone()));
                    if c.sim.openings || c.sim.chatter_every_s > 0 {
                        let (codes, keywords) = sim_targets(config, &c.id);
                        let codes = if c.sim.openings { codes } else { Vec::new() };
                        tokio::spawn(sim.clone().drive(codes, keywords));
                    }
                    carriers.insert(c.id.clone(), Carrier::Sim(sim));
                }
                CarrierKind::Twilio => {
                    let t = twilio::TwilioCarrier::from_config(config, i)
                        .map_err(EngineError::Config)?;
                    let t = Arc::new(t);
                    carriers.twilio.insert(c.id.clone(), t.clone());
                    carriers.insert(c.id.clone(), Carrier::Twilio(t));
                }
                CarrierKind::Sns => {
                    let s = sns::SnsCarrier::from_config(config, i).map_err(EngineError::Config)?;
                    carriers.sns.insert(c.id.clone(), Arc::new(s));
                }
                CarrierKind::Http => {}
            }
        }
        Ok(carriers)
    }

    pub fn insert(&mut self, id: String, carrier: Carrier) {
        self.by_id.insert(id, carrier);
    }

    /// Hands `message` to carrier `id`.
    pub async fn send(&self, id: &str, message: &Message) -> SendOutcome {
        match self.by_id.get(id) {
            Some(Carrier::Sim(c)) => match c.send(message).await {
                Ok(carrier_id) => SendOutcome::Accepted { carrier_id },
                Err(error) => SendOutcome::Refused {
                    error,
                    opted_out: false,
                },
            },
            Some(Carrier::Twilio(c)) => c.send(message).await,
            None => SendOutcome::Refused {
                error: format!(
                    "carrier {id} has no outbound connection (a carrier of kind sim or twilio sends; sns and http only receive)"
                ),
                opted_out: false,
            },
        }
    }

    /// Asks carrier `id` whether it already has `message` (left `dispatching` by a crash).
    pub async fn reconcile(&self, id: &str, message: &Message) -> Reconciled {
        match self.by_id.get(id) {
            // The simulated network keeps nothing across restarts: it never saw the message.
            Some(Carrier::Sim(_)) | None => Reconciled::NotSent,
            Some(Carrier::Twilio(c)) => c.reconcile(message).await,
        }
    }

    /// The Twilio connection `id`, for its webhooks.
    pub fn twilio(&self, id: &str) -> Option<&Arc<twilio::TwilioCarrier>> {
        self.twilio.get(id)
    }

    /// The SNS connection `id`, for its webhook.
    pub fn sns(&self, id: &str) -> Option<&Arc<sns::SnsCarrier>> {
        self.sns.get(id)
    }
}

/// The codes a simulated carrier serves, and the keywords registered on them.
fn sim_targets(config: &Config, carrier: &str) -> (Vec<String>, Vec<(String, String)>) {
    let codes: Vec<String> = config
        .codes
        .iter()
        .filter(|code| code.carrier == carrier)
        .map(|code| code.code.clone())
        .collect();
    let keywords = config
        .tenants
        .iter()
        .flat_map(|t| {
            t.keywords
                .iter()
                .map(|k| (k.code.clone(), k.word.to_uppercase()))
        })
        .filter(|(code, _)| codes.contains(code))
        .collect();
    (codes, keywords)
}

/// The configured code a provider means by `to`, among the codes `carrier` serves. Providers
/// write short codes as plain digits (`55123`) or E.164-like with the country calling code
/// (`+155123`, `+57 89898`); anything else is not one of ours.
pub(crate) fn code_for<'c>(
    config: &'c Config,
    carrier: &str,
    field: &str,
    to: &str,
) -> Result<&'c CodeConfig, IngressError> {
    let digits: String = to.chars().filter(char::is_ascii_digit).collect();
    let looks_like_number = !digits.is_empty()
        && to
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')'));
    let ours = |c: &&CodeConfig| {
        if c.code == digits {
            return true;
        }
        let calling = calling_code(&c.country);
        !calling.is_empty() && digits == format!("{calling}{}", c.code)
    };
    let code = config
        .codes
        .iter()
        .filter(|_| looks_like_number)
        .find(ours)
        .ok_or_else(|| {
            IngressError::new(
                400,
                "unknown_code",
                format!("`{field}`: {to:?} is not a short code of this engine"),
            )
        })?;
    if code.carrier != carrier {
        return Err(IngressError::new(
            400,
            "unknown_code",
            format!(
                "`{field}`: code {} is served by carrier {:?}, not {carrier:?}",
                code.code, code.carrier
            ),
        ));
    }
    Ok(code)
}

/// The international calling code of an ISO 3166 country ("US" → "1"), or "" if unknown.
fn calling_code(country: &str) -> String {
    phonenumber::metadata::DATABASE
        .by_id(country)
        .map(|m| m.country_code().to_string())
        .unwrap_or_default()
}

impl crate::engine::Engine {
    /// The carriers' connections (webhook checks, outbound sends).
    pub fn carriers(&self) -> &Carriers {
        &self.inner.carriers
    }

    /// Answers after every command queued so far has been committed. The router applies
    /// commands in order and answers a claim only after its batch commits; a claim for an id
    /// that cannot exist writes nothing.
    pub(crate) async fn committed(&self) -> Result<(), IngressError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let barrier = Command::Claim {
            message: String::new(),
            answer: tx,
        };
        if !self.router().send(barrier).await || rx.await.is_err() {
            return Err(unavailable());
        }
        Ok(())
    }
}

pub(crate) fn unavailable() -> IngressError {
    IngressError::new(
        503,
        "unavailable",
        "the engine is shutting down; retry later",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(
            r#"
[[codes]]
code = "55123"
country = "US"
kind = "shared"
carrier = "tw"

[[codes]]
code = "89898"
country = "CO"
kind = "shared"
carrier = "other"

[[carriers]]
id = "tw"
kind = "sim"

[[carriers]]
id = "other"
kind = "sim"
"#,
            "t.toml",
        )
        .unwrap()
    }

    #[test]
    fn short_codes_are_found_in_the_shapes_providers_write_them() {
        let c = config();
        for to in ["55123", "+155123", "+1 55123", "1-55123"] {
            assert_eq!(
                code_for(&c, "tw", "To", to).map(|c| c.code.as_str()),
                Ok("55123"),
                "{to}"
            );
        }
        for to in ["+4455123", "5512", "SHOES", "", "+1 555 123", "55123x"] {
            let e = code_for(&c, "tw", "To", to).unwrap_err();
            assert_eq!((e.status, e.code), (400, "unknown_code"), "{to}");
        }
        let e = code_for(&c, "tw", "To", "+5789898").unwrap_err();
        assert!(e.message.contains("served by carrier \"other\""), "{e}");
    }
}
