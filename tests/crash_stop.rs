//! A STOP survives a crash: the real engine is killed with SIGKILL right after the carrier got
//! its 200 for a STOP. After the restart the opt-out is there, and the confirmation reaches the
//! provider exactly once — counted at a Twilio-compatible provider on 127.0.0.1 — however the
//! kill fell, and even across a second crash after it went out.

mod carriers_support;
mod common;

use std::time::Duration;

use carriers_support::*;
use common::*;
use serde_json::json;
use tokio::time::Instant;

const STOP_TEXT: &str = "You are unsubscribed from Acme Shoes.";

async fn neutral(addr: std::net::SocketAddr, id: &str, from: &str, body: &str) -> HttpReply {
    let payload = json!({ "id": id, "from": from, "to": CODE, "body": body }).to_string();
    let headers = [
        ("content-type", "application/json".to_string()),
        (
            "authorization",
            "Bearer tw-neutral-inbound-secret".to_string(),
        ),
    ];
    http(
        addr,
        "POST",
        "/v1/carriers/tw/inbound",
        &headers,
        payload.into_bytes(),
    )
    .await
}

/// Confirmations the provider has received for `to`.
fn confirmations(mock: &MockTwilio, to: &str) -> usize {
    mock.creates()
        .iter()
        .filter(|r| {
            r.form.iter().any(|(k, v)| k == "To" && v == to)
                && r.form.iter().any(|(k, v)| k == "Body" && v == STOP_TEXT)
        })
        .count()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "waited 20 s for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_acknowledged_then_crashed_is_kept_and_confirmed_exactly_once() {
    let mock = MockTwilio::start().await;
    let s = setup(&mock);
    // Kill at once, after a few ms, and after a little longer: the confirmation may be queued,
    // in flight at the provider, or already recorded when the engine dies.
    for (i, delay_ms) in [0u64, 3, 15].into_iter().enumerate() {
        let subscriber = format!("+1415555012{i}");
        let serve = Serve::start(&s.config, &s.data);
        assert_eq!(
            neutral(serve.addr, &format!("hi-{i}"), &subscriber, "hi")
                .await
                .status,
            200
        );
        let stop = neutral(serve.addr, &format!("stop-{i}"), &subscriber, "STOP").await;
        assert_eq!(stop.status, 200, "{}", stop.text());
        if delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        }
        serve.kill();

        let serve = Serve::start(&s.config, &s.data);
        wait_for("the confirmation at the provider", || {
            confirmations(&mock, &subscriber) >= 1
        })
        .await;

        // The opt-out is there: the next reply is refused, and consent says why.
        let token = agent_token(&s.config, &s.data);
        let mut agent = WsClient::connect(serve.addr, &token)
            .await
            .expect("connect");
        let list = agent
            .call(
                "conversations.list",
                json!({ "tenant": "acme", "limit": 200 }),
            )
            .await
            .unwrap();
        let conv = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["subscriber"] == subscriber.as_str())
            .expect("the conversation")["id"]
            .as_str()
            .unwrap()
            .to_string();
        let history = agent
            .call("consent.history", json!({ "conversation": conv }))
            .await
            .unwrap();
        assert_eq!(history["consent"], "opted_out");
        assert_eq!(history["code_blocked"], true);
        let refused = agent
            .call(
                "messages.send",
                json!({ "client_msg_id": uuid::Uuid::new_v4().to_string(), "conversation": conv, "body": "wait" }),
            )
            .await
            .unwrap_err();
        assert_eq!(refused.code.as_str(), "opted_out");
        // The carrier retrying its STOP changes nothing.
        assert_eq!(
            neutral(serve.addr, &format!("stop-{i}"), &subscriber, "STOP")
                .await
                .status,
            200
        );

        // Wait until the engine has recorded the confirmation as dispatched, crash once more,
        // and restart: it must not go out again.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let h = agent
                .call("conversations.history", json!({ "conversation": conv }))
                .await
                .unwrap();
            let confirmation = h["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["body"] == STOP_TEXT)
                .cloned();
            let status = confirmation
                .as_ref()
                .map(|m| m["status"].as_str().unwrap().to_string());
            if status.as_deref().is_some_and(|s| s != "queued") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the confirmation was never recorded as sent: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(agent);
        serve.kill();
        let serve = Serve::start(&s.config, &s.data);
        let token = agent_token(&s.config, &s.data);
        let mut agent = WsClient::connect(serve.addr, &token)
            .await
            .expect("connect");
        // Recovered messages are reconciled before anything else on the code: once a fresh
        // reply reaches the provider, the restart has done all it will do.
        let other = format!("+1415555013{i}");
        let hello = neutral(serve.addr, &format!("other-{i}"), &other, "hello?").await;
        assert_eq!(hello.status, 200);
        let list = agent
            .call(
                "conversations.list",
                json!({ "tenant": "acme", "limit": 200 }),
            )
            .await
            .unwrap();
        let other_conv = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["subscriber"] == other.as_str())
            .expect("the other conversation")["id"]
            .clone();
        let marker = format!("marker {i}");
        let send = json!({ "client_msg_id": uuid::Uuid::new_v4().to_string(), "conversation": other_conv, "body": marker });
        agent.call("messages.send", send).await.unwrap();
        wait_for("the marker at the provider", || {
            mock.creates()
                .iter()
                .any(|r| r.form.iter().any(|(k, v)| k == "Body" && *v == marker))
        })
        .await;
        let h = agent
            .call("conversations.history", json!({ "conversation": conv }))
            .await
            .unwrap();
        let stored = h["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["body"] == STOP_TEXT)
            .count();
        assert_eq!(stored, 1, "one confirmation stored");
        assert_eq!(
            confirmations(&mock, &subscriber),
            1,
            "the provider got the confirmation exactly once"
        );
        drop(agent);
        serve.kill();
    }
}
