//! Root's run-time channels into a process, as an attacker with root drives them: a brief
//! ptrace attach that changes memory and is gone before a poll sees it, a forced write through
//! `/proc/PID/mem`, and taking a descriptor with `pidfd_getfd`. Each returns what the kernel
//! answered, so a test can tell an open channel from a refused one.

use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

/// What a brief ptrace attach did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BriefAttach {
    /// The word at the address before the attach.
    pub original: u64,
    /// The word read back while attached, after `PTRACE_POKEDATA` wrote the changed word.
    pub poked: u64,
    /// From `PTRACE_SEIZE` to `PTRACE_DETACH` returning.
    pub attached_for: Duration,
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

fn pid_t(tid: u32) -> std::io::Result<libc::pid_t> {
    libc::pid_t::try_from(tid).map_err(|_| std::io::Error::from_raw_os_error(libc::ESRCH))
}

/// `PTRACE_SEIZE`s thread `tid`, stops it (`PTRACE_INTERRUPT`), writes `!word` over the word at
/// `addr` (`PTRACE_POKEDATA`, which writes through page protections), reads it back, writes
/// the original back and detaches, from one thread of this process. Nothing is left changed.
pub fn brief_ptrace_poke(tid: u32, addr: u64) -> std::io::Result<BriefAttach> {
    let tid = pid_t(tid)?;
    let addr =
        usize::try_from(addr).map_err(|_| std::io::Error::from_raw_os_error(libc::EFAULT))?;
    let start = Instant::now();
    // SAFETY: PTRACE_SEIZE with no options reads no memory of ours.
    if unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, 0usize, 0usize) } != 0 {
        return Err(errno());
    }
    let outcome = (|| {
        // SAFETY: PTRACE_INTERRUPT of a seized thread reads no memory of ours.
        if unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0usize, 0usize) } != 0 {
            return Err(errno());
        }
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer for the call.
        if unsafe { libc::waitpid(tid, &mut status, libc::__WALL) } != tid {
            return Err(errno());
        }
        let peek = |at: usize| -> std::io::Result<u64> {
            // PEEKDATA returns the word; -1 is also a valid word, so errno decides.
            // SAFETY: __errno_location is this thread's errno; PEEKDATA reads the tracee only.
            unsafe { *libc::__errno_location() = 0 };
            // SAFETY: as above.
            let word = unsafe { libc::ptrace(libc::PTRACE_PEEKDATA, tid, at, 0usize) };
            // SAFETY: this thread's errno.
            if word == -1 && unsafe { *libc::__errno_location() } != 0 {
                return Err(errno());
            }
            Ok(word.cast_unsigned())
        };
        let poke = |at: usize, word: u64| -> std::io::Result<()> {
            // SAFETY: POKEDATA writes the tracee's memory only; `data` is the word itself.
            if unsafe { libc::ptrace(libc::PTRACE_POKEDATA, tid, at, word) } != 0 {
                return Err(errno());
            }
            Ok(())
        };
        let original = peek(addr)?;
        poke(addr, !original)?;
        let poked = peek(addr)?;
        poke(addr, original)?;
        Ok((original, poked))
    })();
    // SAFETY: PTRACE_DETACH with signal 0 reads no memory of ours.
    let detached = unsafe { libc::ptrace(libc::PTRACE_DETACH, tid, 0usize, 0usize) };
    let attached_for = start.elapsed();
    let (original, poked) = outcome?;
    if detached != 0 {
        return Err(errno());
    }
    Ok(BriefAttach {
        original,
        poked,
        attached_for,
    })
}

/// What a forced `/proc/PID/mem` write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForcedWrite {
    pub original: u8,
    /// The byte read back through `/proc/PID/mem` after the write of `!original`.
    pub written: u8,
}

/// Opens `/proc/PID/mem` for writing and writes `!byte` over the byte at `addr` (in a read-only
/// executable mapping, the kernel must force the write), reads it back, then writes the original
/// back. Fails with the kernel's error when the open or the write is refused.
pub fn forced_proc_mem_write(pid: u32, addr: u64) -> std::io::Result<ForcedWrite> {
    let mem = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/{pid}/mem"))?;
    let mut original = [0u8; 1];
    mem.read_exact_at(&mut original, addr)?;
    mem.write_all_at(&[!original[0]], addr)?;
    let mut written = [0u8; 1];
    mem.read_exact_at(&mut written, addr)?;
    mem.write_all_at(&original, addr)?;
    Ok(ForcedWrite {
        original: original[0],
        written: written[0],
    })
}

/// Takes a duplicate of descriptor `fd` of process `pid` with `pidfd_getfd(2)`.
pub fn take_descriptor(pid: u32, fd: i32) -> std::io::Result<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid_t(pid)?)
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ESRCH))?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
    Ok(rustix::process::pidfd_getfd(
        &pidfd,
        fd,
        rustix::process::PidfdGetfdFlags::empty(),
    )?)
}

/// One mapping of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub offset: u64,
    /// The path or pseudo-path (`/secretmem (deleted)`, `[stack]`), empty for anonymous memory.
    pub path: String,
}

/// The mappings of process `pid`.
pub fn mappings(pid: u32) -> Vec<Mapping> {
    let path = format!("/proc/{pid}/maps");
    let maps = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    maps.lines()
        .map(|line| {
            let mut f = line.split_whitespace();
            let (range, perms, offset) = (
                f.next().unwrap_or_default(),
                f.next().unwrap_or_default(),
                f.next().unwrap_or_default(),
            );
            let (_dev, _inode) = (f.next(), f.next());
            let rest: Vec<&str> = f.collect();
            let hex = |s: &str| {
                u64::from_str_radix(s, 16).unwrap_or_else(|e| panic!("{line} in {path}: {e}"))
            };
            let (start, end) = range
                .split_once('-')
                .unwrap_or_else(|| panic!("a range in {path}: {line}"));
            Mapping {
                start: hex(start),
                end: hex(end),
                perms: perms.to_owned(),
                offset: hex(offset),
                path: rest.join(" "),
            }
        })
        .collect()
}

/// Occurrences of `needle` in `haystack` (overlapping ones included).
pub fn count(haystack: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() {
        return 0;
    }
    haystack
        .windows(needle.len())
        .filter(|w| w == &needle)
        .count()
}
