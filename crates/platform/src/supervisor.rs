//! One thread per running enclave: it answers the enclave's requests for CPU services, polls
//! for a tracer, and notices the process ending.
//!
//! The thread waits on two descriptors at once, the enclave's socket and its pidfd, waking at
//! least every [`TRACER_POLL`] to look for a tracer on every thread of a production enclave.
//! When the process ends it first reads what the enclave still sent (a `Lost` report names the
//! real reason), then reaps it and records the loss. Whatever one enclave does, it only ever
//! occupies its own thread.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use coffer_abi::ReportBody;
use coffer_proto::enclave::{DaemonReply, EnclaveMessage};
use coffer_proto::{FrameError, recv, send};
use zeroize::Zeroize;

use crate::key_mailbox;
use crate::lost::{code, exit_reason};
use crate::services::Outcome;
use crate::shared::Shared;
use crate::table::Live;
use crate::tracer_watch::find_tracer;
use crate::wait::readable;

/// How often the daemon looks for a tracer on an idle enclave.
pub const TRACER_POLL: Duration = Duration::from_millis(100);

/// What a supervisor watches.
#[derive(Debug)]
pub struct Supervised {
    pub id: u64,
    pub live: Arc<Live>,
    pub socket: OwnedFd,
    pub identity: ReportBody,
    pub debug: bool,
}

/// Runs until the enclave process has ended and been reaped.
pub fn supervise(shared: Arc<Shared>, s: Supervised) {
    let pid = s.live.child.pid();
    let mut socket_open = true;
    // Served until this function returns, after the process has ended.
    let mut mailbox = None;
    loop {
        let fds = if socket_open {
            vec![s.live.child.pidfd(), s.socket.as_fd()]
        } else {
            vec![s.live.child.pidfd()]
        };
        let ready = match readable(&fds, TRACER_POLL) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(id = s.id, "waiting on the enclave failed: {e}");
                std::thread::sleep(TRACER_POLL);
                continue;
            }
        };
        if ready.get(1).copied().unwrap_or(false) {
            socket_open = serve_one(&shared, &s, &mut mailbox);
            continue;
        }
        if ready.first().copied().unwrap_or(false) {
            break;
        }
        if !s.debug
            && let Some((tid, tracer)) = find_tracer(pid)
        {
            let reason = format!("tracer attached (pid {tracer})");
            tracing::warn!(
                id = s.id,
                pid,
                tid,
                tracer,
                "tracer on an enclave: destroying it"
            );
            shared.table().mark_lost(s.id, code::TRACER, &reason);
            let _ = s.live.child.kill();
        }
    }
    // The process has ended; read whatever it sent before it did.
    while socket_open
        && readable(&[s.socket.as_fd()], Duration::ZERO)
            .ok()
            .and_then(|r| r.first().copied())
            .unwrap_or(false)
    {
        socket_open = serve_one(&shared, &s, &mut mailbox);
    }
    // A process traced by another one is reaped only once its tracer lets go, but its memory is
    // already gone: record the loss and return the EPC now, then reap.
    let (code, reason) = match s.live.child.try_wait() {
        Ok(Some(status)) => exit_reason(status),
        Ok(None) => (
            code::EXITED,
            "ended while another process traced it".to_owned(),
        ),
        Err(e) => (code::EXITED, format!("ended (wait failed: {e})")),
    };
    tracing::info!(id = s.id, pid, "enclave process ended: {reason}");
    shared.table().process_ended(s.id, code, &reason);
    let _ = s.live.child.wait();
}

/// Handles one message; returns whether the socket is still open.
fn serve_one(
    shared: &Arc<Shared>,
    s: &Supervised,
    mailbox: &mut Option<key_mailbox::Served>,
) -> bool {
    let msg = match recv::<EnclaveMessage>(s.socket.as_fd()) {
        Ok((EnclaveMessage::KeyMailbox, fds)) => {
            let reply = key_mailbox::accept(shared, s.id, &s.identity, fds, mailbox);
            return send(s.socket.as_fd(), &reply, &[]).is_ok();
        }
        Ok((msg, _fds)) => msg,
        Err(FrameError::Closed) => return false,
        Err(
            e @ (FrameError::Decode(_)
            | FrameError::TrailingBytes(_)
            | FrameError::Truncated
            | FrameError::TooManyFds),
        ) => {
            tracing::warn!(id = s.id, "malformed message from the enclave: {e}");
            let reply = DaemonReply::Error(format!("malformed message: {e}"));
            return send(s.socket.as_fd(), &reply, &[]).is_ok();
        }
        Err(e) => {
            tracing::warn!(id = s.id, "reading from the enclave failed: {e}");
            return false;
        }
    };
    let name = msg.name();
    if let Err(e) = msg.check() {
        tracing::warn!(id = s.id, "malformed {name} from the enclave: {e}");
        let reply = DaemonReply::Error(format!("malformed message: {e}"));
        return send(s.socket.as_fd(), &reply, &[]).is_ok();
    }
    match shared.services.handle(&s.identity, msg) {
        Outcome::Reply(mut reply) => {
            tracing::debug!(id = s.id, request = name, "CPU service");
            let sent = send(s.socket.as_fd(), &reply, &[]);
            if let DaemonReply::Key(key) = &mut reply {
                key.zeroize();
            }
            sent.is_ok()
        }
        Outcome::Lost { code, reason } => {
            tracing::warn!(id = s.id, "the enclave reports itself lost: {reason}");
            shared.table().mark_lost(s.id, code, &reason);
            let _ = s.live.child.kill();
            true
        }
        Outcome::Ignore => {
            tracing::warn!(
                id = s.id,
                message = name,
                "unexpected message from a running enclave"
            );
            true
        }
    }
}
