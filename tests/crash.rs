//! Crash test: the real binary under inbound load, killed with SIGKILL at random moments.
//! After each restart every acknowledged message (HTTP 200) must be stored exactly once, and
//! every stream must replay from its last verified `seq` with no gap and no epoch change.
//!
//! How it checks, after each kill and restart:
//! - replays every stream (`tenant:acme`, `tenant:bistro`, `ops`) over a WebSocket with an
//!   owner token from `shortbox agent add`, from where the previous check stopped, and checks
//!   that `seq` goes on by one and ends at the `synced` head;
//! - every acknowledged message id appears in exactly one `message.received` or
//!   `unattributed.received` event, across all replays so far;
//! - messages that were in flight when the engine died (no answer) are posted again, as a
//!   carrier would retry: they must be accepted, and show up exactly once too;
//! - a sample of acknowledged carrier ids posted again must answer the same message id.
//!
//! Kills: 5 by default (CI, a few seconds), 24 with `SHORTBOX_FULL=1`, or
//! `SHORTBOX_CRASH_KILLS=n`.
//!
//! **Negative control** (the test must be able to fail): a build whose router acknowledges
//! before COMMIT must be caught losing acknowledged messages. Run
//! `SHORTBOX_EXPECT_LOSS=1 CARGO_TARGET_DIR=target/negative cargo test --features ack-before-commit --test crash -- --nocapture`:
//! it kills up to 40 times and passes only once it has seen an acknowledged message missing.
//! Without `SHORTBOX_EXPECT_LOSS`, the same build makes this test fail with the losses listed.

mod common;
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use support::process::{EngineProcess, Poster, agent_add};

const STREAMS: [&str; 3] = ["tenant:acme", "tenant:bistro", "ops"];
const POSTERS: usize = 16;

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

/// The body of message `i` of poster `p` in round `r`; its route varies with `i`.
fn message(round: usize, p: usize, i: usize) -> Value {
    let id = format!("crash-{round}-{p}-{i}");
    let (to, from, body) = match i % 3 {
        // acme's dedicated code.
        0 => (
            common::ACME_DEDICATED.to_string(),
            format!("+141555501{:02}", (p * 7 + i) % 50),
            format!("order {id} please"),
        ),
        // A keyword on the shared code (acme or bistro: attribution moves back and forth).
        1 => (
            "55123".to_string(),
            format!("+141555501{:02}", (p * 7 + i) % 50),
            format!(
                "{} for {id} tonight",
                if (i / 3).is_multiple_of(2) {
                    "SHOES"
                } else {
                    "TABLE"
                }
            ),
        ),
        // Subscribers that never wrote a keyword: unattributed, for ops.
        _ => (
            "55123".to_string(),
            format!("+141555501{:02}", 50 + (p * 7 + i) % 50),
            format!("hello about {id} again"),
        ),
    };
    json!({ "id": id, "from": from, "to": to, "body": body })
}

/// What the test knows so far.
#[derive(Default)]
struct Ledger {
    /// carrier id → message id, for every 200.
    acked: HashMap<String, String>,
    /// Bodies posted without an answer (the engine died): retried after the restart.
    unanswered: Vec<Value>,
    /// message id → times seen in replayed events.
    seen: HashMap<String, u32>,
    /// stream → (epoch, last verified seq).
    cursors: HashMap<String, (String, u64)>,
}

/// Posts until the engine stops answering or `stop` is set.
async fn load(
    addr: std::net::SocketAddr,
    round: usize,
    p: usize,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let Ok(mut poster) = Poster::connect(addr).await else {
        return;
    };
    for i in 0..100_000 {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let body = message(round, p, i);
        match poster.inbound("sim", common::SIM_SECRET, &body).await {
            Ok((200, ack)) => {
                let id = ack["message"].as_str().unwrap_or_default().to_string();
                let key = body["id"].as_str().unwrap_or_default().to_string();
                ledger.lock().unwrap().acked.insert(key, id);
            }
            Ok((status, answer)) => panic!("inbound {body} refused: {status} {answer}"),
            Err(_) => {
                ledger.lock().unwrap().unanswered.push(body);
                return;
            }
        }
    }
}

/// Replays every stream from its cursor; returns what is wrong.
async fn replay(addr: std::net::SocketAddr, token: &str, ledger: &mut Ledger) -> Vec<String> {
    let mut problems = Vec::new();
    let mut client = common::WsClient::connect(addr, token)
        .await
        .expect("the owner connects");
    for stream in STREAMS {
        let (epoch, after) = match ledger.cursors.get(stream) {
            Some(c) => c.clone(),
            None => {
                let (epoch, _) = client.sync_fresh(stream).await;
                (epoch, 0)
            }
        };
        let req = client
            .sync(json!([{ "stream": stream, "epoch": epoch, "after": after }]))
            .await;
        let frames = client
            .collect_events_until(|v| v["req"] == req, 120_000)
            .await;
        let answer = frames.last().expect("an answer");
        if answer["op"] != "synced" {
            problems.push(format!(
                "{stream}: resuming at {epoch}/{after} got {answer} instead of a replay"
            ));
            continue;
        }
        let mut cursor = after;
        for ev in frames.iter().filter(|v| v["op"] == "ev") {
            let seq = ev["seq"].as_u64().unwrap_or(0);
            if seq != cursor + 1 {
                problems.push(format!("{stream}: seq {seq} after {cursor} (a gap)"));
            }
            cursor = seq;
            let kind = ev["kind"].as_str().unwrap_or_default();
            if kind == "message.received" || kind == "unattributed.received" {
                let id = ev["data"]["message"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                *ledger.seen.entry(id).or_default() += 1;
            }
        }
        let head = answer["head"].as_u64().unwrap_or(0);
        if head != cursor {
            problems.push(format!(
                "{stream}: replay ended at {cursor}, synced head {head}"
            ));
        }
        ledger.cursors.insert(stream.to_string(), (epoch, cursor));
    }
    problems
}

/// Every acknowledged message is stored exactly once.
fn check_exactly_once(ledger: &Ledger) -> Vec<String> {
    let mut problems = Vec::new();
    for (carrier_id, id) in &ledger.acked {
        match ledger.seen.get(id).copied().unwrap_or(0) {
            1 => {}
            0 => problems.push(format!(
                "LOST: acknowledged message {id} (carrier id {carrier_id}) is not in any stream"
            )),
            n => problems.push(format!(
                "DUPLICATE: message {id} (carrier id {carrier_id}) appears {n} times"
            )),
        }
    }
    problems.sort();
    problems
}

/// Retries what had no answer, and re-posts a sample of acknowledged ids.
async fn retry_and_replay_acks(
    addr: std::net::SocketAddr,
    ledger: &mut Ledger,
    rng: &mut StdRng,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut poster = Poster::connect(addr).await.expect("connect after restart");
    for body in std::mem::take(&mut ledger.unanswered) {
        match poster.inbound("sim", common::SIM_SECRET, &body).await {
            Ok((200, ack)) => {
                let key = body["id"].as_str().unwrap_or_default().to_string();
                let id = ack["message"].as_str().unwrap_or_default().to_string();
                if let Some(before) = ledger.acked.insert(key.clone(), id.clone())
                    && before != id
                {
                    problems.push(format!("{key}: answered {before}, then {id}"));
                }
            }
            other => problems.push(format!("retry of {body} after restart: {other:?}")),
        }
    }
    let mut keys: Vec<&String> = ledger.acked.keys().collect();
    keys.sort();
    for _ in 0..60.min(keys.len()) {
        let key = keys[rng.random_range(0..keys.len())].clone();
        let (round, rest) = key
            .trim_start_matches("crash-")
            .split_once('-')
            .expect("crash-r-p-i");
        let (p, i) = rest.split_once('-').expect("p-i");
        let body = message(
            round.parse().expect("round"),
            p.parse().expect("poster"),
            i.parse().expect("index"),
        );
        match poster.inbound("sim", common::SIM_SECRET, &body).await {
            Ok((200, ack)) if ack["message"] == ledger.acked[&key] => {}
            other => problems.push(format!(
                "{key} posted again: {other:?}, expected message {}",
                ledger.acked[&key]
            )),
        }
    }
    problems
}

async fn kill_under_load(
    config: &Path,
    data: &Path,
    round: usize,
    ledger: &Arc<Mutex<Ledger>>,
    rng: &mut StdRng,
) -> EngineProcess {
    let engine = EngineProcess::start(config, data, "127.0.0.1:0");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let posters: Vec<_> = (0..POSTERS)
        .map(|p| tokio::spawn(load(engine.addr, round, p, ledger.clone(), stop.clone())))
        .collect();
    // The random moment: this is when the kill lands, not a wait for something to start.
    let moment = Duration::from_millis(rng.random_range(0..900));
    tokio::time::sleep(moment).await;
    let pid = engine.pid();
    engine.kill();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for p in posters {
        tokio::time::timeout(Duration::from_secs(30), p)
            .await
            .expect("posters end once the engine is gone")
            .expect("a poster does not panic");
    }
    let acked = ledger.lock().unwrap().acked.len();
    eprintln!(
        "crash round {round}: SIGKILL to {pid} {} ms into the load; {acked} messages acknowledged so far",
        moment.as_millis()
    );
    EngineProcess::start(config, data, "127.0.0.1:0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_sigkill() {
    let expect_loss = env_flag("SHORTBOX_EXPECT_LOSS");
    let kills: usize = std::env::var("SHORTBOX_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if expect_loss {
            40
        } else if env_flag("SHORTBOX_FULL") {
            24
        } else {
            5
        });
    let seed: u64 = std::env::var("SHORTBOX_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(7, |d| d.as_nanos() as u64)
        });
    eprintln!("crash test: {kills} kills, seed {seed} (SHORTBOX_SEED={seed} repeats it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("crash.toml");
    std::fs::write(&config, common::DEMO).expect("write the configuration");
    let data = dir.path().join("data");
    let token = agent_add(&config, &data, "owner", "crash checker", &[]);

    let started = Instant::now();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut all_problems = Vec::new();
    let mut losses = 0;
    for round in 0..kills {
        let engine = kill_under_load(&config, &data, round, &ledger, &mut rng).await;
        let mut guard = std::mem::take(&mut *ledger.lock().unwrap_or_else(|e| e.into_inner()));
        let mut problems = replay(engine.addr, &token, &mut guard).await;
        problems.extend(check_exactly_once(&guard));
        problems.extend(retry_and_replay_acks(engine.addr, &mut guard, &mut rng).await);
        *ledger.lock().unwrap() = guard;
        engine.kill();
        losses += problems.iter().filter(|p| p.starts_with("LOST")).count();
        if !problems.is_empty() {
            eprintln!(
                "crash round {round}: {} problems, e.g.:\n  {}",
                problems.len(),
                problems
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n  ")
            );
            all_problems.extend(problems);
            if expect_loss && losses > 0 {
                break;
            }
            if !expect_loss {
                break;
            }
        }
    }

    // A last check after the retries of the last round: one more start, replay, count.
    let engine = EngineProcess::start(&config, &data, "127.0.0.1:0");
    let mut guard = std::mem::take(&mut *ledger.lock().unwrap());
    let mut problems = replay(engine.addr, &token, &mut guard).await;
    problems.extend(check_exactly_once(&guard));
    losses += problems.iter().filter(|p| p.starts_with("LOST")).count();
    all_problems.extend(problems);
    engine.interrupt();
    let total_events: u64 = guard.cursors.values().map(|(_, s)| *s).sum();
    eprintln!(
        "crash test: {} acknowledged messages, {total_events} events replayed, {} problems ({losses} losses) in {:.1} s",
        guard.acked.len(),
        all_problems.len(),
        started.elapsed().as_secs_f64()
    );

    if expect_loss {
        assert!(
            losses > 0,
            "negative control: no acknowledged message was lost in {kills} kills; the crash test \
             could not tell an ack-before-commit build from a correct one"
        );
        eprintln!(
            "negative control: the crash test caught {losses} lost acknowledged messages, as it must"
        );
    } else {
        assert!(
            all_problems.is_empty(),
            "{} problems after SIGKILL (seed {seed}):\n{}",
            all_problems.len(),
            all_problems
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
