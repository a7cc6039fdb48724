//! The CPU's services, asked of the platform daemon over descriptor 3: EGETKEY, EREPORT, and
//! quoting.
//!
//! Several workers share the one socket, so a request and its reply happen under one lock:
//! exactly one request is in flight, and the reply that comes next is its answer. Replies are
//! received on the asking worker's thread, into heap buffers, so a key only ever passes through
//! secret memory (the frame buffer, the decoded vector, the returned array).
//!
//! Notifications (`Ready`, `Failed`, `Lost`) expect no reply and go out without the lock: a
//! `SOCK_SEQPACKET` record is atomic, so one can slip between a request and its reply without
//! confusing either side.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Mutex, OnceLock};

use coffer_abi::keyrequest::{KeyName, KeyPolicy};
use coffer_abi::{Codec, DecodeError, FixedSize, Report, ReportBody, Targetinfo};
use coffer_channel::mailbox::{
    ANSWER_SIZE, KeyAnswer, Mailbox, MailboxClient, MailboxError, REQUEST_SIZE,
};
use coffer_proto::FrameError;
use coffer_proto::enclave::{DaemonReply, EnclaveMessage};
use coffer_seal::{EgetkeyError, KeyError};
use rustix::io::Errno;
use thiserror::Error;
use zeroize::Zeroizing;

/// Why a platform service did not deliver.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// The daemon's socket is closed: the daemon stopped (or restarted, which ends this
    /// enclave's connection for good).
    #[error("the platform daemon is unreachable")]
    DaemonUnreachable(#[source] FrameError),
    /// The daemon connection failed otherwise, or carried a malformed message.
    #[error("the platform daemon connection failed")]
    Connection(#[source] FrameError),
    /// The daemon refused the request, with its reason.
    #[error("the platform refused {request}: {reason}")]
    Refused {
        request: &'static str,
        reason: String,
    },
    /// EGETKEY refused the request through the key mailbox, with the SDM's reason.
    #[error("the platform refused EGETKEY")]
    Egetkey(#[source] EgetkeyError),
    /// The daemon answered with another kind of reply.
    #[error("the platform answered {request} with {got} instead of {expected}")]
    UnexpectedReply {
        request: &'static str,
        expected: &'static str,
        got: &'static str,
    },
    /// The key the daemon sent has the wrong length.
    #[error("the platform's answer to EGETKEY is malformed: a key of {len} bytes, not 16")]
    KeyLength { len: usize },
    /// The key mailbox failed: the daemon did not answer in time, or its answer is malformed.
    #[error("the key mailbox failed")]
    Mailbox(#[source] MailboxError),
    /// The structure the daemon sent does not decode.
    #[error("the platform's answer to {request} is malformed")]
    Malformed {
        request: &'static str,
        #[source]
        source: DecodeError,
    },
    /// The daemon sent an empty quote.
    #[error("the platform's quote is empty")]
    EmptyQuote,
    /// The REPORT is not of this enclave or not of the given REPORTDATA.
    #[error("the platform's REPORT does not match the request: its {0} differs")]
    ReportMismatch(&'static str),
}

impl From<FrameError> for ServiceError {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Closed
            | FrameError::Io(Errno::PIPE | Errno::CONNRESET | Errno::NOTCONN) => {
                ServiceError::DaemonUnreachable(e)
            }
            e => ServiceError::Connection(e),
        }
    }
}

impl From<ServiceError> for KeyError {
    /// The seal and local-attestation view of a failed EGETKEY: a refusal stays a refusal, an
    /// unreachable daemon stays one, and everything else is a malformed answer; the runtime's
    /// error is kept as the source.
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Egetkey(refusal) => KeyError::Refused(refusal),
            ServiceError::Refused { reason, .. } => KeyError::RefusedWithReason { reason },
            e @ ServiceError::DaemonUnreachable(_) => KeyError::DaemonUnreachable(Box::new(e)),
            e => KeyError::Malformed(Box::new(e)),
        }
    }
}

/// The daemon socket, shared by the workers, and the key mailbox once the daemon took it.
#[derive(Debug)]
pub(crate) struct Services {
    sock: OwnedFd,
    /// Held from a request's send to its reply's receipt.
    in_flight: Mutex<()>,
    /// EGETKEY without a socket round trip (`coffer_channel::mailbox`).
    mailbox: OnceLock<MailboxClient>,
}

impl Services {
    pub fn new(sock: OwnedFd) -> Self {
        Services {
            sock,
            in_flight: Mutex::new(()),
            mailbox: OnceLock::new(),
        }
    }

    /// Hands the daemon the key mailbox `fd` maps; from its `Accepted` on, EGETKEY goes through
    /// the mailbox. A daemon that refuses leaves EGETKEY on the socket. Returns whether the
    /// mailbox is in use.
    pub fn offer_mailbox(&self, mailbox: Mailbox, fd: OwnedFd) -> Result<bool, ServiceError> {
        let _turn = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        coffer_proto::send(
            self.sock.as_fd(),
            &EnclaveMessage::KeyMailbox,
            &[fd.as_fd()],
        )?;
        drop(fd);
        let (reply, _fds) = coffer_proto::recv::<DaemonReply>(self.sock.as_fd())?;
        match reply {
            DaemonReply::Accepted => Ok(self.mailbox.set(MailboxClient::new(mailbox)).is_ok()),
            DaemonReply::Error(_) => Ok(false),
            other => Err(unexpected("the key mailbox", "Accepted", &other)),
        }
    }

    /// Whether the daemon's end of the socket is still open (a peek that neither waits nor
    /// takes anything: a pending reply belongs to whoever waits for it).
    fn connected(&self) -> bool {
        let mut byte = [0u8; 1];
        let mut iov = [std::io::IoSliceMut::new(&mut byte)];
        match rustix::net::recvmsg(
            &self.sock,
            &mut iov,
            &mut rustix::net::RecvAncillaryBuffer::default(),
            rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT,
        ) {
            Ok(msg) => msg.bytes > 0,
            Err(e) => e == Errno::AGAIN || e == Errno::INTR,
        }
    }

    /// EGETKEY through the mailbox; `None` when there is none or the daemon stopped serving
    /// it (the socket then says why).
    fn egetkey_by_mailbox(
        &self,
        keyrequest: &coffer_abi::Keyrequest,
    ) -> Option<Result<Zeroizing<[u8; 16]>, ServiceError>> {
        let mailbox = self.mailbox.get()?;
        let request: [u8; REQUEST_SIZE] = keyrequest.to_bytes().try_into().ok()?;
        let mut answer = Zeroizing::new([0u8; ANSWER_SIZE]);
        match mailbox.call(&request, &mut answer, &|| self.connected()) {
            Ok(()) => {}
            Err(MailboxError::Closed) => return None,
            Err(e) => return Some(Err(ServiceError::Mailbox(e))),
        }
        Some(match KeyAnswer::decode(&answer) {
            Ok(KeyAnswer::Key(key)) => Ok(Zeroizing::new(key)),
            Ok(KeyAnswer::MalformedRequest) => Err(ServiceError::Refused {
                request: "EGETKEY",
                reason: "the KEYREQUEST is malformed".into(),
            }),
            Ok(refusal) => Err(refusal_reason(&refusal)),
            Err(e) => Err(ServiceError::Mailbox(e)),
        })
    }

    /// Sends a message that expects no reply.
    pub fn notify(&self, msg: &EnclaveMessage) -> Result<(), FrameError> {
        coffer_proto::send(self.sock.as_fd(), msg, &[])
    }

    /// The daemon's first message: the boot parameters. Descriptors attached to it are closed.
    pub fn recv_boot(&self) -> Result<coffer_proto::enclave::Boot, FrameError> {
        coffer_proto::recv(self.sock.as_fd()).map(|(boot, _fds)| boot)
    }

    /// Sends `msg` and returns the reply.
    fn request(
        &self,
        request: &'static str,
        msg: &EnclaveMessage,
    ) -> Result<DaemonReply, ServiceError> {
        // A panic aborts the enclave, so the lock is never poisoned; take it even if it were.
        let _turn = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        coffer_proto::send(self.sock.as_fd(), msg, &[])?;
        // Descriptors attached to a reply are unexpected; dropping them closes them.
        let (reply, _fds) = coffer_proto::recv::<DaemonReply>(self.sock.as_fd())?;
        match reply {
            DaemonReply::Error(reason) => Err(ServiceError::Refused { request, reason }),
            other => Ok(other),
        }
    }

    pub fn egetkey(
        &self,
        keyrequest: &coffer_abi::Keyrequest,
    ) -> Result<Zeroizing<[u8; 16]>, ServiceError> {
        const REQUEST: &str = "EGETKEY";
        if let Some(result) = self.egetkey_by_mailbox(keyrequest) {
            return result;
        }
        let msg = EnclaveMessage::Egetkey {
            keyrequest: keyrequest.to_bytes(),
        };
        // The vector is wiped when dropped, on every path.
        let bytes = match self.request(REQUEST, &msg)? {
            DaemonReply::Key(bytes) => Zeroizing::new(bytes),
            other => return Err(unexpected(REQUEST, "a key", &other)),
        };
        let mut key = Zeroizing::new([0u8; 16]);
        if bytes.len() != key.len() {
            return Err(ServiceError::KeyLength { len: bytes.len() });
        }
        key.copy_from_slice(&bytes);
        Ok(key)
    }

    pub fn ereport(
        &self,
        identity: &ReportBody,
        target: &Targetinfo,
        reportdata: &[u8; 64],
    ) -> Result<Report, ServiceError> {
        const REQUEST: &str = "EREPORT";
        let msg = EnclaveMessage::Ereport {
            targetinfo: target.to_bytes(),
            reportdata: reportdata.to_vec(),
        };
        let report = match self.request(REQUEST, &msg)? {
            DaemonReply::Report(bytes) => parse::<Report>(REQUEST, &bytes)?,
            other => return Err(unexpected(REQUEST, "a report", &other)),
        };
        let body = &report.body;
        if body.reportdata != *reportdata {
            return Err(ServiceError::ReportMismatch("REPORTDATA"));
        }
        if body.mrenclave != identity.mrenclave {
            return Err(ServiceError::ReportMismatch("MRENCLAVE"));
        }
        if body.mrsigner != identity.mrsigner {
            return Err(ServiceError::ReportMismatch("MRSIGNER"));
        }
        if body.attributes != identity.attributes {
            return Err(ServiceError::ReportMismatch("ATTRIBUTES"));
        }
        Ok(report)
    }

    pub fn qe_targetinfo(&self) -> Result<Targetinfo, ServiceError> {
        const REQUEST: &str = "the quoting enclave's TARGETINFO";
        match self.request(REQUEST, &EnclaveMessage::QeTargetinfo)? {
            DaemonReply::Targetinfo(bytes) => parse::<Targetinfo>(REQUEST, &bytes),
            other => Err(unexpected(REQUEST, "a target info", &other)),
        }
    }

    pub fn quote(&self, report: &Report) -> Result<Vec<u8>, ServiceError> {
        const REQUEST: &str = "a quote";
        let msg = EnclaveMessage::Quote {
            report: report.to_bytes(),
        };
        match self.request(REQUEST, &msg)? {
            DaemonReply::Quote(bytes) if bytes.is_empty() => Err(ServiceError::EmptyQuote),
            DaemonReply::Quote(bytes) => Ok(bytes),
            other => Err(unexpected(REQUEST, "a quote", &other)),
        }
    }
}

/// The SDM's reason for a refusal the mailbox carries.
fn refusal_reason(answer: &KeyAnswer) -> ServiceError {
    ServiceError::Egetkey(match *answer {
        KeyAnswer::InvalidIsvsvn { requested, current } => {
            EgetkeyError::InvalidIsvsvn { requested, current }
        }
        KeyAnswer::InvalidCpusvn { requested, current } => {
            EgetkeyError::InvalidCpusvn { requested, current }
        }
        KeyAnswer::NotAllowed { keyname } => EgetkeyError::NotAllowed(KeyName(keyname)),
        KeyAnswer::InvalidKeyname { keyname } => EgetkeyError::InvalidKeyname(KeyName(keyname)),
        KeyAnswer::InvalidKeypolicy { keypolicy } => {
            EgetkeyError::InvalidKeypolicy(KeyPolicy::from_bits_retain(keypolicy))
        }
        KeyAnswer::Key(_) | KeyAnswer::MalformedRequest => {
            return ServiceError::UnexpectedReply {
                request: "EGETKEY",
                expected: "a refusal",
                got: "another answer",
            };
        }
    })
}

fn parse<T: FixedSize>(request: &'static str, bytes: &[u8]) -> Result<T, ServiceError> {
    T::from_bytes(bytes).map_err(|source| ServiceError::Malformed { request, source })
}

fn unexpected(request: &'static str, expected: &'static str, got: &DaemonReply) -> ServiceError {
    ServiceError::UnexpectedReply {
        request,
        expected,
        got: match got {
            DaemonReply::Key(_) => "a key",
            DaemonReply::Report(_) => "a report",
            DaemonReply::Quote(_) => "a quote",
            DaemonReply::Targetinfo(_) => "a target info",
            DaemonReply::Accepted => "Accepted",
            DaemonReply::Error(_) => "an error",
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::fd::AsFd;

    use coffer_abi::{Keyrequest, keyrequest::KeyName};

    use super::*;

    /// A daemon thread that checks the one request it gets and answers it.
    fn daemon(
        expect: EnclaveMessage,
        reply: DaemonReply,
    ) -> (Services, std::thread::JoinHandle<()>) {
        let (enclave, daemon) = coffer_proto::seqpacket_pair().unwrap();
        let thread = std::thread::spawn(move || {
            let (got, _) = coffer_proto::recv::<EnclaveMessage>(daemon.as_fd()).unwrap();
            assert_eq!(got, expect);
            coffer_proto::send(daemon.as_fd(), &reply, &[]).unwrap();
        });
        (Services::new(enclave), thread)
    }

    fn keyrequest() -> Keyrequest {
        Keyrequest {
            keyname: KeyName::SEAL_KEY,
            keyid: [9; 32],
            ..Keyrequest::default()
        }
    }

    #[test]
    fn accepts_a_key_of_sixteen_bytes() {
        let req = keyrequest();
        let msg = EnclaveMessage::Egetkey {
            keyrequest: req.to_bytes(),
        };
        let (services, d) = daemon(msg, DaemonReply::Key(vec![5; 16]));
        assert_eq!(*services.egetkey(&req).unwrap(), [5; 16]);
        d.join().unwrap();
    }

    #[test]
    fn rejects_a_key_of_another_length() {
        let req = keyrequest();
        let msg = EnclaveMessage::Egetkey {
            keyrequest: req.to_bytes(),
        };
        let (services, d) = daemon(msg, DaemonReply::Key(vec![5; 15]));
        let err = services.egetkey(&req).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the platform's answer to EGETKEY is malformed: a key of 15 bytes, not 16"
        );
        d.join().unwrap();
    }

    #[test]
    fn rejects_a_refusal_and_a_reply_of_the_wrong_kind() {
        let req = keyrequest();
        let msg = EnclaveMessage::Egetkey {
            keyrequest: req.to_bytes(),
        };
        let (services, d) = daemon(msg.clone(), DaemonReply::Error("no".into()));
        assert_eq!(
            services.egetkey(&req).unwrap_err().to_string(),
            "the platform refused EGETKEY: no"
        );
        d.join().unwrap();
        let (services, d) = daemon(msg, DaemonReply::Quote(vec![1]));
        assert_eq!(
            services.egetkey(&req).unwrap_err().to_string(),
            "the platform answered EGETKEY with a quote instead of a key"
        );
        d.join().unwrap();
    }

    #[test]
    fn rejects_a_report_for_other_reportdata_or_another_enclave() {
        let identity = ReportBody {
            mrenclave: [1; 32],
            ..ReportBody::default()
        };
        let target = Targetinfo::default();
        let msg = EnclaveMessage::Ereport {
            targetinfo: target.to_bytes(),
            reportdata: vec![3; 64],
        };
        let good = Report {
            body: ReportBody {
                reportdata: [3; 64],
                ..identity.clone()
            },
            ..Report::default()
        };
        let (services, d) = daemon(msg.clone(), DaemonReply::Report(good.to_bytes()));
        assert_eq!(
            services.ereport(&identity, &target, &[3; 64]).unwrap(),
            good
        );
        d.join().unwrap();

        let mut other = good.clone();
        other.body.reportdata = [4; 64];
        let (services, d) = daemon(msg.clone(), DaemonReply::Report(other.to_bytes()));
        assert!(matches!(
            services.ereport(&identity, &target, &[3; 64]),
            Err(ServiceError::ReportMismatch("REPORTDATA"))
        ));
        d.join().unwrap();

        let mut other = good.clone();
        other.body.mrenclave = [2; 32];
        let (services, d) = daemon(msg.clone(), DaemonReply::Report(other.to_bytes()));
        assert!(matches!(
            services.ereport(&identity, &target, &[3; 64]),
            Err(ServiceError::ReportMismatch("MRENCLAVE"))
        ));
        d.join().unwrap();

        let (services, d) = daemon(msg, DaemonReply::Report(vec![0; 431]));
        assert!(matches!(
            services.ereport(&identity, &target, &[3; 64]),
            Err(ServiceError::Malformed { .. })
        ));
        d.join().unwrap();
    }
}
