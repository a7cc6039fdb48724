//! # coffer-proto: what the platform daemon says to its clients and its enclaves
//!
//! Two conversations, both over `SOCK_SEQPACKET` Unix sockets so that one `sendmsg` is one
//! message, with file descriptors attached as `SCM_RIGHTS`:
//!
//! - [`client`]: a host application or the CLI and the daemon (create, destroy, status). The
//!   bundle travels as a file descriptor, the enclave's channel memfd comes back as one.
//! - [`enclave`]: an enclave process and the daemon that started it (boot parameters, then
//!   EREPORT / EGETKEY / quote requests, and the enclave reporting itself lost).
//!
//! Messages are postcard-encoded. Fixed-size SGX structures travel as byte vectors and are parsed
//! with `coffer-abi` by the receiver, which never trusts the sender's lengths.
//!
//! This crate must stay small: it is linked into enclave binaries.

#![forbid(unsafe_code)]

pub mod client;
pub mod enclave;
mod frame;
pub mod tcb;

pub use frame::{FrameError, MAX_FDS, MAX_FRAME, connect, decode, recv, send, seqpacket_pair};
