//! Resume over a real socket: `reset` reasons, exact replay then `synced`, and no gap or
//! duplicate where replay meets live events. Events come from inbound SMS on acme's dedicated
//! code, so every one lands in `tenant:acme`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use serde_json::{Value, json};

/// Posts `n` inbound messages and returns the stream's head afterwards (read with a fresh sync).
async fn post_inbound(t: &TestEngine, tag: &str, n: usize) {
    for i in 0..n {
        t.inbound(
            &format!("{tag}-{i}"),
            "+14155550123",
            ACME_DEDICATED,
            &format!("{tag} {i}"),
        )
        .await;
    }
}

fn seqs(frames: &[Value]) -> Vec<u64> {
    frames
        .iter()
        .filter(|v| v["op"] == "ev")
        .filter_map(|v| v["seq"].as_u64())
        .collect()
}

#[tokio::test]
async fn sync_without_a_cursor_is_reset_fresh_then_live_events_follow_the_head() {
    let t = TestEngine::start(DEMO).await;
    post_inbound(&t, "before", 2).await;
    let mut client = t.agent("acme").await;
    let (epoch, head) = client.sync_fresh("tenant:acme").await;
    assert!(!epoch.is_empty());
    assert!(head >= 2, "two inbound messages made events: head {head}");

    // `epoch` alone, or `after` alone, is fresh too.
    let req = client
        .sync(json!([{ "stream": "tenant:acme", "epoch": epoch, "after": null }]))
        .await;
    let answer = client.collect_events_until(|v| v["req"] == req, 5000).await;
    assert_eq!(
        answer.last().map(|v| v["reason"].clone()),
        Some(json!("fresh"))
    );
    let req = client
        .sync(json!([{ "stream": "tenant:acme", "after": 1 }]))
        .await;
    let answer = client.collect_events_until(|v| v["req"] == req, 5000).await;
    assert_eq!(
        answer.last().map(|v| v["reason"].clone()),
        Some(json!("fresh"))
    );

    post_inbound(&t, "after", 1).await;
    let live = client.collect_events_until(|v| v["op"] == "ev", 5000).await;
    let ev = live.last().expect("a live event");
    assert_eq!(
        ev["seq"],
        head + 1,
        "live events continue from the head: {ev}"
    );
    assert_eq!(ev["epoch"], epoch);
    assert_eq!(ev["stream"], "tenant:acme");
}

#[tokio::test]
async fn another_epoch_is_epoch_changed_even_when_after_is_also_wrong() {
    let t = TestEngine::start(DEMO).await;
    post_inbound(&t, "m", 1).await;
    let mut client = t.agent("acme").await;
    let (epoch, head) = client.sync_fresh("tenant:acme").await;
    for after in [0, head, head + 100] {
        let req = client
            .sync(json!([{ "stream": "tenant:acme", "epoch": "not-the-epoch", "after": after }]))
            .await;
        let answer = client.collect_events_until(|v| v["req"] == req, 5000).await;
        let reset = answer.last().expect("an answer");
        assert_eq!(reset["op"], "reset", "{reset}");
        assert_eq!(reset["reason"], "epoch_changed", "after {after}: {reset}");
        assert_eq!(reset["epoch"], epoch);
        assert_eq!(reset["head"], head);
    }
}

#[tokio::test]
async fn a_cursor_past_the_head_is_ahead() {
    let t = TestEngine::start(DEMO).await;
    post_inbound(&t, "m", 1).await;
    let mut client = t.agent("acme").await;
    let (epoch, head) = client.sync_fresh("tenant:acme").await;
    let req = client
        .sync(json!([{ "stream": "tenant:acme", "epoch": epoch, "after": head + 5 }]))
        .await;
    let answer = client.collect_events_until(|v| v["req"] == req, 5000).await;
    let reset = answer.last().expect("an answer");
    assert_eq!(
        (reset["op"].as_str(), reset["reason"].as_str()),
        (Some("reset"), Some("ahead")),
        "{reset}"
    );
    assert_eq!(reset["head"], head);
    assert!(
        seqs(&answer).is_empty(),
        "nothing is replayed on a reset: {answer:?}"
    );
}

#[tokio::test]
async fn resume_replays_exactly_the_missed_events_then_synced_then_live() {
    let t = TestEngine::start(DEMO).await;
    post_inbound(&t, "old", 3).await;
    let (epoch, cursor) = {
        let mut first = t.agent("acme").await;
        first.sync_fresh("tenant:acme").await
    };
    // Missed while disconnected.
    post_inbound(&t, "missed", 4).await;

    let mut client = t.agent("acme").await;
    let req = client
        .sync(json!([{ "stream": "tenant:acme", "epoch": epoch, "after": cursor }]))
        .await;
    let frames = client
        .collect_events_until(|v| v["op"] == "synced" || v["op"] == "reset", 5000)
        .await;
    let synced = frames.last().expect("an answer");
    assert_eq!(synced["op"], "synced", "{frames:?}");
    assert_eq!(synced["req"], req);
    assert_eq!(synced["epoch"], epoch);
    assert_eq!(synced["stream"], "tenant:acme");
    let head = synced["head"].as_u64().expect("a head");
    assert!(
        head >= cursor + 4,
        "four inbound messages were missed: {cursor} → {head}"
    );
    assert_eq!(
        seqs(&frames),
        ((cursor + 1)..=head).collect::<Vec<_>>(),
        "every missed event, in order, once"
    );
    for v in &frames[..frames.len() - 1] {
        assert_eq!(v["op"], "ev", "only events before synced: {v}");
        assert_eq!(v["epoch"], epoch);
    }
    let bodies: Vec<String> = frames
        .iter()
        .filter_map(|v| {
            v.pointer("/data/message/body")?
                .as_str()
                .map(str::to_string)
        })
        .collect();
    for i in 0..4 {
        assert!(
            bodies.contains(&format!("missed {i}")),
            "message {i} replayed: {bodies:?}"
        );
    }

    post_inbound(&t, "live", 1).await;
    let live = client.collect_events_until(|v| v["op"] == "ev", 5000).await;
    assert_eq!(live.last().map(|v| v["seq"].clone()), Some(json!(head + 1)));

    // Resuming at the head replays nothing.
    let req = client
        .sync(json!([{ "stream": "tenant:acme", "epoch": epoch, "after": head + 1 }]))
        .await;
    let frames = client.collect_events_until(|v| v["req"] == req, 5000).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["op"], "synced");
    assert_eq!(frames[0]["head"], head + 1);
}

/// Posts inbound messages to acme's dedicated code from its own connections until `stop`, then
/// five more (so that some arrive after whatever the test waited for).
fn keep_posting(addr: std::net::SocketAddr, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut after_stop = 0;
        for i in 0..5000 {
            if stop.load(Ordering::Relaxed) {
                after_stop += 1;
                if after_stop > 5 {
                    return;
                }
            }
            let body = json!({ "id": format!("during-{i}"), "from": "+14155550123", "to": ACME_DEDICATED, "body": format!("during {i}") });
            let headers = [
                ("content-type", "application/json".to_string()),
                ("authorization", format!("Bearer {SIM_SECRET}")),
            ];
            let reply = http(
                addr,
                "POST",
                "/v1/carriers/sim/inbound",
                &headers,
                body.to_string().into_bytes(),
            )
            .await;
            assert_eq!(reply.status, 200, "{}", reply.text());
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_live_meet_without_gap_or_duplicate() {
    let t = TestEngine::start(DEMO).await;
    post_inbound(&t, "old", 2).await;
    let (epoch, cursor) = t.agent("acme").await.sync_fresh("tenant:acme").await;
    post_inbound(&t, "missed", 600).await;

    // Inbound keeps arriving while the client resumes (a replay of more than one page), and
    // goes on after `synced`.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = keep_posting(t.addr, stop.clone());
    let mut client = t.agent("acme").await;
    client
        .sync(json!([{ "stream": "tenant:acme", "epoch": epoch, "after": cursor }]))
        .await;
    let mut frames = client
        .collect_events_until(|v| v["op"] == "synced", 20_000)
        .await;
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("the inbound writer finishes");
    let (_, final_head) = t.agent("acme").await.sync_fresh("tenant:acme").await;
    let synced_head = frames
        .last()
        .and_then(|v| v["head"].as_u64())
        .expect("a head");
    assert!(final_head > synced_head, "events arrived after synced");
    frames.extend(
        client
            .collect_events_until(|v| v["op"] == "ev" && v["seq"] == final_head, 10_000)
            .await,
    );

    assert_eq!(
        seqs(&frames),
        ((cursor + 1)..=final_head).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    let at = frames
        .iter()
        .position(|v| v["op"] == "synced")
        .expect("synced arrives");
    assert!(
        seqs(&frames[..at]).iter().all(|s| *s <= synced_head),
        "replay stops at the head it announces"
    );
    assert!(
        seqs(&frames[at..]).iter().all(|s| *s > synced_head),
        "live events follow the head"
    );
}

#[tokio::test]
async fn a_resync_of_a_live_stream_replays_from_the_new_cursor() {
    let t = TestEngine::start(DEMO).await;
    post_inbound(&t, "m", 3).await;
    let mut client = t.agent("acme").await;
    let (epoch, head) = client.sync_fresh("tenant:acme").await;
    let req = client
        .sync(json!([{ "stream": "tenant:acme", "epoch": epoch, "after": head - 2 }]))
        .await;
    let frames = client.collect_events_until(|v| v["req"] == req, 5000).await;
    assert_eq!(seqs(&frames), vec![head - 1, head]);
    assert_eq!(
        frames.last().map(|v| v["op"].clone()),
        Some(json!("synced"))
    );
    post_inbound(&t, "n", 1).await;
    let live = client.collect_events_until(|v| v["op"] == "ev", 5000).await;
    assert_eq!(
        seqs(&live),
        vec![head + 1],
        "one live event, not two: {live:?}"
    );
}

#[tokio::test]
async fn a_replay_longer_than_a_page_is_complete_and_in_order() {
    let t = TestEngine::start(DEMO).await;
    let (epoch, cursor) = t.agent("acme").await.sync_fresh("tenant:acme").await;
    // More than one page (500) of missed events, posted by several senders at once.
    let senders: Vec<_> = (0..8)
        .map(|s| {
            let addr = t.addr;
            tokio::spawn(async move {
                for i in 0..70 {
                    let body = json!({ "id": format!("bulk-{s}-{i}"), "from": format!("+1415555{:04}", 100 + s), "to": ACME_DEDICATED, "body": format!("bulk {s} {i}") });
                    let headers = [
                        ("content-type", "application/json".to_string()),
                        ("authorization", format!("Bearer {SIM_SECRET}")),
                    ];
                    let reply = http(addr, "POST", "/v1/carriers/sim/inbound", &headers, body.to_string().into_bytes()).await;
                    assert_eq!(reply.status, 200, "{}", reply.text());
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.expect("a sender finishes");
    }
    let mut client = t.agent("acme").await;
    let req = client
        .sync(json!([{ "stream": "tenant:acme", "epoch": epoch, "after": cursor }]))
        .await;
    let frames = client
        .collect_events_until(|v| v["req"] == req, 20_000)
        .await;
    let synced = frames.last().expect("an answer");
    assert_eq!(synced["op"], "synced", "{synced}");
    let head = synced["head"].as_u64().expect("a head");
    assert!(
        head >= cursor + 560,
        "560 inbound messages: {cursor} → {head}"
    );
    assert_eq!(seqs(&frames), ((cursor + 1)..=head).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_the_client_already_has_are_never_sent_twice() {
    let t = TestEngine::start(DEMO).await;
    let (epoch, cursor) = t.agent("acme").await.sync_fresh("tenant:acme").await;
    post_inbound(&t, "missed", 600).await;
    let (_, head) = t.agent("acme").await.sync_fresh("tenant:acme").await;

    // While the client resumes, the hub keeps re-delivering events it is being replayed
    // (as when a commit lands between the subscription and the position read).
    let stop = Arc::new(AtomicBool::new(false));
    let injector = {
        let (hub, stop) = (t.engine.hub().clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let seq = cursor + 1 + i % (head - cursor);
                let frame = json!({ "op": "ev", "stream": "tenant:acme", "epoch": "x", "seq": seq, "kind": "test.again", "ts": "", "data": {} });
                hub.publish(vec![shortbox::engine::PublishedEvent {
                    stream: Arc::from("tenant:acme"),
                    seq,
                    frame: Arc::from(frame.to_string()),
                    committed: None,
                }]);
                i += 1;
                tokio::time::sleep(std::time::Duration::from_micros(200)).await;
            }
            i
        })
    };
    let mut client = t.agent("acme").await;
    client
        .sync(json!([{ "stream": "tenant:acme", "epoch": epoch, "after": cursor }]))
        .await;
    let mut frames = client
        .collect_events_until(|v| v["op"] == "synced", 20_000)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    stop.store(true, Ordering::Relaxed);
    let injected = injector.await.expect("the injector stops");
    assert!(injected > 0);
    post_inbound(&t, "live", 1).await;
    frames.extend(
        client
            .collect_events_until(|v| v["op"] == "ev" && v["seq"] == head + 1, 5000)
            .await,
    );

    assert!(
        frames.iter().all(|v| v["kind"] != "test.again"),
        "a re-delivered event was sent again"
    );
    assert_eq!(seqs(&frames), ((cursor + 1)..=head + 1).collect::<Vec<_>>());
}
