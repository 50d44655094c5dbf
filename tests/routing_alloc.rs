//! B7's "no allocation": the decision the router makes for each inbound message — the body
//! normalised once, then `State::decide_inbound` (rule A2's tenant, the compliance keyword, opt-out
//! intent, consent) — must not touch the heap. Every allocation in this process is counted, so
//! this runs without the test harness (`harness = false`): no other thread can allocate while a
//! decision is being counted.
//!
//! Each case is decided once to warm up, then again with the counter on, and the decision is
//! checked too, so a path that stopped allocating by deciding wrongly fails as well.

use std::hint::black_box;

use shortbox::config::Config;
use shortbox::domain::keywords::{KeywordClass, NORMALIZED_INLINE, Normalized};
use shortbox::domain::routing::{RouteDecision, UnattributedReason};
use shortbox::engine::decision::{InboundCompliance, InboundDecision, InboundRoute};
use shortbox::engine::state::State;
use shortbox::engine::store::Snapshot;
use shortbox::protocol::ConsentState;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, Stats, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

const CONFIG: &str = r#"
[[tenants]]
id = "acme"
name = "Acme Shoes"
help_text = "Acme Shoes: help at +1 800 555 0100"
stop_text = "You are unsubscribed from Acme Shoes."
keywords = [{ code = "55123", word = "SHOES", double_opt_in = true }]
compliance_keywords = { opt_out = ["UNSUB"], help = ["SOPORTE"] }

[[tenants]]
id = "brisa"
name = "Brisa Cafe"
help_text = "Brisa: ayuda en +57 601 555 0100"
stop_text = "Brisa: no recibiras mas mensajes."
keywords = [{ code = "55123", word = "BREW" }, { code = "57123", word = "CAFE" }]

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
code = "57123"
country = "CO"
kind = "shared"
carrier = "sim"

[[carriers]]
id = "sim"
kind = "sim"
"#;

const SINCE: &str = "2026-11-22T10:00:00.000Z";
const ATTRIBUTED: &str = "+14155550101";
const OPTED_IN: &str = "+14155550102";
const NOBODY: &str = "+14155550199";
const BOGOTA: &str = "+573001234567";

fn state(config: &Config) -> State {
    let s = |v: &str| v.to_string();
    let snap = Snapshot {
        attribution: vec![
            (
                s("55123"),
                s(ATTRIBUTED),
                s("brisa"),
                s(SINCE),
                Some(s("msg-1")),
            ),
            (s("57123"), s(BOGOTA), s("brisa"), s(SINCE), None),
        ],
        consent: vec![
            (s("brisa"), s(ATTRIBUTED), ConsentState::Pending),
            (s("acme"), s(OPTED_IN), ConsentState::OptedIn),
        ],
        ..Snapshot::default()
    };
    State::new(config, snap)
}

struct Case {
    name: &'static str,
    code: &'static str,
    from: &'static str,
    body: String,
    want: InboundDecision<'static>,
}

fn decided(
    route: RouteDecision<'static, &'static str>,
    evidence: Option<&'static str>,
    class: Option<KeywordClass>,
    opt_out_intent: bool,
    consent: ConsentState,
) -> InboundDecision<'static> {
    InboundDecision {
        route: InboundRoute {
            decision: route,
            evidence,
        },
        compliance: InboundCompliance {
            class,
            double_opt_in: false,
            opt_out_intent,
            consent,
        },
    }
}

fn cases() -> Vec<Case> {
    use ConsentState::{None as NoConsent, OptedIn, Pending};
    use KeywordClass::{Help, OptIn, OptOut, Yes};
    use RouteDecision::{Attribution, Dedicated, Keyword, Unattributed};
    let case = |name, code, from, body: &str, want| Case {
        name,
        code,
        from,
        body: body.to_string(),
        want,
    };
    let question = "Is the blue one still in stock in size 9?";
    let mut own_keyword = decided(Keyword("acme"), None, Some(OptIn), false, NoConsent);
    own_keyword.compliance.double_opt_in = true;
    vec![
        case(
            "dedicated",
            "73300",
            NOBODY,
            question,
            decided(Dedicated("acme"), None, None, false, NoConsent),
        ),
        case(
            "dedicated, opted in",
            "73300",
            OPTED_IN,
            question,
            decided(Dedicated("acme"), None, None, false, OptedIn),
        ),
        case(
            "keyword",
            "55123",
            ATTRIBUTED,
            &format!("shoes: {question}"),
            decided(Keyword("acme"), None, None, false, NoConsent),
        ),
        case("own keyword alone", "55123", NOBODY, "Shoes!", own_keyword),
        case(
            "attribution",
            "55123",
            ATTRIBUTED,
            question,
            decided(Attribution("brisa"), Some("msg-1"), None, false, Pending),
        ),
        case(
            "YES to a pending opt-in",
            "55123",
            ATTRIBUTED,
            "yes.",
            decided(
                Attribution("brisa"),
                Some("msg-1"),
                Some(Yes),
                false,
                Pending,
            ),
        ),
        case(
            "STOP",
            "55123",
            ATTRIBUTED,
            " Stop. ",
            decided(
                Attribution("brisa"),
                Some("msg-1"),
                Some(OptOut),
                false,
                Pending,
            ),
        ),
        case(
            "the tenant's own opt-out word",
            "73300",
            NOBODY,
            "unsub",
            decided(Dedicated("acme"), None, Some(OptOut), false, NoConsent),
        ),
        case(
            "opt-out intent",
            "55123",
            ATTRIBUTED,
            "please stop texting me",
            decided(Attribution("brisa"), Some("msg-1"), None, true, Pending),
        ),
        case(
            "country words and accents",
            "57123",
            BOGOTA,
            "¡BAJA!",
            decided(Attribution("brisa"), None, Some(OptOut), false, NoConsent),
        ),
        case(
            "Spanish opt-out intent",
            "57123",
            BOGOTA,
            "No me escriban más, por favor",
            decided(Attribution("brisa"), None, None, true, NoConsent),
        ),
        case(
            "HELP, unattributed",
            "55123",
            NOBODY,
            "help?",
            decided(
                Unattributed(UnattributedReason::UnknownKeyword {
                    word: "HELP".into(),
                }),
                None,
                Some(Help),
                false,
                NoConsent,
            ),
        ),
        case(
            "unattributed",
            "55123",
            NOBODY,
            question,
            decided(
                Unattributed(UnattributedReason::NoAttribution),
                None,
                None,
                false,
                NoConsent,
            ),
        ),
        case(
            "a full one-segment message",
            "55123",
            ATTRIBUTED,
            &"Ω stop by. "
                .repeat(15)
                .chars()
                .take(160)
                .collect::<String>(),
            decided(Attribution("brisa"), Some("msg-1"), None, false, Pending),
        ),
    ]
}

/// The decision for `case`, and what deciding it allocated.
fn decide(state: &State, case: &Case) -> (Stats, String) {
    let code = &state.codes[case.code];
    let region = Region::new(GLOBAL);
    let body = Normalized::new(&case.body);
    let decision = black_box(state.decide_inbound(code, case.from, body.as_str()));
    let allocated = region.change();
    let failure = (decision != case.want).then(|| format!("decided {decision:?}"));
    (allocated, failure.unwrap_or_default())
}

fn main() {
    let config = Config::parse(CONFIG, "routing_alloc.toml").expect("a valid configuration");
    let state = state(&config);
    let mut failures = Vec::new();
    for case in cases() {
        let _warm_up = decide(&state, &case);
        let (allocated, wrong) = decide(&state, &case);
        let heap = allocated.allocations + allocated.reallocations;
        println!(
            "routing decision, {}: {heap} allocations ({} bytes)",
            case.name, allocated.bytes_allocated
        );
        if heap != 0 {
            failures.push(format!(
                "{}: deciding allocated {heap} times ({} bytes); B7 wants none",
                case.name, allocated.bytes_allocated
            ));
        }
        if !wrong.is_empty() {
            failures.push(format!("{}: {wrong}, wanted {:?}", case.name, case.want));
        }
    }

    // A long message of several segments is the one exception: its normal form does not fit
    // on the stack and takes exactly one allocation.
    let long = Case {
        name: "a long message of several segments",
        code: "55123",
        from: ATTRIBUTED,
        body: "please stop texting me ".repeat(NORMALIZED_INLINE / 20),
        want: decided(
            RouteDecision::Attribution("brisa"),
            Some("msg-1"),
            None,
            true,
            ConsentState::Pending,
        ),
    };
    let _warm_up = decide(&state, &long);
    let (allocated, wrong) = decide(&state, &long);
    println!(
        "routing decision, {}: {} allocations",
        long.name, allocated.allocations
    );
    if allocated.allocations != 1 || allocated.reallocations != 0 || !wrong.is_empty() {
        failures.push(format!(
            "{}: {} allocations, {} reallocations (want 1, 0) {wrong}",
            long.name, allocated.allocations, allocated.reallocations
        ));
    }

    if !failures.is_empty() {
        eprintln!("\nrouting decision allocates or decides wrongly:");
        for f in &failures {
            eprintln!("  {f}");
        }
        std::process::exit(1);
    }
    println!("routing decision: no allocation in any case");
}
