//! The network task: one WebSocket to the engine, kept alive for as long as the TUI runs.
//!
//! It connects (`Authorization: Bearer`, subprotocol `shortbox.v1`), reads `hello`, syncs
//! every tenant stream (and `ops`, when listed) from its cursor, passes events on in order
//! and exactly once (see [`session`]), matches replies to calls, and reconnects with
//! full-jitter back-off after anything but a close the protocol says not to retry. The App talks to it with
//! [`NetCommand`]s and hears from it through [`NetEvent`]s; a call made while there is no
//! connection fails at once with [`NetEvent::CallFailed`], and the App decides what to retry.

pub mod backoff;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest, http};

use crate::protocol::close::{self, Advice};
use crate::protocol::{
    ApiError, ErrorCode, Hello, Live, ResetReason, SUBPROTOCOL, ServerFrame, WS_PATH,
};
use backoff::Backoff;
use session::{Cursors, Out, Session};

/// The App's handle on a call, echoed in its answer.
pub type CallId = u64;

/// What the network tells the App.
#[derive(Debug, Clone, PartialEq)]
pub enum NetEvent {
    Status(NetStatus),
    /// `hello` arrived: who we are and which streams we may see. Streams are being synced.
    Connected(Hello),
    /// A stream event, in order, never twice.
    Event(crate::protocol::Event),
    /// A stream has replayed everything missed and is live.
    Synced {
        stream: String,
    },
    /// A stream could not be resumed: reload what is shown from it with calls.
    Reset {
        stream: String,
        reason: ResetReason,
    },
    Reply {
        call: CallId,
        result: Result<Value, ApiError>,
    },
    /// The call was not sent, or its connection ended before the answer.
    CallFailed {
        call: CallId,
        reason: String,
    },
    /// An `error` frame that belongs to no call (or a refused `sync`).
    Refused {
        code: ErrorCode,
        message: String,
    },
    Live(Live),
}

#[derive(Debug, Clone, PartialEq)]
pub enum NetStatus {
    Connecting {
        attempt: u32,
    },
    /// Waiting `after` before the next attempt.
    Retrying {
        after: Duration,
        reason: String,
    },
    /// Not retrying on its own: `new_token` when the engine refused the token.
    Stopped {
        reason: String,
        new_token: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum NetCommand {
    Call {
        id: CallId,
        method: String,
        params: Value,
    },
    /// Skip the back-off wait, or try again after a stop.
    ReconnectNow,
    Shutdown,
}

pub struct NetHandle {
    pub commands: mpsc::UnboundedSender<NetCommand>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the network task; it reports to `events` until told to shut down. `wss://` URLs
/// trust the system's certificate authorities.
pub fn spawn<E>(url: String, token: String, events: mpsc::UnboundedSender<E>) -> NetHandle
where
    E: From<NetEvent> + Send + 'static,
{
    spawn_with_tls(url, token, None, events)
}

/// As [`spawn`], with the TLS configuration for `wss://` (from [`tls_config`]).
pub fn spawn_with_tls<E>(
    url: String,
    token: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    events: mpsc::UnboundedSender<E>,
) -> NetHandle
where
    E: From<NetEvent> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let emit = move |e: NetEvent| events.send(E::from(e)).is_ok();
    let task = tokio::spawn(run(url, token, tls, rx, emit));
    NetHandle { commands: tx, task }
}

/// The TLS configuration trusting the system's authorities and the PEM files in `ca_certs`;
/// `None` (the system's alone, built when first needed) when there are none.
pub fn tls_config(
    ca_certs: &[std::path::PathBuf],
) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    if ca_certs.is_empty() {
        return Ok(None);
    }
    let mut roots = Vec::new();
    for path in ca_certs {
        roots.extend(crate::tls::read_pem_certs(path)?);
    }
    crate::tls::client_config(roots).map(|c| Some(Arc::new(c)))
}

/// `ws://host:port` → `ws://host:port/v1/ws`; `http(s)` becomes `ws(s)`.
pub fn ws_url(url: &str) -> String {
    let url = url.trim();
    let url = if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if url.contains("://") {
        url.to_string()
    } else {
        format!("ws://{url}")
    };
    let after_scheme = url.split_once("://").map_or("", |(_, r)| r);
    if after_scheme.contains('/') && !after_scheme.ends_with('/') {
        url
    } else {
        format!("{}{WS_PATH}", url.trim_end_matches('/'))
    }
}

enum Ended {
    Shutdown,
    Closed { code: u16, reason: String },
    Lost(String),
}

enum ConnectError {
    Retry(String),
    Stop { reason: String, new_token: bool },
}

async fn run(
    url: String,
    token: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    mut commands: mpsc::UnboundedReceiver<NetCommand>,
    emit: impl Fn(NetEvent) -> bool,
) {
    let url = ws_url(&url);
    let mut cursors = Cursors::default();
    let mut backoff = Backoff::default();
    loop {
        if !emit(NetEvent::Status(NetStatus::Connecting {
            attempt: backoff.attempt() + 1,
        })) {
            return;
        }
        let (reason, pause) = match connect(&url, &token, tls.as_ref()).await {
            Ok(ws) => {
                let started = Instant::now();
                let ended = session(ws, &mut cursors, &mut commands, &emit).await;
                if started.elapsed() >= backoff::HEALTHY {
                    backoff.reset();
                }
                match ended {
                    Ended::Shutdown => return,
                    Ended::Lost(reason) => (reason, Duration::ZERO),
                    Ended::Closed { code, reason } => {
                        let said = if reason.is_empty() {
                            String::new()
                        } else {
                            format!(": {reason}")
                        };
                        match close::advice(code) {
                            Advice::Resume => (format!("closed ({code}){said}"), Duration::ZERO),
                            Advice::ResumeAfterPause => (
                                format!("rate limited ({code}){said}"),
                                backoff::RATE_LIMIT_PAUSE,
                            ),
                            Advice::Stop => {
                                let reason =
                                    format!("the engine closed the connection ({code}){said}");
                                if !stopped(reason, false, &mut commands, &emit).await {
                                    return;
                                }
                                backoff.reset();
                                continue;
                            }
                            Advice::NewToken => {
                                let reason = format!("token invalid or revoked ({code}){said}");
                                if !stopped(reason, true, &mut commands, &emit).await {
                                    return;
                                }
                                backoff.reset();
                                continue;
                            }
                        }
                    }
                }
            }
            Err(ConnectError::Retry(reason)) => (reason, Duration::ZERO),
            Err(ConnectError::Stop { reason, new_token }) => {
                if !stopped(reason, new_token, &mut commands, &emit).await {
                    return;
                }
                backoff.reset();
                continue;
            }
        };
        let delay = backoff.next_delay(rand::random::<f64>()).max(pause);
        tracing::info!(?delay, %reason, "reconnecting");
        if !emit(NetEvent::Status(NetStatus::Retrying {
            after: delay,
            reason,
        })) {
            return;
        }
        let wake = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => break,
                cmd = commands.recv() => match cmd {
                    Some(NetCommand::Call { id, .. }) => {
                        emit(NetEvent::CallFailed { call: id, reason: "not connected".into() });
                    }
                    Some(NetCommand::ReconnectNow) => break,
                    Some(NetCommand::Shutdown) | None => return,
                },
            }
        }
    }
}

/// Waits, stopped, for the App to ask for another try. False when it is time to end.
async fn stopped(
    reason: String,
    new_token: bool,
    commands: &mut mpsc::UnboundedReceiver<NetCommand>,
    emit: &impl Fn(NetEvent) -> bool,
) -> bool {
    tracing::warn!(%reason, "stopped");
    if !emit(NetEvent::Status(NetStatus::Stopped { reason, new_token })) {
        return false;
    }
    loop {
        match commands.recv().await {
            Some(NetCommand::Call { id, .. }) => {
                emit(NetEvent::CallFailed {
                    call: id,
                    reason: "not connected".into(),
                });
            }
            Some(NetCommand::ReconnectNow) => return true,
            Some(NetCommand::Shutdown) | None => return false,
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(
    url: &str,
    token: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Ws, ConnectError> {
    let stop = |reason: String| ConnectError::Stop {
        reason,
        new_token: false,
    };
    let mut req = url
        .into_client_request()
        .map_err(|e| stop(format!("bad engine URL {url}: {e}")))?;
    let bearer = http::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        ConnectError::Stop {
            reason: "the token has characters a header cannot carry".into(),
            new_token: true,
        }
    })?;
    req.headers_mut()
        .insert(http::header::AUTHORIZATION, bearer);
    req.headers_mut().insert(
        http::header::SEC_WEBSOCKET_PROTOCOL,
        http::HeaderValue::from_static(SUBPROTOCOL),
    );
    let connector = if req.uri().scheme_str() == Some("wss") {
        let config = match tls {
            Some(c) => c.clone(),
            None => Arc::new(crate::tls::client_config(Vec::new()).map_err(stop)?),
        };
        Some(tokio_tungstenite::Connector::Rustls(config))
    } else {
        None
    };
    let attempt = tokio_tungstenite::connect_async_tls_with_config(req, None, false, connector);
    match tokio::time::timeout(Duration::from_secs(10), attempt).await {
        Err(_) => Err(ConnectError::Retry("connecting timed out".into())),
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tungstenite::Error::Http(resp))) => {
            let status = resp.status();
            let body = resp
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let said = if body.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", body.trim())
            };
            if status == http::StatusCode::UNAUTHORIZED {
                Err(ConnectError::Stop {
                    reason: format!("the engine refused the token (401){said}"),
                    new_token: true,
                })
            } else if status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS {
                Err(ConnectError::Retry(format!(
                    "the engine answered {status}{said}"
                )))
            } else {
                Err(stop(format!("the engine answered {status}{said}")))
            }
        }
        Ok(Err(e @ (tungstenite::Error::Url(_) | tungstenite::Error::Tls(_)))) => {
            Err(stop(format!("cannot connect to {url}: {e}")))
        }
        Ok(Err(e)) => Err(ConnectError::Retry(e.to_string())),
    }
}

async fn session(
    ws: Ws,
    cursors: &mut Cursors,
    commands: &mut mpsc::UnboundedReceiver<NetCommand>,
    emit: &impl Fn(NetEvent) -> bool,
) -> Ended {
    let (mut sink, mut stream) = ws.split();
    let mut s = Session::new(cursors);
    let mut out = Vec::new();
    let mut heartbeat = Duration::from_secs(20);
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
    let hello_by = Instant::now() + Duration::from_secs(10);

    let ended = loop {
        tokio::select! {
            msg = stream.next() => {
                last_heard = Instant::now();
                match msg {
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<ServerFrame>(&text) {
                        Ok(frame) => {
                            if let ServerFrame::Hello(h) = &frame {
                                heartbeat = Duration::from_millis(h.heartbeat_ms.max(1000));
                                ping = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
                            }
                            s.on_frame(frame, &mut out);
                        }
                        Err(e) => tracing::warn!(error = %e, "frame not understood"),
                    },
                    Some(Ok(Message::Close(frame))) => {
                        let (code, reason) = frame
                            .map(|f| (u16::from(f.code), f.reason.to_string()))
                            .unwrap_or((close::NORMAL, String::new()));
                        break Ended::Closed { code, reason };
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break Ended::Lost(e.to_string()),
                    None => break Ended::Lost("the engine went away".into()),
                }
            }
            cmd = commands.recv() => match cmd {
                Some(NetCommand::Call { id, method, params }) => {
                    if s.has_hello() {
                        out.push(Out::Send(s.call(id, method, params)));
                    } else {
                        emit(NetEvent::CallFailed { call: id, reason: "not connected yet".into() });
                    }
                }
                Some(NetCommand::ReconnectNow) => {}
                Some(NetCommand::Shutdown) | None => {
                    let _ = sink.send(Message::Close(Some(tungstenite::protocol::CloseFrame {
                        code: tungstenite::protocol::frame::coding::CloseCode::Normal,
                        reason: "bye".into(),
                    }))).await;
                    break Ended::Shutdown;
                }
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > heartbeat * 2 + Duration::from_secs(5) {
                    break Ended::Lost("no word from the engine".into());
                }
                if let Err(e) = sink.send(Message::Ping(Vec::new().into())).await {
                    break Ended::Lost(e.to_string());
                }
            }
            _ = tokio::time::sleep_until(hello_by), if !s.has_hello() => {
                break Ended::Lost("no hello from the engine".into());
            }
        }
        let mut failed = None;
        for o in std::mem::take(&mut out) {
            match o {
                Out::Emit(e) => {
                    if !emit(e) {
                        return Ended::Shutdown;
                    }
                }
                // After a failed write, still pass on every event already taken (its cursor
                // has moved), but send nothing more.
                Out::Send(_) if failed.is_some() => {}
                Out::Send(frame) => {
                    let text = serde_json::to_string(&frame).unwrap_or_default();
                    if let Err(e) = sink.send(Message::text(text)).await {
                        failed = Some(e.to_string());
                    }
                }
            }
        }
        if let Some(reason) = failed {
            break Ended::Lost(reason);
        }
    };
    let reason = match &ended {
        Ended::Shutdown => "shutting down".to_string(),
        Ended::Closed { code, .. } => format!("connection closed ({code})"),
        Ended::Lost(r) => r.clone(),
    };
    s.end(&reason, &mut out);
    for o in out.drain(..) {
        if let Out::Emit(e) = o {
            emit(e);
        }
    }
    ended
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_gain_the_ws_path() {
        assert_eq!(ws_url("ws://127.0.0.1:7878"), "ws://127.0.0.1:7878/v1/ws");
        assert_eq!(ws_url("ws://127.0.0.1:7878/"), "ws://127.0.0.1:7878/v1/ws");
        assert_eq!(ws_url("http://h:1"), "ws://h:1/v1/ws");
        assert_eq!(ws_url("https://h"), "wss://h/v1/ws");
        assert_eq!(ws_url("127.0.0.1:7878"), "ws://127.0.0.1:7878/v1/ws");
        assert_eq!(ws_url("wss://h/custom/ws"), "wss://h/custom/ws");
    }
}
