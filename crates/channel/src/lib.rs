//! # coffer-channel: the ECALL/OCALL transport
//!
//! The host process and the enclave process exchange raw byte calls (a call id and bytes in, a
//! status and bytes out) through a memfd that both map. The memfd is ordinary memory on purpose:
//! a shared futex on secret memory fails, and nothing secret is ever written here — the enclave
//! copies every request into its own memory before it reads it, and writes only what it means to
//! send out.
//!
//! The memfd holds a header, one control block per TCS (a "slot") and one buffer per slot:
//!
//! ```text
//! 0               header: magic, version, slot count, slot size, enclave state, lost reason
//! 512 + 64·i      slot i control block: state (the futex word), owner, call id, status, length
//! data_offset + slot_size·i   slot i buffer
//! ```
//!
//! A slot moves through [`SlotState`]s. The host claims a free slot, writes an ECALL and wakes the
//! enclave worker that owns that slot; the worker may answer with OCALLs, which the same host
//! thread serves, and finally with the ECALL's result. Each side polls the slot for a while and
//! then sleeps on the slot's futex: how long is a [`WaitPolicy`], the channel's default or one
//! per call ([`SlotClaim::ecall_with_policy`], [`EnclaveSlot::wait_ecall_with_policy`],
//! [`EnclaveSlot::ocall_with_policy`]); a switchless call polls long enough that neither side
//! needs a futex wake-up. The platform daemon maps the same memfd to mark an enclave *lost*,
//! which wakes every waiter.
//!
//! Everything read from shared memory is untrusted: lengths are checked against the slot size
//! that each side learned from its own trusted source, and data is copied out before use.

#![deny(unsafe_code)]

mod layout;
pub mod mailbox;
mod shm;
mod slot;

pub use layout::{ChannelLayout, EnclaveState, LayoutError, SlotState, Status};
pub use shm::{SharedMapping, ShmError};
pub use slot::{
    CallError, Channel, EnclaveSlot, HostCall, Incoming, OcallHandler, ProtocolViolation,
    SlotClaim, WaitPolicy,
};
