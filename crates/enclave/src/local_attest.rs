//! Local attestation inside an enclave: its own TARGETINFO, REPORTs for another enclave,
//! verification of REPORTs targeted at it, and the mutual handshake of `coffer-local-attest`
//! driven across ECALLs.
//!
//! The two enclaves never talk directly: each handshake message leaves one enclave as an ECALL
//! result and enters the other as an ECALL argument, relayed by the hosts. The messages are
//! public (TARGETINFOs, ephemeral public keys, REPORTs); the ephemeral private keys and the
//! session key stay in this enclave's heap, in a table the handshake and session ids index:
//!
//! ```text
//! enclave A (initiator)           host(s)            enclave B (responder)
//! attest_initiate() → (id_A, m1)    ── m1 ──►        attest_respond(m1) → (id_B, m2)
//! attest_complete_initiator(        ◄── m2 ──
//!     id_A, m2, accept) → m3        ── m3 ──►        attest_complete_responder(id_B, m3, accept)
//! session id_A: key K, peer B                        session id_B: key K, peer A
//! ```
//!
//! `accept` is the enclave's policy for its peer (an MRENCLAVE, or an MRSIGNER and product
//! with a minimum ISVSVN); a peer it refuses gets no session. A step that fails ends its
//! handshake: the next message for that id is refused.

use std::collections::BTreeMap;
use std::sync::Mutex;

use coffer_abi::{Keyrequest, Report, ReportBody, Targetinfo};
use coffer_local_attest::{Initiator, ReportService, Responder};
use zeroize::Zeroizing;

use coffer_local_attest::{KeyError, ServiceCause};
pub use coffer_local_attest::{LocalAttestError, Msg1, Msg2, Msg3, Session};

use crate::{Ctx, ServiceError};

/// Handshakes waiting for their next message. A host that starts more evicts the oldest: each
/// holds an ephemeral key in the heap, which never grows, so the count must stay bounded.
pub const MAX_PENDING_HANDSHAKES: usize = 16;
/// Established sessions at once; [`Ctx::close_session`] frees one.
pub const MAX_SESSIONS: usize = 64;

/// Why a local-attestation step failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The protocol failed: a bad message, a REPORT that does not verify here (altered, for
    /// another target, from another platform), or REPORTDATA that does not bind this exchange.
    #[error(transparent)]
    Protocol(#[from] LocalAttestError),
    /// No handshake waits under this id: it finished, failed, was evicted or never started.
    #[error("no local-attestation handshake {0} is in progress")]
    UnknownHandshake(u64),
    /// The id is a handshake of the other role.
    #[error("handshake {id} is not an {expected}'s")]
    WrongRole { id: u64, expected: &'static str },
    /// The enclave's policy refused the peer's identity.
    #[error("the peer enclave was refused by this enclave's policy")]
    PeerRejected,
    /// The session table is full.
    #[error("too many local-attestation sessions (at most {MAX_SESSIONS}); close one first")]
    TooManySessions,
    /// No session has this id.
    #[error("no local-attestation session {0}")]
    UnknownSession(u64),
}

/// A handshake that completed on this side.
#[derive(Debug, Clone)]
pub struct Established {
    /// The session's id (the handshake's), for [`Ctx::with_session`].
    pub session: u64,
    /// Who the peer is, as its REPORT (verified with this enclave's report key) says.
    pub peer: ReportBody,
}

enum Pending {
    Initiator(Initiator),
    Responder(Responder),
}

/// Handshakes and sessions of this enclave. The static holds only the maps' roots and the id
/// counter (ordinary memory); the ephemeral keys and session keys are in the maps' nodes, in
/// the heap (secret memory).
struct Table {
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    sessions: BTreeMap<u64, Session>,
}

static TABLE: Mutex<Table> = Mutex::new(Table {
    next_id: 1,
    pending: BTreeMap::new(),
    sessions: BTreeMap::new(),
});

fn table() -> std::sync::MutexGuard<'static, Table> {
    // A panic aborts the enclave, so the lock is never poisoned; take it even if it were.
    TABLE.lock().unwrap_or_else(|p| p.into_inner())
}

impl Table {
    fn add_pending(&mut self, p: Pending) -> u64 {
        while self.pending.len() >= MAX_PENDING_HANDSHAKES {
            // Ids grow, so the first is the oldest.
            self.pending.pop_first();
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.pending.insert(id, p);
        id
    }

    fn take_pending(&mut self, id: u64) -> Result<Pending, HandshakeError> {
        self.pending
            .remove(&id)
            .ok_or(HandshakeError::UnknownHandshake(id))
    }

    fn add_session(&mut self, id: u64, session: Session) -> Result<(), HandshakeError> {
        if self.sessions.len() >= MAX_SESSIONS {
            return Err(HandshakeError::TooManySessions);
        }
        self.sessions.insert(id, session);
        Ok(())
    }
}

impl ReportService for Ctx<'_> {
    fn identity(&self) -> &ReportBody {
        Ctx::identity(self)
    }

    fn ereport(&self, target: &Targetinfo, reportdata: &[u8; 64]) -> Result<Report, ServiceCause> {
        Ctx::ereport(self, target, reportdata).map_err(|e| Box::new(e) as ServiceCause)
    }

    fn egetkey(&self, request: &Keyrequest) -> Result<Zeroizing<[u8; 16]>, KeyError> {
        Ctx::egetkey(self, request).map_err(KeyError::from)
    }
}

impl Ctx<'_> {
    /// This enclave's TARGETINFO: what another enclave needs to target a REPORT at it.
    pub fn target_info(&self) -> Targetinfo {
        Targetinfo::from_report_body(self.identity())
    }

    /// A REPORT of this enclave carrying `reportdata`, MAC'd with the report key of the enclave
    /// `target` names: only that enclave, on this platform, can verify it.
    pub fn report_for(
        &self,
        target: &Targetinfo,
        reportdata: &[u8; 64],
    ) -> Result<Report, ServiceError> {
        self.ereport(target, reportdata)
    }

    /// Verifies a REPORT targeted at this enclave with this enclave's report key, and returns
    /// the body (the reporting enclave's identity and REPORTDATA). A REPORT targeted at another
    /// enclave, made on another platform or by another run of the platform daemon, or with any
    /// byte changed fails with [`LocalAttestError::ReportMac`].
    pub fn verify_report(&self, report: &Report) -> Result<ReportBody, LocalAttestError> {
        coffer_local_attest::verify_report(self, report)
    }

    /// Starts a handshake as the initiator: the id to continue it under, and the first message
    /// (for the responder enclave).
    pub fn attest_initiate(&self) -> (u64, Msg1) {
        let (initiator, msg) = Initiator::start(self);
        let id = table().add_pending(Pending::Initiator(initiator));
        (id, msg)
    }

    /// Answers an initiator's first message: the id to continue under, and the second message
    /// (for the initiator), which carries a REPORT of this enclave targeted at the initiator.
    pub fn attest_respond(&self, msg: &Msg1) -> Result<(u64, Msg2), HandshakeError> {
        let (responder, reply) = Responder::respond(self, msg)?;
        let id = table().add_pending(Pending::Responder(responder));
        Ok((id, reply))
    }

    /// Completes the initiator's side: verifies the responder's REPORT and asks `accept` about
    /// its identity; on success the session exists here under `id`, and the third message
    /// (for the responder) carries this enclave's REPORT.
    pub fn attest_complete_initiator(
        &self,
        id: u64,
        msg: &Msg2,
        accept: impl FnOnce(&ReportBody) -> bool,
    ) -> Result<(Established, Msg3), HandshakeError> {
        let initiator = match table().take_pending(id)? {
            Pending::Initiator(i) => i,
            Pending::Responder(_) => {
                return Err(HandshakeError::WrongRole {
                    id,
                    expected: "initiator",
                });
            }
        };
        let (session, reply) = initiator.finish(self, msg)?;
        let established = self.establish(id, session, accept)?;
        Ok((established, reply))
    }

    /// Completes the responder's side: verifies the initiator's REPORT and asks `accept` about
    /// its identity; on success the session exists here under `id`.
    pub fn attest_complete_responder(
        &self,
        id: u64,
        msg: &Msg3,
        accept: impl FnOnce(&ReportBody) -> bool,
    ) -> Result<Established, HandshakeError> {
        let responder = match table().take_pending(id)? {
            Pending::Responder(r) => r,
            Pending::Initiator(_) => {
                return Err(HandshakeError::WrongRole {
                    id,
                    expected: "responder",
                });
            }
        };
        let session = responder.finish(self, msg)?;
        self.establish(id, session, accept)
    }

    fn establish(
        &self,
        id: u64,
        session: Session,
        accept: impl FnOnce(&ReportBody) -> bool,
    ) -> Result<Established, HandshakeError> {
        if !accept(&session.peer) {
            return Err(HandshakeError::PeerRejected);
        }
        let peer = session.peer.clone();
        table().add_session(id, session)?;
        Ok(Established { session: id, peer })
    }

    /// Runs `f` with session `id` (its peer and key). The key must not leave the enclave. `f`
    /// runs under the table's lock: it must not call the other local-attestation methods.
    pub fn with_session<R>(
        &self,
        id: u64,
        f: impl FnOnce(&Session) -> R,
    ) -> Result<R, HandshakeError> {
        let t = table();
        let session = t
            .sessions
            .get(&id)
            .ok_or(HandshakeError::UnknownSession(id))?;
        Ok(f(session))
    }

    /// Ends session `id`, wiping its key; false if there was none.
    pub fn close_session(&self, id: u64) -> bool {
        table().sessions.remove(&id).is_some()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Enough of a platform to start a handshake (which asks only for the identity).
    struct Identity(ReportBody);

    impl ReportService for Identity {
        fn identity(&self) -> &ReportBody {
            &self.0
        }
        fn ereport(&self, _: &Targetinfo, _: &[u8; 64]) -> Result<Report, ServiceCause> {
            Err("no EREPORT here".into())
        }
        fn egetkey(&self, _: &Keyrequest) -> Result<Zeroizing<[u8; 16]>, KeyError> {
            Err(KeyError::RefusedWithReason {
                reason: "no EGETKEY here".into(),
            })
        }
    }

    fn table() -> Table {
        Table {
            next_id: 1,
            pending: BTreeMap::new(),
            sessions: BTreeMap::new(),
        }
    }

    fn pending() -> Pending {
        Pending::Initiator(Initiator::start(&Identity(ReportBody::default())).0)
    }

    #[test]
    fn evicts_the_oldest_pending_handshake_beyond_the_cap() {
        let mut t = table();
        let ids: Vec<u64> = (0..=MAX_PENDING_HANDSHAKES)
            .map(|_| t.add_pending(pending()))
            .collect();
        assert_eq!(t.pending.len(), MAX_PENDING_HANDSHAKES);
        assert!(matches!(
            t.take_pending(ids[0]),
            Err(HandshakeError::UnknownHandshake(1))
        ));
        assert!(t.take_pending(ids[1]).is_ok());
        // A handshake is taken once: its next message finds nothing.
        assert!(t.take_pending(ids[1]).is_err());
    }

    #[test]
    fn refuses_sessions_beyond_the_cap() {
        let mut t = table();
        let session = || Session {
            peer: ReportBody::default(),
            key: Zeroizing::new([1; 32]),
        };
        for id in 0..MAX_SESSIONS as u64 {
            t.add_session(id, session()).unwrap();
        }
        assert!(matches!(
            t.add_session(1000, session()),
            Err(HandshakeError::TooManySessions)
        ));
        t.sessions.remove(&0);
        assert!(t.add_session(1000, session()).is_ok());
    }
}
