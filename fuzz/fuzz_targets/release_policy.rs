//! Release policies: parsing arbitrary bytes never panics, accepted policies stay within their
//! limits, and evaluating one against arbitrary claims never panics. The input is a policy and
//! a claims document separated by the first NUL byte.
#![no_main]

use coffer_kbs::policy::{Decision, MAX_AUTHORITIES, ReleasePolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (policy, claims) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(p) = ReleasePolicy::parse(policy) else {
        return;
    };
    assert!(!p.rules.is_empty() && p.rules.len() <= MAX_AUTHORITIES);
    let claims: serde_json::Value = serde_json::from_slice(claims).unwrap_or_default();
    let issuers: Vec<String> = p.authorities().map(str::to_owned).collect();
    for issuer in &issuers {
        let d = p.evaluate(issuer, &claims);
        assert_ne!(
            d,
            Decision::UnknownAuthority,
            "a policy authority was not recognised"
        );
        let slashed = format!("{issuer}/");
        assert_eq!(
            p.evaluate(&slashed, &claims),
            d,
            "a trailing slash changed the decision"
        );
    }
    assert_eq!(p.evaluate("", &claims), Decision::UnknownAuthority);
});
