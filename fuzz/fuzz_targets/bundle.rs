//! `.coffer` bundles, which the privileged daemon reads from any local user: parsing never panics,
//! an accepted bundle re-encodes to the same bytes, and laying out its ELF image (what the daemon
//! does next, before any signature check) never panics either.
#![no_main]

use coffer_sign::bundle::Bundle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = Bundle::from_bytes(data) {
        assert_eq!(b.to_bytes(), data, "bundle did not round-trip");
        let _ = coffer_sign::layout::plan(b.image(), b.config());
    }
});
