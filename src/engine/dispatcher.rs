//! The outbound dispatcher: one lane per short code, paced at the code's limit in message parts
//! per second (rule A11), agents' replies ahead of campaign traffic.
//!
//! A message's life here: the router hands over a committed `queued` message; at its turn the
//! lane *claims* it (the router re-checks consent and commits outbox state `dispatching`),
//! hands it to the code's carrier, and reports the answer (`Dispatched` with the carrier's id,
//! which clears the outbox, or a failure). Claims and sends run concurrently (bounded per lane),
//! so a slow provider does not slow the pace.
//!
//! **Pacing.** A lane's [`Bucket`] is a GCRA ("virtual scheduling") throttle: each message of `p` parts
//! moves the lane's next start by `p / mps` seconds. Idle time earns no burst beyond
//! [`CATCH_UP`], which only absorbs timer lateness, so over any window `W` a code sends at most
//! `mps · (W + CATCH_UP)` parts plus one message.
//!
//! **Priority.** Each lane has two queues: messages whose `author` is `campaign:<id>` wait in
//! the campaign queue; everything else (agents' replies, compliance answers) in the reply
//! queue, which is always served first.
//!
//! **After a crash.** A message the router still has as `queued` may have been claimed and even
//! taken by the provider before the crash (the window between the provider's acceptance and the
//! commit of `Dispatched`). Every message recovered at start is therefore *reconciled* before
//! it is claimed: the carrier is asked whether it has it; if so it is recorded as dispatched
//! under the provider's id and not sent again; if the carrier cannot be asked, the message
//! fails rather than risk a duplicate. See docs/carriers/twilio.md for the measured window.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use super::carriers::{Carriers, Reconciled, SendOutcome};
use super::router::{Command, DispatchJob, RouterHandle};
use crate::protocol::{Message, MessageStatus};

/// Lateness a lane may make up for (timer wake-ups are never early, sometimes late).
pub const CATCH_UP: Duration = Duration::from_millis(20);

/// The author prefix of campaign messages.
pub use super::router::campaigns::CAMPAIGN_AUTHOR;

/// What the lanes need from the rest of the engine. The engine's is [`EnginePort`] (router and
/// carriers); tests give their own to check pacing and order without a store or a network.
pub trait Port: Send + Sync + 'static {
    /// Asks the router for `message`: `None` when it may not go (consent withdrawn, already
    /// handled). Answers after the claim (outbox `dispatching`) is committed.
    fn claim(&self, message: &str) -> impl Future<Output = Option<Message>> + Send;
    /// Hands a claimed message to its carrier.
    fn send(&self, carrier: &str, message: &Message) -> impl Future<Output = SendOutcome> + Send;
    /// Asks the carrier whether it already has a message recovered after a restart.
    fn reconcile(
        &self,
        carrier: &str,
        message: &Message,
    ) -> impl Future<Output = Reconciled> + Send;
    /// Records what became of a message.
    fn report(
        &self,
        message: &str,
        carrier: &str,
        outcome: SendOutcome,
    ) -> impl Future<Output = ()> + Send;
}

/// The engine's port: the router and the carriers.
pub struct EnginePort {
    router: RouterHandle,
    carriers: Arc<Carriers>,
}

impl EnginePort {
    pub fn new(router: RouterHandle, carriers: Arc<Carriers>) -> EnginePort {
        EnginePort { router, carriers }
    }
}

impl Port for EnginePort {
    async fn claim(&self, message: &str) -> Option<Message> {
        let (tx, rx) = oneshot::channel();
        let cmd = Command::Claim {
            message: message.to_string(),
            answer: tx,
        };
        if !self.router.send(cmd).await {
            return None;
        }
        rx.await.ok().flatten()
    }

    async fn send(&self, carrier: &str, message: &Message) -> SendOutcome {
        self.carriers.send(carrier, message).await
    }

    async fn reconcile(&self, carrier: &str, message: &Message) -> Reconciled {
        self.carriers.reconcile(carrier, message).await
    }

    async fn report(&self, message: &str, carrier: &str, outcome: SendOutcome) {
        let cmd = match outcome {
            SendOutcome::Accepted { carrier_id } => Command::Dispatched {
                message: message.to_string(),
                carrier: carrier.to_string(),
                carrier_id: Some(carrier_id),
            },
            // An opted-out refusal fails the message and records the opt-out.
            SendOutcome::Refused { error, opted_out } => Command::Status {
                message: message.to_string(),
                status: MessageStatus::Failed,
                error: Some(error),
                opted_out,
            },
        };
        self.router.send(cmd).await;
    }
}

/// Runs until the job queue closes. `recovered` are the messages the router still had as
/// `queued` at start: each is reconciled with its carrier before anything else happens to it.
pub async fn run<P: Port>(
    mut jobs: mpsc::UnboundedReceiver<DispatchJob>,
    recovered: Vec<DispatchJob>,
    port: Arc<P>,
) {
    let mut lanes: HashMap<String, mpsc::UnboundedSender<Job>> = HashMap::new();
    let mut route = |job: Job| {
        let lane = lanes
            .entry(job.job.message.code.clone())
            .or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(lane(rx, job.job.mps, port.clone()));
                tx
            });
        let _ = lane.send(job);
    };
    for job in recovered {
        route(Job {
            job,
            recovered: true,
        });
    }
    while let Some(job) = jobs.recv().await {
        route(Job {
            job,
            recovered: false,
        });
    }
}

struct Job {
    job: DispatchJob,
    recovered: bool,
}

impl Job {
    fn is_campaign(&self) -> bool {
        self.job
            .message
            .author
            .as_deref()
            .is_some_and(|a| a.starts_with(CAMPAIGN_AUTHOR))
    }
}

/// A lane's throttle in message parts per second: a leaky bucket in its GCRA form (see the
/// module documentation): no burst at start, none earned by idling beyond [`CATCH_UP`].
#[derive(Debug, Clone)]
pub struct Bucket {
    mps: u64,
    /// When the next message may start.
    next: Instant,
    /// Nanoseconds owed below the resolution of `next`, times `mps` (keeps odd rates exact).
    carry: u64,
}

impl Bucket {
    /// A bucket that may send from now on.
    pub fn new(mps: u32) -> Bucket {
        Bucket::starting_at(mps, Instant::now())
    }

    pub fn starting_at(mps: u32, now: Instant) -> Bucket {
        Bucket {
            mps: u64::from(mps.max(1)),
            next: now,
            carry: 0,
        }
    }

    /// When the next message may start (`now` if it may start now).
    pub fn ready_at(&self, now: Instant) -> Instant {
        self.next.max(now)
    }

    /// Books `parts` starting at `now` (call once `ready_at(now) <= now`).
    pub fn book(&mut self, parts: u32, now: Instant) {
        let start = self.next.max(now.checked_sub(CATCH_UP).unwrap_or(now));
        let total = u64::from(parts.max(1)) * 1_000_000_000 + self.carry;
        self.carry = total % self.mps;
        self.next = start + Duration::from_nanos(total / self.mps);
    }

    /// How long to wait before `parts` may go; books them when the answer is zero.
    pub fn take(&mut self, parts: u32, now: Instant) -> Duration {
        let at = self.ready_at(now);
        if at <= now {
            self.book(parts, now);
            Duration::ZERO
        } else {
            at - now
        }
    }
}

/// How many claims and sends one lane keeps in flight at most.
fn in_flight(mps: u32) -> usize {
    (mps as usize * 2).clamp(8, 1024)
}

async fn lane<P: Port>(mut rx: mpsc::UnboundedReceiver<Job>, mps: u32, port: Arc<P>) {
    let mut replies: VecDeque<Job> = VecDeque::new();
    let mut campaign: VecDeque<Job> = VecDeque::new();
    let mut bucket = Bucket::new(mps);
    let slots = Arc::new(Semaphore::new(in_flight(mps)));
    let mut open = true;
    let push = |job: Job, replies: &mut VecDeque<Job>, campaign: &mut VecDeque<Job>| {
        if job.is_campaign() {
            campaign.push_back(job);
        } else {
            replies.push_back(job);
        }
    };
    loop {
        while let Ok(job) = rx.try_recv() {
            push(job, &mut replies, &mut campaign);
        }
        if replies.is_empty() && campaign.is_empty() {
            if !open {
                return;
            }
            match rx.recv().await {
                Some(job) => push(job, &mut replies, &mut campaign),
                None => open = false,
            }
            continue;
        }
        let now = Instant::now();
        let at = bucket.ready_at(now);
        if at > now {
            // Wait for the turn, but take in what arrives meanwhile: a reply that comes now
            // goes at this turn, ahead of the campaign.
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                job = rx.recv(), if open => match job {
                    Some(job) => push(job, &mut replies, &mut campaign),
                    None => open = false,
                },
            }
            continue;
        }
        let Some(job) = replies.pop_front().or_else(|| campaign.pop_front()) else {
            continue;
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        bucket.book(job.job.message.segments, Instant::now());
        let port = port.clone();
        tokio::spawn(async move {
            process(port.as_ref(), job).await;
            drop(permit);
        });
    }
}

async fn process<P: Port>(port: &P, job: Job) {
    let carrier = job.job.carrier.as_str();
    let id = job.job.message.id.as_str();
    if job.recovered {
        match port.reconcile(carrier, &job.job.message).await {
            Reconciled::Sent { carrier_id } => {
                tracing::info!(message = id, carrier, %carrier_id, "recovered message was already with the carrier: not sent again");
                port.report(id, carrier, SendOutcome::Accepted { carrier_id })
                    .await;
                return;
            }
            Reconciled::NotSent => {}
            Reconciled::Unknown { error } => {
                tracing::warn!(message = id, carrier, %error, "recovered message could not be reconciled: failed, not sent");
                let error = format!(
                    "in doubt after a restart: the carrier could not be asked whether it already has this message ({error}); not sent again to avoid a duplicate"
                );
                port.report(
                    id,
                    carrier,
                    SendOutcome::Refused {
                        error,
                        opted_out: false,
                    },
                )
                .await;
                return;
            }
        }
    }
    let Some(message) = port.claim(id).await else {
        return;
    };
    let outcome = port.send(carrier, &message).await;
    port.report(id, carrier, outcome).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_holds_its_rate_without_an_initial_burst() {
        let start = Instant::now();
        let mut bucket = Bucket::starting_at(100, start);
        let mut sent = 0;
        let mut now = start;
        // Ten simulated seconds in 1 ms steps.
        for _ in 0..10_000 {
            while bucket.take(1, now).is_zero() {
                sent += 1;
            }
            now += Duration::from_millis(1);
        }
        assert_eq!(sent, 1000);
    }

    #[test]
    fn the_bucket_makes_up_for_late_wake_ups_but_idle_time_earns_no_burst() {
        let start = Instant::now();
        let mut bucket = Bucket::starting_at(100, start);
        // Woken 3 ms late every time: the rate holds.
        let mut now = start;
        let mut sent = 0;
        while now < start + Duration::from_secs(10) {
            bucket.book(1, now);
            sent += 1;
            now = bucket.ready_at(now) + Duration::from_millis(3);
        }
        assert!((995..=1003).contains(&sent), "sent {sent}");
        // After a minute idle, at most CATCH_UP's worth goes at once.
        let later = now + Duration::from_secs(60);
        let mut burst = 0;
        while bucket.take(1, later).is_zero() {
            burst += 1;
        }
        assert!(burst <= 3, "burst of {burst}");
    }

    #[test]
    fn seven_parts_per_second_do_not_drift() {
        let start = Instant::now();
        let mut bucket = Bucket::starting_at(7, start);
        for _ in 0..7000 {
            bucket.book(1, start);
        }
        assert_eq!(bucket.next - start, Duration::from_secs(1000));
    }
}
