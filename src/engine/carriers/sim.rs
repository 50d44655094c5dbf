//! The simulated carrier network (`kind = "sim"`): accepts outbound messages at once
//! (dispatch = accepted), returns delivery receipts (mostly delivered, some failed, a few
//! never), and with `auto_reply` lets simulated subscribers answer after a delay with lines from
//! `assets/sim.toml`. With `chatter_every_s`, subscribers now and then text another business's
//! keyword on a shared code — which moves attribution, so the warning can be seen happening.
//! Seeded: the same seed makes the same choices.

use std::sync::Mutex;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

use crate::config::SimSettings;
use crate::engine::router::{Command, InboundCommand, RouterHandle};
use crate::protocol::{Message, MessageStatus};

const SCRIPT: &str = include_str!("../../../assets/sim.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct SimSubscriber {
    pub number: String,
    #[serde(default)]
    pub name: Option<String>,
    pub code: String,
    pub opening: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Script {
    pub subscribers: Vec<SimSubscriber>,
    pub replies: Replies,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Replies {
    pub en: Vec<String>,
    pub es: Vec<String>,
}

impl Script {
    pub fn builtin() -> Script {
        toml::from_str(SCRIPT).expect("assets/sim.toml is valid")
    }

    fn reply(&self, subscriber: &str, pick: usize) -> &str {
        let lines = if subscriber.starts_with("+1") {
            &self.replies.en
        } else {
            &self.replies.es
        };
        &lines[pick % lines.len()]
    }
}

/// The receipt a message gets for a roll in 0..1000: failed, none at all, or delivered.
pub fn receipt_for(roll: u32, settings: &SimSettings) -> Option<MessageStatus> {
    if roll < settings.failed_per_mille {
        Some(MessageStatus::Failed)
    } else if roll < settings.failed_per_mille + settings.silent_per_mille {
        None
    } else {
        Some(MessageStatus::Delivered)
    }
}

pub struct SimCarrier {
    id: String,
    settings: SimSettings,
    router: RouterHandle,
    rng: Mutex<StdRng>,
    script: Script,
}

impl SimCarrier {
    pub fn new(id: &str, settings: SimSettings, router: RouterHandle) -> SimCarrier {
        SimCarrier {
            id: id.to_string(),
            rng: Mutex::new(StdRng::seed_from_u64(settings.seed)),
            settings,
            router,
            script: Script::builtin(),
        }
    }

    fn roll(&self, range: std::ops::Range<u64>) -> u64 {
        if range.is_empty() {
            return range.start;
        }
        self.rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .random_range(range)
    }

    pub async fn send(&self, m: &Message) -> Result<String, String> {
        let carrier_id = format!("SIM{}", uuid::Uuid::new_v4().simple());
        let outcome = receipt_for(self.roll(0..1000) as u32, &self.settings);
        if let Some(status) = outcome {
            let router = self.router.clone();
            let id = m.id.clone();
            let delay = Duration::from_millis(self.settings.receipt_delay_ms);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let error = (status == MessageStatus::Failed)
                    .then(|| "30003: unreachable handset (simulated)".to_string());
                router
                    .send(Command::Status {
                        message: id,
                        status,
                        error,
                        opted_out: false,
                    })
                    .await;
            });
        }
        if self.settings.auto_reply && outcome == Some(MessageStatus::Delivered) {
            let [lo, hi] = self.settings.reply_delay_ms;
            let delay = Duration::from_millis(self.roll(lo..hi + 1));
            let pick = self.roll(0..1000) as usize;
            let body = self.script.reply(&m.subscriber, pick).to_string();
            let cmd = InboundCommand {
                carrier: self.id.clone(),
                carrier_id: format!("SIMIN{}", uuid::Uuid::new_v4().simple()),
                from: m.subscriber.clone(),
                to: m.code.clone(),
                body,
                name: None,
            };
            let router = self.router.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let (tx, _rx) = tokio::sync::oneshot::channel();
                router.send(Command::Inbound(cmd, tx)).await;
            });
        }
        Ok(carrier_id)
    }

    /// Sends each scripted subscriber's opening line once (idempotent: fixed carrier ids), then,
    /// with `chatter_every_s`, keeps subscribers texting other businesses now and then.
    pub async fn drive(
        self: std::sync::Arc<Self>,
        codes: Vec<String>,
        keywords: Vec<(String, String)>,
    ) {
        for (i, s) in self.script.subscribers.iter().enumerate() {
            if !codes.contains(&s.code) {
                continue;
            }
            let cmd = InboundCommand {
                carrier: self.id.clone(),
                carrier_id: format!("SIM-OPENING-{i}"),
                from: s.number.clone(),
                to: s.code.clone(),
                body: s.opening.clone(),
                name: s.name.clone(),
            };
            let (tx, rx) = tokio::sync::oneshot::channel();
            if !self.router.send(Command::Inbound(cmd, tx)).await {
                return;
            }
            let _ = rx.await;
        }
        let every = self.settings.chatter_every_s;
        if every == 0 || keywords.is_empty() {
            return;
        }
        let mut n = 0u64;
        loop {
            let wait = self.roll(every * 500..every * 1500 + 1);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            n += 1;
            let subs: Vec<&SimSubscriber> = self
                .script
                .subscribers
                .iter()
                .filter(|s| keywords.iter().any(|(c, _)| c == &s.code))
                .collect();
            if subs.is_empty() {
                return;
            }
            let s = subs[self.roll(0..subs.len() as u64) as usize];
            let words: Vec<&(String, String)> =
                keywords.iter().filter(|(c, _)| c == &s.code).collect();
            let (code, word) = words[self.roll(0..words.len() as u64) as usize];
            let pick = self.roll(0..1000) as usize;
            let line = self.script.reply(&s.number, pick);
            let cmd = InboundCommand {
                carrier: self.id.clone(),
                carrier_id: format!("SIMCHAT{}", uuid::Uuid::new_v4().simple()),
                from: s.number.clone(),
                to: code.clone(),
                body: format!("{word} {line}"),
                name: s.name.clone(),
            };
            let (tx, _rx) = tokio::sync::oneshot::channel();
            if !self.router.send(Command::Inbound(cmd, tx)).await {
                return;
            }
            tracing::debug!(n, "simulated chatter");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(seed: u64, settings: &SimSettings) -> Vec<Option<MessageStatus>> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..2000)
            .map(|_| receipt_for(rng.random_range(0..1000), settings))
            .collect()
    }

    #[test]
    fn same_seed_same_run_and_shares_as_configured() {
        let settings = SimSettings {
            failed_per_mille: 30,
            silent_per_mille: 10,
            ..SimSettings::default()
        };
        let a = outcomes(7, &settings);
        assert_eq!(a, outcomes(7, &settings), "a seed replays the same choices");
        assert_ne!(a, outcomes(8, &settings));
        let failed = a
            .iter()
            .filter(|o| **o == Some(MessageStatus::Failed))
            .count();
        let silent = a.iter().filter(|o| o.is_none()).count();
        assert!((30..=100).contains(&failed), "about 3 % fail: {failed}");
        assert!(
            (5..=45).contains(&silent),
            "about 1 % never get a receipt: {silent}"
        );
    }

    #[test]
    fn the_script_has_replies_in_both_languages() {
        let s = Script::builtin();
        assert!(s.subscribers.len() >= 10);
        assert!(s.reply("+14155550101", 3).is_ascii());
        assert_ne!(s.reply("+573005550101", 0), s.reply("+14155550101", 0));
    }
}
