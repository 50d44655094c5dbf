//! Compliance rules through the router's command API (no threads, no sockets): opt-outs that
//! are never broken, the tenant opt-out on every code of the tenant, campaigns held through
//! quiet hours across a DST change, and the spend limit with its notices.

mod rig;

use proptest::prelude::*;
use rig::RouterRig as Rig;
use serde_json::Value;
use shortbox::engine::router::{Caller, Command, DispatchJob};
use shortbox::engine::store::StoreRead;
use shortbox::protocol::{CampaignParams, Role, SendParams};
use tokio::sync::oneshot;

const CONFIG: &str = r#"
[[tenants]]
id = "acme"
name = "Acme Shoes"
timezone = "America/New_York"
help_text = "Acme help: acme.example"
stop_text = "Acme: unsubscribed."
monthly_spend_limit_usd = 0.05
keywords = [{ code = "55123", word = "SHOES" }]

[[tenants]]
id = "brisa"
name = "Brisa Cafe"
help_text = "Brisa help: brisa.example"
stop_text = "Brisa: unsubscribed."
keywords = [{ code = "55123", word = "BREW" }, { code = "55123", word = "BEANS", double_opt_in = true }]
compliance_keywords = { opt_out = ["BASTA"], help = ["SOPORTE"] }

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
code = "73400"
country = "US"
kind = "dedicated"
tenant = "brisa"
carrier = "sim"

[[carriers]]
id = "sim"
kind = "sim"

[pricing]
US = 0.01
"#;

fn caller(tenant: &str, role: Role) -> Caller {
    Caller {
        agent: format!("agent-{tenant}"),
        role,
        tenants: vec![tenant.to_string()],
    }
}

impl Rig {
    fn new(start_ms: i64) -> Rig {
        Rig::open(CONFIG, tempfile::tempdir().unwrap(), start_ms)
    }

    fn inbound(&mut self, from: &str, to: &str, body: &str) -> Option<String> {
        let (tx, mut rx) = oneshot::channel();
        let cmd = self.inbound_command(from, to, body);
        self.router.apply_commands([Command::Inbound(cmd, tx)]);
        rx.try_recv().unwrap().unwrap().tenant
    }

    fn send(&mut self, tenant: &str, to: &str, code: &str, body: &str) -> Result<Value, Value> {
        let (tx, mut rx) = oneshot::channel();
        let params = SendParams {
            client_msg_id: uuid::Uuid::new_v4().to_string(),
            body: body.into(),
            tenant: Some(tenant.into()),
            to: Some(to.into()),
            code: Some(code.into()),
            reclaim: true,
            ..Default::default()
        };
        let cmd = Command::Send {
            caller: caller(tenant, Role::Agent),
            params,
            preview: false,
            answer: tx,
        };
        self.router.apply_commands([cmd]);
        rx.try_recv()
            .unwrap()
            .map_err(|e| serde_json::to_value(e).unwrap())
    }

    fn campaign(&mut self, tenant: &str, code: &str) -> Value {
        let (tx, mut rx) = oneshot::channel();
        let params = CampaignParams {
            tenant: tenant.into(),
            code: code.into(),
            body: "Sale today".into(),
            to: None,
        };
        self.router.apply_commands([Command::Campaign {
            caller: caller(tenant, Role::Admin),
            params,
            answer: tx,
        }]);
        rx.try_recv().unwrap().unwrap()
    }

    /// Claims a job as the dispatcher would; `Some` means it may go to the carrier.
    fn claim(&mut self, job: &DispatchJob) -> Option<shortbox::protocol::Message> {
        let (tx, mut rx) = oneshot::channel();
        self.router.apply_commands([Command::Claim {
            message: job.message.id.clone(),
            answer: tx,
        }]);
        let claimed = rx.try_recv().unwrap();
        if claimed.is_some() {
            let cmd = Command::Dispatched {
                message: job.message.id.clone(),
                carrier: "sim".into(),
                carrier_id: None,
            };
            self.router.apply_commands([cmd]);
        }
        claimed
    }

    fn events(&self, stream: &str) -> Vec<Value> {
        self.reader
            .read_events(stream, 0, 100_000)
            .unwrap()
            .into_iter()
            .map(|e| serde_json::json!({ "kind": e.kind, "data": serde_json::from_str::<Value>(&e.data).unwrap() }))
            .collect()
    }
}

const SUBSCRIBERS: [&str; 3] = ["+14155550101", "+14155550102", "+12125550103"];
const BODIES: [&str; 8] = [
    "SHOES hi",
    "BREW hi",
    "hello",
    "STOP",
    "start",
    "HELP",
    "Stop please",
    "SHOES",
];

#[derive(Debug, Clone)]
enum Op {
    Inbound {
        sub: usize,
        code: usize,
        body: usize,
    },
    Send {
        tenant: usize,
        sub: usize,
        code: usize,
    },
    Campaign {
        tenant: usize,
    },
    Dispatch {
        pick: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..3usize, 0..BODIES.len()).prop_map(|(sub, code, body)| Op::Inbound { sub, code, body }),
        3 => (0..2usize, 0..3usize, 0..3usize).prop_map(|(tenant, sub, code)| Op::Send { tenant, sub, code }),
        1 => (0..2usize).prop_map(|tenant| Op::Campaign { tenant }),
        4 => (0..64usize).prop_map(|pick| Op::Dispatch { pick }),
    ]
}

const TENANTS: [&str; 2] = ["acme", "brisa"];
const CODES: [&str; 3] = ["55123", "73300", "73400"];

fn usable(tenant: &str, code: &str) -> bool {
    code == "55123"
        || (tenant == "acme" && code == "73300")
        || (tenant == "brisa" && code == "73400")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// After an opt-out commits, nothing is dispatched to that (code, subscriber) but the one
    /// confirmation, and nothing from that tenant on any of its codes.
    #[test]
    fn opt_out_is_never_broken(ops in prop::collection::vec(op(), 1..60)) {
        // Midday in New York: no quiet hours in the way.
        let mut rig = Rig::new(1_795_000_000_000 - (1_795_000_000_000 % 86_400_000) + 17 * 3_600_000);
        let mut blocked = std::collections::HashSet::<(String, String)>::new();
        let mut opted_out = std::collections::HashSet::<(String, String)>::new();
        let mut pending: Vec<DispatchJob> = Vec::new();
            for op in ops {
            match op {
                Op::Inbound { sub, code, body } => {
                    let (s, c, b) = (SUBSCRIBERS[sub], CODES[code], BODIES[body]);
                    let routed = rig.inbound(s, c, b);
                    let key = (c.to_string(), s.to_string());
                    let word = b.trim().to_uppercase();
                    if word == "STOP" {
                        blocked.insert(key);
                        if let Some(t) = &routed { opted_out.insert((t.clone(), s.to_string())); }
                    } else if word == "START" || (word == "SHOES" && c == "55123") {
                        blocked.remove(&key);
                        if let Some(t) = &routed { opted_out.remove(&(t.clone(), s.to_string())); }
                    }
                }
                Op::Send { tenant, sub, code } => {
                    let (t, s, c) = (TENANTS[tenant], SUBSCRIBERS[sub], CODES[code]);
                    let result = rig.send(t, s, c, "hello");
                    if usable(t, c) && (blocked.contains(&(c.to_string(), s.to_string())) || opted_out.contains(&(t.to_string(), s.to_string()))) {
                        let code = result.as_ref().err().map(|e| e["code"].clone());
                        prop_assert_eq!(code, Some(Value::from("opted_out")), "a send to an opted-out subscriber was accepted");
                    }
                }
                Op::Campaign { tenant } => { rig.campaign(TENANTS[tenant], "55123"); }
                Op::Dispatch { pick } => {
                    pending.extend(rig.jobs());
                    if pending.is_empty() { continue; }
                    let job = pending.remove(pick % pending.len());
                    let m = &job.message;
                    let t = m.tenant.clone().unwrap_or_default();
                    let is_confirmation = m.author.as_deref() == Some("system:stop");
                    if let Some(sent) = rig.claim(&job)
                        && !is_confirmation
                    {
                        prop_assert!(!blocked.contains(&(sent.code.clone(), sent.subscriber.clone())),
                            "dispatched to a blocked (code, subscriber): {sent:?}");
                        prop_assert!(!opted_out.contains(&(t, sent.subscriber.clone())),
                            "dispatched from a tenant the subscriber opted out of: {sent:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn one_confirmation_per_stop_and_help_answers() {
    let mut rig = Rig::new(1_795_000_000_000);
    assert_eq!(
        rig.inbound("+14155550101", "55123", "SHOES hi").as_deref(),
        Some("acme")
    );
    rig.inbound("+14155550101", "55123", "STOP");
    rig.inbound("+14155550101", "55123", "stop");
    let created: Vec<Value> = rig
        .events("tenant:acme")
        .into_iter()
        .filter(|e| e["kind"] == "message.created")
        .collect();
    assert_eq!(created.len(), 1, "exactly one confirmation: {created:?}");
    assert_eq!(created[0]["data"]["message"]["body"], "Acme: unsubscribed.");
    // HELP while opted out is not answered (nothing is sent after the confirmation) …
    rig.inbound("+14155550101", "55123", "HELP");
    assert_eq!(
        rig.events("tenant:acme")
            .iter()
            .filter(|e| e["kind"] == "message.created")
            .count(),
        1
    );
    // … but an attributed HELP gets the tenant's text, an unattributed one the generic text.
    rig.inbound("+14155550102", "55123", "BREW hi");
    rig.inbound("+14155550102", "55123", "help");
    let answers: Vec<String> = rig
        .events("tenant:brisa")
        .iter()
        .filter(|e| e["kind"] == "message.created")
        .map(|e| e["data"]["message"]["body"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(answers, ["Brisa help: brisa.example"]);
    rig.inbound("+14155550109", "55123", "INFO");
    let jobs = rig.jobs();
    assert!(
        jobs.iter()
            .any(|j| j.message.tenant.is_none() && j.message.body.contains("Text the keyword"))
    );
}

#[test]
fn campaigns_wait_out_quiet_hours_across_the_dst_change() {
    // 2026-11-01 02:00Z = 2026-10-31 22:00 EDT: inside quiet hours in New York.
    let start = "2026-11-01T02:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond();
    let mut rig = Rig::new(start);
    rig.inbound("+12125550103", "55123", "SHOES"); // a keyword alone: opt-in
    rig.jobs(); // the welcome message
    let r = rig.campaign("acme", "55123");
    assert_eq!(
        (r["queued"].as_u64(), r["held"].as_u64()),
        (Some(0), Some(1)),
        "{r}"
    );
    assert!(rig.jobs().is_empty(), "held, not dispatched");
    // The night passes the DST change (02:00 EDT → 01:00 EST); 08:00 EST is 13:00Z.
    rig.clock.set(
        "2026-11-01T12:59:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond(),
    );
    rig.router.apply_commands([Command::Tick]);
    assert!(rig.jobs().is_empty(), "07:59 EST is still quiet");
    rig.clock.set(
        "2026-11-01T13:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond(),
    );
    rig.router.apply_commands([Command::Tick]);
    let jobs = rig.jobs();
    assert_eq!(jobs.len(), 1, "released when the window opens");
    assert!(rig.claim(&jobs[0]).is_some());
    // Agent replies are exempt: back at night, a reply goes out at once.
    rig.clock.set(
        "2026-11-02T03:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond(),
    );
    rig.inbound("+12125550103", "55123", "thanks");
    rig.send("acme", "+12125550103", "55123", "you're welcome")
        .unwrap();
    let jobs = rig.jobs();
    assert_eq!(jobs.len(), 1);
    assert!(rig.claim(&jobs[0]).is_some());
}

#[test]
fn spend_limit_refuses_and_notices_once_each() {
    let mut rig = Rig::new(1_795_000_000_000);
    rig.inbound("+14155550101", "55123", "SHOES hi");
    // Limit $0.05 at $0.01 a segment: five sends, the sixth is refused.
    for i in 0..5 {
        rig.send("acme", "+14155550101", "55123", "hello")
            .unwrap_or_else(|e| panic!("send {i}: {e}"));
    }
    let err = rig
        .send("acme", "+14155550101", "55123", "hello")
        .unwrap_err();
    assert_eq!(err["code"], "spend_limit");
    let notices: Vec<u64> = rig
        .events("tenant:acme")
        .iter()
        .filter(|e| e["kind"] == "spend.notice")
        .map(|e| e["data"]["percent"].as_u64().unwrap())
        .collect();
    assert_eq!(notices, [80, 100]);
}

#[test]
fn double_opt_in_waits_for_yes() {
    let mut rig = Rig::new(1_795_000_000_000);
    let consents = |rig: &Rig| -> Vec<String> {
        rig.events("tenant:brisa")
            .iter()
            .filter(|e| e["kind"] == "consent.changed")
            .map(|e| e["data"]["consent"].as_str().unwrap().to_string())
            .collect()
    };
    // YES with nothing pending is an ordinary reply.
    rig.inbound("+14155550105", "55123", "BREW hi");
    rig.inbound("+14155550105", "55123", "yes");
    assert!(consents(&rig).is_empty());
    // The double opt-in keyword alone: pending, and a "reply YES" message.
    rig.inbound("+14155550105", "55123", "Beans!");
    assert_eq!(consents(&rig), ["pending"]);
    let asks: Vec<String> = rig.jobs().iter().map(|j| j.message.body.clone()).collect();
    assert!(asks.iter().any(|b| b.contains("reply YES")), "{asks:?}");
    // A campaign does not reach a pending subscriber.
    let (tx, mut rx) = oneshot::channel();
    let params = CampaignParams {
        tenant: "brisa".into(),
        code: "55123".into(),
        body: "Deal".into(),
        to: None,
    };
    rig.router.apply_commands([Command::Campaign {
        caller: caller("brisa", Role::Admin),
        params,
        answer: tx,
    }]);
    assert_eq!(rx.try_recv().unwrap().unwrap()["queued"], 0);
    // YES completes it, with the welcome.
    rig.inbound("+14155550105", "55123", "YES");
    assert_eq!(consents(&rig), ["pending", "opted_in"]);
    let welcome: Vec<String> = rig.jobs().iter().map(|j| j.message.body.clone()).collect();
    assert!(
        welcome
            .iter()
            .any(|b| b.contains("Msg&data rates may apply") && b.contains("STOP")),
        "{welcome:?}"
    );
}

#[test]
fn a_tenant_s_own_words_apply_to_its_subscribers_only() {
    let mut rig = Rig::new(1_795_000_000_000);
    rig.inbound("+14155550106", "55123", "BREW hi");
    rig.inbound("+14155550107", "55123", "SHOES hi");
    // Brisa's own HELP and STOP words work for brisa's subscriber …
    rig.inbound("+14155550106", "55123", "soporte");
    assert!(
        rig.jobs()
            .iter()
            .any(|j| j.message.body == "Brisa help: brisa.example")
    );
    rig.inbound("+14155550106", "55123", "Basta!");
    let brisa: Vec<String> = rig
        .events("tenant:brisa")
        .iter()
        .filter(|e| e["kind"] == "consent.changed")
        .map(|e| e["data"]["consent"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(brisa, ["opted_out"]);
    // … and are ordinary words for acme's.
    rig.inbound("+14155550107", "55123", "basta");
    assert!(
        !rig.events("tenant:acme")
            .iter()
            .any(|e| e["kind"] == "consent.changed")
    );
}
