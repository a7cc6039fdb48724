//! Taking ownership of the descriptors the daemon passed at launch: the crate's only unsafe code.
#![allow(unsafe_code)]

use std::os::fd::{OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

use thiserror::Error;

/// Descriptors already taken, one bit per number below 32.
static TAKEN: AtomicU32 = AtomicU32::new(0);

/// Why an inherited descriptor cannot be used.
#[derive(Debug, Error)]
pub enum DescriptorError {
    /// The descriptor is not open: the program was not started by the platform daemon.
    #[error(
        "descriptor {fd} ({role}) is not open: an enclave is started by the platform daemon, \
         not run directly"
    )]
    NotOpen { fd: RawFd, role: &'static str },
    /// The descriptor was taken before.
    #[error("descriptor {fd} ({role}) was taken already")]
    Taken { fd: RawFd, role: &'static str },
    /// The descriptor is open but of the wrong kind.
    #[error("descriptor {fd} ({role}) is not {expected}")]
    WrongKind {
        fd: RawFd,
        role: &'static str,
        expected: &'static str,
    },
}

/// Takes ownership of inherited descriptor `fd` (below 32), once per process.
pub(crate) fn take(fd: RawFd, role: &'static str) -> Result<OwnedFd, DescriptorError> {
    let bit = u32::try_from(fd)
        .ok()
        .and_then(|n| 1u32.checked_shl(n))
        .ok_or(DescriptorError::NotOpen { fd, role })?;
    if TAKEN.fetch_or(bit, Ordering::SeqCst) & bit != 0 {
        return Err(DescriptorError::Taken { fd, role });
    }
    // SAFETY: F_GETFD only reads the descriptor's flags; on a number that is not open it fails
    // with EBADF and touches nothing.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(DescriptorError::NotOpen { fd, role });
    }
    // SAFETY: `fd` is open (checked above) and was inherited across `execve` from the daemon;
    // nothing in this process opened it, so no other owner exists, and the `TAKEN` bit makes
    // this the only `OwnedFd` ever made for it.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}
