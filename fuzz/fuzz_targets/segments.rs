//! The SMS segment counter. Must never panic; the count stays within what the packing rule
//! allows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shortbox::domain::segments::{check_body, count};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let c = count(text);
    assert_eq!(c.segments == 0, text.is_empty());
    if c.units > c.encoding.single_capacity() {
        let multi = c.encoding.multi_capacity();
        assert!(c.segments >= c.units.div_ceil(multi));
        assert!(c.segments <= c.units.div_ceil(multi - 1));
    }
    let _ = check_body(text);
});
