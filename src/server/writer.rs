//! The writing half of a WebSocket session: one task owns the socket's sink.
//!
//! Everything a session sends (its own frames, replies from call tasks, replayed and live
//! events) goes through one bounded channel to this task, which writes whatever is queued with
//! one flush, and pings every `heartbeat_ms` ahead of queued frames. Event frames are the hub's
//! shared `Arc<str>`, wrapped without copying. The writer closes the socket itself in two
//! cases: the hub raised the connection's slow-consumer signal, or one write has been stuck
//! longer than twice the heartbeat (the client stopped reading); both close with 4101, and the
//! client resumes from its cursor.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::engine::hub::SlowSignal;
use crate::engine::traffic::Traffic;
use crate::protocol::{ServerFrame, close};

/// Longest wait for a close frame to leave before the socket is dropped anyway.
pub(crate) const CLOSE_SEND_LIMIT: Duration = Duration::from_secs(1);
/// The same for a slow consumer: what is already queued to it goes first, and a client that
/// is slow but still reading should learn why it was closed.
const SLOW_CLOSE_LIMIT: Duration = Duration::from_secs(10);

/// What a session asks its writer to send.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A frame serialized once and shared by every connection (an event, a live frame).
    Shared(Arc<str>),
    /// A live event and when it was committed: its flush is timed
    /// (`shortbox_delivery_seconds`).
    Live(Arc<str>, std::time::Instant),
    /// A frame for this connection only.
    Text(String),
    /// Send a close frame with this code and reason, then stop.
    Close(u16, &'static str),
}

impl Outbound {
    /// A frame built by this server for this connection.
    pub(crate) fn frame(frame: &ServerFrame) -> Outbound {
        match serde_json::to_string(frame) {
            Ok(text) => Outbound::Text(text),
            Err(e) => {
                // Unreachable with the protocol's types; still, answer something readable.
                tracing::error!("cannot serialize a frame: {e}");
                Outbound::Text(r#"{"op":"error","req":null,"code":"internal","message":"the server could not encode its answer"}"#.into())
            }
        }
    }
}

/// The hub's shared frame text, as bytes a WebSocket message can borrow.
struct SharedText(Arc<str>);

impl AsRef<[u8]> for SharedText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

fn to_message(out: Outbound) -> Option<Message> {
    match out {
        Outbound::Text(text) => Some(Message::Text(Utf8Bytes::from(text))),
        Outbound::Shared(text) | Outbound::Live(text, _) => {
            match Utf8Bytes::try_from(Bytes::from_owner(SharedText(text))) {
                Ok(text) => Some(Message::Text(text)),
                Err(e) => {
                    tracing::error!("a shared frame is not UTF-8 ({e}); skipped");
                    None
                }
            }
        }
        Outbound::Close(..) => None,
    }
}

pub(crate) async fn run(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
    slow: Arc<SlowSignal>,
    heartbeat: Duration,
    traffic: Arc<Traffic>,
) {
    let stall_limit = heartbeat * 2;
    // When each live event in `batch` was committed.
    let mut committed = Vec::with_capacity(BATCH);
    let mut ping = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut batch = Vec::with_capacity(BATCH);
    let mut closing = None;
    loop {
        // The ping comes before queued frames: a client that only listens answers pings, and
        // that is how the session knows it is alive under a steady stream of events.
        tokio::select! {
            biased;
            () = slow.raised() => closing = Some((close::SLOW_CONSUMER, SLOW_REASON)),
            _ = ping.tick() => batch.push(Message::Ping(Bytes::new())),
            item = rx.recv() => match item {
                // Every sender is gone: the session has ended.
                None => return,
                Some(out) => take(out, &mut batch, &mut committed, &mut closing),
            },
        }
        // Whatever else is already queued goes out with one flush.
        while closing.is_none() && batch.len() < BATCH {
            match rx.try_recv() {
                Ok(out) => take(out, &mut batch, &mut committed, &mut closing),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            tokio::select! {
                biased;
                sent = send_batch(&mut sink, &mut batch) => {
                    if sent.is_err() {
                        // The peer is gone; the reading half sees it too.
                        return;
                    }
                    let now = std::time::Instant::now();
                    for at in committed.drain(..) {
                        traffic.delivered.observe(now.saturating_duration_since(at));
                    }
                }
                () = slow.raised() => closing = Some((close::SLOW_CONSUMER, SLOW_REASON)),
                () = tokio::time::sleep(stall_limit) => closing = Some((close::SLOW_CONSUMER, STALL_REASON)),
            }
        }
        if let Some((code, reason)) = closing {
            let limit = if code == close::SLOW_CONSUMER {
                SLOW_CLOSE_LIMIT
            } else {
                CLOSE_SEND_LIMIT
            };
            send_close(&mut sink, code, reason, limit).await;
            return;
        }
    }
}

/// Most frames written before one flush.
const BATCH: usize = 64;

fn take(
    out: Outbound,
    batch: &mut Vec<Message>,
    committed: &mut Vec<std::time::Instant>,
    closing: &mut Option<(u16, &'static str)>,
) {
    match out {
        Outbound::Close(code, reason) => *closing = Some((code, reason)),
        Outbound::Live(text, at) => {
            committed.push(at);
            batch.extend(to_message(Outbound::Shared(text)));
        }
        out => batch.extend(to_message(out)),
    }
}

async fn send_batch(
    sink: &mut SplitSink<WebSocket, Message>,
    batch: &mut Vec<Message>,
) -> Result<(), axum::Error> {
    for message in batch.drain(..) {
        sink.feed(message).await?;
    }
    sink.flush().await
}

const SLOW_REASON: &str = "slow consumer: resume from your cursor";
const STALL_REASON: &str = "not reading: resume from your cursor";

/// Sends a close frame, giving up after `limit` (a client that does not read would never
/// take it).
async fn send_close(
    sink: &mut SplitSink<WebSocket, Message>,
    code: u16,
    reason: &'static str,
    limit: Duration,
) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = tokio::time::timeout(limit, sink.send(Message::Close(Some(frame)))).await;
}
