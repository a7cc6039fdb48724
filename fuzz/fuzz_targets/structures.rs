//! The fixed-size and variable-size SGX structures other than quotes and SIGSTRUCT: the first byte
//! picks the structure, the rest is parsed; parse never panics and accepted input round-trips.
#![no_main]

use coffer_abi::keyrequest::Keyrequest;
use coffer_abi::report::Report;
use coffer_abi::sealed::SealedData;
use coffer_abi::secinfo::Secinfo;
use coffer_abi::targetinfo::Targetinfo;
use coffer_abi::{Attributes, Codec, ReportBody};
use libfuzzer_sys::fuzz_target;

fn check<T: Codec>(data: &[u8]) {
    if let Ok(v) = T::from_bytes(data) {
        assert_eq!(v.to_bytes(), data, "{} did not round-trip", T::NAME);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = data.split_first() else {
        return;
    };
    match which % 7 {
        0 => check::<SealedData>(rest),
        1 => check::<Report>(rest),
        2 => check::<Targetinfo>(rest),
        3 => check::<Keyrequest>(rest),
        4 => check::<Secinfo>(rest),
        5 => check::<ReportBody>(rest),
        _ => check::<Attributes>(rest),
    }
});
