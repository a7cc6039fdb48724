//! The enclave process's seccomp-BPF allowlist, kept as data: each rule names a system call,
//! optional argument conditions, and the reason the enclave runtime needs it after lockdown.
//!
//! Everything else kills the whole process (`SECCOMP_RET_KILL_PROCESS`, seen by the daemon as
//! `SIGSYS`, "sandbox violation"). The filter is compiled with `seccompiler` at lockdown (so
//! values known only then, like the enclave's pid, can be used) and installed on every thread
//! at once with `SECCOMP_FILTER_FLAG_TSYNC`.
//!
//! What is deliberately absent, and why:
//! - `open`, `openat`, `socket`, `connect`, `execve`, `ptrace`, `process_vm_*`, `kill`: the
//!   enclave reaches the world only through descriptors the host passed it, as SGX enclaves
//!   only through OCALLs.
//! - `mmap`, `mprotect`, `brk`, `mremap`, and `madvise` but for `MADV_DONTNEED`: the heap is
//!   a fixed secret arena and thread stacks are made before lockdown, so no memory is needed
//!   afterwards; without them no page can ever become executable, so the code stays exactly
//!   the measured image.
//! - `clone`, `clone3`: worker threads are started before lockdown.
//! - `rt_sigaction`, `prctl`, `seccomp`: the enclave cannot change its sandbox or handlers.
//!
//! This module must never allow a call that opens, creates or maps anything.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use thiserror::Error;

/// One allowed system call, possibly only with some arguments.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The system call's name, as in `man 2`.
    pub syscall: &'static str,
    /// Its number on x86-64.
    pub nr: i64,
    /// Conditions that must all hold; empty allows every call. Several rules for the same
    /// system call are alternatives.
    pub args: &'static [Arg],
    /// Why the enclave runtime needs it after lockdown.
    pub reason: &'static str,
}

/// A condition on one argument of a system call.
#[derive(Debug, Clone, Copy)]
pub struct Arg {
    /// Argument index, 0 to 5.
    pub index: u8,
    /// Whether to compare the low 32 bits (`int` arguments) or all 64.
    pub width: Width,
    pub op: Op,
    pub value: Value,
}

/// How many bits of an argument are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    Dword,
    Qword,
}

/// How an argument is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    /// `(arg & mask) == value`.
    MaskedEq(u64),
}

/// The value an argument is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    Const(u64),
    /// The enclave process's own pid, known only at lockdown.
    OwnPid,
}

/// Values the policy refers to that are known only when it is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyParams {
    /// The enclave process's pid (its thread-group id).
    pub pid: u32,
}

impl PolicyParams {
    /// The calling process's values.
    pub fn current() -> Self {
        Self {
            pid: rustix::process::getpid()
                .as_raw_nonzero()
                .get()
                .unsigned_abs(),
        }
    }
}

/// Why the policy could not be compiled or installed.
#[derive(Debug, Error)]
pub enum SeccompError {
    /// The policy is malformed (an argument index above 5, too many instructions).
    #[error("compiling the seccomp policy failed: {0}")]
    Compile(#[from] seccompiler::BackendError),
    /// The kernel refused the filter, or another thread could not be synchronised.
    #[error("installing the seccomp filter failed: {0}")]
    Install(#[from] seccompiler::Error),
}

const fn allow(syscall: &'static str, nr: i64, reason: &'static str) -> Rule {
    Rule {
        syscall,
        nr,
        args: &[],
        reason,
    }
}

/// `futex` operations are compared without their `FUTEX_PRIVATE_FLAG` and
/// `FUTEX_CLOCK_REALTIME` bits.
const FUTEX_CMD_MASK: u64 =
    0xFFFF_FFFF & !((libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME) as u64);

const fn futex(op: i32) -> [Arg; 1] {
    [Arg {
        index: 1,
        width: Width::Dword,
        op: Op::MaskedEq(FUTEX_CMD_MASK),
        value: Value::Const(op as u64),
    }]
}

const FUTEX_REASON: &str = "std's Mutex, Condvar and thread parking, and the host channel's \
    doorbells, wait and wake on futexes; only plain and bitset wait/wake are allowed, not the \
    PI and requeue operations behind past kernel exploits";

/// The enclave process's allowlist after lockdown.
pub const ENCLAVE_POLICY: &[Rule] = &[
    allow(
        "read",
        libc::SYS_read,
        "receiving ECALLs and OCALL replies on descriptors the host passed in; reading opens nothing new",
    ),
    allow(
        "write",
        libc::SYS_write,
        "sending OCALLs, ECALL results and panic messages on descriptors already open",
    ),
    allow(
        "writev",
        libc::SYS_writev,
        "glibc writes its fatal-error messages (a failed assertion, heap corruption) to stderr \
         with writev before aborting, so a crash says why; like write, on open descriptors only",
    ),
    allow(
        "recvmsg",
        libc::SYS_recvmsg,
        "the host channel's socket, including descriptors the host sends with SCM_RIGHTS",
    ),
    allow(
        "sendmsg",
        libc::SYS_sendmsg,
        "the host channel's socket; it is already connected, and socket/connect are forbidden",
    ),
    Rule {
        syscall: "pread64",
        nr: libc::SYS_pread64,
        args: &[Arg {
            index: 3,
            width: Width::Qword,
            op: Op::Eq,
            value: Value::Const(0),
        }],
        reason: "the tracer probe re-reads /proc status files opened before lockdown, always at \
                 offset 0 (which makes the kernel regenerate them)",
    },
    allow(
        "close",
        libc::SYS_close,
        "dropping descriptors; closing can only lose access, never gain it",
    ),
    Rule {
        syscall: "fcntl",
        nr: libc::SYS_fcntl,
        args: &[Arg {
            index: 1,
            width: Width::Dword,
            op: Op::Eq,
            value: Value::Const(libc::F_GETFD as u64),
        }],
        reason: "std's OwnedFd drop checks that the descriptor is open (F_GETFD) in debug builds; \
                 it only reads the close-on-exec flag, no other command is allowed",
    },
    Rule {
        syscall: "futex",
        nr: libc::SYS_futex,
        args: &futex(libc::FUTEX_WAIT),
        reason: FUTEX_REASON,
    },
    Rule {
        syscall: "futex",
        nr: libc::SYS_futex,
        args: &futex(libc::FUTEX_WAKE),
        reason: FUTEX_REASON,
    },
    Rule {
        syscall: "futex",
        nr: libc::SYS_futex,
        args: &futex(libc::FUTEX_WAIT_BITSET),
        reason: FUTEX_REASON,
    },
    Rule {
        syscall: "futex",
        nr: libc::SYS_futex,
        args: &futex(libc::FUTEX_WAKE_BITSET),
        reason: FUTEX_REASON,
    },
    allow(
        "sched_yield",
        libc::SYS_sched_yield,
        "spin-lock back-off and std::thread::yield_now",
    ),
    allow(
        "clock_gettime",
        libc::SYS_clock_gettime,
        "std::time, when the vDSO falls back to the system call (CPU-time clocks, unstable TSC)",
    ),
    allow(
        "clock_nanosleep",
        libc::SYS_clock_nanosleep,
        "std::thread::sleep (glibc's nanosleep is clock_nanosleep)",
    ),
    allow(
        "nanosleep",
        libc::SYS_nanosleep,
        "sleeping, for libraries that call it directly",
    ),
    allow(
        "getrandom",
        libc::SYS_getrandom,
        "keys and nonces come from the kernel's CSPRNG; it only fills the caller's buffer",
    ),
    allow(
        "munmap",
        libc::SYS_munmap,
        "dropping secret regions (a secret-stack thread's stack) and std's per-thread signal \
         stacks; unmapping only shrinks the address space, and mmap/mprotect stay forbidden",
    ),
    Rule {
        syscall: "madvise",
        nr: libc::SYS_madvise,
        args: &[Arg {
            index: 2,
            width: Width::Dword,
            op: Op::Eq,
            value: Value::Const(libc::MADV_DONTNEED as u64),
        }],
        reason: "glibc hands back the unused part of an ending thread's stack (stacks it \
                 allocated) with MADV_DONTNEED; discarding pages can only lose data",
    },
    allow(
        "sigaltstack",
        libc::SYS_sigaltstack,
        "std sets up and removes a thread's alternate signal stack for its overflow handler",
    ),
    allow(
        "rt_sigprocmask",
        libc::SYS_rt_sigprocmask,
        "glibc blocks signals around thread exit and abort(); it changes only this thread's mask",
    ),
    allow(
        "rt_sigreturn",
        libc::SYS_rt_sigreturn,
        "returning from a signal handler (Rust's stack-overflow handler, a caught SIGABRT)",
    ),
    allow(
        "restart_syscall",
        libc::SYS_restart_syscall,
        "the kernel resumes a sleep interrupted by a stop signal (SIGSTOP/SIGCONT from the host) \
         with it",
    ),
    allow(
        "exit",
        libc::SYS_exit,
        "a worker thread ends when its function returns",
    ),
    allow(
        "exit_group",
        libc::SYS_exit_group,
        "the enclave process ends, normally or by abort()",
    ),
    allow(
        "getpid",
        libc::SYS_getpid,
        "abort() names its own process; the pid is no secret",
    ),
    allow(
        "gettid",
        libc::SYS_gettid,
        "abort() names its own thread; the tid is no secret",
    ),
    Rule {
        syscall: "tgkill",
        nr: libc::SYS_tgkill,
        args: &[
            Arg {
                index: 0,
                width: Width::Dword,
                op: Op::Eq,
                value: Value::OwnPid,
            },
            Arg {
                index: 2,
                width: Width::Dword,
                op: Op::Eq,
                value: Value::Const(libc::SIGABRT as u64),
            },
        ],
        reason: "a panic aborts with SIGABRT raised against the enclave itself, so the host sees \
                 a crash, not a sandbox violation; no other process, no other signal",
    },
];

/// Compiles `policy` into a BPF program: allow what a rule matches, kill the process otherwise.
pub fn compile(policy: &[Rule], params: PolicyParams) -> Result<BpfProgram, SeccompError> {
    let mut rules: BTreeMap<i64, Option<Vec<SeccompRule>>> = BTreeMap::new();
    for rule in policy {
        let entry = rules.entry(rule.nr).or_insert_with(|| Some(Vec::new()));
        if rule.args.is_empty() {
            // An unconditional rule allows every call; conditions would only narrow it.
            *entry = None;
            continue;
        }
        if let Some(alternatives) = entry {
            let conditions = rule
                .args
                .iter()
                .map(|arg| condition(arg, params))
                .collect::<Result<Vec<_>, _>>()?;
            alternatives.push(SeccompRule::new(conditions)?);
        }
    }
    let rules = rules
        .into_iter()
        .map(|(nr, alternatives)| (nr, alternatives.unwrap_or_default()))
        .collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )?;
    Ok(filter.try_into()?)
}

fn condition(arg: &Arg, params: PolicyParams) -> Result<SeccompCondition, SeccompError> {
    let value = match arg.value {
        Value::Const(v) => v,
        Value::OwnPid => u64::from(params.pid),
    };
    let width = match arg.width {
        Width::Dword => SeccompCmpArgLen::Dword,
        Width::Qword => SeccompCmpArgLen::Qword,
    };
    let op = match arg.op {
        Op::Eq => SeccompCmpOp::Eq,
        Op::MaskedEq(mask) => SeccompCmpOp::MaskedEq(mask),
    };
    Ok(SeccompCondition::new(arg.index, width, op, value)?)
}

/// Compiles `policy` and installs it on every thread of the process (TSYNC). Sets
/// `no_new_privs`, which an unprivileged process needs for seccomp. Irreversible.
pub fn install(policy: &[Rule], params: PolicyParams) -> Result<(), SeccompError> {
    let program = compile(policy, params)?;
    seccompiler::apply_filter_all_threads(&program)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_says_why() {
        for rule in ENCLAVE_POLICY {
            assert!(rule.reason.len() > 20, "{} needs a reason", rule.syscall);
            assert!(rule.args.iter().all(|a| a.index <= 5), "{}", rule.syscall);
        }
    }

    #[test]
    fn accepts_the_enclave_policy() {
        let program = compile(ENCLAVE_POLICY, PolicyParams::current()).unwrap();
        assert!(program.len() > ENCLAVE_POLICY.len());
    }

    #[test]
    fn rejects_an_argument_index_past_five() {
        let bad = [Rule {
            syscall: "read",
            nr: libc::SYS_read,
            args: &[Arg {
                index: 6,
                width: Width::Dword,
                op: Op::Eq,
                value: Value::Const(0),
            }],
            reason: "an impossible argument index, for the test",
        }];
        assert!(matches!(
            compile(&bad, PolicyParams::current()),
            Err(SeccompError::Compile(_))
        ));
    }

    #[test]
    fn forbids_what_opens_maps_or_escapes() {
        let forbidden = [
            libc::SYS_open,
            libc::SYS_openat,
            libc::SYS_openat2,
            libc::SYS_socket,
            libc::SYS_connect,
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_ptrace,
            libc::SYS_mmap,
            libc::SYS_mprotect,
            libc::SYS_brk,
            libc::SYS_clone,
            libc::SYS_clone3,
            libc::SYS_prctl,
            libc::SYS_seccomp,
            libc::SYS_process_vm_readv,
            libc::SYS_kill,
            libc::SYS_memfd_create,
            libc::SYS_io_uring_setup,
        ];
        for nr in forbidden {
            assert!(
                ENCLAVE_POLICY.iter().all(|r| r.nr != nr),
                "system call {nr} must not be allowed"
            );
        }
    }
}
