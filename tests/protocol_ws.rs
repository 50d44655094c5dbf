//! Protocol v1 over a real socket: the upgrade's refusals, `hello`, bad frames, limits,
//! heartbeat, shutdown and slow consumers. Resume rules are in `protocol_resume.rs`.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::json;
use shortbox::engine::PublishedEvent;
use shortbox::protocol::{ErrorCode, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as RawFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

#[tokio::test]
async fn no_token_or_an_unknown_token_gets_401_before_the_upgrade() {
    let t = TestEngine::start(DEMO).await;
    let proto = ("sec-websocket-protocol", "shortbox.v1".to_string());

    let reply = t
        .upgrade_request("/v1/ws", std::slice::from_ref(&proto))
        .await;
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_eq!(reply.json()["error"]["code"], "unauthorized");
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Authorization"))
    );

    let bad = ("authorization", "Bearer not-a-token".to_string());
    let reply = t.upgrade_request("/v1/ws", &[proto.clone(), bad]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"]["code"], "unauthorized");

    let basic = ("authorization", "Basic dXNlcjpwYXNz".to_string());
    let reply = t.upgrade_request("/v1/ws", &[proto, basic]).await;
    assert_eq!(reply.status, 401);

    let refused = WsClient::connect(t.addr, "not-a-token")
        .await
        .err()
        .expect("refused");
    assert_eq!(refused.status(), Some(401));
    assert_eq!(refused.json()["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn a_token_in_the_query_gets_401_even_with_a_good_header() {
    let t = TestEngine::start(DEMO).await;
    let token = t.token(Role::Agent, &["acme"]).await;
    for query in [
        format!("?token={token}"),
        format!("?access_token={token}"),
        "?x=1&token=".to_string(),
    ] {
        let refused = WsClient::connect_with(t.addr, Some(&token), &["shortbox.v1"], &query)
            .await
            .err()
            .unwrap_or_else(|| panic!("{query} is refused"));
        assert_eq!(refused.status(), Some(401), "{query}");
        assert_eq!(refused.json()["error"]["code"], "unauthorized");
    }
    // The same token in the header alone is fine.
    WsClient::connect(t.addr, &token)
        .await
        .expect("header-only token connects");
}

#[tokio::test]
async fn a_client_offering_only_other_subprotocols_gets_400() {
    let t = TestEngine::start(DEMO).await;
    let token = t.token(Role::Agent, &["acme"]).await;
    let refused = WsClient::connect_with(t.addr, Some(&token), &["graphql-ws", "mqtt"], "")
        .await
        .err()
        .expect("refused");
    assert_eq!(refused.status(), Some(400));
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("shortbox.v1"),
        "the refusal names the subprotocol: {message}"
    );
}

#[tokio::test]
async fn shortbox_v1_is_echoed_and_no_subprotocol_is_accepted_without_one() {
    let t = TestEngine::start(DEMO).await;
    let token = t.token(Role::Agent, &["acme"]).await;
    let client = WsClient::connect_with(t.addr, Some(&token), &["other", "shortbox.v1"], "")
        .await
        .expect("connects");
    assert_eq!(client.protocol.as_deref(), Some("shortbox.v1"));
    let client = WsClient::connect_with(t.addr, Some(&token), &[], "")
        .await
        .expect("a script without a subprotocol");
    assert_eq!(
        client.protocol, None,
        "nothing is echoed that was not offered"
    );
    assert_eq!(client.hello()["proto"], 1);
}

#[tokio::test]
async fn hello_says_who_is_connected_and_what_may_be_synced() {
    let t = TestEngine::start(DEMO).await;
    let client = t.agent("acme").await;
    let hello = client.hello();
    assert_eq!(hello["op"], "hello");
    assert_eq!(hello["proto"], 1);
    assert_eq!(
        hello["server"],
        format!("shortbox/{}", env!("CARGO_PKG_VERSION"))
    );
    assert!(hello["conn"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(hello["heartbeat_ms"], 20000);
    assert_eq!(hello["principal"]["role"], "agent");
    assert!(hello["principal"]["agent"].is_string());
    assert_eq!(hello["principal"]["tenants"][0]["id"], "acme");
    assert_eq!(hello["streams"], json!(["tenant:acme"]));

    let other = t.agent("acme").await;
    assert_ne!(
        other.hello()["conn"],
        hello["conn"],
        "each connection has its own id"
    );

    let ops = WsClient::connect(t.addr, &t.token(Role::Ops, &[]).await)
        .await
        .expect("ops connects");
    let streams = ops.hello()["streams"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(streams.contains(&json!("ops")), "{streams:?}");
}

#[tokio::test]
async fn bad_frames_get_an_error_and_the_connection_stays_usable() {
    let t = TestEngine::start(DEMO).await;
    let mut client = t.agent("acme").await;
    let cases: &[(&str, serde_json::Value)] = &[
        ("this is not json", json!(null)),
        ("[1,2,3]", json!(null)),
        (r#"{"req":7}"#, json!(7)),
        (r#"{"op":"dance","req":8}"#, json!(8)),
        (r#"{"op":42,"req":9}"#, json!(9)),
        (r#"{"op":"call","req":10}"#, json!(10)),
        (r#"{"op":"call","req":11,"method":42}"#, json!(11)),
        (
            r#"{"op":"call","req":"twelve","method":"codes.list"}"#,
            json!(null),
        ),
        (
            r#"{"op":"call","req":123456789012345678901234567890,"method":"codes.list"}"#,
            json!(null),
        ),
        (
            r#"{"op":"sync","req":13,"streams":"tenant:acme"}"#,
            json!(13),
        ),
    ];
    for (text, req) in cases {
        client.send_text(text).await;
        let frame = client.next_frame().await;
        let v = frame.json().unwrap_or_else(|| panic!("{text}: {frame:?}"));
        assert_eq!(v["op"], "error", "{text}: {v}");
        assert_eq!(v["code"], "bad_frame", "{text}: {v}");
        assert_eq!(v["req"], *req, "{text}: {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    client.send_message(Message::binary(vec![1u8, 2, 3])).await;
    let v = client
        .next_frame()
        .await
        .json()
        .cloned()
        .expect("an error frame");
    assert_eq!(
        (v["op"].as_str(), v["code"].as_str()),
        (Some("error"), Some("bad_frame"))
    );

    let unknown = client
        .call("no.such.method", json!({}))
        .await
        .expect_err("refused");
    assert_eq!(unknown.code, ErrorCode::UnknownMethod);
    let codes = client.call("codes.list", json!({ "tenant": "acme" })).await;
    assert!(codes.is_ok(), "a later call works: {codes:?}");
}

#[tokio::test]
async fn a_frame_over_64_kib_closes_1009_and_64_kib_exactly_does_not() {
    let t = TestEngine::start(DEMO).await;
    let mut client = t.agent("acme").await;
    let head = r#"{"op":"call","req":1,"method":"no.such.method","params":{"pad":""#;
    let tail = r#""}}"#;
    let exact = format!(
        "{head}{}{tail}",
        "a".repeat(64 * 1024 - head.len() - tail.len())
    );
    assert_eq!(exact.len(), 64 * 1024);
    client.send_text(&exact).await;
    let reply = client
        .wait_reply(1)
        .await
        .expect_err("answered, not closed");
    assert_eq!(reply.code, ErrorCode::UnknownMethod);

    client
        .send_text(&format!(
            r#"{{"op":"call","req":2,"method":"x","params":{{"pad":"{}"}}}}"#,
            "a".repeat(100 * 1024)
        ))
        .await;
    let (code, reason) = client.expect_close(5000).await;
    assert_eq!(code, Some(1009), "{reason}");
}

#[tokio::test]
async fn invalid_utf8_closes_1007() {
    let t = TestEngine::start(DEMO).await;
    let mut client = t.agent("acme").await;
    let bytes = vec![b'{', b'"', 0xff, 0xfe, b'"', b'}'];
    client
        .send_message(Message::Frame(RawFrame::message(
            bytes,
            OpCode::Data(Data::Text),
            true,
        )))
        .await;
    let (code, _) = client.expect_close(5000).await;
    assert_eq!(code, Some(1007));
}

#[tokio::test]
async fn syncing_another_tenants_stream_is_forbidden_and_the_allowed_one_still_syncs() {
    let t = TestEngine::start(DEMO).await;
    let mut client = t.agent("acme").await;
    let req = client
        .sync(json!([
            { "stream": "tenant:bistro", "epoch": null, "after": null },
            { "stream": "ops", "epoch": null, "after": null },
            { "stream": "tenant:acme", "epoch": null, "after": null },
        ]))
        .await;
    let mut forbidden = Vec::new();
    let frames = client
        .collect_events_until(|v| v["op"] == "reset" && v["req"] == req, 5000)
        .await;
    for v in &frames {
        if v["op"] == "error" {
            assert_eq!(v["code"], "forbidden", "{v}");
            assert_eq!(v["req"], req);
            forbidden.push(v["message"].as_str().unwrap_or_default().to_string());
        }
    }
    assert_eq!(forbidden.len(), 2, "{frames:?}");
    assert!(forbidden.iter().any(|m| m.contains("tenant:bistro")));
    let reset = frames.last().expect("the reset");
    assert_eq!(reset["stream"], "tenant:acme");
    assert_eq!(reset["reason"], "fresh");

    // Live events flow on the allowed stream, and the connection is still usable.
    t.inbound("f-1", "+14155550101", ACME_DEDICATED, "hello")
        .await;
    let events = client.collect_events_until(|v| v["op"] == "ev", 5000).await;
    assert_eq!(
        events.last().map(|v| v["stream"].clone()),
        Some(json!("tenant:acme"))
    );
    assert!(
        client
            .call("codes.list", json!({ "tenant": "acme" }))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn calls_over_the_rate_are_refused_rate_limited_and_the_connection_stays() {
    let t = TestEngine::start(&demo_with("calls_per_second = 5")).await;
    let mut client = t.agent("acme").await;
    let mut reqs = Vec::new();
    for _ in 0..20 {
        reqs.push(client.send_call("no.such.method", json!({})).await);
    }
    let mut limited = 0;
    for req in reqs {
        match client.wait_reply(req).await {
            Err(e) if e.code == ErrorCode::RateLimited => {
                limited += 1;
                assert!(
                    e.message.contains('5'),
                    "the refusal says the rate: {}",
                    e.message
                );
            }
            Err(e) => assert_eq!(e.code, ErrorCode::UnknownMethod),
            Ok(v) => panic!("no.such.method answered {v}"),
        }
    }
    // A burst of twice the rate (10) passes; the rest is limited (a slow machine may refill a
    // token or two while the burst arrives).
    assert!((7..=10).contains(&limited), "{limited} of 20 limited");
    // Waiting refills the bucket.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let later = client
        .call("no.such.method", json!({}))
        .await
        .expect_err("refused by the engine");
    assert_eq!(later.code, ErrorCode::UnknownMethod);
}

#[tokio::test]
async fn a_flood_of_calls_closes_4108() {
    let t = TestEngine::start(&demo_with("calls_per_second = 5")).await;
    let mut client = t.agent("acme").await;
    // 10 pass, 20 are refused, then the connection closes; stop writing once it is gone.
    for req in 0..200 {
        let frame = json!({ "op": "call", "req": req, "method": "no.such.method", "params": {} });
        if client
            .try_send_message(Message::text(frame.to_string()))
            .await
            .is_err()
        {
            break;
        }
    }
    let (code, reason) = client.expect_close(5000).await;
    assert_eq!(code, Some(4108), "{reason}");
}

#[tokio::test]
async fn a_silent_client_is_closed_4103_after_two_heartbeats() {
    let t = TestEngine::start(&demo_with("heartbeat_ms = 200")).await;
    let mut client = t.agent("acme").await;
    assert_eq!(client.hello()["heartbeat_ms"], 200);
    // Not reading means not answering pings.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let (code, _) = client.expect_close(3000).await;
    assert_eq!(code, Some(4103));
}

#[tokio::test]
async fn a_client_that_answers_pings_stays_connected() {
    let t = TestEngine::start(&demo_with("heartbeat_ms = 250")).await;
    let mut client = t.agent("acme").await;
    // Reading answers pings; nothing else arrives for four heartbeats.
    assert_eq!(client.next_frame_timeout(1000).await, None);
    assert!(
        client
            .call("codes.list", json!({ "tenant": "acme" }))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn shutdown_closes_live_sockets_4100() {
    let mut t = TestEngine::start(DEMO).await;
    let mut client = t.agent("acme").await;
    t.shutdown().await;
    let (code, _) = client.expect_close(5000).await;
    assert_eq!(code, Some(4100));
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_4101() {
    let t = TestEngine::start(&demo_with("connection_queue = 16")).await;
    let mut client = t.agent("acme").await;
    let (_epoch, head) = client.sync_fresh("tenant:acme").await;
    // Big frames fill the socket buffers, then the writer stalls, then the hub queue overflows.
    let pad = "x".repeat(60 * 1024);
    for i in 1..=1000u64 {
        let seq = head + i;
        let frame = json!({ "op": "ev", "stream": "tenant:acme", "epoch": "E", "seq": seq, "kind": "test.pad", "ts": "", "data": { "pad": pad } });
        t.engine.hub().publish(vec![PublishedEvent {
            stream: Arc::from("tenant:acme"),
            seq,
            frame: Arc::from(frame.to_string()),
            committed: Some(std::time::Instant::now()),
        }]);
        tokio::task::yield_now().await;
    }
    let (code, _) = client.expect_close(10_000).await;
    assert_eq!(code, Some(4101));
}

#[tokio::test]
async fn live_frames_reach_only_connections_that_follow_ops() {
    let t = TestEngine::start(DEMO).await;
    let mut ops = WsClient::connect(t.addr, &t.token(Role::Ops, &[]).await)
        .await
        .expect("ops connects");
    let mut agent = t.agent("acme").await;
    let mut unsynced = WsClient::connect(t.addr, &t.token(Role::Ops, &[]).await)
        .await
        .expect("ops connects");
    ops.sync_fresh("ops").await;
    agent.sync_fresh("tenant:acme").await;

    t.engine.hub().publish_live(Arc::from(
        r#"{"op":"live","kind":"test.ping","data":{"n":1}}"#,
    ));
    let frames = ops
        .collect_events_until(|v| v["kind"] == "test.ping", 5000)
        .await;
    assert_eq!(frames.last().map(|v| v["op"].clone()), Some(json!("live")));
    let stray = |f: &Option<Frame>| {
        f.as_ref()
            .and_then(Frame::json)
            .is_some_and(|v| v["kind"] == "test.ping")
    };
    assert!(
        !stray(&agent.next_frame_timeout(300).await),
        "an agent does not follow ops"
    );
    assert!(
        !stray(&unsynced.next_frame_timeout(300).await),
        "live frames need a sync of ops"
    );
}

#[tokio::test]
async fn a_huge_frame_is_refused_with_1009_without_being_read() {
    let t = TestEngine::start(DEMO).await;
    let mut client = t.agent("acme").await;
    // 8 MiB: the server refuses it from its header and swallows the rest unread.
    let huge = format!(
        r#"{{"op":"call","req":1,"method":"x","params":{{"pad":"{}"}}}}"#,
        "a".repeat(8 << 20)
    );
    let _ = client.try_send_message(Message::text(huge)).await;
    let (code, reason) = client.expect_close(5000).await;
    assert_eq!(code, Some(1009), "{reason}");
    // The engine still serves others.
    let mut other = t.agent("acme").await;
    assert!(
        other
            .call("codes.list", json!({ "tenant": "acme" }))
            .await
            .is_ok()
    );
}

/// The ids `tenants.list` answered, in its order.
fn tenant_ids(list: &serde_json::Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["id"].as_str().expect("an id").to_string())
        .collect()
}

#[tokio::test]
async fn tenants_list_gives_ops_and_the_owner_every_tenant_and_others_only_their_own() {
    let t = TestEngine::start(DEMO).await;
    let mut ops = WsClient::connect(t.addr, &t.token(Role::Ops, &[]).await)
        .await
        .expect("ops connects");
    let all = ops
        .call("tenants.list", json!({}))
        .await
        .expect("ops lists the tenants");
    assert_eq!(tenant_ids(&all), ["acme", "bistro", "tienda"], "by name");
    let acme = &all["items"][0];
    assert_eq!(acme["name"], "Acme Shoes");
    assert_eq!(acme["codes"], json!(["55124"]), "its dedicated code");
    assert_eq!(
        acme["keywords"],
        json!([{ "code": "55123", "word": "SHOES" }])
    );
    assert_eq!(acme["countries"], json!(["US"]));
    assert_eq!(all["items"][2]["countries"], json!(["CO"]));
    assert_eq!(all["items"][2]["codes"], json!([]));

    let mut owner = WsClient::connect(t.addr, &t.token(Role::Owner, &[]).await)
        .await
        .expect("the owner connects");
    let seen = owner
        .call("tenants.list", serde_json::Value::Null)
        .await
        .expect("params may be left out");
    assert_eq!(seen, all, "the owner sees what ops sees");

    let mut agent = t.agent("acme").await;
    let own = agent
        .call("tenants.list", json!({}))
        .await
        .expect("an agent lists its tenants");
    assert_eq!(tenant_ids(&own), ["acme"], "nothing of bistro or tienda");
    assert_eq!(own["items"][0], *acme);
    let text = own.to_string();
    for other in [
        "bistro",
        "Bistro Verde",
        "tienda",
        "Tienda Sol",
        "TABLE",
        "SOL",
    ] {
        assert!(!text.contains(other), "an agent sees {other:?}: {text}");
    }

    let mut admin = WsClient::connect(t.addr, &t.token(Role::Admin, &["tienda", "bistro"]).await)
        .await
        .expect("the admin connects");
    let both = admin
        .call("tenants.list", json!({}))
        .await
        .expect("an admin lists its tenants");
    assert_eq!(tenant_ids(&both), ["bistro", "tienda"], "its own, by name");
}

#[tokio::test]
async fn tenants_list_refuses_parameters_it_does_not_take() {
    let t = TestEngine::start(DEMO).await;
    let mut agent = t.agent("acme").await;
    let refused = agent
        .call("tenants.list", json!({ "tenant": "bistro" }))
        .await
        .expect_err("a parameter it does not take");
    assert_eq!(refused.code, ErrorCode::InvalidParams);
    assert!(
        refused.message.contains("tenants.list") && refused.message.contains("tenant"),
        "the refusal names the call and the field: {}",
        refused.message
    );
    let refused = agent
        .call("tenants.list", json!("acme"))
        .await
        .expect_err("params that are not an object");
    assert_eq!(refused.code, ErrorCode::InvalidParams);
    let own = agent
        .call("tenants.list", json!({}))
        .await
        .expect("the connection still works");
    assert_eq!(tenant_ids(&own), ["acme"]);
}

/// Conversation summaries are written behind (`engine/router/summaries.rs`): a list right
/// after a burst must still show every message, because the read asks the router to copy the
/// tenant's summaries first.
#[tokio::test]
async fn an_inbox_read_right_after_a_burst_counts_every_message() {
    let t = TestEngine::start(DEMO).await;
    let mut acme = t.agent("acme").await;
    let subscribers = 12;
    let rounds = 10;
    for round in 0..rounds {
        for s in 0..subscribers {
            t.inbound(
                &format!("burst-{round}-{s}"),
                &format!("+1415555{:04}", 200 + s),
                ACME_DEDICATED,
                &format!("message {round}"),
            )
            .await;
        }
    }
    let list = acme
        .call(
            "conversations.list",
            json!({ "tenant": "acme", "limit": 100 }),
        )
        .await
        .unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), subscribers, "{list}");
    for c in items {
        assert_eq!(c["unread"], rounds, "{c}");
        assert_eq!(
            c["last_message"]["body"],
            format!("message {}", rounds - 1),
            "{c}"
        );
    }
}
