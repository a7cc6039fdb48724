//! Attestation policies: parsing arbitrary text never panics, and whatever parses evaluates
//! (against a fixed set of SGX claims and one client claim) without panicking.
#![no_main]

use coffer_attest_policy::{Value, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(policy) = parse(text) {
        let service = [
            ("x-ms-sgx-is-debuggable".to_owned(), Value::Bool(false)),
            ("x-ms-sgx-mrsigner".to_owned(), Value::Str("51".repeat(32))),
            ("x-ms-sgx-product-id".to_owned(), Value::Int(1)),
            ("x-ms-sgx-svn".to_owned(), Value::Int(2)),
            ("x-ms-attestation-type".to_owned(), Value::Str("sgx".to_owned())),
        ];
        let client = [("x-ms-sgx-is-debuggable".to_owned(), Value::Bool(true))];
        let _ = policy.evaluate(&service, &client);
    }
});
