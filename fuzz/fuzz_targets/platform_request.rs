//! What a local user can send the privileged platform daemon, and what an enclave can send it:
//! decoding arbitrary bytes never panics.
#![no_main]

use coffer_proto::client::Request;
use coffer_proto::enclave::EnclaveMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = postcard::from_bytes::<Request>(data);
    let _ = postcard::from_bytes::<EnclaveMessage>(data);
});
