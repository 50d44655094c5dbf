//! Crash recovery of outbound messages, with the real binary killed with SIGKILL while the
//! provider holds a message the engine has not yet recorded as dispatched: after the restart
//! the message is reconciled with the provider before any retry — recorded under the provider's
//! id if the provider has it (no second POST), sent again only if it does not. And the size of
//! the window in which a crash can leave such a message, measured.

mod carriers_support;
mod common;

use std::time::Duration;

use carriers_support::*;
use common::*;
use serde_json::{Value, json};
use tokio::time::Instant;

/// Starts the engine, lets the subscriber write, sends an agent's reply, and kills the engine
/// with SIGKILL once the provider has the reply's request (which it never answers). Returns
/// the reply's id.
async fn crash_while_the_provider_holds_the_reply(
    s: &Setup,
    mock: &MockTwilio,
    hold: Reply,
) -> String {
    let serve = Serve::start(&s.config, &s.data);
    let token = agent_token(&s.config, &s.data);
    let inbound = pairs(&[
        ("MessageSid", "SMin1"),
        ("From", SUBSCRIBER),
        ("To", CODE),
        ("Body", "hi"),
    ]);
    assert_eq!(
        signed_post(serve.addr, INBOUND_PATH, &inbound).await.status,
        200
    );
    let mut agent = WsClient::connect(serve.addr, &token)
        .await
        .expect("connect");
    let list = agent
        .call("conversations.list", json!({ "tenant": "acme" }))
        .await
        .unwrap();
    let conv = list["items"][0]["id"].as_str().unwrap().to_string();
    mock.script([hold]);
    let sent = agent
        .call(
            "messages.send",
            json!({ "client_msg_id": uuid::Uuid::new_v4().to_string(), "conversation": conv, "body": "Your order shipped" }),
        )
        .await
        .expect("accepted");
    mock.wait_creates(1).await;
    serve.kill();
    sent["message"]["id"].as_str().unwrap().to_string()
}

async fn message_status(agent: &mut WsClient, id: &str) -> Value {
    let list = agent
        .call("conversations.list", json!({ "tenant": "acme" }))
        .await
        .unwrap();
    let conv = list["items"][0]["id"].as_str().unwrap().to_string();
    let history = agent
        .call("conversations.history", json!({ "conversation": conv }))
        .await
        .unwrap();
    history["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .map(|m| m["status"].clone())
        .expect("the message")
}

/// Waits (reading events) until the message has `status`.
async fn wait_status(agent: &mut WsClient, id: &str, status: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if message_status(agent, id).await == status {
            return;
        }
        assert!(Instant::now() < deadline, "{id} never became {status}");
        // The next event (any) is the moment to look again.
        let _ = agent.next_frame_timeout(200).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_provider_took_before_the_crash_is_not_sent_again() {
    let mock = MockTwilio::start().await;
    let s = setup(&mock);
    let id = crash_while_the_provider_holds_the_reply(&s, &mock, Reply::CreatedHang).await;
    let sid = mock
        .sid_for("Your order shipped")
        .expect("the provider has it");

    let serve = Serve::start(&s.config, &s.data);
    let token = agent_token(&s.config, &s.data);
    let mut agent = WsClient::connect(serve.addr, &token)
        .await
        .expect("connect");
    agent.sync_fresh("tenant:acme").await;
    wait_status(&mut agent, &id, "dispatched").await;
    assert_eq!(mock.creates().len(), 1, "not sent a second time");
    assert!(!mock.lists().is_empty(), "the provider was asked");

    // Recorded under the provider's id: its delivery receipt lands.
    let receipt = pairs(&[("MessageSid", &sid), ("MessageStatus", "delivered")]);
    assert_eq!(
        signed_post(serve.addr, STATUS_PATH, &receipt).await.status,
        200
    );
    assert_eq!(message_status(&mut agent, &id).await, "delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_provider_does_not_have_is_sent_once_after_the_restart() {
    let mock = MockTwilio::start().await;
    let s = setup(&mock);
    let id = crash_while_the_provider_holds_the_reply(&s, &mock, Reply::Hang).await;
    assert_eq!(mock.sid_for("Your order shipped"), None);

    let serve = Serve::start(&s.config, &s.data);
    let token = agent_token(&s.config, &s.data);
    let mut agent = WsClient::connect(serve.addr, &token)
        .await
        .expect("connect");
    agent.sync_fresh("tenant:acme").await;
    wait_status(&mut agent, &id, "dispatched").await;
    assert_eq!(mock.creates().len(), 2, "sent again, once");
    let lists = mock.lists();
    let second_post = mock.creates()[1].at;
    assert!(
        lists.iter().any(|l| l.at < second_post),
        "asked before sending again"
    );
}

/// The duplicate window: between the provider's answer to a create and the commit of
/// `Dispatched` (seen as the `message.status` event, so an upper bound). A crash inside it
/// leaves a message the provider has but the engine still has as `queued`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duplicate_window_is_measured() {
    let mock = MockTwilio::start().await;
    let t = TestEngine::start(&twilio_config(&mock.base_url())).await;
    assert_eq!(inbound(&t, "SMw", SUBSCRIBER, CODE, "hi").await.status, 200);
    let n = 200;
    // An observer on its own task notes when each dispatch is seen, while the agent sends.
    let mut observer = t.agent("acme").await;
    observer.sync_fresh("tenant:acme").await;
    let watch = tokio::spawn(async move {
        let mut seen = std::collections::HashMap::new();
        let deadline = Instant::now() + PATIENCE;
        while seen.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = observer
                .next_frame_timeout(left.as_millis() as u64)
                .await
                .expect("every message is dispatched in time");
            let Some(v) = frame.json() else { continue };
            if v["kind"] == "message.status" && v["data"]["message"]["status"] == "dispatched" {
                let body = v["data"]["message"]["body"].as_str().unwrap().to_string();
                seen.entry(body).or_insert_with(Instant::now);
            }
        }
        seen
    });
    let mut agent = t.agent("acme").await;
    let list = agent
        .call("conversations.list", json!({ "tenant": "acme" }))
        .await
        .unwrap();
    let conv = list["items"][0]["id"].as_str().unwrap().to_string();
    for i in 0..n {
        let p = json!({ "client_msg_id": uuid::Uuid::new_v4().to_string(), "conversation": conv, "body": format!("window {i}") });
        agent.call("messages.send", p).await.unwrap();
    }
    let seen = watch.await.expect("the observer");
    let mut windows: Vec<Duration> = seen
        .iter()
        .map(|(body, at)| {
            let sid = mock.sid_for(body).expect("created");
            at.saturating_duration_since(mock.answered_at(&sid).expect("answered"))
        })
        .collect();
    windows.sort();
    let pct = |p: usize| windows[(windows.len() * p / 100).min(windows.len() - 1)];
    eprintln!(
        "duplicate window over {n} messages: p50 {:?}, p99 {:?}, max {:?}",
        pct(50),
        pct(99),
        windows[windows.len() - 1]
    );
    assert!(pct(50) < Duration::from_millis(100), "p50 {:?}", pct(50));
    assert!(pct(99) < Duration::from_secs(1), "p99 {:?}", pct(99));
}
