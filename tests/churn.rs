//! Resume under churn: WebSocket clients reconnect at random points — in the middle of a
//! replay, in the middle of live traffic, and across engine restarts (SIGINT and SIGKILL) —
//! while inbound traffic flows. Each client keeps a cursor per stream and applies an event only
//! when `seq == cursor + 1`, as the protocol says. At the end every client's applied events
//! must equal the store's events (replayed from 0), and the engine must never have sent a gap,
//! a duplicate, or a reset other than the first `fresh`.
//!
//! `SHORTBOX_CHURN_INJECT_SKIP=1` makes clients resume one event too late now and then: the
//! test must then fail (a self-test of its checks).
//!
//! Counts: about 150 reconnects and 2 restarts by default (CI, well under 30 s of work on a
//! quiet machine); ≥ 1 000 reconnects and 6 restarts with `SHORTBOX_FULL=1`.

mod common;
mod support;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::WsClient;
use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use support::process::{EngineProcess, Poster, agent_add};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A bare protocol client that treats every failure as "the engine went away" (it restarts
/// under these clients on purpose).
struct Ws {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    hello: Value,
    req: u64,
}

enum Incoming {
    Json(Value),
    /// Closed by the server, or the socket failed.
    Gone,
}

impl Ws {
    async fn connect(addr: SocketAddr, token: &str) -> Result<Ws, String> {
        let mut request = format!("ws://{addr}/v1/ws")
            .into_client_request()
            .map_err(|e| e.to_string())?;
        let headers = request.headers_mut();
        headers.insert(
            "authorization",
            format!("Bearer {token}").parse().map_err(|_| "token")?,
        );
        headers.insert(
            "sec-websocket-protocol",
            "shortbox.v1".parse().map_err(|_| "proto")?,
        );
        let (ws, _) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(request),
        )
        .await
        .map_err(|_| "upgrade timed out".to_string())?
        .map_err(|e| e.to_string())?;
        let mut ws = Ws {
            ws,
            hello: Value::Null,
            req: 0,
        };
        match ws.next(10_000).await {
            Some(Incoming::Json(v)) if v["op"] == "hello" => {
                ws.hello = v;
                Ok(ws)
            }
            _ => Err("no hello".into()),
        }
    }

    async fn send_json(&mut self, v: &Value) -> bool {
        self.ws.send(Message::text(v.to_string())).await.is_ok()
    }

    /// The next JSON frame; `None` after `ms` without one.
    async fn next(&mut self, ms: u64) -> Option<Incoming> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        loop {
            let read = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            return Some(match read {
                Some(Ok(Message::Text(t))) => match serde_json::from_str(t.as_str()) {
                    Ok(v) => Incoming::Json(v),
                    Err(_) => panic!("a text frame that is not JSON: {}", t.as_str()),
                },
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => Incoming::Gone,
                Some(Ok(_)) => continue,
            });
        }
    }
}

/// Where the engine can be reached (its port stays the same across restarts).
struct Target {
    addr: Mutex<SocketAddr>,
}

#[derive(Default)]
struct StreamView {
    epoch: Option<String>,
    cursor: u64,
    applied: Vec<Value>,
}

/// What went wrong on the engine's side, seen by clients.
#[derive(Default)]
struct Counters {
    reconnects: AtomicU64,
    mid_replay: AtomicU64,
    mid_live: AtomicU64,
    closed_by_server: AtomicU64,
    connect_retries: AtomicU64,
}

#[derive(Default, Debug)]
struct Violations {
    gaps: Vec<String>,
    duplicates: Vec<String>,
    resets: Vec<String>,
    errors: Vec<String>,
}

struct Client {
    name: String,
    token: String,
    streams: HashMap<String, StreamView>,
    violations: Violations,
}

enum SessionEnd {
    /// The test chose to hang up here.
    HungUp { replaying: bool },
    /// The server closed or the socket failed (restart).
    Lost,
}

impl Client {
    fn sync_frame(&self, req: u64, names: &[String]) -> Value {
        // Self-test of the checks: resuming one event too late now and then must be caught
        // (`SHORTBOX_CHURN_INJECT_SKIP=1` makes this test fail).
        let skip = u64::from(
            std::env::var("SHORTBOX_CHURN_INJECT_SKIP").is_ok_and(|v| v == "1") && req % 5 == 1,
        );
        let streams: Vec<Value> = names
            .iter()
            .map(|s| {
                let v = &self.streams[s];
                match &v.epoch {
                    Some(e) => json!({ "stream": s, "epoch": e, "after": v.cursor + skip }),
                    None => json!({ "stream": s, "epoch": null, "after": null }),
                }
            })
            .collect();
        json!({ "op": "sync", "req": req, "streams": streams })
    }

    /// Connects, retrying while the engine restarts (bounded).
    async fn connect(&mut self, target: &Target, counters: &Counters) -> Ws {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let addr = *target.addr.lock().unwrap();
            match Ws::connect(addr, &self.token).await {
                Ok(ws) => return ws,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "{}: cannot reconnect for 90 s: {e:?}",
                        self.name
                    );
                    counters.connect_retries.fetch_add(1, Ordering::Relaxed);
                    // The engine is restarting: poll again shortly.
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
        }
    }

    /// Connects and reads until every stream is synced (retrying if the engine goes away).
    async fn catch_up(&mut self, target: &Target, counters: &Counters) {
        for _ in 0..20 {
            let mut ws = self.connect(target, counters).await;
            if let SessionEnd::HungUp { replaying: false } = self.session(&mut ws, None, None).await
            {
                return;
            }
        }
        panic!("{}: could not catch up in 20 sessions", self.name);
    }

    /// One session: sync from the cursors, read, and hang up after `budget` frames or at
    /// `until` (None: read until every stream is synced, for the final check).
    async fn session(
        &mut self,
        ws: &mut Ws,
        budget: Option<usize>,
        until: Option<Instant>,
    ) -> SessionEnd {
        let names: Vec<String> = ws.hello["streams"]
            .as_array()
            .expect("hello lists streams")
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect();
        for n in &names {
            self.streams.entry(n.clone()).or_default();
        }
        ws.req += 1;
        if !ws.send_json(&self.sync_frame(ws.req, &names)).await {
            return SessionEnd::Lost;
        }
        let mut replaying: HashSet<String> = names.iter().cloned().collect();
        let mut frames = 0usize;
        loop {
            if budget.is_some_and(|b| frames >= b) || until.is_some_and(|u| Instant::now() >= u) {
                return SessionEnd::HungUp {
                    replaying: !replaying.is_empty(),
                };
            }
            if budget.is_none() && until.is_none() && replaying.is_empty() {
                return SessionEnd::HungUp { replaying: false };
            }
            let wait = until.map_or(10_000, |u| {
                u.saturating_duration_since(Instant::now()).as_millis() as u64 + 1
            });
            let frame = match ws.next(wait).await {
                Some(f) => f,
                None if until.is_some() => continue,
                None => panic!("{}: nothing for 10 s while syncing", self.name),
            };
            frames += 1;
            let v = match frame {
                Incoming::Json(v) => v,
                Incoming::Gone => return SessionEnd::Lost,
            };
            let stream = v["stream"].as_str().unwrap_or_default().to_string();
            match v["op"].as_str() {
                Some("ev") => {
                    let seq = v["seq"].as_u64().expect("an ev has a seq");
                    let view = self.streams.get_mut(&stream).expect("a stream of hello");
                    if seq == view.cursor + 1 {
                        view.cursor = seq;
                        view.applied.push(v);
                    } else if seq <= view.cursor {
                        self.violations.duplicates.push(format!(
                            "{stream}: seq {seq} again (cursor {})",
                            view.cursor
                        ));
                    } else {
                        self.violations
                            .gaps
                            .push(format!("{stream}: seq {seq} after {} (a gap)", view.cursor));
                        // The protocol's answer to a gap: sync again from the cursor.
                        ws.req += 1;
                        let again = self.sync_frame(ws.req, std::slice::from_ref(&stream));
                        if !ws.send_json(&again).await {
                            return SessionEnd::Lost;
                        }
                        replaying.insert(stream);
                    }
                }
                Some("reset") => {
                    let view = self.streams.get_mut(&stream).expect("a stream of hello");
                    let fresh_start = v["reason"] == "fresh" && view.epoch.is_none();
                    if !fresh_start {
                        self.violations.resets.push(format!("{stream}: {v}"));
                    }
                    view.epoch = v["epoch"].as_str().map(str::to_string);
                    view.cursor = v["head"].as_u64().unwrap_or(0);
                    replaying.remove(&stream);
                }
                Some("synced") => {
                    replaying.remove(&stream);
                }
                Some("error") => {
                    self.violations.errors.push(v.to_string());
                    replaying.remove(&stream);
                }
                _ => {}
            }
        }
    }
}

fn inbound_body(i: u64) -> Value {
    let id = format!("churn-{i}");
    let sub = i % 40;
    let (to, from, body) = match i % 4 {
        0 => (
            "55124",
            format!("+141555501{sub:02}"),
            format!("dedicated {id}"),
        ),
        1 => (
            "55123",
            format!("+141555501{sub:02}"),
            format!("SHOES {id}"),
        ),
        2 => (
            "55123",
            format!("+141555501{sub:02}"),
            format!("TABLE {id}"),
        ),
        _ => (
            "55123",
            format!("+141555501{:02}", 50 + sub),
            format!("hello {id} there"),
        ),
    };
    json!({ "id": id, "from": from, "to": to, "body": body })
}

/// Posts until `stop`, retrying each message (same carrier id) across restarts.
async fn traffic(target: Arc<Target>, stop: Arc<AtomicBool>, offset: u64, posted: Arc<AtomicU64>) {
    let mut poster: Option<Poster> = None;
    let mut i = offset;
    while !stop.load(Ordering::Relaxed) {
        let body = inbound_body(i);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if poster.is_none() {
                let addr = *target.addr.lock().unwrap();
                poster = Poster::connect(addr).await.ok();
            }
            if let Some(p) = poster.as_mut() {
                match p.inbound("sim", common::SIM_SECRET, &body).await {
                    Ok((200, _)) => break,
                    Ok((status, answer)) => panic!("{body} refused: {status} {answer}"),
                    Err(_) => poster = None,
                }
            }
            assert!(Instant::now() < deadline, "{body} not accepted for 90 s");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        posted.fetch_add(1, Ordering::Relaxed);
        i += 2;
        // Pace the traffic (a few hundred messages per second).
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// The store's events, replayed from 0 by a fresh owner connection.
async fn store_events(addr: SocketAddr, token: &str) -> HashMap<String, Vec<Value>> {
    let mut ws = WsClient::connect(addr, token)
        .await
        .expect("owner connects");
    let names: Vec<String> = ws.hello()["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    let mut out = HashMap::new();
    for name in names {
        let (epoch, _) = ws.sync_fresh(&name).await;
        let req = ws
            .sync(json!([{ "stream": name, "epoch": epoch, "after": 0 }]))
            .await;
        let frames = ws.collect_events_until(|v| v["req"] == req, 120_000).await;
        assert_eq!(
            frames.last().map(|v| v["op"].clone()),
            Some(json!("synced"))
        );
        out.insert(
            name,
            frames.into_iter().filter(|v| v["op"] == "ev").collect(),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_resume_exactly_under_churn_and_restarts() {
    let full = std::env::var("SHORTBOX_FULL").is_ok_and(|v| v == "1");
    let (target_reconnects, restarts, clients_n) = if full { (1000, 6, 24) } else { (150, 2, 12) };
    let seed: u64 = std::env::var("SHORTBOX_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(11, |d| d.as_nanos() as u64)
        });
    eprintln!("churn: seed {seed}");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("churn.toml");
    std::fs::write(&config, common::DEMO).expect("write the configuration");
    let data = dir.path().join("data");

    let roles: [(&str, &[&str]); 4] = [
        ("agent", &["acme"]),
        ("agent", &["bistro"]),
        ("owner", &[]),
        ("ops", &[]),
    ];
    let mut clients = Vec::new();
    for i in 0..clients_n {
        let (role, tenants) = roles[i % roles.len()];
        clients.push(Client {
            name: format!("client {i} ({role})"),
            token: agent_add(&config, &data, role, &format!("churn {i}"), tenants),
            streams: HashMap::new(),
            violations: Violations::default(),
        });
    }
    let checker = agent_add(&config, &data, "owner", "checker", &[]);

    let engine = EngineProcess::start(&config, &data, "127.0.0.1:0");
    let port = engine.addr.port();
    let target = Arc::new(Target {
        addr: Mutex::new(engine.addr),
    });
    let counters = Arc::new(Counters::default());
    let started = Instant::now();

    // Every client takes its fresh position before any traffic, so it must see every event.
    for c in clients.iter_mut() {
        c.catch_up(&target, &counters).await;
    }

    let stop_traffic = Arc::new(AtomicBool::new(false));
    let posted = Arc::new(AtomicU64::new(0));
    let posters: Vec<_> = (0..2)
        .map(|k| {
            tokio::spawn(traffic(
                target.clone(),
                stop_traffic.clone(),
                k,
                posted.clone(),
            ))
        })
        .collect();

    let churning = Arc::new(AtomicBool::new(true));
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let (target, counters, churning) = (target.clone(), counters.clone(), churning.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed ^ ((i as u64 + 1) * 0x9e37));
                while churning.load(Ordering::Relaxed) {
                    let mut ws = c.connect(&target, &counters).await;
                    // Hang up after a few frames (often inside the replay), or after a while
                    // of live traffic.
                    let end = if rng.random_bool(0.5) {
                        let bound = Instant::now() + Duration::from_secs(2);
                        c.session(&mut ws, Some(rng.random_range(1..12)), Some(bound))
                            .await
                    } else {
                        let live = Duration::from_millis(rng.random_range(20..300));
                        c.session(&mut ws, None, Some(Instant::now() + live)).await
                    };
                    match end {
                        SessionEnd::HungUp { replaying: true } => &counters.mid_replay,
                        SessionEnd::HungUp { replaying: false } => &counters.mid_live,
                        SessionEnd::Lost => &counters.closed_by_server,
                    }
                    .fetch_add(1, Ordering::Relaxed);
                    counters.reconnects.fetch_add(1, Ordering::Relaxed);
                    drop(ws);
                    // Stay away a little so there is something to replay.
                    let away = rng.random_range(20..250);
                    tokio::time::sleep(Duration::from_millis(away)).await;
                }
                c
            })
        })
        .collect();

    // Restart the engine at even steps of the reconnect budget; alternate SIGINT and SIGKILL.
    let mut engine = Some(engine);
    let mut done_restarts = 0;
    let deadline = Instant::now() + Duration::from_secs(if full { 600 } else { 120 });
    while Instant::now() < deadline {
        let reconnects = counters.reconnects.load(Ordering::Relaxed);
        if done_restarts < restarts
            && reconnects >= (done_restarts as u64 + 1) * target_reconnects / (restarts as u64 + 1)
        {
            let old = engine.take().expect("a running engine");
            if done_restarts % 2 == 0 {
                old.interrupt();
            } else {
                old.kill();
            }
            let next = EngineProcess::start(&config, &data, &format!("127.0.0.1:{port}"));
            *target.addr.lock().unwrap() = next.addr;
            engine = Some(next);
            done_restarts += 1;
            eprintln!("churn: restart {done_restarts} after {reconnects} reconnects");
        }
        if done_restarts == restarts && reconnects >= target_reconnects {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    churning.store(false, Ordering::Relaxed);
    stop_traffic.store(true, Ordering::Relaxed);
    for p in posters {
        p.await.expect("traffic does not panic");
    }
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.expect("a client does not panic"));
    }

    // Final catch-up: one more session each, until every stream is synced.
    for c in clients.iter_mut() {
        c.catch_up(&target, &counters).await;
    }
    let addr = *target.addr.lock().unwrap();
    let store = store_events(addr, &checker).await;
    engine.take().expect("the engine").interrupt();

    let reconnects = counters.reconnects.load(Ordering::Relaxed);
    eprintln!(
        "churn: {reconnects} reconnects ({} mid-replay, {} mid-live, {} closed by the server), {} restarts, {} connect retries, {} messages posted, {} clients, {:.1} s",
        counters.mid_replay.load(Ordering::Relaxed),
        counters.mid_live.load(Ordering::Relaxed),
        counters.closed_by_server.load(Ordering::Relaxed),
        done_restarts,
        counters.connect_retries.load(Ordering::Relaxed),
        posted.load(Ordering::Relaxed),
        clients.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(done_restarts, restarts, "every planned restart happened");
    assert!(
        reconnects >= target_reconnects,
        "only {reconnects} reconnects before the deadline (wanted {target_reconnects})"
    );
    assert!(
        counters.mid_replay.load(Ordering::Relaxed) > 0,
        "no client hung up in the middle of a replay"
    );

    let mut problems = Vec::new();
    let mut applied_total = 0;
    for c in &clients {
        let v = &c.violations;
        if !(v.gaps.is_empty()
            && v.duplicates.is_empty()
            && v.resets.is_empty()
            && v.errors.is_empty())
        {
            problems.push(format!("{}: {:?}", c.name, v));
        }
        for (name, view) in &c.streams {
            applied_total += view.applied.len();
            let want = store.get(name).map(Vec::as_slice).unwrap_or_default();
            if view.applied.as_slice() != want {
                let first_diff = view
                    .applied
                    .iter()
                    .zip(want)
                    .position(|(a, b)| a != b)
                    .unwrap_or(view.applied.len().min(want.len()));
                problems.push(format!(
                    "{}: {name}: applied {} events, the store has {}; first difference at index {first_diff}",
                    c.name,
                    view.applied.len(),
                    want.len()
                ));
            }
        }
    }
    let store_total: usize = store.values().map(Vec::len).sum();
    eprintln!(
        "churn: {applied_total} events applied by clients, {store_total} events in the store; {} problems",
        problems.len()
    );
    assert!(store_total > 0, "traffic made events");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
