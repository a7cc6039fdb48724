//! The enclave's Landlock ruleset: every access right the kernel knows is handled, none granted.
//!
//! The ruleset handles every file-system right (read, write, execute, create, remove, rename,
//! truncate, device ioctls…), every network right (TCP bind and connect) and every scope
//! (abstract Unix sockets and signals outside the enclave's domain) of the newest Landlock ABI
//! the `landlock` crate knows, intersected with the running kernel's ABI (best effort), and
//! adds no rule: after [`restrict_self`], opening any file fails with `EACCES`, even
//! `/dev/null` for reading. Descriptors opened before keep working.
//!
//! It sits under the seccomp allowlist, which already forbids `open`: a second, independent
//! wall in case a seccomp rule is ever too wide.
//!
//! Landlock restricts the calling thread and the threads it starts later, not its existing
//! siblings (Landlock ABI 8 adds a flag for all threads; it is requested, and the report says
//! whether it took effect). [`mod@crate::lockdown`] therefore applies it in every enclave thread.
//!
//! This module must never add a rule that grants an access.

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, LandlockStatus, RestrictSelfAttr,
    RulesetAttr, RulesetError, RulesetStatus, Scope,
};
use thiserror::Error;

/// The newest ABI the `landlock` crate knows: the rights asked for, before the kernel's cut.
const REQUESTED_ABI: ABI = ABI::V10;

/// Why the ruleset could not be applied.
#[derive(Debug, Error)]
pub enum LandlockError {
    /// Building or enforcing the ruleset failed.
    #[error("applying the Landlock ruleset failed: {0}")]
    Ruleset(#[from] RulesetError),
}

/// How much of the ruleset the kernel enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    /// Every right the crate knows is handled.
    Full,
    /// The kernel's Landlock ABI is older than the newest the crate knows: every right the
    /// kernel knows is handled, and the rights (or flags) of newer ABIs are missing.
    Partial,
    /// The kernel has no Landlock (or it is disabled): only seccomp stands.
    None,
}

/// What [`restrict_self`] achieved, for the platform's TCB status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LandlockReport {
    /// The kernel's Landlock ABI version; `None` without Landlock.
    pub kernel_abi: Option<i32>,
    pub enforcement: Enforcement,
    /// Whether the ruleset reached every thread of the process (ABI 8) rather than only the
    /// calling thread and its future children.
    pub all_threads: bool,
}

impl std::fmt::Display for LandlockReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kernel_abi {
            Some(abi) => write!(f, "Landlock ABI {abi}, ")?,
            None => f.write_str("no Landlock, ")?,
        }
        f.write_str(match self.enforcement {
            Enforcement::Full => "fully enforced",
            Enforcement::Partial => "partially enforced",
            Enforcement::None => "not enforced",
        })?;
        if self.all_threads {
            f.write_str(", all threads")?;
        }
        Ok(())
    }
}

/// Applies the deny-everything ruleset to the calling thread and its future children (and to
/// every thread where the kernel supports it). Sets `no_new_privs` as Landlock requires.
pub fn restrict_self() -> Result<LandlockReport, LandlockError> {
    let status = landlock::Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(REQUESTED_ABI))?
        .handle_access(AccessNet::from_all(REQUESTED_ABI))?
        .scope(Scope::from_all(REQUESTED_ABI))?
        .create()?
        .all_threads(true)?
        .restrict_self()?;
    let kernel_abi = match status.landlock {
        LandlockStatus::Available {
            effective_abi,
            kernel_abi,
        } => Some(kernel_abi.unwrap_or(effective_abi as i32)),
        _ => None,
    };
    let enforcement = match status.ruleset {
        RulesetStatus::FullyEnforced => Enforcement::Full,
        RulesetStatus::PartiallyEnforced => Enforcement::Partial,
        _ => Enforcement::None,
    };
    Ok(LandlockReport {
        kernel_abi,
        enforcement,
        all_threads: status.all_threads && enforcement != Enforcement::None,
    })
}
