//! WebSocket clients that receive the events: each connects with its token, syncs its streams
//! fresh, then records for every bench message it receives the latency from the time carried
//! in the body, and which message it was (to count losses and duplicates).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::world::parse_marker;

/// One client to run.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub token: String,
    pub streams: Vec<String>,
    /// Stop reading this long after the load starts (a slow consumer), with a small receive
    /// buffer so the engine notices soon.
    pub stall_after: Option<Duration>,
}

/// What one client saw.
pub struct ClientReport {
    pub streams: Vec<String>,
    pub stalled: bool,
    /// Latency of each bench message received after the warm-up, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Bit `n` set when message `n` arrived.
    pub received: Vec<u64>,
    pub duplicates: u64,
    pub frames: u64,
    pub close: Option<u16>,
}

/// Shared with every client of a run.
pub struct RunClock {
    pub epoch: Instant,
    /// Messages scheduled before this (ns after `epoch`) are warm-up: not in the histograms.
    pub warmup_ns: u64,
    pub total: u64,
    /// Bench messages received (first time) by all clients that are not stalled.
    pub received: AtomicU64,
}

type Socket = WebSocketStream<TcpStream>;

pub async fn connect(addr: SocketAddr, token: &str, small_buffer: bool) -> anyhow::Result<Socket> {
    let socket = TcpSocket::new_v4()?;
    if small_buffer {
        socket.set_recv_buffer_size(4096)?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut request = format!("ws://{addr}/v1/ws").into_client_request()?;
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}"))?,
    );
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("shortbox.v1"),
    );
    let (ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .context("WebSocket upgrade")?;
    Ok(ws)
}

/// Connects, reads `hello`, syncs every stream fresh and waits for the `reset` answers.
pub async fn ready(addr: SocketAddr, spec: &ClientSpec) -> anyhow::Result<Socket> {
    let mut ws = connect(addr, &spec.token, spec.stall_after.is_some()).await?;
    let streams: Vec<serde_json::Value> = spec
        .streams
        .iter()
        .map(|s| serde_json::json!({ "stream": s, "epoch": null, "after": null }))
        .collect();
    ws.send(Message::text(
        serde_json::json!({ "op": "sync", "req": 1, "streams": streams }).to_string(),
    ))
    .await?;
    let mut resets = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while resets < spec.streams.len() {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .context("no reset answer within 20 s")?;
        match frame {
            Some(Ok(Message::Text(t))) => {
                if t.as_str().starts_with("{\"op\":\"reset\"") {
                    resets += 1;
                } else if t.as_str().starts_with("{\"op\":\"error\"") {
                    bail!("sync refused: {}", t.as_str());
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => bail!("while syncing: {e}"),
            None => bail!("closed while syncing"),
        }
    }
    Ok(ws)
}

/// Reads until `stop` turns true; see [`ClientReport`].
pub async fn receive(
    mut ws: Socket,
    spec: ClientSpec,
    clock: Arc<RunClock>,
    mut stop: watch::Receiver<bool>,
) -> ClientReport {
    let mut report = ClientReport {
        streams: spec.streams.clone(),
        stalled: spec.stall_after.is_some(),
        latency_us: Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds"),
        received: vec![0; (clock.total as usize).div_ceil(64)],
        duplicates: 0,
        frames: 0,
        close: None,
    };
    let stall_at = spec.stall_after.map(|d| tokio::time::Instant::now() + d);
    loop {
        if let Some(at) = stall_at
            && tokio::time::Instant::now() >= at
        {
            // A consumer that stops reading: wait for the end, then see how it was closed.
            let _ = stop.wait_for(|s| *s).await;
            let drain = tokio::time::timeout(Duration::from_secs(15), async {
                while let Some(frame) = ws.next().await {
                    match frame {
                        Ok(Message::Close(c)) => {
                            report.close = c.map(|c| u16::from(c.code));
                            return;
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
            });
            let _ = drain.await;
            return report;
        }
        let frame = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            () = sleep_until_opt(stall_at) => continue,
            f = ws.next() => f,
        };
        match frame {
            Some(Ok(Message::Text(t))) => {
                report.frames += 1;
                let text = t.as_str();
                if !text.starts_with("{\"op\":\"ev\"") {
                    continue;
                }
                let Some((n, t_ns)) = parse_marker(text) else {
                    continue;
                };
                let now_ns = clock.epoch.elapsed().as_nanos() as u64;
                let (word, bit) = ((n / 64) as usize, 1u64 << (n % 64));
                let Some(slot) = report.received.get_mut(word) else {
                    continue;
                };
                if *slot & bit != 0 {
                    report.duplicates += 1;
                    continue;
                }
                *slot |= bit;
                if !report.stalled {
                    clock.received.fetch_add(1, Ordering::Relaxed);
                }
                if t_ns >= clock.warmup_ns {
                    let _ = report
                        .latency_us
                        .record((now_ns.saturating_sub(t_ns) / 1000).max(1));
                }
            }
            Some(Ok(Message::Close(c))) => {
                report.close = c.map(|c| u16::from(c.code));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    let _ = ws.close(None).await;
    report
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
