//! The client frame parser: any text a WebSocket client sends. Must never panic; a frame that
//! parses must serialize and parse back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shortbox::protocol::ClientFrame;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(frame) = serde_json::from_str::<ClientFrame>(text) {
        let again = serde_json::to_string(&frame).expect("a parsed frame serializes");
        let back: ClientFrame = serde_json::from_str(&again).expect("and parses again");
        assert_eq!(back, frame);
    }
});
