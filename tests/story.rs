//! The whole attribution story over real sockets: keyword routing, follow-up by attribution,
//! another business takes the subscriber, the first is warned without being told who, its plain
//! reply is refused, its reclaim goes through and moves attribution back on dispatch, and
//! unattributed messages reach ops only. Plus the send refusals and inbound dedupe.

mod common;

use common::{Frame, SIM_SECRET, TestEngine, WsClient};
use serde_json::{Value, json};
use shortbox::protocol::Role;

const CONFIG: &str = r#"
[engine]
listen = "127.0.0.1:0"

[[tenants]]
id = "acme"
name = "Acme Shoes"
help_text = "Acme help: acme.example"
stop_text = "Acme: unsubscribed."
keywords = [{ code = "55123", word = "SHOES" }]

[[tenants]]
id = "brisa"
name = "Brisa Cafe"
help_text = "Brisa help: brisa.example"
stop_text = "Brisa: unsubscribed."
keywords = [{ code = "55123", word = "BREW" }]

[[codes]]
code = "55123"
country = "US"
kind = "shared"
carrier = "sim"

[[codes]]
code = "73300"
country = "US"
kind = "dedicated"
tenant = "acme"
carrier = "sim"

[[codes]]
code = "87654"
country = "CO"
kind = "shared"
carrier = "sim"

[[carriers]]
id = "sim"
kind = "sim"
inbound_secret = "SIM_SECRET"
sim = { failed_per_mille = 0, silent_per_mille = 0, receipt_delay_ms = 10 }

[pricing]
US = 0.01
"#;

struct Harness {
    t: TestEngine,
}

impl Harness {
    async fn start() -> Harness {
        Harness {
            t: TestEngine::start(&CONFIG.replace("SIM_SECRET", SIM_SECRET)).await,
        }
    }

    /// A client of a new agent, synced fresh on every stream its `hello` lists.
    async fn client(&self, role: Role, tenants: &[&str]) -> Client {
        let token = self.t.token(role, tenants).await;
        let mut ws = WsClient::connect(self.t.addr, &token)
            .await
            .expect("websocket connects");
        let streams: Vec<String> = ws.hello()["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        for stream in streams {
            ws.sync_fresh(&stream).await;
        }
        Client {
            ws,
            backlog: Vec::new(),
        }
    }

    async fn inbound(&self, id: &str, from: &str, to: &str, body: &str) -> Value {
        self.t.inbound(id, from, to, body).await
    }
}

/// The shared client, plus "the next event of this kind" with the others kept for later.
struct Client {
    ws: WsClient,
    backlog: Vec<Value>,
}

impl Client {
    async fn frame(&mut self) -> Value {
        match self.ws.next_frame().await {
            Frame::Json(v) => v,
            other => panic!("unexpected {other:?}"),
        }
    }

    async fn call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.ws
            .call(method, params)
            .await
            .map_err(|e| serde_json::to_value(e).unwrap())
    }

    /// The next event of `kind` (earlier events of other kinds are kept in order for later).
    async fn event(&mut self, kind: &str) -> Value {
        if let Some(i) = self.backlog.iter().position(|e| e["kind"] == kind) {
            return self.backlog.remove(i);
        }
        loop {
            let f = self.frame().await;
            if f["op"] == "ev" {
                if f["kind"] == kind {
                    return f;
                }
                self.backlog.push(f);
            }
        }
    }

    /// The text of the next event of `kind`.
    async fn raw_event(&mut self, kind: &str) -> String {
        self.event(kind).await.to_string()
    }

    fn uuid() -> String {
        uuid::Uuid::new_v4().to_string()
    }

    async fn reply(
        &mut self,
        conversation: &str,
        body: &str,
        reclaim: bool,
    ) -> Result<Value, Value> {
        let params = json!({ "client_msg_id": Self::uuid(), "conversation": conversation, "body": body, "reclaim": reclaim });
        self.call("messages.send", params).await
    }
}

const DANA: &str = "+14155550101";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribution_story_over_real_sockets() {
    let h = Harness::start().await;
    let mut acme = h.client(Role::Agent, &["acme"]).await;
    let mut brisa = h.client(Role::Agent, &["brisa"]).await;
    let mut ops = h.client(Role::Ops, &[]).await;

    // 1. Keyword routing: the first word names the business.
    let ack = h
        .inbound("c-1", DANA, "55123", "SHOES do you have size 9?")
        .await;
    assert_eq!(ack["routed"], "tenant");
    assert_eq!(ack["tenant"], "acme");
    let ev = acme.event("message.received").await;
    let msg = &ev["data"]["message"];
    assert_eq!(msg["routed_by"], "keyword");
    let conv = ev["data"]["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(ev["data"]["conversation"]["unread"], 1);

    // 2. Acme replies; once dispatched, acme holds the subscriber on the shared code.
    let sent = acme
        .reply(&conv, "Yes! Size 9 in stock.", false)
        .await
        .expect("reply accepted");
    assert_eq!(sent["duplicate"], false);
    let out_id = sent["message"]["id"].as_str().unwrap().to_string();
    let status = acme.event("message.status").await;
    assert_eq!(status["data"]["message"]["status"], "dispatched");
    assert_eq!(
        status["data"]["conversation"]["attribution"]["state"],
        "held"
    );

    // 3. Follow-up without a keyword: routed by attribution, with the evidence.
    h.inbound("c-2", DANA, "55123", "great, I'll come by").await;
    let ev = acme.event("message.received").await;
    assert_eq!(ev["data"]["message"]["routed_by"], "attribution");
    assert_eq!(ev["data"]["message"]["evidence"], out_id.as_str());

    // 4. Another business takes the subscriber (she texts its keyword).
    let ack = h
        .inbound("c-3", DANA, "55123", "BREW is the oat latte on offer?")
        .await;
    assert_eq!(ack["tenant"], "brisa");
    let lost = acme.raw_event("attribution.lost").await;
    assert!(
        !lost.to_lowercase().contains("brisa"),
        "acme must not learn who took the subscriber: {lost}"
    );
    let lost: Value = serde_json::from_str(&lost).unwrap();
    assert_eq!(lost["data"]["code"], "55123");
    assert_eq!(lost["data"]["conversation"]["attribution"]["state"], "lost");
    // Ops saw acme gain the subscriber first (nobody held it), then the shift, with both names.
    let gained = ops.event("attribution.changed").await;
    assert_eq!(
        (
            gained["data"]["from"].clone(),
            gained["data"]["to"]["id"].clone()
        ),
        (Value::Null, json!("acme"))
    );
    let changed = ops.event("attribution.changed").await;
    assert_eq!(changed["data"]["from"]["id"], "acme");
    assert_eq!(changed["data"]["to"]["id"], "brisa");
    let brisa_conv = brisa.event("message.received").await["data"]["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // 5. Acme's plain reply is refused, naming its dedicated code as the way out.
    let err = acme
        .reply(&conv, "Did you find them?", false)
        .await
        .expect_err("guarded");
    assert_eq!(err["code"], "attribution_shifted");
    assert_eq!(err["details"]["code"], "55123");
    assert_eq!(err["details"]["alternatives"], json!(["73300"]));
    assert!(!err.to_string().to_lowercase().contains("brisa"));

    // 6. Reclaim: accepted; once dispatched, brisa is the one that loses.
    acme.reply(&conv, "Your size 9 is on hold for you.", true)
        .await
        .expect("reclaim accepted");
    let lost_b = brisa.raw_event("attribution.lost").await;
    assert!(!lost_b.to_lowercase().contains("acme"), "{lost_b}");
    let regained = acme.event("attribution.regained").await;
    assert_eq!(
        regained["data"]["conversation"]["attribution"]["state"],
        "held"
    );
    assert_eq!(
        brisa_conv,
        serde_json::from_str::<Value>(&lost_b).unwrap()["data"]["conversation"]["id"]
    );

    // 7. The next reply routes back to acme.
    let ack = h.inbound("c-4", DANA, "55123", "thank you!").await;
    assert_eq!(ack["tenant"], "acme");
    assert_eq!(
        acme.event("message.received").await["data"]["message"]["routed_by"],
        "attribution"
    );

    // 8. Unattributed: reaches ops only.
    let ack = h.inbound("c-5", "+14155550177", "55123", "hello?").await;
    assert_eq!(ack["routed"], "unattributed");
    let un = ops.event("unattributed.received").await;
    assert_eq!(un["data"]["message"]["subscriber"], "+14155550177");
    assert!(un["data"]["reason"].as_str().unwrap().len() > 10);
    // Ops sees it in the queue with the reason, and gives it to acme; agents may not.
    let queue = ops.call("unattributed.list", json!({})).await.unwrap();
    assert_eq!(queue["items"][0]["subscriber"], "+14155550177");
    assert!(
        queue["items"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("shared code")
    );
    let msg_id = queue["items"][0]["id"].clone();
    let denied = acme
        .call(
            "unattributed.assign",
            json!({ "message": msg_id, "tenant": "acme" }),
        )
        .await;
    assert_eq!(denied.unwrap_err()["code"], "forbidden");
    ops.call(
        "unattributed.assign",
        json!({ "message": msg_id, "tenant": "acme" }),
    )
    .await
    .unwrap();
    let given = acme.event("message.received").await;
    assert_eq!(given["data"]["message"]["routed_by"], "ops");
    assert_eq!(given["data"]["message"]["body"], "hello?");
    assert!(
        ops.call("unattributed.list", json!({})).await.unwrap()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Assigning set attribution: the subscriber's next message routes to acme.
    let ack = h.inbound("c-5b", "+14155550177", "55123", "thanks").await;
    assert_eq!(ack["tenant"], "acme");
    acme.event("message.received").await;
    // The next thing acme sees is its own next message, not the unattributed one.
    h.inbound("c-6", DANA, "55123", "one more thing").await;
    let next = acme.event("message.received").await;
    assert_eq!(next["data"]["message"]["body"], "one more thing");
    assert!(
        acme.backlog
            .iter()
            .all(|e| e["kind"] != "unattributed.received")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_refusals_and_idempotency() {
    let h = Harness::start().await;
    let mut acme = h.client(Role::Agent, &["acme"]).await;
    h.inbound("r-1", DANA, "55123", "SHOES hi").await;
    let conv = acme.event("message.received").await["data"]["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Idempotent send: same key and payload → the first result, flagged duplicate.
    let key = Client::uuid();
    let p = json!({ "client_msg_id": key, "conversation": conv, "body": "hello" });
    let first = acme.call("messages.send", p.clone()).await.unwrap();
    let again = acme.call("messages.send", p).await.unwrap();
    assert_eq!(again["duplicate"], true);
    assert_eq!(first["message"]["id"], again["message"]["id"]);
    let changed = json!({ "client_msg_id": key, "conversation": conv, "body": "hello!" });
    assert_eq!(
        acme.call("messages.send", changed).await.unwrap_err()["code"],
        "idempotency_mismatch"
    );

    let refuse =
        |body: &str| json!({ "client_msg_id": Client::uuid(), "conversation": conv, "body": body });
    assert_eq!(
        acme.call("messages.send", refuse("   ")).await.unwrap_err()["code"],
        "empty_body"
    );
    let long = "ж".repeat(67 * 10 + 1);
    assert_eq!(
        acme.call("messages.send", refuse(&long)).await.unwrap_err()["code"],
        "body_too_long"
    );

    // A US code cannot reach a Colombian number.
    let co = json!({ "client_msg_id": Client::uuid(), "tenant": "acme", "to": "+573005550101", "code": "55123", "body": "hola" });
    let err = acme.call("messages.send", co).await.unwrap_err();
    assert_eq!(err["code"], "country_mismatch");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("only reaches its own country")
    );

    // Someone who never wrote and never opted in cannot be messaged.
    let cold = json!({ "client_msg_id": Client::uuid(), "tenant": "acme", "to": "+14155550150", "code": "73300", "body": "hi" });
    assert_eq!(
        acme.call("messages.send", cold).await.unwrap_err()["code"],
        "no_consent"
    );

    // Another tenant: forbidden by tenant, not_found by conversation id.
    let other = json!({ "client_msg_id": Client::uuid(), "tenant": "brisa", "to": DANA, "code": "55123", "body": "hi" });
    assert_eq!(
        acme.call("messages.send", other).await.unwrap_err()["code"],
        "forbidden"
    );
    let list = json!({ "tenant": "brisa" });
    assert_eq!(
        acme.call("conversations.list", list).await.unwrap_err()["code"],
        "forbidden"
    );
    let mut brisa = h.client(Role::Agent, &["brisa"]).await;
    h.inbound("r-2", "+14155550102", "55123", "BREW hi").await;
    let bconv = brisa.event("message.received").await["data"]["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let err = acme
        .call("conversations.history", json!({ "conversation": bconv }))
        .await
        .unwrap_err();
    assert_eq!(err["code"], "not_found");
    let err = acme.reply(&bconv, "hi", false).await.unwrap_err();
    assert_eq!(err["code"], "not_found");

    // A refused send does not use up its key.
    let key = Client::uuid();
    let bad = json!({ "client_msg_id": key, "conversation": conv, "body": "" });
    assert!(acme.call("messages.send", bad).await.is_err());
    let good = json!({ "client_msg_id": key, "conversation": conv, "body": "fixed" });
    assert_eq!(
        acme.call("messages.send", good).await.unwrap()["duplicate"],
        false
    );

    // Preview reports every blocking rule at once, and segments.
    let p = json!({ "client_msg_id": Client::uuid(), "tenant": "acme", "to": "+573005550101", "code": "55123", "body": "x" });
    let prev = acme.call("messages.preview", p).await.unwrap();
    let codes: Vec<&str> = prev["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"country_mismatch") && codes.contains(&"no_consent"),
        "{codes:?}"
    );
    let p =
        json!({ "client_msg_id": Client::uuid(), "conversation": conv, "body": "ñ".repeat(100) });
    let prev = acme.call("messages.preview", p).await.unwrap();
    assert_eq!(prev["encoding"], "gsm7");
    let p =
        json!({ "client_msg_id": Client::uuid(), "conversation": conv, "body": "😊".repeat(40) });
    let prev = acme.call("messages.preview", p).await.unwrap();
    assert_eq!(
        (prev["encoding"].as_str(), prev["segments"].as_u64()),
        (Some("ucs2"), Some(2))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_carrier_id_changes_nothing() {
    let h = Harness::start().await;
    let mut acme = h.client(Role::Agent, &["acme"]).await;
    let first = h.inbound("dup-1", DANA, "55123", "SHOES once").await;
    let again = h.inbound("dup-1", DANA, "55123", "SHOES once").await;
    assert_eq!(first, again);
    let ev = acme.event("message.received").await;
    assert_eq!(ev["data"]["conversation"]["unread"], 1);
    // The next event is the next message: the replay produced none.
    h.inbound("dup-2", DANA, "55123", "twice?").await;
    let ev2 = acme.event("message.received").await;
    assert_eq!(ev2["data"]["message"]["body"], "twice?");
    assert_eq!(
        ev2["seq"].as_u64().unwrap(),
        ev["seq"].as_u64().unwrap() + 1
    );
    let conv = ev["data"]["conversation"]["id"].clone();
    let hist = acme
        .call("conversations.history", json!({ "conversation": conv }))
        .await
        .unwrap();
    assert_eq!(hist["items"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_blocks_everything_but_one_confirmation() {
    let h = Harness::start().await;
    let mut acme = h.client(Role::Agent, &["acme"]).await;
    h.inbound("s-1", DANA, "55123", "SHOES hi").await;
    let conv = acme.event("message.received").await["data"]["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    h.inbound("s-2", DANA, "55123", "Stop.").await;
    let consent = acme.event("consent.changed").await;
    assert_eq!(consent["data"]["consent"], "opted_out");
    let created = acme.event("message.created").await;
    assert_eq!(created["data"]["message"]["body"], "Acme: unsubscribed.");
    let err = acme.reply(&conv, "wait!", false).await.unwrap_err();
    assert_eq!(err["code"], "opted_out");
    // The tenant opt-out holds on its dedicated code too.
    let p = json!({ "client_msg_id": Client::uuid(), "conversation": conv, "code": "73300", "body": "hi" });
    assert_eq!(
        acme.call("messages.send", p).await.unwrap_err()["code"],
        "opted_out"
    );
    let hist = acme
        .call("consent.history", json!({ "conversation": conv }))
        .await
        .unwrap();
    assert_eq!(hist["consent"], "opted_out");
    assert_eq!(hist["code_blocked"], true);
    // START lifts it.
    h.inbound("s-3", DANA, "55123", "start").await;
    assert_eq!(
        acme.event("consent.changed").await["data"]["consent"],
        "opted_in"
    );
    acme.reply(&conv, "welcome back", false)
        .await
        .expect("allowed again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_sees_live_traffic_and_metrics_count_it() {
    let h = Harness::start().await;
    let mut ops = h.client(Role::Ops, &[]).await;
    h.inbound("t-1", DANA, "55123", "SHOES hi").await;
    h.inbound("t-2", DANA, "55123", "still there?").await;
    h.inbound("t-3", "+14155550188", "55123", "hello").await;
    // Live frames carry no seq; sum the windows until all three messages are counted.
    let (mut acme, mut unattributed) = (0, 0);
    while acme < 2 || unattributed < 1 {
        let f = ops.frame().await;
        if f["op"] == "live" {
            assert_eq!(f["kind"], "traffic");
            assert!(f.get("seq").is_none());
            acme += f["data"]["counts"]["inbound"]["acme"].as_u64().unwrap_or(0);
            unattributed += f["data"]["counts"]["unattributed"].as_u64().unwrap();
        }
    }
    assert_eq!((acme, unattributed), (2, 1));
    let metrics = h.t.engine.metrics_text();
    assert!(
        metrics.contains("shortbox_inbound_total{tenant=\"acme\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("shortbox_unattributed_total 1"),
        "{metrics}"
    );
    // The hop histograms: every command waited for the router, every batch was timed, and the
    // ops session flushed at least the unattributed message's event.
    let count = |name: &str| -> u64 {
        let prefix = format!("{name}_count ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("{name}_count in\n{metrics}"))
            .parse()
            .unwrap()
    };
    assert!(count("shortbox_router_queue_seconds") >= 3, "{metrics}");
    assert!(count("shortbox_router_batch_seconds") >= 1, "{metrics}");
    assert!(count("shortbox_delivery_seconds") >= 1, "{metrics}");
}
