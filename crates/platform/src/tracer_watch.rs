//! The daemon's tracer poll: every thread of a production enclave, through
//! `/proc/PID/task/TID/status`.
//!
//! A tracer attaches to one thread at a time, so every task is checked. The enclave checks
//! itself too (before each ECALL); this poll catches a tracer on an idle enclave. The enclave is
//! the daemon's unreaped child, so its pid cannot be reused while it is watched.

use std::io::Read;

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
        if let Some(tracer) = tracer_pid(&text).filter(|t| *t != 0) {
            return Some((tid, tracer));
        }
    }
    None
}

/// The `TracerPid:` field of a status file.
pub fn tracer_pid(status: &[u8]) -> Option<u32> {
    status.split(|b| *b == b'\n').find_map(|line| {
        let digits = line.strip_prefix(b"TracerPid:")?.trim_ascii();
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
    fn reads_the_tracer_field() {
        assert_eq!(tracer_pid(b"Name:\tx\nTracerPid:\t42\n"), Some(42));
        assert_eq!(tracer_pid(b"TracerPid:\t0\n"), Some(0));
        assert_eq!(tracer_pid(b"TracerPid:\t-1\n"), None);
        assert_eq!(tracer_pid(b"XTracerPid:\t1\n"), None);
        assert_eq!(tracer_pid(b""), None);
    }

    #[test]
    fn finds_no_tracer_on_an_untraced_process_and_none_on_a_missing_one() {
        assert_eq!(find_tracer(std::process::id()), None);
        assert_eq!(find_tracer(u32::MAX), None);
    }
}
