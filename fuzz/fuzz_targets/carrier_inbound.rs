//! The carrier-neutral inbound webhook body (`POST /v1/carriers/sim/inbound`), through
//! `Engine::carrier_inbound` on a real engine (the JSON parser is not public on its own). Must
//! never panic; refusals are 4xx; an accepted body accepted again answers the same id.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shortbox::config::Config;
use shortbox::engine::Engine;

const SECRET: &str = "fuzz-inbound-secret";
/// Shared with `tests/fuzz_props.rs`, which runs the same entry point as a property test.
const CONFIG: &str = include_str!("../../tests/fixtures/fuzz-inbound.toml");

fn engine() -> &'static (tokio::runtime::Runtime, Engine) {
    static ENGINE: OnceLock<(tokio::runtime::Runtime, Engine)> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().expect("a runtime");
        let dir = std::env::temp_dir().join(format!("shortbox-fuzz-{}", std::process::id()));
        let config = Config::parse(CONFIG, "fuzz.toml").expect("a valid configuration");
        let engine = rt
            .block_on(Engine::open(config, &dir))
            .expect("the engine opens");
        (rt, engine)
    })
}

fuzz_target!(|data: &[u8]| {
    let (rt, engine) = engine();
    match rt.block_on(engine.carrier_inbound("sim", Some(SECRET), data)) {
        Ok(ack) => {
            let again = rt
                .block_on(engine.carrier_inbound("sim", Some(SECRET), data))
                .expect("a repeat is accepted");
            assert_eq!(again.message, ack.message);
        }
        Err(e) => assert!((400..500).contains(&e.status), "{e}"),
    }
});
