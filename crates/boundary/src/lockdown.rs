//! The enclave side: locking the enclave process down before its first ECALL, in the right
//! order.
//!
//! 1. [`begin`], on the main thread before any other thread exists: `no_new_privs`, then
//!    `PR_SET_DUMPABLE 0` (left dumpable for DEBUG enclaves), then glibc's own `malloc` is made
//!    to never need a system call again (below), then the main thread's tracer probe, opened
//!    while `/proc` can still be opened.
//! 2. [`Sandboxing::spawn_worker`], for each ECALL worker: a thread on a secret stack that
//!    first opens its own tracer probe (`/proc/thread-self/status`: a tracer may attach to any
//!    one thread) and applies the Landlock ruleset to itself, then runs the worker function.
//!    Landlock restricts only the calling thread and its future children (kernels before
//!    Landlock ABI 8), which is why each thread applies it itself.
//! 3. [`Sandboxing::finish`]: Landlock on the main thread, a check that every thread of the
//!    process is one of those sandboxed workers, then the seccomp allowlist on all threads at
//!    once (TSYNC). From here on no file can be opened and no memory mapped.
//!
//! [`lockdown`] is 1 and 3 for an enclave with no worker threads.
//!
//! Rust allocations go to the secret heap ([`crate::secret_heap`]), but glibc still calls its
//! own `malloc` internally, for one to record a thread's thread-local destructors the first
//! time such a thread-local is used, which may happen after lockdown. A new glibc arena for a
//! thread, or a larger heap, needs `mmap`, `mprotect` or `brk`, which the seccomp policy
//! forbids. So [`begin`] limits glibc to its one `brk` arena, forbids mmap'd chunks and
//! trimming, and grows that arena by 2 MiB at once: glibc's few small internal allocations
//! then never need the kernel. That memory is ordinary: no secret may go there, and none does
//! (Rust code allocates from the secret heap).
//!
//! This module must never let a thread escape Landlock unnoticed, nor install seccomp before
//! the probes are open.

use std::sync::atomic::{AtomicUsize, Ordering};

use thiserror::Error;

use crate::landlock_policy::{self, LandlockError, LandlockReport};
use crate::process::{self, ProcessError};
use crate::seccomp_policy::{self, PolicyParams, SeccompError};
use crate::secret_mem::MemoryKind;
use crate::threads::{self, SecretThread, ThreadError};
use crate::tracer::{TracerError, TracerProbe};

/// Workers that applied Landlock to themselves and are still running.
static SANDBOXED_WORKERS: AtomicUsize = AtomicUsize::new(0);

/// How to lock the enclave process down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockdownSpec {
    /// The enclave has SGX's DEBUG attribute: it stays dumpable (a debugger may attach) and its
    /// worker stacks are ordinary memory. Landlock and seccomp apply all the same.
    pub debug: bool,
}

/// Why lockdown failed. The enclave must not run an ECALL after any of these.
#[derive(Debug, Error)]
pub enum LockdownError {
    /// `no_new_privs` or the dumpable flag could not be set.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// A tracer probe could not be opened.
    #[error(transparent)]
    Tracer(#[from] TracerError),
    /// Landlock could not be applied.
    #[error(transparent)]
    Landlock(#[from] LandlockError),
    /// The seccomp filter could not be installed.
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    /// A worker thread could not be started.
    #[error(transparent)]
    Thread(#[from] ThreadError),
    /// glibc refused a `mallopt` setting.
    #[error("configuring glibc's malloc failed: mallopt({0}) was refused")]
    LibcMalloc(&'static str),
    /// A worker ended before reporting whether it is sandboxed.
    #[error("a worker thread ended during its sandbox set-up")]
    WorkerVanished,
    /// Some thread was not started through [`Sandboxing::spawn_worker`], so Landlock does
    /// not cover it.
    #[error(
        "the process has {threads} threads but only the main thread and {sandboxed} sandboxed \
         workers are under Landlock; start every thread with Sandboxing::spawn_worker"
    )]
    UnsandboxedThreads { threads: u64, sandboxed: usize },
}

/// Lockdown in progress: between [`begin`] and [`Sandboxing::finish`].
#[derive(Debug)]
pub struct Sandboxing {
    spec: LockdownSpec,
    probe: TracerProbe,
}

/// A locked-down enclave process.
#[derive(Debug)]
pub struct LockedDown {
    spec: LockdownSpec,
    probe: TracerProbe,
    landlock: LandlockReport,
}

/// A worker thread started by [`Sandboxing::spawn_worker`].
#[derive(Debug)]
pub struct Worker<T> {
    thread: SecretThread<Option<T>>,
    landlock: LandlockReport,
}

/// Step 1: `no_new_privs`, the dumpable flag, the main thread's tracer probe.
pub fn begin(spec: LockdownSpec) -> Result<Sandboxing, LockdownError> {
    process::set_no_new_privs()?;
    process::set_dumpable(spec.debug)?;
    sys::prepare_libc_malloc().map_err(LockdownError::LibcMalloc)?;
    let probe = TracerProbe::for_process()?;
    Ok(Sandboxing { spec, probe })
}

/// [`begin`] then [`Sandboxing::finish`], for an enclave process with a single thread.
pub fn lockdown(spec: LockdownSpec) -> Result<LockedDown, LockdownError> {
    begin(spec)?.finish()
}

impl Sandboxing {
    /// Step 2: starts `f` on a thread whose stack of `stack_size` bytes is secret (ordinary for
    /// DEBUG), after the thread has opened its own tracer probe, which `f` receives, and applied
    /// Landlock to itself.
    pub fn spawn_worker<F, T>(&self, stack_size: usize, f: F) -> Result<Worker<T>, LockdownError>
    where
        F: FnOnce(TracerProbe) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<LandlockReport, LockdownError>>(1);
        let kind = MemoryKind::for_debug(self.spec.debug);
        let thread = threads::spawn_on_secret_stack(stack_size, kind, move || {
            let setup = TracerProbe::for_current_thread()
                .map_err(LockdownError::from)
                .and_then(|probe| Ok((probe, landlock_policy::restrict_self()?)));
            match setup {
                Ok((probe, report)) => {
                    let _count = WorkerCount::enter();
                    let _ = tx.send(Ok(report));
                    drop(tx);
                    Some(f(probe))
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    None
                }
            }
        })?;
        match rx.recv() {
            Ok(Ok(landlock)) => Ok(Worker { thread, landlock }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(LockdownError::WorkerVanished)
            }
        }
    }

    /// Step 3: Landlock on the calling (main) thread, the every-thread-is-sandboxed check, and
    /// the seccomp allowlist on all threads.
    pub fn finish(self) -> Result<LockedDown, LockdownError> {
        let landlock = landlock_policy::restrict_self()?;
        if !landlock.all_threads {
            let threads = self.probe.threads()?;
            let sandboxed = SANDBOXED_WORKERS.load(Ordering::SeqCst);
            if threads != 1 + sandboxed as u64 {
                return Err(LockdownError::UnsandboxedThreads { threads, sandboxed });
            }
        }
        seccomp_policy::install(seccomp_policy::ENCLAVE_POLICY, PolicyParams::current())?;
        tracing::debug!(%landlock, debug = self.spec.debug, "enclave process locked down");
        Ok(LockedDown {
            spec: self.spec,
            probe: self.probe,
            landlock,
        })
    }
}

impl LockedDown {
    /// What Landlock enforces, for the TCB status.
    pub fn landlock(&self) -> LandlockReport {
        self.landlock
    }

    /// Whether the enclave is a DEBUG enclave.
    pub fn debug(&self) -> bool {
        self.spec.debug
    }

    /// The pid tracing the main thread, if any (workers check their own probe).
    pub fn tracer_pid(&self) -> Result<Option<u32>, TracerError> {
        self.probe.tracer_pid()
    }
}

impl<T> Worker<T> {
    /// What Landlock enforces on this worker.
    pub fn landlock(&self) -> LandlockReport {
        self.landlock
    }

    /// The worker's stack range.
    pub fn stack_range(&self) -> Option<std::ops::Range<usize>> {
        self.thread.stack_range()
    }

    /// Waits for the worker and returns what its function returned.
    pub fn join(self) -> Result<T, ThreadError> {
        // `None` only when the set-up failed, which `spawn_worker` reported already.
        self.thread.join()?.ok_or(ThreadError::Panicked)
    }
}

/// Counts a running sandboxed worker for as long as it lives.
struct WorkerCount;

impl WorkerCount {
    fn enter() -> Self {
        SANDBOXED_WORKERS.fetch_add(1, Ordering::SeqCst);
        Self
    }
}

impl Drop for WorkerCount {
    fn drop(&mut self) {
        SANDBOXED_WORKERS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// glibc's `malloc` settings.
#[allow(unsafe_code)]
mod sys {
    /// Headroom given to glibc's arena before lockdown.
    const HEADROOM: libc::c_int = 1 << 20;

    pub(super) fn prepare_libc_malloc() -> Result<(), &'static str> {
        let settings: [(libc::c_int, libc::c_int, &'static str); 4] = [
            (libc::M_ARENA_MAX, 1, "M_ARENA_MAX"),
            (libc::M_MMAP_MAX, 0, "M_MMAP_MAX"),
            (libc::M_TRIM_THRESHOLD, libc::c_int::MAX, "M_TRIM_THRESHOLD"),
            (libc::M_TOP_PAD, HEADROOM, "M_TOP_PAD"),
        ];
        for (param, value, name) in settings {
            // SAFETY: mallopt only changes glibc's allocator parameters; it takes glibc's
            // arena lock itself.
            if unsafe { libc::mallopt(param, value) } != 1 {
                return Err(name);
            }
        }
        // SAFETY: a fresh block, freed at once and never used; with M_TOP_PAD it grows the
        // arena by twice HEADROOM, and with no trimming the space stays for later.
        unsafe { libc::free(libc::malloc(HEADROOM.unsigned_abs() as usize)) };
        Ok(())
    }
}
