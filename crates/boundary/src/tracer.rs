//! Detecting a tracer without opening files: a `/proc` status file opened before lockdown and
//! re-read with `pread` at offset 0, which makes the kernel generate its content afresh.
//!
//! A tracer attaches to one thread at a time, and `/proc/self/status` shows the main thread's
//! `TracerPid:` only, so [`TracerProbe::for_process`] watches the main thread and
//! [`TracerProbe::for_current_thread`] (`/proc/thread-self/status`) the thread that opens it;
//! every enclave thread keeps one ([`mod@crate::lockdown`] arranges it).
//!
//! This module must never open anything after it is constructed: under lockdown, `pread64` at
//! offset 0 is the only file access the seccomp policy leaves it.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use thiserror::Error;

/// Caps the status read at 4 KiB, more than the kernel's ~1.5 KiB `status` file, so the
/// buffer is a fixed stack array.
const STATUS_CAP: usize = 4096;

/// Why the tracer could not be checked.
#[derive(Debug, Error)]
pub enum TracerError {
    /// Opening the status file failed (for example after Landlock was applied).
    #[error("opening {path} failed: {source}")]
    Open { path: &'static str, source: Errno },
    /// Reading the status file failed.
    #[error("reading {path} failed: {source}")]
    Read { path: &'static str, source: Errno },
    /// The status file has no well-formed field of that name.
    #[error("{path} has no readable {field} field")]
    MissingField {
        path: &'static str,
        field: &'static str,
    },
}

/// A status file kept open to watch one thread's (or the main thread's) tracer.
#[derive(Debug)]
pub struct TracerProbe {
    fd: OwnedFd,
    path: &'static str,
}

impl TracerProbe {
    /// Watches the process's main thread (`/proc/self/status`).
    pub fn for_process() -> Result<Self, TracerError> {
        Self::open("/proc/self/status")
    }

    /// Watches the calling thread (`/proc/thread-self/status`).
    pub fn for_current_thread() -> Result<Self, TracerError> {
        Self::open("/proc/thread-self/status")
    }

    fn open(path: &'static str) -> Result<Self, TracerError> {
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|source| TracerError::Open { path, source })?;
        Ok(Self { fd, path })
    }

    /// The pid of the process tracing the watched thread, if any.
    pub fn tracer_pid(&self) -> Result<Option<u32>, TracerError> {
        let pid = self.field("TracerPid")?;
        Ok(u32::try_from(pid).ok().filter(|p| *p != 0))
    }

    /// The number of threads in the process.
    pub fn threads(&self) -> Result<u64, TracerError> {
        self.field("Threads")
    }

    fn field(&self, field: &'static str) -> Result<u64, TracerError> {
        let mut buf = [0u8; STATUS_CAP];
        let len = match rustix::io::retry_on_intr(|| rustix::io::pread(&self.fd, &mut buf, 0)) {
            Ok(n) => n,
            Err(source) => {
                return Err(TracerError::Read {
                    path: self.path,
                    source,
                });
            }
        };
        let text = buf.get(..len).unwrap_or(&[]);
        parse_field(text, field).ok_or(TracerError::MissingField {
            path: self.path,
            field,
        })
    }
}

impl AsFd for TracerProbe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for TracerProbe {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// The `TracerPid:` field of a `/proc/.../status` file's text (0 when untraced); `None` when the
/// field is missing or malformed. The daemon's poll reads other processes' status files with it.
pub fn tracer_pid_from_status(status: &[u8]) -> Option<u32> {
    parse_field(status, "TracerPid").and_then(|v| u32::try_from(v).ok())
}

/// Finds `NAME:\t<decimal>` at the start of a line of a `/proc` status file.
fn parse_field(status: &[u8], name: &str) -> Option<u64> {
    status.split(|b| *b == b'\n').find_map(|line| {
        let rest = line.strip_prefix(name.as_bytes())?.strip_prefix(b":")?;
        let digits = rest.trim_ascii();
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_status_fields() {
        let status = b"Name:\tx\nTracerPid:\t1234\nThreads:\t3\n";
        assert_eq!(parse_field(status, "TracerPid"), Some(1234));
        assert_eq!(parse_field(status, "Threads"), Some(3));
        assert_eq!(tracer_pid_from_status(status), Some(1234));
        assert_eq!(tracer_pid_from_status(b"TracerPid:\t0\n"), Some(0));
        assert_eq!(tracer_pid_from_status(b"TracerPid:\t99999999999\n"), None);
    }

    #[test]
    fn rejects_malformed_status_fields() {
        assert_eq!(parse_field(b"TracerPid:\t\n", "TracerPid"), None);
        assert_eq!(parse_field(b"TracerPid:\t-1\n", "TracerPid"), None);
        assert_eq!(parse_field(b"XTracerPid:\t1\n", "TracerPid"), None);
        assert_eq!(parse_field(b"TracerPid\t1\n", "TracerPid"), None);
        assert_eq!(parse_field(b"", "TracerPid"), None);
    }

    #[test]
    fn reports_no_tracer_for_the_test_process() {
        let probe = TracerProbe::for_process().unwrap();
        assert_eq!(probe.tracer_pid().unwrap(), None);
        assert!(probe.threads().unwrap() >= 1);
        let thread = TracerProbe::for_current_thread().unwrap();
        assert_eq!(thread.tracer_pid().unwrap(), None);
    }
}
