//! Why an enclave was lost, in words and as the code written into its channel header.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// The `code` of `Channel::mark_lost`: what kind of event ended the enclave. The reason text
/// carries the details.
pub mod code {
    /// Destroyed by its owner (or because its owner disconnected).
    pub const DESTROYED: u32 = 1;
    /// The process exited or crashed.
    pub const EXITED: u32 = 2;
    /// Killed by its seccomp policy (SIGSYS).
    pub const SANDBOX_VIOLATION: u32 = 3;
    /// A tracer was attached (seen by the daemon or by the enclave).
    pub const TRACER: u32 = 4;
    /// The enclave reported itself lost or failed.
    pub const REPORTED: u32 = 5;
}

const SIGABRT: i32 = 6;
const SIGSYS: i32 = 31;

/// The reason and code for an enclave process that ended with `status`.
pub fn exit_reason(status: ExitStatus) -> (u32, String) {
    match (status.signal(), status.code()) {
        (Some(SIGSYS), _) => (
            code::SANDBOX_VIOLATION,
            "sandbox violation: the enclave made a forbidden system call (killed by seccomp)"
                .into(),
        ),
        (Some(SIGABRT), _) => (code::EXITED, "the enclave aborted (a panic)".into()),
        (Some(n), _) => (code::EXITED, format!("crashed (signal {n})")),
        (None, Some(n)) => (code::EXITED, format!("exited with status {n}")),
        (None, None) => (code::EXITED, "ended for an unknown reason".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signalled(sig: i32) -> ExitStatus {
        ExitStatus::from_raw(sig)
    }

    fn exited(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    #[test]
    fn maps_a_seccomp_kill_to_a_sandbox_violation() {
        let (c, r) = exit_reason(signalled(SIGSYS));
        assert_eq!(c, code::SANDBOX_VIOLATION);
        assert_eq!(
            r,
            "sandbox violation: the enclave made a forbidden system call (killed by seccomp)"
        );
    }

    #[test]
    fn maps_aborts_crashes_and_exits() {
        assert_eq!(
            exit_reason(signalled(SIGABRT)).1,
            "the enclave aborted (a panic)"
        );
        assert_eq!(exit_reason(signalled(11)).1, "crashed (signal 11)");
        assert_eq!(
            exit_reason(signalled(9)),
            (code::EXITED, "crashed (signal 9)".into())
        );
        assert_eq!(exit_reason(exited(3)).1, "exited with status 3");
        assert_eq!(exit_reason(exited(0)).1, "exited with status 0");
    }

    #[test]
    fn maps_real_process_endings() {
        let status = std::process::Command::new("sh")
            .args(["-c", "kill -SYS $$"])
            .status();
        if let Ok(status) = status {
            assert_eq!(exit_reason(status).0, code::SANDBOX_VIOLATION);
        }
        if let Ok(status) = std::process::Command::new("sh")
            .args(["-c", "exit 7"])
            .status()
        {
            assert_eq!(exit_reason(status).1, "exited with status 7");
        }
    }
}
