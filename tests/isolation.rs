//! Isolation property test: random tenants, codes, subscribers, keywords, inbound messages,
//! agents' sends, foreign probes and reconnects; zero events reach a principal that may not
//! see them.
//!
//! A *world* (one engine) has 2–4 tenants with random ids and names, shared and dedicated
//! codes, keywords, and one observer per principal: an agent per tenant, an admin of two
//! tenants, ops and the owner. Each proptest *case* runs a random list of operations in the
//! current world; a new world is made every [`CASES_PER_WORLD`] cases. Every frame an agent or
//! admin receives — hub events through the engine facade in most cases, a real WebSocket
//! session (hello, sync, events) in about one case in ten — must:
//! - belong to one of its streams (`tenant:<own>`), never `ops` or another tenant's;
//! - name only its tenants in `tenant` fields;
//! - contain, anywhere in its raw text, no other tenant's id or name and no id of a
//!   conversation or message that belongs to another tenant or to the unattributed queue.
//!
//! Ops must receive only `ops` frames. Foreign probes (list, history, update, send, consent
//! history on another tenant's conversation; a sync of another tenant's stream) must be
//! refused with `forbidden` / `not_found`. Counts are printed at the end; 1 000 cases by
//! default, `SHORTBOX_ISOLATION_CASES=n` or 5 000 with `SHORTBOX_FULL=1`.
//! `SHORTBOX_ISOLATION_INJECT_LEAK=1` makes every agent also follow `ops` behind the
//! checks' back: the test must then fail (a self-test of the checks).

mod common;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestCaseError, TestRunner};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use shortbox::config::Config;
use shortbox::engine::hub::{HubItem, Subscription};
use shortbox::engine::{AuthPrincipal, Engine};
use shortbox::protocol::Role;

const CASES_PER_WORLD: usize = 25;
const SECRET: &str = "isolation-inbound-secret";
/// Body words: none can contain a tenant's id or name.
const VOCABULARY: &[&str] = &[
    "hello", "price", "open", "today", "thanks", "when", "order", "blue", "size", "nine", "shop",
    "is", "it", "ready", "pickup", "at", "noon",
];

#[derive(Debug, Clone)]
struct TenantSpec {
    id: String,
    name: String,
    /// (code, word)
    keywords: Vec<(String, String)>,
    dedicated: Option<String>,
}

#[derive(Debug, Clone)]
struct WorldSpec {
    tenants: Vec<TenantSpec>,
    shared: Vec<String>,
    subscribers: Vec<String>,
}

fn letters(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

fn world_spec(seed: u64) -> WorldSpec {
    let mut rng = StdRng::seed_from_u64(seed);
    let shared: Vec<String> = (0..rng.random_range(1..=2))
        .map(|i| format!("5{}{:03}", 5 + i, rng.random_range(0..1000)))
        .collect();
    let n = rng.random_range(2..=4);
    let mut words = HashSet::new();
    let mut tenants = Vec::new();
    for i in 0..n {
        let tag = letters(&mut rng, 6);
        let mut keywords = Vec::new();
        for code in &shared {
            if rng.random_bool(0.8) {
                let word = letters(&mut rng, 4).to_uppercase();
                if words.insert((code.clone(), word.clone())) {
                    keywords.push((code.clone(), word));
                }
            }
        }
        tenants.push(TenantSpec {
            id: format!("tn-{tag}"),
            name: format!("Org {}{}", tag[..1].to_uppercase(), &tag[1..]),
            keywords,
            dedicated: rng
                .random_bool(0.5)
                .then(|| format!("7{i}{:03}", rng.random_range(0..1000))),
        });
    }
    let mut subscribers: Vec<String> = (0..rng.random_range(3..=8))
        .map(|_| format!("+141555501{:02}", rng.random_range(0..100)))
        .collect();
    subscribers.sort();
    subscribers.dedup();
    WorldSpec {
        tenants,
        shared,
        subscribers,
    }
}

fn config_toml(w: &WorldSpec) -> String {
    let mut s = String::from("[engine]\nheartbeat_ms = 20000\n\n");
    for t in &w.tenants {
        let keywords: Vec<String> = t
            .keywords
            .iter()
            .map(|(code, word)| format!("{{ code = \"{code}\", word = \"{word}\" }}"))
            .collect();
        s.push_str(&format!(
            "[[tenants]]\nid = \"{}\"\nname = \"{}\"\nhelp_text = \"{}: help at +1 800 555 0100\"\n\
             stop_text = \"Unsubscribed from {}.\"\nkeywords = [{}]\n\n",
            t.id,
            t.name,
            t.name,
            t.name,
            keywords.join(", ")
        ));
    }
    for code in &w.shared {
        s.push_str(&format!(
            "[[codes]]\ncode = \"{code}\"\ncountry = \"US\"\nkind = \"shared\"\ncarrier = \"sim\"\n\n"
        ));
    }
    for t in &w.tenants {
        if let Some(code) = &t.dedicated {
            s.push_str(&format!(
                "[[codes]]\ncode = \"{code}\"\ncountry = \"US\"\nkind = \"dedicated\"\ntenant = \"{}\"\ncarrier = \"sim\"\n\n",
                t.id
            ));
        }
    }
    s.push_str(&format!(
        "[[carriers]]\nid = \"sim\"\nkind = \"sim\"\ninbound_secret = \"{SECRET}\"\n\
         sim = {{ failed_per_mille = 0, silent_per_mille = 0, receipt_delay_ms = 1 }}\n\n[pricing]\nUS = 0.0079\n"
    ));
    s
}

/// One principal and what it may see.
struct Observer {
    label: String,
    role: Role,
    /// Indexes of its tenants (every tenant for the owner, none for ops).
    tenants: Vec<usize>,
    token: String,
    auth: AuthPrincipal,
    sub: Subscription,
}

#[derive(Debug, Clone)]
enum Body {
    /// A tenant's keyword (on this code if it has one there), alone or followed by words.
    Keyword {
        tenant: usize,
        alone: bool,
    },
    Plain,
    Stop,
    Help,
    Start,
}

#[derive(Debug, Clone)]
enum Op {
    Inbound {
        sub: usize,
        code: usize,
        body: Body,
        words: Vec<usize>,
    },
    Send {
        tenant: usize,
        sub: usize,
        code: usize,
        reclaim: bool,
    },
    /// An agent or admin tries another tenant's data.
    Probe { observer: usize, tenant: usize },
    /// An observer drops its subscription and follows its streams again.
    Reconnect { observer: usize },
}

#[derive(Debug, Clone)]
struct Case {
    ops: Vec<Op>,
    sockets: bool,
}

fn op() -> impl Strategy<Value = Op> {
    let body = prop_oneof![
        6 => (0usize..4, any::<bool>()).prop_map(|(tenant, alone)| Body::Keyword { tenant, alone }),
        4 => Just(Body::Plain),
        1 => Just(Body::Stop),
        1 => Just(Body::Help),
        1 => Just(Body::Start),
    ];
    prop_oneof![
        8 => (0usize..8, 0usize..8, body, prop::collection::vec(0usize..VOCABULARY.len(), 1..5))
            .prop_map(|(sub, code, body, words)| Op::Inbound { sub, code, body, words }),
        4 => (0usize..4, 0usize..8, 0usize..8, any::<bool>())
            .prop_map(|(tenant, sub, code, reclaim)| Op::Send { tenant, sub, code, reclaim }),
        2 => (0usize..8, 0usize..4).prop_map(|(observer, tenant)| Op::Probe { observer, tenant }),
        1 => (0usize..8).prop_map(|observer| Op::Reconnect { observer }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(op(), 2..10),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(ops, sockets)| Case { ops, sockets })
}

#[derive(Default)]
struct Counts {
    worlds: usize,
    cases: usize,
    socket_cases: usize,
    inbound: usize,
    sends_ok: usize,
    sends_refused: usize,
    probes: usize,
    reconnects: usize,
    frames_checked: usize,
    foreign_syncs_refused: usize,
}

struct World {
    spec: WorldSpec,
    codes: Vec<String>,
    engine: Engine,
    addr: SocketAddr,
    observers: Vec<Observer>,
    /// conversation or message id → its tenant (None: the unattributed queue).
    owners: HashMap<String, Option<usize>>,
    /// Conversation ids per tenant, for probes.
    conversations: Vec<Vec<String>>,
    serial: usize,
    cases: usize,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl World {
    fn new(seed: u64) -> World {
        let spec = world_spec(seed);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = Config::parse(&config_toml(&spec), "isolation.toml")
            .unwrap_or_else(|e| panic!("world {seed}: {e}\n{}", config_toml(&spec)));
        let (engine, addr) = rt.block_on(async {
            let engine = Engine::open(config, dir.path())
                .await
                .expect("the engine opens");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1:0");
            let addr = listener.local_addr().expect("an address");
            tokio::spawn(shortbox::server::serve(
                engine.clone(),
                listener,
                std::future::pending(),
            ));
            (engine, addr)
        });
        let n = spec.tenants.len();
        let mut plan: Vec<(String, Role, Vec<usize>)> = (0..n)
            .map(|t| {
                (
                    format!("agent of {}", spec.tenants[t].id),
                    Role::Agent,
                    vec![t],
                )
            })
            .collect();
        if n >= 3 {
            plan.push(("admin of two".into(), Role::Admin, vec![0, 2]));
        }
        plan.push(("ops".into(), Role::Ops, vec![]));
        plan.push(("owner".into(), Role::Owner, (0..n).collect()));
        let observers = plan
            .into_iter()
            .map(|(label, role, tenants)| {
                let ids: Vec<String> = match role {
                    Role::Agent | Role::Admin => tenants
                        .iter()
                        .map(|t| spec.tenants[*t].id.clone())
                        .collect(),
                    _ => Vec::new(),
                };
                rt.block_on(async {
                    let token = engine
                        .add_agent(&label, role, &ids)
                        .await
                        .expect("add_agent");
                    let auth = engine.authenticate(&token).await.expect("the token works");
                    let sub = follow(&engine, &auth);
                    Observer {
                        label,
                        role,
                        tenants,
                        token,
                        auth,
                        sub,
                    }
                })
            })
            .collect();
        let mut codes = spec.shared.clone();
        codes.extend(spec.tenants.iter().filter_map(|t| t.dedicated.clone()));
        World {
            conversations: vec![Vec::new(); n],
            spec,
            codes,
            engine,
            addr,
            observers,
            owners: HashMap::new(),
            serial: 0,
            cases: 0,
            rt,
            _dir: dir,
        }
    }

    fn owner(&mut self) -> &mut Observer {
        self.observers.last_mut().expect("the owner is last")
    }

    /// Reads every frame the owner got and learns whose ids they carry.
    fn learn(&mut self) {
        let mut frames = Vec::new();
        while let Some(item) = self.owner().sub.try_recv() {
            if let HubItem::Event(e) = item {
                frames.push(e.frame.to_string());
            }
        }
        for text in frames {
            let v: Value = serde_json::from_str(&text).expect("an event is JSON");
            let stream = v["stream"].as_str().unwrap_or_default();
            let tenant = stream
                .strip_prefix("tenant:")
                .and_then(|id| self.spec.tenants.iter().position(|t| t.id == id));
            let data = &v["data"];
            if stream == "ops" {
                if v["kind"] == "unattributed.received"
                    && let Some(id) = data["message"]["id"].as_str()
                {
                    self.owners.entry(id.to_string()).or_insert(None);
                }
                continue;
            }
            let Some(t) = tenant else { continue };
            for id in [
                &data["message"]["id"],
                &data["message"]["conversation"],
                &data["conversation"]["id"],
            ] {
                if let Some(id) = id.as_str() {
                    self.owners.insert(id.to_string(), Some(t));
                }
            }
            if let Some(conv) = data["conversation"]["id"].as_str()
                && !self.conversations[t].iter().any(|c| c == conv)
            {
                self.conversations[t].push(conv.to_string());
            }
        }
    }

    /// Why `text`, received by observer `o`, should not have reached it (None: it may).
    fn leak(&self, o: usize, text: &str) -> Option<String> {
        let obs = &self.observers[o];
        let v: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return Some(format!("not JSON ({e}): {text}")),
        };
        if let Some(stream) = v["stream"].as_str()
            && v["op"] == "ev"
            && !obs.auth.streams.iter().any(|s| s == stream)
        {
            return Some(format!(
                "an event of {stream}, not one of {:?}",
                obs.auth.streams
            ));
        }
        if matches!(obs.role, Role::Ops | Role::Owner) {
            return None;
        }
        let own: HashSet<&str> = obs
            .tenants
            .iter()
            .map(|t| self.spec.tenants[*t].id.as_str())
            .collect();
        for field in [
            &v["data"]["message"]["tenant"],
            &v["data"]["conversation"]["tenant"],
        ] {
            if let Some(t) = field.as_str()
                && !own.contains(t)
            {
                return Some(format!("a `tenant` field names {t}"));
            }
        }
        for (i, t) in self.spec.tenants.iter().enumerate() {
            if obs.tenants.contains(&i) {
                continue;
            }
            if text.contains(&t.id) {
                return Some(format!("the id of tenant {}", t.id));
            }
            if text.contains(&t.name) {
                return Some(format!("the name of tenant {} ({})", t.id, t.name));
            }
        }
        for (id, owner) in &self.owners {
            let foreign = owner.is_none_or(|t| !obs.tenants.contains(&t));
            if foreign && text.contains(id.as_str()) {
                return Some(format!(
                    "id {id} of {}",
                    owner.map_or("the unattributed queue".to_string(), |t| self.spec.tenants
                        [t]
                        .id
                        .clone())
                ));
            }
        }
        None
    }

    /// Drains every observer's subscription and checks each frame.
    fn check_hub(&mut self, counts: &mut Counts) -> Result<(), TestCaseError> {
        self.learn();
        for o in 0..self.observers.len() - 1 {
            let mut frames = Vec::new();
            while let Some(item) = self.observers[o].sub.try_recv() {
                match item {
                    HubItem::Event(e) => frames.push(e.frame.to_string()),
                    HubItem::Live(f) => frames.push(f.to_string()),
                }
            }
            for text in frames {
                counts.frames_checked += 1;
                if let Some(why) = self.leak(o, &text) {
                    return Err(TestCaseError::fail(format!(
                        "{} received {why}:\n{text}",
                        self.observers[o].label
                    )));
                }
            }
        }
        Ok(())
    }

    /// Waits (bounded) until no stream moves for a little while: outbound messages are
    /// dispatched, and their receipts processed, after the call that created them returned.
    fn settle(&self) {
        let mut streams: Vec<String> = self
            .spec
            .tenants
            .iter()
            .map(|t| format!("tenant:{}", t.id))
            .collect();
        streams.push("ops".into());
        self.rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(3);
            let mut last = Vec::new();
            let mut still = 0;
            while Instant::now() < deadline && still < 3 {
                let mut heads = Vec::new();
                for s in &streams {
                    heads.push(self.engine.stream_position(s).await.map(|p| p.head).ok());
                }
                if heads == last {
                    still += 1;
                } else {
                    still = 0;
                    last = heads;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
    }

    fn inbound(&mut self, sub: usize, code: usize, body: &Body, words: &[usize]) {
        let from = self.spec.subscribers[sub % self.spec.subscribers.len()].clone();
        let code = self.codes[code % self.codes.len()].clone();
        let tail: Vec<&str> = words.iter().map(|w| VOCABULARY[*w]).collect();
        let text = match body {
            Body::Keyword { tenant, alone } => {
                let t = &self.spec.tenants[tenant % self.spec.tenants.len()];
                let word = t
                    .keywords
                    .iter()
                    .find(|(c, _)| *c == code)
                    .or(t.keywords.first())
                    .map_or("hello".to_string(), |(_, w)| w.clone());
                if *alone {
                    word
                } else {
                    format!("{word} {}", tail.join(" "))
                }
            }
            Body::Plain => tail.join(" "),
            Body::Stop => "STOP".into(),
            Body::Help => "help".into(),
            Body::Start => "START".into(),
        };
        self.serial += 1;
        let payload =
            json!({ "id": format!("iso-{}", self.serial), "from": from, "to": code, "body": text });
        let engine = self.engine.clone();
        self.rt
            .block_on(async move {
                engine
                    .carrier_inbound("sim", Some(SECRET), payload.to_string().as_bytes())
                    .await
            })
            .unwrap_or_else(|e| panic!("inbound refused: {e}"));
    }

    /// An agent of `tenant` sends to a subscriber; the reply is checked like a frame.
    fn send(
        &mut self,
        tenant: usize,
        sub: usize,
        code: usize,
        reclaim: bool,
    ) -> Result<bool, String> {
        let t = tenant % self.spec.tenants.len();
        let o = t; // observers 0..n are the tenants' agents, in order
        let params = json!({
            "client_msg_id": uuid::Uuid::new_v4().to_string(),
            "body": "your order is ready at noon",
            "tenant": self.spec.tenants[t].id,
            "to": self.spec.subscribers[sub % self.spec.subscribers.len()],
            "code": self.codes[code % self.codes.len()],
            "reclaim": reclaim,
        });
        let (engine, auth) = (self.engine.clone(), self.observers[o].auth.clone());
        let answer = self
            .rt
            .block_on(async move { engine.call(&auth, "messages.send", params).await });
        let (ok, text) = match answer {
            Ok(v) => (
                true,
                json!({ "op": "reply", "req": 1, "result": v }).to_string(),
            ),
            Err(e) => (
                false,
                json!({ "op": "reply", "req": 1, "error": e }).to_string(),
            ),
        };
        self.learn();
        match self.leak(o, &text) {
            Some(why) => Err(format!(
                "{} got a reply with {why}:\n{text}",
                self.observers[o].label
            )),
            None => Ok(ok),
        }
    }

    /// Observer `o` (if it is an agent or admin) reaches for `tenant`'s data.
    fn probe(&mut self, o: usize, tenant: usize) -> Result<bool, String> {
        let o = o % self.observers.len();
        let q = tenant % self.spec.tenants.len();
        let obs = &self.observers[o];
        if !matches!(obs.role, Role::Agent | Role::Admin) || obs.tenants.contains(&q) {
            return Ok(false);
        }
        let foreign = &self.spec.tenants[q];
        let mut calls = vec![(
            "conversations.list",
            json!({ "tenant": foreign.id }),
            "forbidden",
        )];
        calls.push((
            "messages.send",
            json!({ "client_msg_id": uuid::Uuid::new_v4().to_string(), "body": "hi",
                    "tenant": foreign.id, "to": self.spec.subscribers[0], "code": self.codes[0] }),
            "forbidden",
        ));
        if let Some(conv) = self.conversations[q].first() {
            calls.push((
                "conversations.history",
                json!({ "conversation": conv }),
                "not_found",
            ));
            calls.push((
                "conversations.update",
                json!({ "conversation": conv, "status": "resolved" }),
                "not_found",
            ));
            calls.push((
                "consent.history",
                json!({ "conversation": conv }),
                "not_found",
            ));
            calls.push((
                "messages.send",
                json!({ "client_msg_id": uuid::Uuid::new_v4().to_string(), "body": "hi", "conversation": conv }),
                "not_found",
            ));
        }
        for (method, params, want) in calls {
            let (engine, auth) = (self.engine.clone(), obs.auth.clone());
            let shown = params.to_string();
            let answer = self
                .rt
                .block_on(async move { engine.call(&auth, method, params).await });
            match answer {
                Err(e) if serde_json::to_value(e.code).ok() == Some(json!(want)) => {}
                other => {
                    return Err(format!(
                        "{} called {method} {shown} on {}'s data: expected {want}, got {other:?}",
                        obs.label, foreign.id
                    ));
                }
            }
        }
        Ok(true)
    }

    fn reconnect(&mut self, o: usize) {
        let o = o % self.observers.len();
        if o == self.observers.len() - 1 {
            return; // the owner is the test's own eyes
        }
        let engine = self.engine.clone();
        let token = self.observers[o].token.clone();
        let auth = self
            .rt
            .block_on(async move { engine.authenticate(&token).await })
            .expect("the token still works");
        let sub = follow(&self.engine, &auth);
        let obs = &mut self.observers[o];
        obs.auth = auth;
        obs.sub = sub;
    }
}

fn follow(engine: &Engine, auth: &AuthPrincipal) -> Subscription {
    let mut sub = engine.hub().subscribe(4096);
    for s in &auth.streams {
        sub.follow(s);
    }
    // Self-test of the checks: a principal that also follows a stream it may not see must be
    // caught (`SHORTBOX_ISOLATION_INJECT_LEAK=1` makes this test fail).
    if std::env::var("SHORTBOX_ISOLATION_INJECT_LEAK").is_ok_and(|v| v == "1")
        && auth.principal.role == Role::Agent
    {
        sub.follow("ops");
    }
    sub
}

/// WebSocket sessions of every agent, admin and ops observer for one case: hello, a fresh sync
/// of each of its streams, and a sync of one stream it may not see (must be refused).
async fn open_sockets(
    addr: SocketAddr,
    observers: &[(usize, String, Vec<String>)],
    foreign: &[String],
) -> Result<Vec<(usize, common::WsClient)>, String> {
    let mut out = Vec::new();
    for (o, token, streams) in observers {
        let mut ws = common::WsClient::connect(addr, token)
            .await
            .map_err(|e| format!("connect: {e:?}"))?;
        let hello_streams: Vec<String> = ws.hello()["streams"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if &hello_streams != streams {
            return Err(format!(
                "hello lists {hello_streams:?}, expected {streams:?}"
            ));
        }
        for s in streams {
            ws.sync_fresh(s).await;
        }
        if let Some(f) = foreign.iter().find(|f| !streams.contains(f)) {
            let req = ws
                .sync(json!([{ "stream": f, "epoch": null, "after": null }]))
                .await;
            let frames = ws.collect_events_until(|v| v["req"] == req, 10_000).await;
            let last = frames.last().cloned().unwrap_or_default();
            if last["op"] != "error" || last["code"] != "forbidden" {
                return Err(format!("a sync of {f} was answered {last}"));
            }
            // Events that arrived meanwhile are checked with the rest.
            for v in &frames[..frames.len() - 1] {
                if v["op"] == "ev" && v["stream"] == json!(f) {
                    return Err(format!("an event of {f} after a refused sync: {v}"));
                }
            }
        }
        out.push((*o, ws));
    }
    Ok(out)
}

fn run_case(world: &mut World, case: &Case, counts: &mut Counts) -> Result<(), TestCaseError> {
    counts.cases += 1;
    let mut sockets = Vec::new();
    if case.sockets {
        counts.socket_cases += 1;
        let wanted: Vec<(usize, String, Vec<String>)> = world
            .observers
            .iter()
            .enumerate()
            .filter(|(_, o)| o.role != Role::Owner)
            .map(|(i, o)| (i, o.token.clone(), o.auth.streams.clone()))
            .collect();
        let mut foreign: Vec<String> = world
            .spec
            .tenants
            .iter()
            .map(|t| format!("tenant:{}", t.id))
            .collect();
        foreign.push("ops".into());
        let addr = world.addr;
        sockets = world
            .rt
            .block_on(open_sockets(addr, &wanted, &foreign))
            .map_err(TestCaseError::fail)?;
        counts.foreign_syncs_refused += sockets.len();
    }
    for op in &case.ops {
        match op {
            Op::Inbound {
                sub,
                code,
                body,
                words,
            } => {
                world.inbound(*sub, *code, body, words);
                counts.inbound += 1;
            }
            Op::Send {
                tenant,
                sub,
                code,
                reclaim,
            } => match world.send(*tenant, *sub, *code, *reclaim) {
                Ok(true) => counts.sends_ok += 1,
                Ok(false) => counts.sends_refused += 1,
                Err(e) => return Err(TestCaseError::fail(e)),
            },
            Op::Probe { observer, tenant } => {
                if world
                    .probe(*observer, *tenant)
                    .map_err(TestCaseError::fail)?
                {
                    counts.probes += 1;
                }
            }
            Op::Reconnect { observer } => {
                world.reconnect(*observer);
                counts.reconnects += 1;
            }
        }
        world.check_hub(counts)?;
    }
    if !sockets.is_empty() {
        world.settle();
        world.check_hub(counts)?;
        for (o, mut ws) in sockets {
            let texts = world.rt.block_on(async {
                let mut texts = vec![ws.hello().to_string()];
                while let Some(frame) = ws.next_frame_timeout(10).await {
                    match frame {
                        common::Frame::Json(v) => texts.push(v.to_string()),
                        other => texts.push(format!("{other:?}")),
                    }
                }
                texts
            });
            for text in texts {
                counts.frames_checked += 1;
                if let Some(why) = world.leak(o, &text) {
                    return Err(TestCaseError::fail(format!(
                        "{} (WebSocket) received {why}:\n{text}",
                        world.observers[o].label
                    )));
                }
            }
        }
    }
    Ok(())
}

#[test]
fn no_event_reaches_a_principal_that_may_not_see_it() {
    let cases: u32 = std::env::var("SHORTBOX_ISOLATION_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if std::env::var("SHORTBOX_FULL").is_ok_and(|v| v == "1") {
            5000
        } else {
            1000
        });
    let seed: u64 = std::env::var("SHORTBOX_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(3, |d| d.as_nanos() as u64)
        });
    eprintln!(
        "isolation: {cases} cases, world seed {seed} (SHORTBOX_SEED={seed} repeats the worlds)"
    );
    let started = Instant::now();
    let counts = RefCell::new(Counts::default());
    let world: RefCell<Option<World>> = RefCell::new(None);
    let mut runner = TestRunner::new(PropConfig {
        cases,
        // The engine carries state from case to case: a shrunk case would not replay the
        // same history, so the original failing case is reported as is.
        max_shrink_iters: 0,
        failure_persistence: None,
        ..PropConfig::default()
    });
    let result = runner.run(&case(), |case| {
        let mut slot = world.borrow_mut();
        let mut counts = counts.borrow_mut();
        if slot.as_ref().is_none_or(|w| w.cases >= CASES_PER_WORLD) {
            if let Some(mut old) = slot.take() {
                old.settle();
                old.check_hub(&mut counts)?;
            }
            *slot = Some(World::new(seed.wrapping_add(counts.worlds as u64)));
            counts.worlds += 1;
        }
        let w = slot.as_mut().expect("a world");
        w.cases += 1;
        run_case(w, &case, &mut counts).map_err(|e| {
            TestCaseError::fail(format!(
                "world {} (seed {}), tenants {:?}: {e}",
                counts.worlds,
                seed.wrapping_add(counts.worlds as u64 - 1),
                w.spec.tenants.iter().map(|t| &t.id).collect::<Vec<_>>()
            ))
        })
    });
    if let Some(mut w) = world.borrow_mut().take() {
        w.settle();
        let mut counts = counts.borrow_mut();
        w.check_hub(&mut counts)
            .expect("the last world's late events are clean");
    }
    let c = counts.borrow();
    eprintln!(
        "isolation: {} cases in {} worlds ({} over WebSockets), {} inbound, {} sends ({} refused), {} foreign probes, {} foreign syncs refused, {} reconnects, {} frames checked, {:.1} s",
        c.cases,
        c.worlds,
        c.socket_cases,
        c.inbound,
        c.sends_ok + c.sends_refused,
        c.sends_refused,
        c.probes,
        c.foreign_syncs_refused,
        c.reconnects,
        c.frames_checked,
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(c.cases >= cases as usize, "every case ran");
}
