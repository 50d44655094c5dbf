//! The dispatcher's rules with a recording port and Tokio's paused clock (no store, no
//! network): per-code pacing in message parts per second, replies ahead of campaigns, a slow
//! provider not slowing the pace, and reconciliation of messages recovered after a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use shortbox::engine::carriers::{Reconciled, SendOutcome};
use shortbox::engine::dispatcher::{self, Port};
use shortbox::engine::router::DispatchJob;
use shortbox::protocol::Message;
use tokio::sync::mpsc;
use tokio::time::Instant;

#[derive(Default)]
struct Recorder {
    /// (when, code, message id, parts) of every send.
    sent: Vec<(Instant, String, String, u32)>,
    claimed: Vec<String>,
    reported: Vec<(String, SendOutcome)>,
    reconciled: Vec<String>,
}

#[derive(Default)]
struct FakePort {
    messages: Mutex<HashMap<String, Message>>,
    log: Mutex<Recorder>,
    /// How long a send takes.
    send_delay: Duration,
    /// What reconciliation answers, by message id (default: not sent).
    reconcile: HashMap<String, Reconciled>,
}

impl FakePort {
    fn log(&self) -> std::sync::MutexGuard<'_, Recorder> {
        self.log.lock().unwrap()
    }
}

impl Port for FakePort {
    async fn claim(&self, message: &str) -> Option<Message> {
        self.log().claimed.push(message.to_string());
        self.messages.lock().unwrap().get(message).cloned()
    }

    async fn send(&self, _carrier: &str, m: &Message) -> SendOutcome {
        self.log()
            .sent
            .push((Instant::now(), m.code.clone(), m.id.clone(), m.segments));
        tokio::time::sleep(self.send_delay).await;
        SendOutcome::Accepted {
            carrier_id: format!("C-{}", m.id),
        }
    }

    async fn reconcile(&self, _carrier: &str, m: &Message) -> Reconciled {
        self.log().reconciled.push(m.id.clone());
        self.reconcile
            .get(&m.id)
            .cloned()
            .unwrap_or(Reconciled::NotSent)
    }

    async fn report(&self, message: &str, _carrier: &str, outcome: SendOutcome) {
        self.log().reported.push((message.to_string(), outcome));
    }
}

fn job(port: &FakePort, id: &str, code: &str, mps: u32, parts: u32, author: &str) -> DispatchJob {
    let message: Message = serde_json::from_value(json!({
        "id": id, "direction": "out", "code": code, "subscriber": "+14155550100",
        "body": "x", "encoding": "gsm7", "segments": parts, "cost_micros": 0,
        "status": "queued", "created_at": "2026-11-22T10:00:00.000Z", "author": author,
    }))
    .unwrap();
    port.messages
        .lock()
        .unwrap()
        .insert(id.to_string(), message.clone());
    DispatchJob {
        message,
        carrier: "c".into(),
        mps,
    }
}

/// Parts sent per code with `start <= at < end`.
fn parts_between(port: &FakePort, start: Instant, end: Instant) -> HashMap<String, u32> {
    let mut by_code = HashMap::new();
    for (at, code, _, parts) in &port.log().sent {
        if *at >= start && *at < end {
            *by_code.entry(code.clone()).or_insert(0) += parts;
        }
    }
    by_code
}

#[tokio::test(start_paused = true)]
async fn twenty_codes_at_100_parts_per_second_stay_within_one_percent_over_ten_seconds() {
    let port = Arc::new(FakePort::default());
    let (tx, rx) = mpsc::unbounded_channel();
    let start = Instant::now();
    // More than 10 s can carry on every code: 1 to 3 parts per message.
    for code in 0..20 {
        for i in 0..800u32 {
            let parts = 1 + (i * 7 + code) % 3;
            let j = job(
                &port,
                &format!("{code}-{i}"),
                &format!("5{code:04}"),
                100,
                parts,
                "agent-1",
            );
            tx.send(j).unwrap();
        }
    }
    tokio::spawn(dispatcher::run(rx, Vec::new(), port.clone()));
    tokio::time::sleep(Duration::from_secs(10)).await;

    let sent = parts_between(&port, start, start + Duration::from_secs(10));
    assert_eq!(sent.len(), 20);
    for (code, parts) in &sent {
        assert!(
            (990..=1010).contains(parts),
            "code {code}: {parts} parts in 10 s (want 1000 ± 1 %)"
        );
    }
    // And no one-second window carries more than the limit (plus one message of 3 parts).
    let log = port.log();
    for (at, code, _, _) in log
        .sent
        .iter()
        .filter(|(at, ..)| *at < start + Duration::from_secs(9))
    {
        let in_window: u32 = log
            .sent
            .iter()
            .filter(|(t, c, ..)| c == code && t >= at && *t < *at + Duration::from_secs(1))
            .map(|(.., p)| p)
            .sum();
        assert!(
            in_window <= 103,
            "code {code}: {in_window} parts in the second after {at:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_provider_does_not_slow_the_pace() {
    let port = Arc::new(FakePort {
        send_delay: Duration::from_millis(700),
        ..FakePort::default()
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let start = Instant::now();
    for i in 0..2000 {
        tx.send(job(&port, &format!("m{i}"), "55123", 100, 1, "agent-1"))
            .unwrap();
    }
    tokio::spawn(dispatcher::run(rx, Vec::new(), port.clone()));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let sent = parts_between(&port, start, start + Duration::from_secs(10));
    assert_eq!(sent["55123"], 1000);
}

#[tokio::test(start_paused = true)]
async fn replies_overtake_a_queued_campaign() {
    let port = Arc::new(FakePort::default());
    let (tx, rx) = mpsc::unbounded_channel();
    for i in 0..50 {
        tx.send(job(
            &port,
            &format!("camp-{i:02}"),
            "55123",
            10,
            1,
            "campaign:spring-sale",
        ))
        .unwrap();
    }
    tokio::spawn(dispatcher::run(rx, Vec::new(), port.clone()));
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let before = port.log().sent.len();
    assert_eq!(before, 11, "10 per second from the start");
    let asked = Instant::now();
    tx.send(job(&port, "reply-1", "55123", 10, 1, "agent-7"))
        .unwrap();
    tx.send(job(&port, "reply-2", "55123", 10, 1, "system:stop"))
        .unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;

    let log = port.log();
    let order: Vec<&str> = log.sent.iter().map(|(_, _, id, _)| id.as_str()).collect();
    assert_eq!(order.len(), 52);
    assert_eq!(
        &order[before..before + 2],
        &["reply-1", "reply-2"],
        "{order:?}"
    );
    assert!(order[before + 2..].iter().all(|id| id.starts_with("camp-")));
    // The reply went at the lane's next turn.
    let reply_at = log.sent[before].0;
    assert!(
        reply_at - asked <= Duration::from_millis(100),
        "{:?}",
        reply_at - asked
    );
    // The campaign kept its own order.
    let campaign: Vec<&str> = order
        .iter()
        .copied()
        .filter(|id| id.starts_with("camp-"))
        .collect();
    let mut sorted = campaign.clone();
    sorted.sort();
    assert_eq!(campaign, sorted);
}

#[tokio::test(start_paused = true)]
async fn recovered_messages_are_reconciled_before_anything_is_sent() {
    let mut port = FakePort::default();
    port.reconcile.insert(
        "had-it".into(),
        Reconciled::Sent {
            carrier_id: "SM-earlier".into(),
        },
    );
    port.reconcile.insert(
        "cannot-ask".into(),
        Reconciled::Unknown {
            error: "provider down".into(),
        },
    );
    let recovered = vec![
        job(&port, "had-it", "55123", 100, 1, "agent-1"),
        job(&port, "never-got-it", "55123", 100, 1, "agent-1"),
        job(&port, "cannot-ask", "55123", 100, 1, "agent-1"),
    ];
    let port = Arc::new(port);
    let (tx, rx) = mpsc::unbounded_channel();
    tx.send(job(&port, "fresh", "55123", 100, 1, "agent-1"))
        .unwrap();
    tokio::spawn(dispatcher::run(rx, recovered, port.clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;

    let log = port.log();
    let mut reconciled = log.reconciled.clone();
    reconciled.sort();
    assert_eq!(
        reconciled,
        ["cannot-ask", "had-it", "never-got-it"],
        "fresh messages are not looked up"
    );
    let sent: Vec<&str> = log.sent.iter().map(|(_, _, id, _)| id.as_str()).collect();
    assert_eq!(sent.len(), 2);
    assert!(
        sent.contains(&"never-got-it") && sent.contains(&"fresh"),
        "{sent:?}"
    );
    assert!(!log.claimed.contains(&"had-it".to_string()));
    let report = |id: &str| {
        log.reported
            .iter()
            .find(|(m, _)| m == id)
            .map(|(_, o)| o.clone())
    };
    assert_eq!(
        report("had-it"),
        Some(SendOutcome::Accepted {
            carrier_id: "SM-earlier".into()
        })
    );
    match report("cannot-ask") {
        Some(SendOutcome::Refused { error, .. }) => {
            assert!(error.starts_with("in doubt"), "{error}")
        }
        other => panic!("expected an in-doubt failure, got {other:?}"),
    }
}
