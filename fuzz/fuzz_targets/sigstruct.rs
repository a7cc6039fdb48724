//! SIGSTRUCT: parse never panics, and whatever parses re-encodes to the same bytes.
#![no_main]

use coffer_abi::{Codec, Sigstruct};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Sigstruct::from_bytes(data) {
        assert_eq!(s.to_bytes(), data, "SIGSTRUCT did not round-trip");
        let _ = s.signed_data();
    }
});
