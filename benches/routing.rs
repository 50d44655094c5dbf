//! B7: the routing decision of one inbound message — who it belongs to (dedicated code,
//! keyword, attribution, else ops) plus the compliance checks made on the same path (keyword
//! class, opt-out intent, consent) — timed, and its heap allocations counted.
//!
//! Four variants:
//! - `decision`: `domain::routing::route_inbound_normalized` alone, the facts and the
//!   normalised body given;
//! - `engine routing`: what the router runs for rule A2 (`engine/router/inbound.rs` through
//!   `State::decide_inbound`): the body normalised on the stack, then `State::route_inbound`
//!   against a real `State` built from a configuration with 20 000 attributed subscribers;
//! - `engine path`: the router's whole decision, `State::decide_inbound`: the same plus the
//!   compliance checks (keyword class, opt-out intent, consent);
//! - `borrowed keys`: the same facts found with `&str` keys in nested maps built for the
//!   purpose and the first word normalised by a bench-only ASCII shortcut: a floor to compare
//!   the engine's own lookups with.
//!
//! `tests/routing_alloc.rs` asserts that the engine's decision allocates nothing.
//!
//! Run: `cargo bench --bench routing` (allocation counts are printed before the timings).

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use shortbox::config::Config;
use shortbox::domain::keywords::Normalized;
use shortbox::domain::routing::{RouteDecision, route_inbound_body, route_inbound_normalized};
use shortbox::engine::state::{CodeState, State};
use shortbox::engine::store::Snapshot;
use shortbox::protocol::CodeKind;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

const TENANTS: usize = 8;
const SUBSCRIBERS: u64 = 20_000;

fn config() -> Config {
    let mut s = String::new();
    for i in 0..TENANTS {
        s.push_str(&format!(
            "[[tenants]]\nid = \"t{i:03}\"\nname = \"Tenant {i}\"\nhelp_text = \"help: +1 800 555 0100\"\n\
             stop_text = \"stopped\"\nkeywords = [{{ code = \"50000\", word = \"KW{i:03}\" }}]\n\n"
        ));
    }
    s.push_str(
        "[[codes]]\ncode = \"50000\"\ncountry = \"US\"\nkind = \"shared\"\ncarrier = \"sim\"\n\n",
    );
    s.push_str("[[codes]]\ncode = \"51000\"\ncountry = \"US\"\nkind = \"dedicated\"\ntenant = \"t000\"\ncarrier = \"sim\"\n\n");
    s.push_str("[[carriers]]\nid = \"sim\"\nkind = \"sim\"\n");
    Config::parse(&s, "b7.toml").expect("a valid configuration")
}

fn subscriber(i: u64) -> String {
    format!("+{}", 14_152_000_000u64 + i)
}

fn tenant_of(i: u64) -> String {
    format!("t{:03}", i % TENANTS as u64)
}

fn state(config: &Config) -> State {
    let snap = Snapshot {
        attribution: (0..SUBSCRIBERS)
            .map(|i| {
                (
                    "50000".to_string(),
                    subscriber(i),
                    tenant_of(i),
                    "2026-11-22T10:00:00.000Z".to_string(),
                    None,
                )
            })
            .collect(),
        ..Snapshot::default()
    };
    State::new(config, snap)
}

/// One message as the router sees it.
struct Inbound {
    code: &'static str,
    from: String,
    body: &'static str,
}

fn cases() -> Vec<(&'static str, Inbound)> {
    vec![
        (
            "keyword",
            Inbound {
                code: "50000",
                from: subscriber(42),
                body: "KW002 is the blue one still in stock in size 9?",
            },
        ),
        (
            "attribution",
            Inbound {
                code: "50000",
                from: subscriber(43),
                body: "Is the blue one still in stock in size 9?",
            },
        ),
        (
            "dedicated",
            Inbound {
                code: "51000",
                from: subscriber(44),
                body: "Is the blue one still in stock in size 9?",
            },
        ),
        (
            "unattributed",
            Inbound {
                code: "50000",
                from: subscriber(SUBSCRIBERS + 1),
                body: "Is the blue one still in stock in size 9?",
            },
        ),
    ]
}

/// What `engine/router/inbound.rs` runs to decide one message: the body normalised once, then
/// `State::decide_inbound` (rule A2, and the compliance checks of the same path: keyword class,
/// opt-out intent, consent).
fn engine_path(state: &State, code: &CodeState, m: &Inbound) {
    let body = Normalized::new(m.body);
    black_box(state.decide_inbound(code, &m.from, body.as_str()));
}

/// Only rule A2 of [`engine_path`] (`State::route_inbound`), without the compliance checks.
fn engine_routing(state: &State, code: &CodeState, m: &Inbound) {
    let body = Normalized::new(m.body);
    black_box(state.route_inbound(code, &m.from, body.as_str()));
}

/// The same facts behind `&str` keys: code → word → tenant, code → subscriber → tenant.
struct Borrowed<'a> {
    keywords: HashMap<&'a str, HashMap<&'a str, &'a str>>,
    holders: HashMap<&'a str, HashMap<&'a str, &'a str>>,
}

impl<'a> Borrowed<'a> {
    fn new(state: &'a State) -> Borrowed<'a> {
        let mut keywords: HashMap<&str, HashMap<&str, &str>> = HashMap::new();
        for ((code, word), owner) in &state.keywords {
            keywords
                .entry(code.as_str())
                .or_default()
                .insert(word.as_str(), owner.tenant.as_str());
        }
        let mut holders: HashMap<&str, HashMap<&str, &str>> = HashMap::new();
        for ((code, sub), h) in &state.attribution {
            holders
                .entry(code.as_str())
                .or_default()
                .insert(sub.as_str(), h.tenant.as_str());
        }
        Borrowed { keywords, holders }
    }

    fn route(&self, code: &'a CodeState, m: &Inbound) -> RouteDecision<'static, &'a str> {
        let dedicated = match code.kind {
            CodeKind::Dedicated => code.tenant.as_deref(),
            CodeKind::Shared => None,
        };
        let mut buf = [0u8; 32];
        let keyword = ascii_first_word(m.body, &mut buf).and_then(|w| {
            self.keywords
                .get(code.digits.as_str())
                .and_then(|words| words.get(w))
                .copied()
        });
        let holder = self
            .holders
            .get(code.digits.as_str())
            .and_then(|subs| subs.get(m.from.as_str()))
            .copied();
        match (dedicated, keyword, holder) {
            (Some(t), _, _) => RouteDecision::Dedicated(t),
            (None, Some(t), _) => RouteDecision::Keyword(t),
            (None, None, Some(t)) => RouteDecision::Attribution(t),
            (None, None, None) => route_inbound_body(None, None, None, m.body),
        }
    }
}

/// The first word, upper-cased, letters and digits only, when it is short ASCII.
fn ascii_first_word<'b>(body: &str, buf: &'b mut [u8; 32]) -> Option<&'b str> {
    let mut len = 0;
    for b in body.trim_start().bytes() {
        if b.is_ascii_whitespace() {
            break;
        }
        if !b.is_ascii() || len == buf.len() {
            return None;
        }
        if b.is_ascii_alphanumeric() {
            buf[len] = b.to_ascii_uppercase();
            len += 1;
        }
    }
    std::str::from_utf8(&buf[..len])
        .ok()
        .filter(|w| !w.is_empty())
}

/// Heap allocations made by one call of `f`, after a first call to warm up.
fn allocations<T>(f: impl Fn() -> T) -> usize {
    black_box(f());
    let region = Region::new(GLOBAL);
    black_box(f());
    region.change().allocations
}

fn bench(c: &mut Criterion) {
    let config = config();
    let state = state(&config);
    let borrowed = Borrowed::new(&state);
    let cases = cases();
    for (name, m) in &cases {
        let code = &state.codes[m.code];
        let dedicated = (code.kind == CodeKind::Dedicated).then(|| code.tenant.as_deref().unwrap());
        let facts: (Option<&str>, Option<&str>, Option<&str>) = match *name {
            "keyword" => (None, Some("t002"), Some("t002")),
            "attribution" => (None, None, Some("t003")),
            "dedicated" => (dedicated, None, None),
            _ => (None, None, None),
        };
        let normalized = Normalized::new(m.body);
        let normalized = normalized.as_str();
        let decision = || {
            route_inbound_normalized(
                black_box(facts.0.as_ref()),
                black_box(facts.1.as_ref()),
                black_box(facts.2.as_ref()),
                black_box(normalized),
            )
        };
        println!(
            "B7 allocations per message ({name}): decision {}, engine routing {}, engine path {}, borrowed keys {}",
            allocations(decision),
            allocations(|| engine_routing(&state, code, m)),
            allocations(|| engine_path(&state, code, m)),
            allocations(|| borrowed.route(code, m)),
        );
        let mut group = c.benchmark_group(format!("B7 {name}"));
        group.bench_function("decision", |b| b.iter(decision));
        group.bench_function("engine routing", |b| {
            b.iter(|| engine_routing(&state, black_box(code), black_box(m)))
        });
        group.bench_function("engine path", |b| {
            b.iter(|| engine_path(&state, black_box(code), black_box(m)))
        });
        group.bench_function("borrowed keys", |b| {
            b.iter(|| borrowed.route(black_box(code), black_box(m)))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
