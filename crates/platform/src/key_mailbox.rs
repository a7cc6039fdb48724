//! EGETKEY through an enclave's key mailbox (`coffer_channel::mailbox`): the daemon's side.
//!
//! An enclave may hand the daemon one mailbox page ([`EnclaveMessage::KeyMailbox`]
//! (coffer_proto::enclave::EnclaveMessage::KeyMailbox), the memfd attached). The daemon maps it
//! only if it is exactly one page sealed against resizing, and serves it on a thread of its own
//! until the enclave's supervisor ends: each request is parsed strictly as a KEYREQUEST and
//! answered with the same derivation as the socket's `Egetkey` ([`CpuServices::egetkey`]) for
//! the identity the daemon holds for this enclave, never one the enclave claims. The thread
//! never blocks on the enclave for longer than [`coffer_channel::mailbox::NAP`] before it looks
//! whether to stop, so a hostile enclave can keep one thread of its own busy, no more.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use coffer_abi::keyrequest::Keyrequest;
use coffer_abi::{Codec, ReportBody};
use coffer_channel::mailbox::{KeyAnswer, Mailbox, MailboxServer, REQUEST_SIZE};
use coffer_cpu::EgetkeyError;
use coffer_proto::enclave::DaemonReply;

use crate::services::CpuServices;
use crate::shared::Shared;

/// A mailbox being served; dropping it stops the thread and waits for it.
#[derive(Debug)]
pub(crate) struct Served {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers `KeyMailbox`: maps the one memfd attached and starts serving it, unless this enclave
/// has a mailbox already.
pub(crate) fn accept(
    shared: &Arc<Shared>,
    id: u64,
    identity: &ReportBody,
    mut fds: Vec<OwnedFd>,
    current: &mut Option<Served>,
) -> DaemonReply {
    if current.is_some() {
        return DaemonReply::Error("this enclave has a key mailbox already".into());
    }
    if fds.len() != 1 {
        return DaemonReply::Error(format!(
            "a key mailbox comes with one descriptor, not {}",
            fds.len()
        ));
    }
    let fd = fds.remove(0);
    let mailbox = match Mailbox::open(fd.as_fd()) {
        Ok(m) => m,
        Err(e) => return DaemonReply::Error(format!("the key mailbox cannot be mapped: {e}")),
    };
    drop(fd);
    let stop = Arc::new(AtomicBool::new(false));
    let shared = Arc::clone(shared);
    let identity = identity.clone();
    let thread_stop = Arc::clone(&stop);
    let spawned = std::thread::Builder::new()
        .name(format!("key-mailbox-{id}"))
        .spawn(move || {
            MailboxServer::new(mailbox).serve(&thread_stop, |request| {
                answer(&shared.services, &identity, request)
            });
        });
    match spawned {
        Ok(thread) => {
            tracing::debug!(id, "serving the enclave's key mailbox");
            *current = Some(Served {
                stop,
                thread: Some(thread),
            });
            DaemonReply::Accepted
        }
        Err(e) => DaemonReply::Error(format!("no thread for the key mailbox: {e}")),
    }
}

/// One mailbox request: a KEYREQUEST, parsed strictly, derived for `secs`.
fn answer(services: &CpuServices, secs: &ReportBody, request: &[u8; REQUEST_SIZE]) -> KeyAnswer {
    let Ok(req) = Keyrequest::from_bytes(request) else {
        return KeyAnswer::MalformedRequest;
    };
    match services.egetkey(secs, &req) {
        Ok(key) => KeyAnswer::Key(*key),
        Err(EgetkeyError::InvalidIsvsvn { requested, current }) => {
            KeyAnswer::InvalidIsvsvn { requested, current }
        }
        Err(EgetkeyError::InvalidCpusvn { requested, current }) => {
            KeyAnswer::InvalidCpusvn { requested, current }
        }
        Err(EgetkeyError::NotAllowed(name)) => KeyAnswer::NotAllowed { keyname: name.0 },
        Err(EgetkeyError::InvalidKeyname(name)) => KeyAnswer::InvalidKeyname { keyname: name.0 },
        Err(EgetkeyError::InvalidKeypolicy(policy)) => KeyAnswer::InvalidKeypolicy {
            keypolicy: policy.bits(),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use coffer_abi::keyrequest::KeyName;
    use coffer_cpu::PlatformRoot;

    use super::*;

    fn services() -> CpuServices {
        CpuServices::new(PlatformRoot::new([9; 16], [0; 16], [1; 16]), [5; 32])
    }

    #[test]
    fn derives_what_the_socket_path_derives_and_refuses_the_same() {
        let s = services();
        let secs = ReportBody {
            isvsvn: 1,
            cpusvn: [1; 16],
            ..ReportBody::default()
        };
        let req = Keyrequest {
            keyname: KeyName::SEAL_KEY,
            keyid: [3; 32],
            ..Keyrequest::default()
        };
        let bytes: [u8; REQUEST_SIZE] = req.to_bytes().try_into().unwrap();
        let KeyAnswer::Key(key) = answer(&s, &secs, &bytes) else {
            panic!("no key");
        };
        assert_eq!(key, *s.egetkey(&secs, &req).unwrap());

        let newer = Keyrequest { isvsvn: 2, ..req };
        let bytes: [u8; REQUEST_SIZE] = newer.to_bytes().try_into().unwrap();
        assert_eq!(
            answer(&s, &secs, &bytes),
            KeyAnswer::InvalidIsvsvn {
                requested: 2,
                current: 1
            }
        );
    }

    #[test]
    fn refuses_garbage_as_the_socket_path_does() {
        let garbage = [0xff; REQUEST_SIZE];
        let a = answer(&services(), &ReportBody::default(), &garbage);
        assert!(!matches!(a, KeyAnswer::Key(_)), "{a:?}");
        let socket = services().handle(
            &ReportBody::default(),
            coffer_proto::enclave::EnclaveMessage::Egetkey {
                keyrequest: garbage.to_vec(),
            },
        );
        assert!(
            matches!(
                socket,
                crate::services::Outcome::Reply(DaemonReply::Error(_))
            ),
            "{socket:?}"
        );
    }
}
