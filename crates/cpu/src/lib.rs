//! # coffer-cpu: what the CPU does for an enclave
//!
//! On SGX hardware, EGETKEY derives keys from fuses inside the CPU and EREPORT MACs a REPORT with
//! the target enclave's report key. On Coffer's soft backend the platform daemon plays that part:
//! this crate is the pure computation it runs, from a platform root key that never leaves the
//! daemon.
//!
//! Derivation follows the SDM's EGETKEY: AES-128-CMAC, keyed by the platform root key, over the key
//! dependencies (key name, policy, masked attributes and MISCSELECT, owner epoch, CPUSVN, ISVSVN,
//! ISVPRODID, MRENCLAVE or MRSIGNER per policy, KEYID, and the KSS identities). A request for an
//! ISVSVN or CPUSVN above the current one is refused, so an old enclave can never derive a newer
//! enclave's keys. MACs are compared in constant time.
//!
//! It must never do I/O or expose the root key.

#![forbid(unsafe_code)]

mod derive;
mod report;

pub use derive::{EgetkeyError, KeyDependencies, PlatformRoot};
pub use report::{ReportError, ereport, verify_report};
