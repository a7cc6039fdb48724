//! The daemon's tracer poll: every thread of a production enclave, through
//! `/proc/PID/task/TID/status`.
//!
//! A tracer attaches to one thread at a time, so every task is checked. The enclave checks
//! itself too (before each ECALL); this poll catches a tracer on an idle enclave. The enclave is
//! the daemon's unreaped child, so its pid cannot be reused while it is watched.
//!
//! What it catches: a debugger that stays attached (gdb, strace, an interactive session). What
//! it does not: a CAP_SYS_PTRACE holder that attaches, writes and detaches between two polls
//! (measured at 36–46 µs, unseen; COFFER-SA-0004, `examples/hello/host/tests/root_channels.rs`).
//! Only Yama `ptrace_scope = 3` closes that, and the TCB status says whether it is.

use std::io::Read;

use coffer_boundary::tracer::tracer_pid_from_status;

/// Caps a status read: the kernel's file is about 1.5 KiB.
const STATUS_CAP: u64 = 8192;
/// Caps the tasks checked per poll; an enclave has one thread per TCS and a few more.
const MAX_TASKS: usize = 4096;

/// The first tracer found on any thread of `pid`: `(tid, tracer pid)`. `None` when there is no
/// tracer or the process is gone.
pub fn find_tracer(pid: u32) -> Option<(u32, u32)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    for entry in tasks.take(MAX_TASKS).flatten() {
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let mut text = Vec::new();
        let read = std::fs::File::open(entry.path().join("status"))
            .and_then(|f| f.take(STATUS_CAP).read_to_end(&mut text));
        if read.is_err() {
            continue;
        }
        if let Some(tracer) = tracer_pid_from_status(&text).filter(|t| *t != 0) {
            return Some((tid, tracer));
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_no_tracer_on_an_untraced_process_and_none_on_a_missing_one() {
        assert_eq!(find_tracer(std::process::id()), None);
        assert_eq!(find_tracer(u32::MAX), None);
    }
}
