//! What a local user can send the privileged platform daemon, and what an enclave can send it,
//! through the daemon's real receive path: the bytes go into a `SOCK_SEQPACKET` pair as one
//! record, `coffer_proto::recv` decodes them strictly (no trailing bytes), and whatever decodes
//! goes through the checks the daemon applies on receipt (`Request::check`,
//! `EnclaveMessage::check`, and `Boot::check` on the enclave's side). Nothing may panic, and a
//! message accepted by the checks survives a re-encoding unchanged and still passes them.
//! (Not byte for byte: postcard accepts over-long varints, which re-encode shorter.)
#![no_main]

use std::os::fd::AsFd;

use coffer_proto::client::Request;
use coffer_proto::enclave::{Boot, EnclaveMessage};
use coffer_proto::{FrameError, recv, seqpacket_pair};
use libfuzzer_sys::fuzz_target;
use rustix::net::SendFlags;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Sends `data` as one record and receives it as a `T`, as the daemon does.
fn receive<T: DeserializeOwned>(data: &[u8]) -> Result<(T, usize), FrameError> {
    let (ours, theirs) = seqpacket_pair().expect("a socket pair");
    rustix::net::send(&ours, data, SendFlags::empty()).expect("one record fits the socket");
    let (msg, fds) = recv::<T>(theirs.as_fd())?;
    Ok((msg, fds.len()))
}

fn round_trips<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(msg: &T) {
    let bytes = postcard::to_stdvec(msg).expect("an accepted message encodes");
    let again: T = coffer_proto::decode(&bytes).expect("a re-encoded message decodes");
    assert_eq!(&again, msg, "an accepted message changed in a re-encoding");
}

fuzz_target!(|data: &[u8]| {
    // An empty record reads as a closed peer; the socket buffer bounds one record well below
    // MAX_FRAME, so larger inputs would only test the kernel.
    if data.is_empty() || data.len() > 64 * 1024 {
        return;
    }
    if let Ok((req, fds)) = receive::<Request>(data)
        && req.check(fds).is_ok()
    {
        round_trips(&req);
        assert!(req.check(fds).is_ok());
    }
    if let Ok((msg, _)) = receive::<EnclaveMessage>(data)
        && msg.check().is_ok()
    {
        round_trips(&msg);
    }
    if let Ok((boot, _)) = receive::<Boot>(data)
        && boot.check().is_ok()
    {
        round_trips(&boot);
    }
});
