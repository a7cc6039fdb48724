//! # coffer-platform: the platform daemon
//!
//! One privileged daemon per node plays the part SGX hardware and its driver play: it checks
//! bundles, applies the launch policy, keeps the EPC budget, starts every enclave process behind
//! the boundary of DESIGN §1, serves EREPORT and EGETKEY from the platform's root key, and
//! follows each enclave to its end.
//!
//! | module | owns |
//! |---|---|
//! | `daemon` | the socket, client connections, create / destroy / status, ownership, per-uid limits |
//! | `shared`, `config` | what every thread shares; the daemon's configuration ([`PlatformConfig`]) |
//! | `launcher` | from a reservation to a running, supervised enclave |
//! | [`admit`] | reading a bundle from a client's descriptor, verification, launch policy, the enclave's identity |
//! | `epc`, `table` | the EPC ledger and the enclave table, under one lock |
//! | `launch` | starting the enclave process and bringing it to `Ready` |
//! | `supervisor` | one thread per enclave: CPU services, tracer poll, exit and loss |
//! | `services` | EGETKEY / EREPORT with the identity the daemon holds |
//! | `state` | the state directory: root key, owner epoch, CPUSVN |
//! | [`tcb`] | the TCB status: what protects enclaves on this host, and each channel open to root, as an advisory |
//! | [`vm_size`], [`allowlist`], `lost`, `tracer_watch` | VM sizes, the signer allowlist, loss reasons, the tracer poll |
//!
//! It stays small in dependencies, in the spirit of Firecracker's jailer: std threads (one per
//! client and one per enclave), no async runtime, and every kernel call through
//! `coffer-boundary` or rustix's safe API.
//!
//! It must never run client code as root: enclave processes get their own unprivileged uid
//! (`uid_base + id`) and no capability but `CAP_IPC_LOCK`. A daemon started without root keeps
//! them under its own uid and says so in its TCB status.

#![forbid(unsafe_code)]

pub mod admit;
pub mod allowlist;
mod config;
mod daemon;
mod epc;
mod key_mailbox;
mod launch;
mod launcher;
mod lost;
mod services;
mod shared;
mod state;
mod supervisor;
mod table;
pub mod tcb;
mod tracer_watch;
pub mod vm_size;
mod wait;

pub use admit::LaunchPolicy;
pub use allowlist::{AllowlistError, SignerAllowlist};
pub use config::PlatformConfig;
pub use daemon::{MAX_CLIENTS, MAX_CONCURRENT_ADMISSIONS, PlatformDaemon, ServeError, StopHandle};
pub use state::StateError;
pub use tcb::{Advisory, HostFacts, TcbLevel, TcbStatus};
pub use vm_size::{UnknownVmSize, VmSize};
