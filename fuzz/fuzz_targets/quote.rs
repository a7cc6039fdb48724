//! DCAP quotes: parse never panics, and whatever parses re-encodes to the same bytes.
#![no_main]

use coffer_abi::Codec;
use coffer_abi::quote::Quote;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = Quote::from_bytes(data) {
        assert_eq!(q.to_bytes(), data, "quote did not round-trip");
    }
});
