//! The terminal sanitizer. Must never panic; nothing that acts on a terminal survives, and a
//! second pass changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shortbox::client::sanitize::{is_forbidden, sanitize};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let clean = sanitize(text);
    assert!(
        !clean
            .chars()
            .any(|c| is_forbidden(c) || matches!(c, '\r' | '\u{2028}' | '\u{2029}'))
    );
    assert_eq!(sanitize(&clean), clean);
});
