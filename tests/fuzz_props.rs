//! Property tests over the entry points of the cargo-fuzz targets in `fuzz/` (CI runs those
//! for a few seconds each; these run with `cargo test`): the client frame parser, the carrier
//! inbound parser (through `Engine::carrier_inbound`), the keyword classifier, the segment
//! counter and the terminal sanitizer. Each must never panic on any input and keep its
//! invariants. Each test prints how many cases it ran (`-- --nocapture`); the count is
//! `SHORTBOX_FUZZ_CASES` (default 5 000 per entry point; 50 000 with `SHORTBOX_FULL=1`).

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestRunner};
use serde_json::{Value, json};
use shortbox::client::sanitize::{is_forbidden, sanitize};
use shortbox::domain::keywords::{KeywordLists, first_word, normalize, opt_out_intent};
use shortbox::domain::segments::{self, Encoding, MAX_SEGMENTS, check_body, gsm7_septets};
use shortbox::protocol::ClientFrame;

fn cases() -> u32 {
    std::env::var("SHORTBOX_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if std::env::var("SHORTBOX_FULL").is_ok_and(|v| v == "1") {
            50_000
        } else {
            5_000
        })
}

/// Runs `test` over `strategy` and prints the number of cases.
fn run<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let ran = AtomicUsize::new(0);
    let mut runner = TestRunner::new(PropConfig {
        cases: cases(),
        failure_persistence: None,
        ..PropConfig::default()
    });
    let result = runner.run(&strategy, |v| {
        ran.fetch_add(1, Ordering::Relaxed);
        test(v)
    });
    println!("fuzz_props {name}: {} cases", ran.load(Ordering::Relaxed));
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// Text that stresses parsers: controls, escapes, bidi, emoji, GSM extension characters,
/// surrogate-pair characters, and plain words.
fn nasty_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("STOP".to_string()),
        Just("stop please".to_string()),
        Just("Arrêt".to_string()),
        Just("\u{1b}[2J\u{1b}]0;title\u{7}".to_string()),
        Just("\u{1b}]52;c;ZXZpbA==\u{7}".to_string()),
        Just("\u{9b}31m\u{85}".to_string()),
        Just("\u{202e}\u{2066}\u{200f}".to_string()),
        Just("\r\n\r\u{2028}\u{2029}\t".to_string()),
        Just("€[]{}^~\\|".to_string()),
        Just("👍🏽🇺🇸👨‍👩‍👧\u{fe0f}".to_string()),
        Just("𝄞😀".to_string()),
        Just("ñÑçÇßÆ".to_string()),
        "[a-zA-Z0-9 ,.!?'-]{0,20}",
        any::<String>(),
        proptest::char::any().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

/// JSON values shaped like client frames, with wrong types and extreme numbers mixed in.
fn frame_like() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!(1e300)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        prop_oneof![
            Just("sync"),
            Just("call"),
            Just("hello"),
            Just("tenant:acme"),
            Just("ops"),
            Just("messages.send"),
            Just("")
        ]
        .prop_map(Value::from),
        nasty_text().prop_map(Value::from),
    ];
    let value = scalar.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("op".to_string()),
                    Just("req".to_string()),
                    Just("method".to_string()),
                    Just("params".to_string()),
                    Just("streams".to_string()),
                    Just("stream".to_string()),
                    Just("epoch".to_string()),
                    Just("after".to_string()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let op = prop_oneof![Just("sync"), Just("call"), Just("nope")];
    (op, value).prop_map(|(op, v)| match v {
        Value::Object(mut m) => {
            m.entry("op").or_insert(Value::from(op));
            Value::Object(m)
        }
        other => other,
    })
}

#[test]
fn client_frame_parser_never_panics_and_round_trips() {
    let input = prop_oneof![
        3 => frame_like().prop_map(|v| v.to_string()),
        1 => nasty_text(),
        1 => prop::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    run("client frame parser", input, |text| {
        if let Ok(frame) = serde_json::from_str::<ClientFrame>(&text) {
            let again = serde_json::to_string(&frame).expect("a parsed frame serializes");
            let back: ClientFrame = serde_json::from_str(&again).expect("and parses again");
            prop_assert_eq!(back, frame);
        }
        Ok(())
    });
}

/// The same configuration as the cargo-fuzz target `carrier_inbound`.
const INBOUND_CONFIG: &str = include_str!("fixtures/fuzz-inbound.toml");

#[test]
fn carrier_inbound_parser_answers_every_body() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = shortbox::config::Config::parse(INBOUND_CONFIG, "fuzz.toml")
        .expect("the test configuration is valid");
    let secret = "fuzz-inbound-secret".to_string();
    let engine = rt
        .block_on(shortbox::engine::Engine::open(config, dir.path()))
        .expect("the engine opens");
    let number = prop_oneof![
        Just("+14155550100".to_string()),
        Just("+573001234567".to_string()),
        Just("14155550100".to_string()),
        Just("+1 415 555 0100".to_string()),
        Just("+999".to_string()),
        "\\+[0-9]{0,17}",
        nasty_text(),
    ];
    let code = prop_oneof![
        Just("55123".to_string()),
        Just("73300".to_string()),
        Just("00000".to_string()),
        "[0-9]{0,9}",
    ];
    let field = |s: BoxedStrategy<String>| {
        prop_oneof![
            3 => s.prop_map(Value::from),
            1 => any::<i64>().prop_map(Value::from),
            1 => Just(Value::Null),
        ]
    };
    let shaped = (
        field("[a-z0-9-]{0,140}".boxed()),
        field(number.boxed()),
        field(code.boxed()),
        field(nasty_text().boxed()),
        prop::option::of(field(
            prop_oneof![Just("2026-11-22T10:00:00Z".to_string()), nasty_text()].boxed(),
        )),
        prop::option::of(nasty_text()),
    )
        .prop_map(|(id, from, to, body, at, extra)| {
            let mut m = serde_json::Map::new();
            m.insert("id".into(), id);
            m.insert("from".into(), from);
            m.insert("to".into(), to);
            m.insert("body".into(), body);
            if let Some(at) = at {
                m.insert("received_at".into(), at);
            }
            if let Some(extra) = extra {
                m.insert(extra, Value::Bool(true));
            }
            Value::Object(m).to_string().into_bytes()
        });
    // Well-formed bodies with hostile text, so that many get through to the router.
    let valid = (
        "[a-z0-9-]{1,40}",
        prop_oneof![
            Just("+14155550100"),
            Just("+14155550123"),
            Just("+573001234567")
        ],
        prop_oneof![Just("55123"), Just("73300")],
        nasty_text(),
    )
        .prop_map(|(id, from, to, body)| {
            json!({ "id": id, "from": from, "to": to, "body": body })
                .to_string()
                .into_bytes()
        });
    let input = prop_oneof![
        3 => valid,
        4 => shaped,
        1 => prop::collection::vec(any::<u8>(), 0..300),
        1 => frame_like().prop_map(|v| v.to_string().into_bytes()),
    ];
    let accepted = AtomicUsize::new(0);
    run("carrier inbound parser", input, |body| {
        let result = rt.block_on(engine.carrier_inbound("sim", Some(&secret), &body));
        match result {
            Ok(ack) => {
                accepted.fetch_add(1, Ordering::Relaxed);
                prop_assert!(!ack.message.is_empty());
                // The same carrier id again changes nothing and answers the same.
                let again = rt
                    .block_on(engine.carrier_inbound("sim", Some(&secret), &body))
                    .map_err(|e| TestCaseError::fail(format!("a repeat was refused: {e}")))?;
                prop_assert_eq!(again.message, ack.message);
            }
            Err(e) => {
                prop_assert!(
                    matches!(e.status, 400 | 404 | 413),
                    "status {} for a bad body: {}",
                    e.status,
                    e
                );
                prop_assert!(!e.message.is_empty());
            }
        }
        Ok(())
    });
    println!(
        "fuzz_props carrier inbound parser: {} bodies accepted",
        accepted.load(Ordering::Relaxed)
    );
    // The engine still works after all that.
    let ok = rt
        .block_on(engine.carrier_inbound(
            "sim",
            Some(&secret),
            br#"{"id":"after-fuzz","from":"+14155550100","to":"73300","body":"still here"}"#,
        ))
        .expect("the engine still accepts a good message");
    assert!(!ok.message.is_empty());
}

#[test]
fn keyword_classifier_is_total_and_consistent() {
    let lists = KeywordLists::default();
    run("keyword classifier", nasty_text(), |text| {
        let n = normalize(&text);
        prop_assert_eq!(normalize(&n), n.clone(), "normalize is idempotent");
        prop_assert!(!n.starts_with(' ') && !n.ends_with(' ') && !n.contains("  "));
        prop_assert!(n.chars().all(|c| c == ' ' || c.is_alphanumeric()));
        prop_assert_eq!(lists.classify(&text), lists.classify(&n));
        prop_assert_eq!(
            first_word(&text),
            n.split(' ')
                .next()
                .filter(|w| !w.is_empty())
                .map(str::to_string)
        );
        let _ = opt_out_intent(&text);
        Ok(())
    });
}

#[test]
fn segment_counter_is_bounded_and_consistent() {
    run("segment counter", nasty_text(), |text| {
        let c = segments::count(&text);
        let gsm: Option<u32> = text.chars().map(gsm7_septets).sum();
        match gsm {
            Some(units) => {
                prop_assert_eq!(c.encoding, Encoding::Gsm7);
                prop_assert_eq!(c.units, units);
            }
            None => {
                prop_assert_eq!(c.encoding, Encoding::Ucs2);
                prop_assert_eq!(c.units as usize, text.encode_utf16().count());
            }
        }
        prop_assert_eq!(c.segments == 0, text.is_empty());
        if c.units <= c.encoding.single_capacity() {
            prop_assert!(c.segments <= 1);
            prop_assert_eq!(
                c.remaining_in_segment,
                c.encoding.single_capacity() - c.units
            );
        } else {
            // Each segment holds at most `multi` units and wastes at most one (a split pair).
            let multi = c.encoding.multi_capacity();
            prop_assert!(c.segments >= c.units.div_ceil(multi));
            prop_assert!(c.segments <= c.units.div_ceil(multi - 1));
            prop_assert!(c.remaining_in_segment < multi);
        }
        match check_body(&text) {
            Ok(checked) => {
                prop_assert_eq!(checked, c);
                prop_assert!(c.segments <= MAX_SEGMENTS && !text.trim().is_empty());
            }
            Err(_) => prop_assert!(text.trim().is_empty() || c.segments > MAX_SEGMENTS),
        }
        Ok(())
    });
}

#[test]
fn sanitizer_output_is_inert() {
    run("terminal sanitizer", nasty_text(), |text| {
        let clean = sanitize(&text);
        prop_assert!(
            !clean
                .chars()
                .any(|c| is_forbidden(c) || matches!(c, '\r' | '\u{2028}' | '\u{2029}')),
            "a control survived: {:?}",
            clean
        );
        let twice = sanitize(&clean).into_owned();
        prop_assert_eq!(twice.as_str(), clean.as_ref(), "sanitize is idempotent");
        if let Cow::Borrowed(b) = &clean {
            prop_assert_eq!(*b, text.as_str());
        }
        Ok(())
    });
}
