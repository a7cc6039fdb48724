//! The key mailbox's answer codec (`coffer_channel::mailbox::KeyAnswer`): decoding any 64 bytes
//! never panics, and what decodes re-encodes to the same bytes (no byte is ignored).
#![no_main]

use coffer_channel::mailbox::{ANSWER_SIZE, KeyAnswer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(bytes) = <[u8; ANSWER_SIZE]>::try_from(data) else {
        return;
    };
    if let Ok(answer) = KeyAnswer::decode(&bytes) {
        assert_eq!(answer.encode(), bytes);
    }
});
