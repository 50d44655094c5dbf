//! One WebSocket session: `hello`, then client frames in, events and answers out.
//!
//! The session task reads client frames, drains the connection's hub queue, and hears from its
//! replay tasks; everything it sends goes through the writer task (`writer`). Per stream it
//! keeps a state: *replaying* (a replay task is answering a `sync`; live events are buffered,
//! at most `connection_queue` of them) or *live* (events with `seq` above the last one sent go
//! straight out, older ones are dropped). Calls run as tasks, at most [`CALLS_IN_FLIGHT`] at a
//! time, each answering with its own `reply`; every frame first passes the rate limiter
//! (`limits`). The session ends with a close code from the protocol's table: 1009 for a frame
//! over 64 KiB, 1007 for invalid UTF-8, 4103 when the client was silent for two heartbeats,
//! 4108 for a flood, 4101 when its buffers overflowed, 4100 on shutdown, 4401 when its agent
//! was revoked.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::stream::SplitStream;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;

use super::conn::ConnGuard;
use super::decode::parse;
use super::limits::{Admit, CallLimiter};
use super::replay::{self, ReplayDone, ReplayRequest};
use super::writer::{self, CLOSE_SEND_LIMIT, Outbound};
use super::{AppState, Shutdown};
use crate::engine::hub::{HubItem, Subscription};
use crate::engine::{AuthPrincipal, Engine, PublishedEvent};
use crate::protocol::{
    ApiError, Call, ClientFrame, ErrorCode, ErrorFrame, Hello, PROTO, Reply, ServerFrame,
    SyncStream, close, stream,
};

/// Calls of one connection that may run at the same time; more are answered `rate_limited`.
pub(crate) const CALLS_IN_FLIGHT: usize = 16;
/// Frames waiting for the writer.
const OUT_QUEUE: usize = 64;
/// After the server's close frame, how long the client has to answer before the socket drops.
const CLOSE_DRAIN: Duration = Duration::from_secs(1);

/// How the session loop ended.
enum End {
    /// The client closed, or the socket failed: nothing more to send.
    Gone,
    /// Close with this code and reason. `discard`: the client may still be sending a refused
    /// frame; swallow it rather than read it.
    Close {
        code: u16,
        reason: &'static str,
        discard: bool,
    },
}

impl End {
    fn close(code: u16, reason: &'static str) -> Option<End> {
        Some(End::Close {
            code,
            reason,
            discard: false,
        })
    }
}

enum StreamState {
    Replaying {
        generation: u64,
        buffer: VecDeque<PublishedEvent>,
        task: JoinHandle<()>,
    },
    Live {
        last: u64,
    },
}

struct Session {
    engine: Engine,
    who: Arc<AuthPrincipal>,
    out: mpsc::Sender<Outbound>,
    sub: Subscription,
    streams: HashMap<Arc<str>, StreamState>,
    generation: u64,
    done_tx: mpsc::UnboundedSender<ReplayDone>,
    done_rx: mpsc::UnboundedReceiver<ReplayDone>,
    limiter: CallLimiter,
    calls: Arc<Semaphore>,
    /// Most live events buffered per replaying stream.
    buffer_limit: usize,
    heartbeat: Duration,
}

pub(super) async fn run(
    socket: WebSocket,
    state: AppState,
    who: Arc<AuthPrincipal>,
    guard: Option<Arc<ConnGuard>>,
) {
    let AppState {
        engine,
        mut shutdown,
        alive,
    } = state;
    let settings = engine.settings();
    // The configuration checks heartbeat_ms >= 100; a zero period would panic the timers.
    let heartbeat = Duration::from_millis(settings.heartbeat_ms.max(1));
    let conn = uuid::Uuid::now_v7().to_string();
    let sub = engine.hub().subscribe(settings.connection_queue);
    let (sink, mut stream) = socket.split();
    let (out, out_rx) = mpsc::channel(OUT_QUEUE);
    let mut writer = tokio::spawn(writer::run(
        sink,
        out_rx,
        sub.slow_signal(),
        heartbeat,
        engine.traffic_stats().clone(),
    ));
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let mut session = Session {
        limiter: CallLimiter::new(settings.calls_per_second, std::time::Instant::now()),
        buffer_limit: settings.connection_queue,
        engine: engine.clone(),
        who,
        out,
        sub,
        streams: HashMap::new(),
        generation: 0,
        done_tx,
        done_rx,
        calls: Arc::new(Semaphore::new(CALLS_IN_FLIGHT)),
        heartbeat,
    };

    let end = if shutdown.is_stopping() {
        End::Close {
            code: close::SHUTDOWN,
            reason: "server shutting down: reconnect and resume",
            discard: false,
        }
    } else {
        match session.hello(&conn).await {
            Some(end) => end,
            None => session.serve(&mut stream, &mut shutdown).await,
        }
    };

    match &end {
        End::Gone => tracing::debug!(conn, "session ended by the client"),
        End::Close { code, reason, .. } => tracing::debug!(conn, code, reason, "session closed"),
    }
    if let End::Close {
        code,
        reason,
        discard,
    } = end
    {
        if discard && let Some(guard) = &guard {
            guard.discard_input();
        }
        let _ = tokio::time::timeout(
            CLOSE_SEND_LIMIT,
            session.out.send(Outbound::Close(code, reason)),
        )
        .await;
        drop(session);
        if !discard || guard.is_some() {
            // Read until the client answers the close (or hangs up), so its reply is flushed
            // and nothing unread makes the kernel reset the connection.
            let _ = tokio::time::timeout(CLOSE_DRAIN, async {
                while let Some(Ok(_)) = stream.next().await {}
            })
            .await;
        }
        let _ = tokio::time::timeout(CLOSE_SEND_LIMIT, &mut writer).await;
    }
    writer.abort();
    drop(alive);
}

impl Drop for Session {
    fn drop(&mut self) {
        for state in self.streams.values() {
            if let StreamState::Replaying { task, .. } = state {
                task.abort();
            }
        }
    }
}

impl Session {
    async fn hello(&mut self, conn: &str) -> Option<End> {
        let frame = ServerFrame::Hello(Hello {
            proto: PROTO,
            server: format!("shortbox/{}", env!("CARGO_PKG_VERSION")),
            conn: conn.to_string(),
            heartbeat_ms: self.engine.settings().heartbeat_ms,
            principal: self.who.principal.clone(),
            streams: self.who.streams.clone(),
        });
        self.send(Outbound::frame(&frame)).await
    }

    async fn serve(&mut self, stream: &mut SplitStream<WebSocket>, shutdown: &mut Shutdown) -> End {
        let idle_limit = self.heartbeat * 2;
        let mut last_seen = Instant::now();
        let revoked = self.engine.revoked(&self.who.principal.agent);
        tokio::pin!(revoked);
        loop {
            let step = tokio::select! {
                () = shutdown.wait() => {
                    End::close(close::SHUTDOWN, "server shutting down: reconnect and resume")
                }
                () = &mut revoked => {
                    End::close(close::TOKEN_INVALID, "the agent was revoked: ask an admin for a new token")
                }
                () = self.out.closed() => Some(End::Gone),
                frame = stream.next() => {
                    last_seen = Instant::now();
                    self.on_frame(frame).await
                }
                item = self.sub.recv() => match item {
                    Some(item) => self.on_hub(item).await,
                    None => End::close(close::INTERNAL, "the engine stopped"),
                },
                Some(done) = self.done_rx.recv() => self.on_replay_done(done).await,
                () = tokio::time::sleep_until(last_seen + idle_limit) => {
                    // A frame may have arrived while this loop was busy elsewhere.
                    match stream.next().now_or_never() {
                        Some(frame) => {
                            last_seen = Instant::now();
                            self.on_frame(frame).await
                        }
                        None => End::close(close::HEARTBEAT_TIMEOUT, "heartbeat timeout: nothing from the client for two heartbeats"),
                    }
                }
            };
            if let Some(end) = step {
                return end;
            }
        }
    }

    async fn send(&self, out: Outbound) -> Option<End> {
        self.out.send(out).await.err().map(|_| End::Gone)
    }

    async fn send_frame(&self, frame: ServerFrame) -> Option<End> {
        self.send(Outbound::frame(&frame)).await
    }

    async fn on_frame(&mut self, frame: Option<Result<Message, axum::Error>>) -> Option<End> {
        match frame {
            // The stream ends after the client's close (tungstenite has answered it).
            None => Some(End::Gone),
            Some(Err(e)) => Some(read_error(e)),
            Some(Ok(Message::Text(text))) => self.on_text(text.as_str()).await,
            Some(Ok(Message::Binary(_))) => {
                if let Err(step) = self.admit(None, false).await {
                    return step;
                }
                self.bad_frame(
                    None,
                    "binary frames are not part of protocol v1: send JSON in text frames",
                )
                .await
            }
            // Pings are answered by tungstenite; pongs only prove the client is there. After a
            // close, keep reading: the next read flushes the answer and ends the stream.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Close(_))) => None,
        }
    }

    async fn on_text(&mut self, text: &str) -> Option<End> {
        let parsed = parse(text);
        let (req, is_call) = match &parsed {
            Ok(ClientFrame::Call(c)) => (Some(c.req), true),
            Ok(ClientFrame::Sync(s)) => (Some(s.req), false),
            Err((req, _)) => (*req, false),
        };
        if let Err(step) = self.admit(req, is_call).await {
            return step;
        }
        match parsed {
            Ok(ClientFrame::Call(call)) => self.start_call(call).await,
            Ok(ClientFrame::Sync(sync)) => {
                for wanted in sync.streams {
                    if let Some(end) = self.start_sync(sync.req, wanted).await {
                        return Some(end);
                    }
                }
                None
            }
            Err((req, message)) => self.bad_frame(req, &message).await,
        }
    }

    /// Passes a frame through the rate limiter. `Err` when the frame must not run: it was
    /// answered `rate_limited`, or (`Err(Some(end))`) the connection must close.
    async fn admit(&mut self, req: Option<u64>, is_call: bool) -> Result<(), Option<End>> {
        match self.limiter.admit(std::time::Instant::now()) {
            Admit::Yes => Ok(()),
            Admit::Close => Err(End::close(
                close::RATE_LIMITED,
                "rate limited: wait at least 5 s, then resume",
            )),
            Admit::Limited => {
                let message = format!(
                    "more than {} frames per second on this connection: slow down (bursts of twice that pass)",
                    self.limiter.rate()
                );
                let frame = match (is_call, req) {
                    (true, Some(req)) => ServerFrame::Reply(Reply {
                        req,
                        result: None,
                        error: Some(ApiError::new(ErrorCode::RateLimited, message)),
                    }),
                    _ => ServerFrame::Error(ErrorFrame {
                        req,
                        code: ErrorCode::RateLimited,
                        message,
                    }),
                };
                Err(self.send_frame(frame).await)
            }
        }
    }

    async fn bad_frame(&self, req: Option<u64>, message: &str) -> Option<End> {
        let frame = ServerFrame::Error(ErrorFrame {
            req,
            code: ErrorCode::BadFrame,
            message: message.to_string(),
        });
        self.send_frame(frame).await
    }

    async fn start_call(&mut self, call: Call) -> Option<End> {
        let Ok(permit) = self.calls.clone().try_acquire_owned() else {
            let error = ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "{CALLS_IN_FLIGHT} calls are already running on this connection: wait for their replies"
                ),
            );
            return self
                .send_frame(ServerFrame::Reply(Reply {
                    req: call.req,
                    result: None,
                    error: Some(error),
                }))
                .await;
        };
        let (engine, who, out) = (self.engine.clone(), self.who.clone(), self.out.clone());
        tokio::spawn(async move {
            let Call {
                req,
                method,
                params,
            } = call;
            let answer = AssertUnwindSafe(engine.call(&who, &method, params))
                .catch_unwind()
                .await;
            let answer = answer.unwrap_or_else(|_| {
                tracing::error!(method, "the engine panicked on a call");
                Err(ApiError::internal(
                    "the engine failed on this call; try again, and report it if it persists",
                ))
            });
            let reply = match answer {
                Ok(result) => Reply {
                    req,
                    result: Some(result),
                    error: None,
                },
                Err(error) => Reply {
                    req,
                    result: None,
                    error: Some(error),
                },
            };
            let _ = out.send(Outbound::frame(&ServerFrame::Reply(reply))).await;
            drop(permit);
        });
        None
    }

    async fn start_sync(&mut self, req: u64, wanted: SyncStream) -> Option<End> {
        if !self.who.streams.contains(&wanted.stream) {
            let message = format!(
                "stream {:?} is not yours: `hello` lists the streams you may sync ({})",
                wanted.stream,
                self.who.streams.join(", ")
            );
            let frame = ServerFrame::Error(ErrorFrame {
                req: Some(req),
                code: ErrorCode::Forbidden,
                message,
            });
            return self.send_frame(frame).await;
        }
        let name: Arc<str> = Arc::from(wanted.stream.as_str());
        // Follow the stream before the replay reads its position: nothing committed after
        // that read can be missed.
        self.sub.follow(&name);
        self.generation += 1;
        let buffer = match self.streams.remove(&name) {
            Some(StreamState::Replaying { buffer, task, .. }) => {
                task.abort();
                buffer
            }
            _ => VecDeque::new(),
        };
        let request = ReplayRequest {
            req,
            stream: name.clone(),
            epoch: wanted.epoch,
            after: wanted.after,
            generation: self.generation,
        };
        let task = tokio::spawn(replay::replay(
            self.engine.clone(),
            self.out.clone(),
            self.done_tx.clone(),
            request,
        ));
        self.streams.insert(
            name,
            StreamState::Replaying {
                generation: self.generation,
                buffer,
                task,
            },
        );
        None
    }

    async fn on_replay_done(&mut self, done: ReplayDone) -> Option<End> {
        let Some(StreamState::Replaying { generation, .. }) = self.streams.get(&done.stream) else {
            return None;
        };
        if *generation != done.generation {
            return None; // a replay that was replaced by a newer sync
        }
        let Some(StreamState::Replaying { buffer, .. }) = self.streams.remove(&done.stream) else {
            return None;
        };
        let Some(mut last) = done.covered else {
            self.sub.unfollow(&done.stream);
            return None;
        };
        let pending: Vec<PublishedEvent> = buffer.into_iter().filter(|e| e.seq > last).collect();
        if let Some(newest) = pending.last() {
            last = last.max(newest.seq);
        }
        self.streams.insert(done.stream, StreamState::Live { last });
        for event in pending {
            if let Some(end) = self.send(Outbound::Shared(event.frame)).await {
                return Some(end);
            }
        }
        None
    }

    async fn on_hub(&mut self, item: HubItem) -> Option<End> {
        match item {
            HubItem::Event(event) => match self.streams.get_mut(&event.stream) {
                Some(StreamState::Live { last }) => {
                    if event.seq > *last {
                        *last = event.seq;
                        let out = match event.committed {
                            Some(at) => Outbound::Live(event.frame, at),
                            None => Outbound::Shared(event.frame),
                        };
                        return self.send(out).await;
                    }
                    None
                }
                Some(StreamState::Replaying { buffer, .. }) => {
                    if buffer.len() >= self.buffer_limit {
                        return End::close(
                            close::SLOW_CONSUMER,
                            "slow consumer: resume from your cursor",
                        );
                    }
                    buffer.push_back(event);
                    None
                }
                None => None,
            },
            HubItem::Live(frame) => {
                if matches!(
                    self.streams.get(stream::OPS),
                    Some(StreamState::Live { .. })
                ) {
                    // Ephemeral: dropped rather than waited for.
                    let _ = self.out.try_send(Outbound::Shared(frame));
                }
                None
            }
        }
    }
}

/// The close for a frame tungstenite refused.
fn read_error(error: axum::Error) -> End {
    let inner = error.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => End::Close {
            code: close::TOO_BIG,
            reason: "frame larger than 65536 bytes: send smaller frames",
            discard: true,
        },
        Some(tungstenite::Error::Utf8(_)) => End::Close {
            code: close::INVALID_UTF8,
            reason: "invalid UTF-8 in a text frame",
            discard: false,
        },
        Some(tungstenite::Error::Protocol(p)) => {
            tracing::debug!("WebSocket protocol error: {p}");
            End::Close {
                code: close::PROTOCOL_VIOLATION,
                reason: "WebSocket protocol violation",
                discard: true,
            }
        }
        _ => End::Gone,
    }
}
