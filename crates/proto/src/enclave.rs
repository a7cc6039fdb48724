//! Enclave process ↔ platform daemon, over the socket the daemon passes at launch.
//!
//! The daemon speaks first with [`Boot`]; the enclave answers [`EnclaveMessage::Ready`] once it
//! is locked down, then asks for the CPU's services. The daemon is trusted (it is the soft
//! backend's CPU); the enclave still parses everything with size checks.

use serde::{Deserialize, Serialize};

/// The descriptor numbers an enclave process starts with.
pub mod fds {
    /// The daemon socket (SOCK_SEQPACKET).
    pub const DAEMON: i32 = 3;
    /// The channel memfd shared with the host.
    pub const CHANNEL: i32 = 4;
}

/// The most interface names a host may send (an ECALL and an OCALL interface).
pub const MAX_INTERFACE_NAMES: usize = 2;
/// The longest interface (trait) name, in bytes.
pub const MAX_INTERFACE_NAME: usize = 128;
/// The longest switchless spin: 10 ms. A longer one would only burn a core per enclave thread
/// after every call.
pub const MAX_SWITCHLESS_SPIN_NS: u64 = 10_000_000;

/// The size of an encoded REPORT BODY (the enclave's identity in [`Boot`]).
pub const REPORT_BODY_SIZE: usize = 384;
/// The size of a KEYREQUEST.
pub const KEYREQUEST_SIZE: usize = 512;
/// The size of a TARGETINFO.
pub const TARGETINFO_SIZE: usize = 512;
/// The size of REPORTDATA.
pub const REPORTDATA_SIZE: usize = 64;
/// The size of a REPORT.
pub const REPORT_SIZE: usize = 432;
/// The longest failure or loss reason an enclave may send.
pub const MAX_REASON: usize = 1024;

/// Why a [`Boot`] or an [`EnclaveMessage`] breaks the protocol's limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("{message} {field} is {len} bytes, not {wanted}")]
    Size {
        message: &'static str,
        field: &'static str,
        len: usize,
        wanted: usize,
    },
    #[error("{message} reason of {len} bytes exceeds {MAX_REASON}")]
    Reason { message: &'static str, len: usize },
    #[error("Boot: {0}")]
    Options(#[from] crate::client::RequestError),
}

fn exact(
    message: &'static str,
    field: &'static str,
    bytes: &[u8],
    wanted: usize,
) -> Result<(), MessageError> {
    if bytes.len() != wanted {
        return Err(MessageError::Size {
            message,
            field,
            len: bytes.len(),
            wanted,
        });
    }
    Ok(())
}

/// What the enclave learns from the daemon at start: who it is and how it is laid out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Boot {
    /// The enclave's identity as EREPORT would report it (a 384-byte REPORT BODY with zero
    /// REPORTDATA).
    pub identity: Vec<u8>,
    pub heap_size: u64,
    pub stack_size: u64,
    pub tcs_count: u32,
    pub debug: bool,
    /// The channel geometry.
    pub slot_count: u32,
    pub slot_size: u32,
    /// The interfaces the host asked for (`CreateOptions::ecall_interface`; `None` for raw
    /// calls) and serves (`CreateOptions::ocall_interface`).
    pub ecall_interface: Option<crate::client::InterfaceId>,
    pub ocall_interface: Option<crate::client::InterfaceId>,
    /// Their trait names (`CreateOptions::interface_names`).
    pub interface_names: Vec<String>,
    /// Switchless calls (`CreateOptions::switchless_spin_ns`; 0: off).
    pub switchless_spin_ns: u64,
}

impl Boot {
    /// Checks the fields the protocol bounds: the identity's size, the interface ids and names
    /// and the switchless spin (the enclave checks the sizes and geometry against its own caps).
    pub fn check(&self) -> Result<(), MessageError> {
        exact("Boot", "identity", &self.identity, REPORT_BODY_SIZE)?;
        crate::client::check_interfaces(
            self.ecall_interface.as_ref(),
            self.ocall_interface.as_ref(),
            &self.interface_names,
        )?;
        if self.switchless_spin_ns > MAX_SWITCHLESS_SPIN_NS {
            return Err(crate::client::RequestError::SwitchlessSpin {
                ns: self.switchless_spin_ns,
            }
            .into());
        }
        Ok(())
    }
}

/// A message from the enclave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnclaveMessage {
    /// Locked down and serving; `secret_memory` says whether heap and stacks are in secret memory.
    Ready { secret_memory: bool },
    /// The enclave refuses to run (interface mismatch, setup failure) and is about to exit.
    Failed { reason: String },
    /// The enclave detected tampering (a tracer) and wiped itself; it exits next.
    Lost { reason: String },
    /// EGETKEY with this KEYREQUEST (512 bytes).
    Egetkey { keyrequest: Vec<u8> },
    /// EREPORT for this TARGETINFO (512 bytes) with this REPORTDATA (64 bytes).
    Ereport {
        targetinfo: Vec<u8>,
        reportdata: Vec<u8>,
    },
    /// Turn this REPORT (432 bytes, targeted at the quoting enclave) into a quote.
    Quote { report: Vec<u8> },
    /// The quoting enclave's TARGETINFO, to target a report at it.
    QeTargetinfo,
    /// The key mailbox (`coffer_channel::mailbox`): its memfd is attached. The daemon maps it
    /// (one sealed page, or it refuses), serves EGETKEY there from then on, and answers
    /// [`DaemonReply::Accepted`]; a second mailbox is refused.
    KeyMailbox,
}

impl EnclaveMessage {
    /// The message's name, for logs and errors (never its content).
    pub fn name(&self) -> &'static str {
        match self {
            EnclaveMessage::Ready { .. } => "Ready",
            EnclaveMessage::Failed { .. } => "Failed",
            EnclaveMessage::Lost { .. } => "Lost",
            EnclaveMessage::Egetkey { .. } => "Egetkey",
            EnclaveMessage::Ereport { .. } => "Ereport",
            EnclaveMessage::Quote { .. } => "Quote",
            EnclaveMessage::QeTargetinfo => "QeTargetinfo",
            EnclaveMessage::KeyMailbox => "KeyMailbox",
        }
    }

    /// Checks every field's size against the SGX structure it carries.
    pub fn check(&self) -> Result<(), MessageError> {
        let name = self.name();
        match self {
            EnclaveMessage::Ready { .. }
            | EnclaveMessage::QeTargetinfo
            | EnclaveMessage::KeyMailbox => Ok(()),
            EnclaveMessage::Failed { reason } | EnclaveMessage::Lost { reason } => {
                if reason.len() > MAX_REASON {
                    return Err(MessageError::Reason {
                        message: name,
                        len: reason.len(),
                    });
                }
                Ok(())
            }
            EnclaveMessage::Egetkey { keyrequest } => {
                exact(name, "KEYREQUEST", keyrequest, KEYREQUEST_SIZE)
            }
            EnclaveMessage::Ereport {
                targetinfo,
                reportdata,
            } => {
                exact(name, "TARGETINFO", targetinfo, TARGETINFO_SIZE)?;
                exact(name, "REPORTDATA", reportdata, REPORTDATA_SIZE)
            }
            EnclaveMessage::Quote { report } => exact(name, "REPORT", report, REPORT_SIZE),
        }
    }
}

/// The daemon's answer to an [`EnclaveMessage`] request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DaemonReply {
    Key(Vec<u8>),
    Report(Vec<u8>),
    Quote(Vec<u8>),
    Targetinfo(Vec<u8>),
    /// The request is done ([`EnclaveMessage::KeyMailbox`]).
    Accepted,
    Error(String),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn checks_each_structure_size() {
        EnclaveMessage::Egetkey {
            keyrequest: vec![0; 512],
        }
        .check()
        .unwrap();
        let err = EnclaveMessage::Ereport {
            targetinfo: vec![0; 512],
            reportdata: vec![0; 65],
        }
        .check()
        .unwrap_err();
        assert_eq!(err.to_string(), "Ereport REPORTDATA is 65 bytes, not 64");
        assert!(
            EnclaveMessage::Lost {
                reason: "x".repeat(MAX_REASON + 1)
            }
            .check()
            .is_err()
        );
        assert!(EnclaveMessage::Quote { report: vec![] }.check().is_err());
    }

    #[test]
    fn checks_the_boot() {
        let mut b = Boot {
            identity: vec![0; 384],
            heap_size: 4096,
            stack_size: 4096,
            tcs_count: 1,
            debug: false,
            slot_count: 1,
            slot_size: 4096,
            ecall_interface: Some([7; 32]),
            ocall_interface: None,
            interface_names: vec!["Seven".into()],
            switchless_spin_ns: 0,
        };
        b.check().unwrap();
        b.ecall_interface = None;
        b.ocall_interface = Some([8; 32]);
        assert_eq!(
            b.check().unwrap_err().to_string(),
            "Boot: an OCALL interface id without an ECALL interface id"
        );
    }
}
