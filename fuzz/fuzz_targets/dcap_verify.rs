//! DCAP verification of untrusted input (`coffer-dcap`): a PEM certificate chain, collateral
//! JSON and a quote, verified against the built-in Intel SGX Root CA key at a fixed time.
//! Nothing may panic; every refusal is an error value.
#![no_main]

use std::time::{Duration, SystemTime};

use coffer_dcap::{Collateral, UnverifiedQuote, VerifyOptions, pem_chain_to_der};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // 2026-01-01T00:00:00Z: fixed, so that a finding reproduces.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    let _ = pem_chain_to_der(data);
    let _ = Collateral::from_json(data);
    if let Ok(quote) = UnverifiedQuote::parse(data) {
        let _ = quote.verify(&VerifyOptions::new(now));
    }
});
