//! The outbound dispatcher: one lane per short code, each a token bucket at the code's limit in
//! message parts per second (rule A11). A lane claims a message from the router (which checks
//! consent again), hands it to the code's carrier, and reports the carrier's answer back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::carriers::Carriers;
use super::router::{Command, DispatchJob, RouterHandle};
use crate::protocol::MessageStatus;

/// Runs until the job queue closes.
pub async fn run(
    mut jobs: mpsc::UnboundedReceiver<DispatchJob>,
    router: RouterHandle,
    carriers: Arc<Carriers>,
) {
    let mut lanes: HashMap<String, mpsc::UnboundedSender<DispatchJob>> = HashMap::new();
    while let Some(job) = jobs.recv().await {
        let code = job.message.code.clone();
        let lane = lanes.entry(code).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(lane(rx, job.mps, router.clone(), carriers.clone()));
            tx
        });
        let _ = lane.send(job);
    }
}

/// A token bucket in message parts per second, holding at most one second's worth.
pub struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(mps: u32) -> Bucket {
        let rate = f64::from(mps.max(1));
        Bucket {
            rate,
            tokens: rate,
            at: Instant::now(),
        }
    }

    /// How long to wait before `parts` may go; takes them when the answer is zero.
    pub fn take(&mut self, parts: u32, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        let need = f64::from(parts.max(1)).min(self.rate);
        let wait = Duration::from_secs_f64(((need - self.tokens) / self.rate).max(0.0));
        // A shortfall too small to wait for (float error) counts as available: a zero wait
        // must always take the tokens, or a caller looping on it would spin.
        if wait.is_zero() {
            self.tokens = (self.tokens - need).max(0.0);
        }
        wait
    }
}

async fn lane(
    mut rx: mpsc::UnboundedReceiver<DispatchJob>,
    mps: u32,
    router: RouterHandle,
    carriers: Arc<Carriers>,
) {
    let mut bucket = Bucket::new(mps);
    while let Some(job) = rx.recv().await {
        loop {
            let wait = bucket.take(job.message.segments, Instant::now());
            if wait.is_zero() {
                break;
            }
            tokio::time::sleep(wait).await;
        }
        let (tx, claimed) = oneshot::channel();
        if !router
            .send(Command::Claim {
                message: job.message.id.clone(),
                answer: tx,
            })
            .await
        {
            return;
        }
        let Ok(Some(message)) = claimed.await else {
            continue;
        };
        match carriers.send(&job.carrier, &message).await {
            Ok(carrier_id) => {
                router
                    .send(Command::Dispatched {
                        message: message.id.clone(),
                        carrier: job.carrier.clone(),
                        carrier_id: Some(carrier_id),
                    })
                    .await;
            }
            Err(error) => {
                router
                    .send(Command::Status {
                        message: message.id.clone(),
                        status: MessageStatus::Failed,
                        error: Some(error),
                    })
                    .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_holds_its_rate() {
        let start = Instant::now();
        let mut b = Bucket {
            rate: 100.0,
            tokens: 100.0,
            at: start,
        };
        let mut sent = 0;
        let mut now = start;
        // Ten simulated seconds in 1 ms steps.
        for _ in 0..10_000 {
            now += Duration::from_millis(1);
            while b.take(1, now).is_zero() {
                sent += 1;
            }
        }
        // One initial burst of 100 plus 100/s for 10 s.
        assert!((1095..=1101).contains(&sent), "sent {sent}");
    }
}
