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
    /// The interface ids the host asked for (`CreateOptions::interface_id`; empty for raw calls).
    pub interface_id: Vec<u8>,
    /// Their trait names (`CreateOptions::interface_names`).
    pub interface_names: Vec<String>,
    /// Switchless calls (`CreateOptions::switchless_spin_ns`; 0: off).
    pub switchless_spin_ns: u64,
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
