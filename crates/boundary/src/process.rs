//! The enclave process's identity: who it runs as, which one capability it keeps, and how the
//! platform daemon starts it.
//!
//! [`spawn_enclave_process`] is the daemon's side. It forks, and in the child (using only
//! async-signal-safe system calls, everything allocated before the fork) it:
//! 1. resets the signal mask and `SIGPIPE`, marks every inherited descriptor close-on-exec and
//!    places the given descriptors at their target numbers;
//! 2. drops every capability from the bounding set but `CAP_IPC_LOCK` (when it may);
//! 3. switches to the enclave's unprivileged uid and gid (`setgroups([])`, `setresgid`,
//!    `setresuid`, with `PR_SET_KEEPCAPS` so that the permitted set survives the switch);
//! 4. sets permitted, inheritable and effective to `CAP_IPC_LOCK` alone and raises it in the
//!    ambient set, so it survives `execve` and lets the unprivileged process map more secret
//!    memory than `RLIMIT_MEMLOCK` allows (hard limit 8 MiB here, with no `CAP_SYS_RESOURCE`
//!    to raise it);
//! 5. asks for `SIGKILL` when its parent dies (`PR_SET_PDEATHSIG`) and checks that the parent
//!    is still the one that forked it;
//! 6. changes to `/`, sets `no_new_privs` and executes the [`SealedImage`] by descriptor.
//!
//! **An enclave never outlives its daemon.** Its secrets and its EPC go with the daemon, as an
//! SGX enclave's go with its host process. The kernel's parent-death signal fires when the
//! *thread* that forked the child exits, not when its process does, so every enclave is forked
//! from one dedicated spawner thread that lives as long as the process (it never returns): a
//! daemon killed by any signal, `SIGKILL` included, takes that thread with it and the kernel
//! kills every enclave. (Forked from a client's thread, an enclave would be killed when that
//! connection's thread ends, or outlive a daemon whose forking thread had ended.) The signal is
//! set after the uid switch and the capability changes, because changing credentials clears it
//! (`commit_creds`); `execve` of the sealed image keeps it (no set-id bit, no file
//! capabilities, and the ambient `CAP_IPC_LOCK` is no more than the child already holds). The
//! daemon could have died between `fork` and `prctl`: the child then finds `getppid()` changed
//! and stops before `execve`.
//!
//! A failure in the child is reported to the parent through a close-on-exec pipe, naming the
//! step and the errno.
//!
//! [`set_no_new_privs`] and [`set_dumpable`] are the enclave's side, used by
//! [`mod@crate::lockdown`].
//!
//! This module must never run anything but raw system calls between `fork` and `execve`.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use rustix::io::Errno;
use rustix::process::{DumpableBehavior, Pid, Signal, WaitOptions};
use rustix::thread::CapabilitySet;
use thiserror::Error;

use crate::sealed_image::{NullTerminated, SealedImage, SealedImageError, c_strings};

/// Highest descriptor number a child may be given, so the parent's scratch numbers stay small.
pub const MAX_TARGET_FD: RawFd = 1023;

/// Why a process setting could not be applied.
#[derive(Debug, Error)]
pub enum ProcessError {
    /// `prctl(PR_SET_NO_NEW_PRIVS)` failed.
    #[error("setting no_new_privs failed: {0}")]
    NoNewPrivs(Errno),
    /// `prctl(PR_SET_DUMPABLE)` or `PR_GET_DUMPABLE` failed.
    #[error("setting or reading the dumpable flag failed: {0}")]
    Dumpable(Errno),
}

/// Sets `no_new_privs`: `execve` can never grant privileges again (setuid bits, file
/// capabilities), and seccomp and Landlock may be applied without `CAP_SYS_ADMIN`.
pub fn set_no_new_privs() -> Result<(), ProcessError> {
    rustix::thread::set_no_new_privs(true).map_err(ProcessError::NoNewPrivs)
}

/// Makes the process dumpable or not (`PR_SET_DUMPABLE`). A non-dumpable process cannot be
/// `ptrace`d nor have its `/proc/PID/mem` read except by a holder of `CAP_SYS_PTRACE`, and
/// leaves no core dump.
pub fn set_dumpable(dumpable: bool) -> Result<(), ProcessError> {
    rustix::process::set_dumpable_behavior(if dumpable {
        DumpableBehavior::Dumpable
    } else {
        DumpableBehavior::NotDumpable
    })
    .map_err(ProcessError::Dumpable)
}

/// Whether the process is dumpable.
pub fn is_dumpable() -> Result<bool, ProcessError> {
    rustix::process::dumpable_behavior()
        .map(|b| b != DumpableBehavior::NotDumpable)
        .map_err(ProcessError::Dumpable)
}

/// The unprivileged identity an enclave process runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
}

/// What [`spawn_enclave_process`] starts.
#[derive(Debug)]
pub struct SpawnSpec<'a> {
    /// The sealed executable image.
    pub image: &'a SealedImage,
    /// The argument vector, `argv[0]` included.
    pub argv: Vec<String>,
    /// The whole environment (nothing of the daemon's is passed on).
    pub envp: Vec<String>,
    /// Descriptors the child gets, each at its target number (0, 1, 2 for standard I/O). Every
    /// other descriptor is closed at `execve`.
    pub fds: Vec<(BorrowedFd<'a>, RawFd)>,
    /// The identity to switch to; `None` keeps the daemon's (a daemon not started as root).
    /// Either way the child keeps no capability but `CAP_IPC_LOCK` (when asked for), and a
    /// root child loses the others from its bounding set too, so `execve` cannot restore them.
    pub credentials: Option<Credentials>,
    /// Keep `CAP_IPC_LOCK` as the one (ambient) capability across `execve`. The daemon must
    /// hold it (root does).
    pub keep_ipc_lock: bool,
}

/// The step of the child's set-up that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum SpawnStep {
    ResetSignals = 1,
    MarkCloseOnExec,
    MoveDescriptor,
    PlaceDescriptor,
    KeepCapabilities,
    BoundingSet,
    SetGroups,
    SetGid,
    SetUid,
    SetCapabilities,
    AmbientCapability,
    ChangeDirectory,
    NoNewPrivs,
    ParentDeathSignal,
    ParentGone,
    Exec,
}

impl SpawnStep {
    const ALL: [SpawnStep; 16] = [
        Self::ResetSignals,
        Self::MarkCloseOnExec,
        Self::MoveDescriptor,
        Self::PlaceDescriptor,
        Self::KeepCapabilities,
        Self::BoundingSet,
        Self::SetGroups,
        Self::SetGid,
        Self::SetUid,
        Self::SetCapabilities,
        Self::AmbientCapability,
        Self::ChangeDirectory,
        Self::NoNewPrivs,
        Self::ParentDeathSignal,
        Self::ParentGone,
        Self::Exec,
    ];

    fn from_code(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as u32 == code)
    }
}

impl std::fmt::Display for SpawnStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ResetSignals => "resetting the signal mask",
            Self::MarkCloseOnExec => "marking inherited descriptors close-on-exec",
            Self::MoveDescriptor => "moving a descriptor out of the way",
            Self::PlaceDescriptor => "placing a descriptor at its target number",
            Self::KeepCapabilities => "PR_SET_KEEPCAPS",
            Self::BoundingSet => "dropping the capability bounding set",
            Self::SetGroups => "setgroups",
            Self::SetGid => "setresgid",
            Self::SetUid => "setresuid",
            Self::SetCapabilities => "capset (keeping only CAP_IPC_LOCK)",
            Self::AmbientCapability => "raising CAP_IPC_LOCK in the ambient set",
            Self::ChangeDirectory => "chdir(\"/\")",
            Self::NoNewPrivs => "PR_SET_NO_NEW_PRIVS",
            Self::ParentDeathSignal => "PR_SET_PDEATHSIG",
            Self::ParentGone => "checking that the daemon still runs (it ended during the fork)",
            Self::Exec => "execveat of the sealed image",
        })
    }
}

/// Why an enclave process could not be started.
#[derive(Debug, Error)]
pub enum SpawnError {
    /// `argv` is empty.
    #[error("the argument vector is empty; it needs at least argv[0]")]
    NoArgv,
    /// A string holds a NUL byte.
    #[error(transparent)]
    BadString(#[from] SealedImageError),
    /// A target descriptor number is negative or above [`MAX_TARGET_FD`].
    #[error("descriptor target {0} is outside 0..={MAX_TARGET_FD}")]
    BadTarget(RawFd),
    /// Two descriptors were given the same target.
    #[error("descriptor target {0} is given twice")]
    DuplicateTarget(RawFd),
    /// The error-report pipe could not be made.
    #[error("creating the error-report pipe failed: {0}")]
    Pipe(Errno),
    /// `fork(2)` failed.
    #[error("fork failed: {0}")]
    Fork(Errno),
    /// The child failed before `execve` succeeded.
    #[error("the enclave process could not be started: {step} failed: {errno}")]
    Child { step: SpawnStep, errno: Errno },
    /// The child's report was unreadable.
    #[error("reading the child's start-up report failed: {0}")]
    Report(Errno),
    /// The spawner thread could not be started or has gone.
    #[error("the enclave spawner thread is unavailable: {0}")]
    Spawner(String),
    /// `pidfd_open(2)` failed.
    #[error("opening a pidfd for the enclave process failed: {0}")]
    Pidfd(Errno),
}

/// A started enclave process. It is not killed nor reaped when dropped: the daemon owns its
/// lifecycle through [`EnclaveChild::wait`] or the pidfd.
#[derive(Debug)]
pub struct EnclaveChild {
    pid: Pid,
    pidfd: OwnedFd,
}

impl EnclaveChild {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid.as_raw_nonzero().get().unsigned_abs()
    }

    /// A pidfd for the process: readable (pollable) once it exits, and safe against pid reuse.
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.pidfd.as_fd()
    }

    /// Sends `SIGKILL` through the pidfd.
    pub fn kill(&self) -> Result<(), Errno> {
        rustix::process::pidfd_send_signal(&self.pidfd, Signal::KILL)
    }

    /// Waits for the process to end and reaps it.
    pub fn wait(&self) -> Result<ExitStatus, Errno> {
        wait_for(self.pid, WaitOptions::empty()).and_then(|s| s.ok_or(Errno::CHILD))
    }

    /// Reaps the process if it has ended.
    pub fn try_wait(&self) -> Result<Option<ExitStatus>, Errno> {
        wait_for(self.pid, WaitOptions::NOHANG)
    }
}

fn wait_for(pid: Pid, options: WaitOptions) -> Result<Option<ExitStatus>, Errno> {
    let waited = rustix::io::retry_on_intr(|| rustix::process::waitpid(Some(pid), options))?;
    Ok(waited.map(|(_, status)| ExitStatus::from_raw(status.as_raw())))
}

/// Everything the child needs, prepared before the fork so the child allocates nothing.
#[derive(Debug)]
struct ChildPlan<'a> {
    /// The daemon's pid: the child's parent, checked after `PR_SET_PDEATHSIG`.
    parent: Pid,
    image: RawFd,
    report: RawFd,
    /// (source, target) pairs.
    fds: Vec<(RawFd, RawFd)>,
    /// Scratch space for the moved sources, one per pair.
    moved: Vec<RawFd>,
    /// Lowest number the moved descriptors may take: above every target.
    floor: RawFd,
    credentials: Option<Credentials>,
    keep_ipc_lock: bool,
    drop_bounding_set: bool,
    argv: NullTerminated<'a>,
    envp: NullTerminated<'a>,
}

/// Starts an enclave process as described in the module documentation.
pub fn spawn_enclave_process(spec: SpawnSpec<'_>) -> Result<EnclaveChild, SpawnError> {
    if spec.argv.is_empty() {
        return Err(SpawnError::NoArgv);
    }
    let argv_strs: Vec<&str> = spec.argv.iter().map(String::as_str).collect();
    let envp_strs: Vec<&str> = spec.envp.iter().map(String::as_str).collect();
    let argv = c_strings(&argv_strs)?;
    let envp = c_strings(&envp_strs)?;

    let mut targets = Vec::with_capacity(spec.fds.len());
    for (_, target) in &spec.fds {
        if !(0..=MAX_TARGET_FD).contains(target) {
            return Err(SpawnError::BadTarget(*target));
        }
        if targets.contains(target) {
            return Err(SpawnError::DuplicateTarget(*target));
        }
        targets.push(*target);
    }
    let floor = targets.iter().copied().max().unwrap_or(2).max(2) + 1;

    let (report_read, report_write) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(SpawnError::Pipe)?;

    // Dropping the bounding set needs CAP_SETPCAP; a daemon without it has no capabilities to
    // pass on anyway.
    let drop_bounding_set = rustix::thread::capabilities(None)
        .map(|c| c.effective.contains(CapabilitySet::SETPCAP))
        .unwrap_or(false);

    let job = SpawnJob {
        parent: rustix::process::getpid(),
        image: spec.image.as_fd_raw(),
        report: report_write.as_raw_fd(),
        fds: spec
            .fds
            .iter()
            .map(|(fd, target)| (fd.as_raw_fd(), *target))
            .collect(),
        floor,
        credentials: spec.credentials,
        keep_ipc_lock: spec.keep_ipc_lock,
        drop_bounding_set,
        argv,
        envp,
    };
    // The descriptors in `job` stay open: this thread holds their owners until the answer.
    let pid = spawner::fork(job)?;
    drop(report_write);

    let mut report = [0u8; 8];
    // The child writes its 8-byte report in one write(2) to a pipe, so it arrives whole or
    // not at all (the pipe closes on a successful exec).
    let got = match rustix::io::retry_on_intr(|| rustix::io::read(&report_read, &mut report)) {
        Ok(n) => n,
        Err(e) => {
            let _ = wait_for(pid, WaitOptions::empty());
            return Err(SpawnError::Report(e));
        }
    };
    if got != 0 {
        let _ = wait_for(pid, WaitOptions::empty());
        let (step, errno) = report.split_at(4);
        let step = u32::from_le_bytes(step.try_into().unwrap_or_default());
        let errno = i32::from_le_bytes(errno.try_into().unwrap_or_default());
        return Err(SpawnError::Child {
            step: SpawnStep::from_code(step).unwrap_or(SpawnStep::Exec),
            errno: Errno::from_raw_os_error(errno),
        });
    }
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(SpawnError::Pidfd)?;
    Ok(EnclaveChild { pid, pidfd })
}

/// What the spawner thread needs to fork one enclave: descriptors by number (their owners stay
/// open in the caller, which waits for the answer) and owned strings.
#[derive(Debug)]
struct SpawnJob {
    parent: Pid,
    image: RawFd,
    report: RawFd,
    fds: Vec<(RawFd, RawFd)>,
    floor: RawFd,
    credentials: Option<Credentials>,
    keep_ipc_lock: bool,
    drop_bounding_set: bool,
    argv: Vec<std::ffi::CString>,
    envp: Vec<std::ffi::CString>,
}

/// The one thread every enclave is forked from (see the module documentation): it lives as long
/// as the process, so an enclave's parent-death signal fires exactly when the daemon dies.
mod spawner {
    use std::sync::mpsc::{Sender, SyncSender, channel, sync_channel};
    use std::sync::{Mutex, OnceLock};

    use rustix::io::Errno;
    use rustix::process::Pid;

    use super::{ChildPlan, SpawnError, SpawnJob};
    use crate::sealed_image::NullTerminated;

    type Reply = SyncSender<Result<Pid, Errno>>;
    /// The spawner's inbox, or why the spawner could not be started.
    type Jobs = Mutex<Sender<(SpawnJob, Reply)>>;

    static JOBS: OnceLock<Result<Jobs, String>> = OnceLock::new();

    fn start() -> Result<Jobs, String> {
        let (jobs, inbox) = channel::<(SpawnJob, Reply)>();
        std::thread::Builder::new()
            .name("coffer-spawner".into())
            .spawn(move || {
                // The sender lives in a static: `recv` never fails, and this thread never ends
                // before the process does.
                while let Ok((job, reply)) = inbox.recv() {
                    let _ = reply.send(run(job));
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Mutex::new(jobs))
    }

    fn run(job: SpawnJob) -> Result<Pid, Errno> {
        let mut plan = ChildPlan {
            parent: job.parent,
            image: job.image,
            report: job.report,
            moved: vec![-1; job.fds.len()],
            fds: job.fds,
            floor: job.floor,
            credentials: job.credentials,
            keep_ipc_lock: job.keep_ipc_lock,
            drop_bounding_set: job.drop_bounding_set,
            argv: NullTerminated::new(&job.argv),
            envp: NullTerminated::new(&job.envp),
        };
        super::sys::fork_and_exec(&mut plan)
    }

    /// Forks `job` on the spawner thread and returns the child's pid.
    pub(super) fn fork(job: SpawnJob) -> Result<Pid, SpawnError> {
        let jobs = JOBS
            .get_or_init(start)
            .as_ref()
            .map_err(|e| SpawnError::Spawner(e.clone()))?;
        let (reply, answer) = sync_channel(1);
        jobs.lock()
            .unwrap_or_else(|e| e.into_inner())
            .send((job, reply))
            .map_err(|_| SpawnError::Spawner("the spawner thread has ended".into()))?;
        answer
            .recv()
            .map_err(|_| SpawnError::Spawner("the spawner thread did not answer".into()))?
            .map_err(SpawnError::Fork)
    }
}

impl SealedImage {
    fn as_fd_raw(&self) -> RawFd {
        use std::os::fd::AsFd;
        self.as_fd().as_raw_fd()
    }
}

/// `fork` and everything the child does before `execve`.
#[allow(unsafe_code)]
mod sys {
    use std::os::fd::{BorrowedFd, RawFd};

    use rustix::io::Errno;
    use rustix::process::Pid;
    use rustix::thread::{CapabilitySet, CapabilitySets};

    use super::{ChildPlan, SpawnStep};

    pub(super) fn fork_and_exec(plan: &mut ChildPlan<'_>) -> Result<Pid, Errno> {
        // SAFETY: the child runs only `child`, which makes raw system calls on memory prepared
        // before the fork (no allocation, no locks, no Rust runtime state), and ends in
        // `execveat` or `_exit`: the async-signal-safe subset that is sound after forking a
        // multi-threaded process.
        let pid = unsafe { libc::fork() };
        match pid {
            -1 => Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO)),
            0 => {
                let (step, errno) = child(plan);
                report(plan, step, errno);
                // SAFETY: `_exit` ends the child without running the parent's atexit handlers or
                // destructors, which must not run twice.
                unsafe { libc::_exit(127) }
            }
            pid => Pid::from_raw(pid).ok_or(Errno::SRCH),
        }
    }

    fn report(plan: &ChildPlan<'_>, step: SpawnStep, errno: Errno) {
        let mut message = [0u8; 8];
        let (a, b) = message.split_at_mut(4);
        a.copy_from_slice(&(step as u32).to_le_bytes());
        b.copy_from_slice(&errno.raw_os_error().to_le_bytes());
        // SAFETY: `plan.report` is the pipe's write end, open in the child (moved above every
        // target before anything could close it).
        let fd = unsafe { BorrowedFd::borrow_raw(plan.report) };
        let _ = rustix::io::write(fd, &message);
    }

    /// The child's set-up; returns only on failure.
    fn child(plan: &mut ChildPlan<'_>) -> (SpawnStep, Errno) {
        match setup(plan) {
            Err(failure) => failure,
            Ok(()) => {
                // SAFETY: `plan.image` is the sealed image's descriptor, moved above every target.
                let image = unsafe { BorrowedFd::borrow_raw(plan.image) };
                let errno = crate::sealed_image::sys::execveat(
                    image,
                    plan.argv.as_ptr(),
                    plan.envp.as_ptr(),
                );
                (SpawnStep::Exec, errno)
            }
        }
    }

    fn last_errno() -> Errno {
        Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO)
    }

    /// Duplicates `fd` at the lowest free number >= `floor`, close-on-exec.
    fn move_up(fd: RawFd, floor: RawFd) -> Result<RawFd, Errno> {
        // SAFETY: F_DUPFD_CLOEXEC only creates a new descriptor; an invalid `fd` gives EBADF.
        let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, floor) };
        if new < 0 { Err(last_errno()) } else { Ok(new) }
    }

    fn setup(plan: &mut ChildPlan<'_>) -> Result<(), (SpawnStep, Errno)> {
        use SpawnStep as S;
        let at = |step: SpawnStep| move |e: Errno| (step, e);

        // The report pipe first, so no later step can overwrite it.
        plan.report = move_up(plan.report, plan.floor).map_err(at(S::MoveDescriptor))?;

        // SAFETY: `set` is a local, initialised by sigemptyset before use; SIG_SETMASK with an
        // empty set and resetting SIGPIPE to its default only change this process's signal state.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            if libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0
                || libc::signal(libc::SIGPIPE, libc::SIG_DFL) == libc::SIG_ERR
            {
                return Err((S::ResetSignals, last_errno()));
            }
        }

        // SAFETY: marks every open descriptor close-on-exec; closes nothing.
        if unsafe { libc::close_range(0, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as i32) } != 0 {
            return Err((S::MarkCloseOnExec, last_errno()));
        }

        plan.image = move_up(plan.image, plan.floor).map_err(at(S::MoveDescriptor))?;
        for ((source, _), moved) in plan.fds.iter().zip(plan.moved.iter_mut()) {
            *moved = move_up(*source, plan.floor).map_err(at(S::MoveDescriptor))?;
        }
        for ((_, target), moved) in plan.fds.iter().zip(plan.moved.iter()) {
            // SAFETY: `moved` is open and above every target, so it differs from `target`;
            // dup2 then gives `target` the same file without close-on-exec.
            if unsafe { libc::dup2(*moved, *target) } < 0 {
                return Err((S::PlaceDescriptor, last_errno()));
            }
        }

        let keep = if plan.keep_ipc_lock {
            CapabilitySet::IPC_LOCK
        } else {
            CapabilitySet::empty()
        };
        if plan.credentials.is_some() && plan.keep_ipc_lock {
            rustix::thread::set_keep_capabilities(true).map_err(at(S::KeepCapabilities))?;
        }
        if plan.drop_bounding_set {
            for cap in 0..64u32 {
                let set = CapabilitySet::from_bits_retain(1 << cap);
                if keep.contains(set) {
                    continue;
                }
                match rustix::thread::remove_capability_from_bounding_set(set) {
                    Ok(()) => {}
                    // Past the kernel's last capability.
                    Err(Errno::INVAL) => break,
                    Err(e) => return Err((S::BoundingSet, e)),
                }
            }
        }
        if let Some(creds) = plan.credentials {
            let uid = rustix::process::Uid::from_raw(creds.uid);
            let gid = rustix::process::Gid::from_raw(creds.gid);
            rustix::thread::set_thread_groups(&[]).map_err(at(S::SetGroups))?;
            rustix::thread::set_thread_res_gid(gid, gid, gid).map_err(at(S::SetGid))?;
            rustix::thread::set_thread_res_uid(uid, uid, uid).map_err(at(S::SetUid))?;
        }
        rustix::thread::set_capabilities(
            None,
            CapabilitySets {
                effective: keep,
                permitted: keep,
                inheritable: keep,
            },
        )
        .map_err(at(S::SetCapabilities))?;
        if plan.keep_ipc_lock {
            rustix::thread::configure_capability_in_ambient_set(CapabilitySet::IPC_LOCK, true)
                .map_err(at(S::AmbientCapability))?;
        } else {
            rustix::thread::clear_ambient_capability_set().map_err(at(S::AmbientCapability))?;
        }

        // After every credential change, which would clear it (see the module documentation).
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
            .map_err(at(S::ParentDeathSignal))?;
        if rustix::process::getppid() != Some(plan.parent) {
            return Err((S::ParentGone, Errno::SRCH));
        }

        rustix::process::chdir(c"/").map_err(at(S::ChangeDirectory))?;
        rustix::thread::set_no_new_privs(true).map_err(at(S::NoNewPrivs))?;
        Ok(())
    }
}
