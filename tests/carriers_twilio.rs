//! Twilio-style webhooks over real sockets: the signature is checked before anything happens
//! (known-answer vector, forged, missing and replayed-with-changed-body signatures), inbound
//! messages are acknowledged with empty TwiML after commit and deduplicated on `MessageSid`,
//! senders that are not phone numbers are refused with a reason, and status callbacks in any
//! order and repetition end in the right final state (property test through HTTP).

mod carriers_support;
mod common;

use carriers_support::*;
use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use shortbox::engine::carriers::twilio;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/twilio-signature.json"
    );
    let text = std::fs::read_to_string(path).expect("the shared known-answer vector");
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn the_known_answer_vector_passes() {
    let v = fixture();
    let params: Vec<(String, String)> = v["params"]
        .as_object()
        .expect("params")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("a string").to_string()))
        .collect();
    let token = v["auth_token"].as_str().unwrap();
    let url = v["url"].as_str().unwrap();
    let expected = v["expected_signature"].as_str().unwrap();
    assert_eq!(twilio::signature(token, url, &params), expected);
    assert!(twilio::signature_matches(token, url, &params, expected));
    // The order the parameters came in does not matter; any change does.
    let mut reversed = params.clone();
    reversed.reverse();
    assert!(twilio::signature_matches(token, url, &reversed, expected));
    let mut changed = params.clone();
    changed[0].1.push('0');
    assert!(!twilio::signature_matches(token, url, &changed, expected));
    assert!(!twilio::signature_matches("12346", url, &params, expected));
    assert!(!twilio::signature_matches(
        token,
        "https://mycompany.com/myapp.php?foo=1&bar=3",
        &params,
        expected
    ));
}

/// Heads of every stream: equal before and after means nothing was stored or told.
async fn heads(t: &TestEngine) -> Vec<u64> {
    let mut heads = Vec::new();
    for s in ["tenant:acme", "ops"] {
        heads.push(t.engine.stream_position(s).await.expect("stream").head);
    }
    heads
}

async fn engine() -> (TestEngine, MockTwilio) {
    let mock = MockTwilio::start().await;
    let t = TestEngine::start(&twilio_config(&mock.base_url())).await;
    (t, mock)
}

#[tokio::test]
async fn a_signed_inbound_message_is_committed_then_answered_with_empty_twiml() {
    let (t, _mock) = engine().await;
    let mut agent = t.agent("acme").await;
    agent.sync_fresh("tenant:acme").await;

    let reply = inbound(&t, "SM100", SUBSCRIBER, CODE, "Do you have size 9?").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("text/xml"));
    assert_eq!(reply.text(), twilio::EMPTY_TWIML);

    // Committed before the answer: the tenant's history has it now.
    let list = agent
        .call("conversations.list", json!({ "tenant": "acme" }))
        .await
        .expect("list");
    let conv = &list["items"][0];
    assert_eq!(conv["subscriber"], SUBSCRIBER);
    assert_eq!(conv["last_message"]["body"], "Do you have size 9?");
    let events = agent
        .collect_events_until(|v| v["kind"] == "message.received", 5000)
        .await;
    assert_eq!(events.last().unwrap()["data"]["message"]["code"], CODE);
}

#[tokio::test]
async fn forged_missing_and_replayed_with_changed_body_signatures_get_403_and_change_nothing() {
    let (t, _mock) = engine().await;
    let before = heads(&t).await;
    let params = pairs(&[
        ("MessageSid", "SM200"),
        ("From", SUBSCRIBER),
        ("To", CODE),
        ("Body", "hello"),
    ]);
    let good = sign(INBOUND_PATH, &params);

    let missing = post_form(&t, INBOUND_PATH, &params, None).await;
    assert_eq!(missing.status, 403, "{}", missing.text());
    assert_eq!(missing.json()["error"]["code"], "bad_signature");

    let forged = twilio::signature(
        "not-the-token",
        &format!("{PUBLIC_URL}{INBOUND_PATH}"),
        &params,
    );
    let forged = post_form(&t, INBOUND_PATH, &params, Some(&forged)).await;
    assert_eq!(forged.status, 403);

    let mut changed = params.clone();
    changed[3].1 = "hello, send me money".into();
    let replayed = post_form(&t, INBOUND_PATH, &changed, Some(&good)).await;
    assert_eq!(replayed.status, 403);

    // Signed for another URL (a query added by someone on the way).
    let moved = post_form(&t, &format!("{INBOUND_PATH}?x=1"), &params, Some(&good)).await;
    assert_eq!(moved.status, 403);

    // A bad signature on a status callback changes nothing either.
    let cb = pairs(&[("MessageSid", "SM1"), ("MessageStatus", "delivered")]);
    let bad_status = post_form(&t, STATUS_PATH, &cb, Some(&good)).await;
    assert_eq!(bad_status.status, 403);

    assert_eq!(heads(&t).await, before, "nothing was stored or told");

    // The same request, signed, goes through.
    let ok = post_form(&t, INBOUND_PATH, &params, Some(&good)).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_ne!(heads(&t).await, before);
}

#[tokio::test]
async fn a_replayed_message_sid_changes_nothing() {
    let (t, _mock) = engine().await;
    assert_eq!(
        inbound(&t, "SM300", SUBSCRIBER, CODE, "first").await.status,
        200
    );
    let after_first = heads(&t).await;
    for _ in 0..3 {
        let again = inbound(&t, "SM300", SUBSCRIBER, CODE, "first").await;
        assert_eq!(again.status, 200);
        assert_eq!(again.text(), twilio::EMPTY_TWIML);
    }
    assert_eq!(heads(&t).await, after_first);
}

#[tokio::test]
async fn senders_and_codes_are_checked_with_reasons() {
    let (t, _mock) = engine().await;
    let before = heads(&t).await;
    let alpha = inbound(&t, "SM400", "ACMEBANK", CODE, "your code is 1234").await;
    assert_eq!(alpha.status, 400, "{}", alpha.text());
    let message = alpha.json()["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        message.contains("`From`") && message.contains("alphanumeric"),
        "{message}"
    );

    let unknown = inbound(&t, "SM401", SUBSCRIBER, "99999", "hi").await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json()["error"]["code"], "unknown_code");

    let no_sid = post_signed(
        &t,
        INBOUND_PATH,
        &pairs(&[("From", SUBSCRIBER), ("To", CODE)]),
    )
    .await;
    assert_eq!(no_sid.status, 400);
    assert!(no_sid.text().contains("MessageSid"), "{}", no_sid.text());
    assert_eq!(heads(&t).await, before);

    // The code in E.164-like form, and fields the engine does not know, are fine.
    let plus = inbound(&t, "SM402", SUBSCRIBER, &format!("+1{CODE}"), "hi").await;
    assert_eq!(plus.status, 200, "{}", plus.text());

    // Another carrier's webhooks are not this one's.
    let other = post_signed(
        &t,
        "/v1/carriers/nope/twilio/inbound",
        &pairs(&[("MessageSid", "x")]),
    )
    .await;
    assert_eq!(other.status, 404);
}

/// A subscriber who wrote, an agent who answers: the message goes out through the mock
/// provider. Returns the agent, the conversation, and the provider's sid of the reply.
async fn dispatched_reply(
    t: &TestEngine,
    mock: &MockTwilio,
    agent: &mut WsClient,
    body: &str,
) -> (String, String) {
    let list = agent
        .call("conversations.list", json!({ "tenant": "acme" }))
        .await
        .expect("list");
    let conv = list["items"][0]["id"]
        .as_str()
        .expect("a conversation")
        .to_string();
    let sent = agent
        .call(
            "messages.send",
            json!({ "client_msg_id": uuid::Uuid::new_v4().to_string(), "conversation": conv, "body": body }),
        )
        .await
        .expect("the reply is accepted");
    let id = sent["message"]["id"].as_str().unwrap().to_string();
    // Dispatched: the provider answered and the engine recorded its sid.
    let want = id.clone();
    agent
        .collect_events_until(
            move |v| {
                v["kind"] == "message.status"
                    && v["data"]["message"]["id"] == want.as_str()
                    && v["data"]["message"]["status"] == "dispatched"
            },
            PATIENCE.as_millis() as u64,
        )
        .await;
    let sid = mock.sid_for(body).expect("the provider has it");
    let _ = t;
    (id, sid)
}

async fn status_of(agent: &mut WsClient, message: &str) -> Value {
    let list = agent
        .call("conversations.list", json!({ "tenant": "acme" }))
        .await
        .expect("list");
    let conv = list["items"][0]["id"].as_str().unwrap().to_string();
    let history = agent
        .call(
            "conversations.history",
            json!({ "conversation": conv, "limit": 200 }),
        )
        .await
        .expect("history");
    history["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == message)
        .cloned()
        .expect("the message is in the history")
}

#[tokio::test]
async fn the_reply_goes_out_with_the_exact_request_and_a_21610_callback_opts_the_subscriber_out() {
    let (t, mock) = engine().await;
    let mut agent = t.agent("acme").await;
    agent.sync_fresh("tenant:acme").await;
    assert_eq!(
        inbound(&t, "SM500", SUBSCRIBER, CODE, "hi").await.status,
        200
    );
    let (id, sid) = dispatched_reply(&t, &mock, &mut agent, "Yes, we have size 9").await;

    let create = &mock.creates()[0];
    let mut fields = create.form.clone();
    fields.sort();
    assert_eq!(
        fields,
        pairs(&[
            ("Body", "Yes, we have size 9"),
            ("From", CODE),
            ("StatusCallback", &format!("{PUBLIC_URL}{STATUS_PATH}")),
            ("To", SUBSCRIBER),
        ])
    );

    let reply = status(&t, &sid, "failed", Some("21610")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let m = status_of(&mut agent, &id).await;
    assert_eq!(m["status"], "failed");
    assert!(
        m["error"].as_str().unwrap().starts_with("opted_out: 21610"),
        "{m}"
    );
    // The opt-out is recorded: the next reply is refused at once.
    let list = agent
        .call("conversations.list", json!({ "tenant": "acme" }))
        .await
        .unwrap();
    let conv = list["items"][0]["id"].as_str().unwrap().to_string();
    let refused = agent
        .call(
            "messages.send",
            json!({ "client_msg_id": uuid::Uuid::new_v4().to_string(), "conversation": conv, "body": "still there?" }),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code.as_str(), "opted_out", "{refused:?}");
}

const STATUSES: &[&str] = &[
    "accepted",
    "queued",
    "sending",
    "sent",
    "delivered",
    "read",
    "undelivered",
    "failed",
    "canceled",
];

/// The final state the engine must reach: the first terminal callback wins; without one, the
/// message stays dispatched.
fn expected_final(callbacks: &[&str]) -> &'static str {
    for c in callbacks {
        match *c {
            "delivered" | "read" => return "delivered",
            "undelivered" => return "undelivered",
            "failed" | "canceled" => return "failed",
            _ => {}
        }
    }
    "dispatched"
}

#[test]
fn status_callbacks_in_any_order_and_repetition_end_in_the_right_state() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let (t, mock, agent) = rt.block_on(async {
        let (t, mock) = engine().await;
        let mut agent = t.agent("acme").await;
        agent.sync_fresh("tenant:acme").await;
        assert_eq!(
            inbound(&t, "SM600", SUBSCRIBER, CODE, "hi").await.status,
            200
        );
        (t, mock, agent)
    });
    let agent = std::cell::RefCell::new(agent);
    let case = std::cell::Cell::new(0u32);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 40,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = prop::collection::vec(prop::sample::select(STATUSES), 1..9);
    runner
        .run(&strategy, |callbacks| {
            case.set(case.get() + 1);
            let mut agent = agent.borrow_mut();
            let (final_status, error) = rt.block_on(async {
                let body = format!("case {}", case.get());
                let (id, sid) = dispatched_reply(&t, &mock, &mut agent, &body).await;
                for c in &callbacks {
                    let error = (*c == "undelivered").then_some("30003");
                    let reply = status(&t, &sid, c, error).await;
                    assert_eq!(reply.status, 200, "{}", reply.text());
                }
                let m = status_of(&mut agent, &id).await;
                (
                    m["status"].as_str().unwrap().to_string(),
                    m["error"].clone(),
                )
            });
            let want = expected_final(&callbacks);
            prop_assert_eq!(&final_status, want, "callbacks {:?}", callbacks);
            if want == "undelivered" {
                prop_assert_eq!(error, json!("30003: unreachable destination handset"));
            }
            Ok(())
        })
        .expect("every order of callbacks ends in the right state");
    drop(agent);
    drop(t);
}

#[tokio::test]
async fn callbacks_for_unknown_messages_change_nothing() {
    let (t, _mock) = engine().await;
    let before = heads(&t).await;
    let reply = status(&t, "SMunknown", "delivered", None).await;
    assert_eq!(reply.status, 200);
    let weird = status(&t, "SMunknown", "receiving", None).await;
    assert_eq!(weird.status, 200);
    assert_eq!(heads(&t).await, before);
}

#[tokio::test]
async fn a_21610_refusal_at_send_fails_the_message_and_records_the_opt_out() {
    let (t, mock) = engine().await;
    mock.script([Reply::Error {
        status: 400,
        code: Some(21610),
        retry_after: None,
    }]);
    let mut agent = t.agent("acme").await;
    agent.sync_fresh("tenant:acme").await;
    assert_eq!(
        inbound(&t, "SM700", SUBSCRIBER, CODE, "hi").await.status,
        200
    );
    let list = agent
        .call("conversations.list", json!({ "tenant": "acme" }))
        .await
        .unwrap();
    let conv = list["items"][0]["id"].as_str().unwrap().to_string();
    agent
        .call(
            "messages.send",
            json!({ "client_msg_id": uuid::Uuid::new_v4().to_string(), "conversation": conv, "body": "hello" }),
        )
        .await
        .expect("accepted: the refusal comes from the provider");
    let changed = agent
        .collect_events_until(|e| e["kind"] == "consent.changed", 10_000)
        .await;
    let consent = changed.last().expect("a consent change");
    assert_eq!(consent["kind"], "consent.changed", "{changed:?}");
    assert_eq!(consent["data"]["consent"], "opted_out");
    assert!(
        consent["data"]["source"]
            .as_str()
            .unwrap()
            .starts_with("carrier:opted_out: 21610"),
        "{consent}"
    );
    assert_eq!(mock.creates().len(), 1, "a 4xx is never retried");
}
