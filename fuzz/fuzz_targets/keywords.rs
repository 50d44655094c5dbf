//! The compliance keyword classifier and its normalisation. Must never panic; normalisation is
//! idempotent and classifying a message or its normal form gives the same answer.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shortbox::domain::keywords::{KeywordLists, first_word, normalize, opt_out_intent};

fuzz_target!(|data: &[u8]| {
    static LISTS: OnceLock<KeywordLists> = OnceLock::new();
    let lists = LISTS.get_or_init(KeywordLists::default);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let n = normalize(text);
    assert_eq!(normalize(&n), n);
    assert_eq!(lists.classify(text), lists.classify(&n));
    let _ = first_word(text);
    let _ = opt_out_intent(text);
});
