//! The process the boundary tests run as "enclave" or "attacker" (and a demonstration that a
//! forbidden call kills a locked-down process). An exec'ed process starts single-threaded,
//! which a fork of the multi-threaded test harness does not; tests build it with
//! `coffer_testkit::build_host_example`.
//!
//! Roles (`coffer-boundary-probe ROLE ARGS…`), each reporting on standard output:
//! - `status`: identity, capabilities, `no_new_privs`, dumpable flag.
//! - `secret MIB`: maps and touches MIB mebibytes of secret memory.
//! - `seccomp-allowed`: installs the enclave policy, exercises every rule with allowed
//!   arguments, printing `ok NAME` for each.
//! - `seccomp-forbidden CASE`: installs the policy, then makes a forbidden call (it should die
//!   of SIGSYS; it prints `survived` otherwise).
//! - `landlock`: applies the Landlock ruleset, then tries to open files.
//! - `tracer-watch [debug]`: locks down with one worker; for each line on standard input,
//!   prints `main=PID worker=PID` (the tracers of the main thread and the worker) and the
//!   worker's tid on start.
//! - `enclave-hold [debug]`: the memory-scan target (see tests/attacker.rs): reads a 32-byte
//!   marker into ordinary memory and a 32-byte secret into a secret-stack worker, copies the
//!   secret 1000 times into the secret heap, prints `ready`, waits for standard input to close.
//! - `attach TID`: `PTRACE_SEIZE`s the thread, prints `attached` or `denied ERRNO`, then waits
//!   for standard input to close.

#![deny(unsafe_code)]

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Mutex;

use coffer_boundary::lockdown::{self, LockdownSpec};
use coffer_boundary::seccomp_policy::{self, ENCLAVE_POLICY, PolicyParams};
use coffer_boundary::{MemoryKind, SecretHeap, SecretRegion, TracerProbe, landlock_policy};
use rustix::io::Errno;

#[global_allocator]
static HEAP: SecretHeap = SecretHeap::new();

/// Ordinary memory (.bss) for the scan's marker: the scan must find it in every run.
static MARKER: Mutex<[u8; 32]> = Mutex::new([0; 32]);

fn say(line: &str) {
    let mut bytes = line.as_bytes().to_vec();
    bytes.push(b'\n');
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        match rustix::io::write(std::io::stdout(), rest) {
            Ok(n) => rest = rest.get(n..).unwrap_or(&[]),
            Err(Errno::INTR) => continue,
            Err(_) => return,
        }
    }
}

fn fail(what: &str) -> ! {
    say(&format!("error: {what}"));
    std::process::exit(1)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let role = args.first().map(String::as_str).unwrap_or("");
    let arg = args.get(1).map(String::as_str);
    let debug = arg == Some("debug");
    match role {
        "status" => status(),
        "secret" => secret(arg.and_then(|a| a.parse().ok()).unwrap_or(64)),
        "seccomp-allowed" => seccomp_allowed(),
        "seccomp-forbidden" => seccomp_forbidden(arg.unwrap_or("")),
        "landlock" => landlock(),
        "tracer-watch" => tracer_watch(debug),
        "enclave-hold" => enclave_hold(debug),
        "attach" => attach(arg.and_then(|a| a.parse().ok()).unwrap_or(0)),
        other => fail(&format!("unknown role {other:?}")),
    }
}

fn status() {
    let caps = rustix::thread::capabilities(None).unwrap_or_else(|e| fail(&e.to_string()));
    let mut ambient = 0u64;
    let mut bounding = 0u64;
    for cap in 0..64 {
        let set = rustix::thread::CapabilitySet::from_bits_retain(1 << cap);
        if rustix::thread::capability_is_in_ambient_set(set).unwrap_or(false) {
            ambient |= 1 << cap;
        }
        if rustix::thread::capability_is_in_bounding_set(set).unwrap_or(false) {
            bounding |= 1 << cap;
        }
    }
    say(&format!(
        "uid={} gid={} groups={} eff={:#x} prm={:#x} inh={:#x} amb={:#x} bnd={:#x} nnp={} dumpable={}",
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
        rustix::process::getgroups()
            .map(|g| g.len())
            .unwrap_or(usize::MAX),
        caps.effective.bits(),
        caps.permitted.bits(),
        caps.inheritable.bits(),
        ambient,
        bounding,
        u8::from(rustix::thread::no_new_privs().unwrap_or(false)),
        u8::from(coffer_boundary::process::is_dumpable().unwrap_or(true)),
    ));
}

fn secret(mib: usize) {
    match SecretRegion::new(mib << 20, MemoryKind::Secret) {
        Ok(mut region) => {
            region.as_mut_slice().fill(0x5A);
            let sum: u64 = region.as_slice().iter().map(|b| u64::from(*b)).sum();
            say(&format!("ok {} bytes, sum {sum}", region.len()));
        }
        Err(e) => fail(&e.to_string()),
    }
}

fn seccomp_allowed() {
    install_heap(false);
    // Everything the exercises need is made before lockdown.
    let probe = TracerProbe::for_process().unwrap_or_else(|e| fail(&e.to_string()));
    let (pipe_r, pipe_w) = rustix::pipe::pipe().unwrap_or_else(|e| fail(&e.to_string()));
    let spare = rustix::io::dup(&pipe_r).unwrap_or_else(|e| fail(&e.to_string()));
    let (sock_a, sock_b) = sys::socketpair().unwrap_or_else(|e| fail(&e.to_string()));
    let region =
        SecretRegion::new(1 << 16, MemoryKind::Secret).unwrap_or_else(|e| fail(&e.to_string()));
    let mut ordinary =
        SecretRegion::new(1 << 16, MemoryKind::Ordinary).unwrap_or_else(|e| fail(&e.to_string()));
    sys::catch_sigabrt();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    // A std thread: its start (signal stack mmap) happens before lockdown, its end (munmap,
    // sigaltstack, exit) after.
    let thread = std::thread::spawn(move || {
        let _ = started_tx.send(());
        let _ = go_rx.recv();
    });
    let _ = started_rx.recv();

    seccomp_policy::install(ENCLAVE_POLICY, PolicyParams::current())
        .unwrap_or_else(|e| fail(&e.to_string()));
    say("ok write");
    sys::writev(&pipe_w).unwrap_or_else(|e| fail(&e));
    say("ok writev");

    let mut byte = [0u8; 1];
    rustix::io::write(&pipe_w, b"x").unwrap_or_else(|e| fail(&e.to_string()));
    rustix::io::read(&pipe_r, &mut byte).unwrap_or_else(|e| fail(&e.to_string()));
    rustix::io::read(&pipe_r, &mut byte).unwrap_or_else(|e| fail(&e.to_string()));
    say("ok read");
    sys::sendmsg_recvmsg(&sock_a, &sock_b).unwrap_or_else(|e| fail(&e.to_string()));
    say("ok sendmsg");
    say("ok recvmsg");
    probe.tracer_pid().unwrap_or_else(|e| fail(&e.to_string()));
    say("ok pread64");
    sys::fcntl_getfd(&spare).unwrap_or_else(|e| fail(&e));
    say("ok fcntl");
    drop(spare);
    say("ok close");
    sys::futexes().unwrap_or_else(|e| fail(&e));
    say("ok futex");
    rustix::thread::sched_yield();
    say("ok sched_yield");
    sys::clocks().unwrap_or_else(|e| fail(&e));
    say("ok clock_gettime");
    say("ok clock_nanosleep");
    say("ok nanosleep");
    sys::getrandom().unwrap_or_else(|e| fail(&e));
    say("ok getrandom");
    sys::madvise_dontneed(&mut ordinary).unwrap_or_else(|e| fail(&e));
    say("ok madvise");
    drop(region);
    say("ok munmap");
    sys::signal_masks().unwrap_or_else(|e| fail(&e));
    say("ok sigaltstack");
    say("ok rt_sigprocmask");
    sys::abort_to_self().unwrap_or_else(|e| fail(&e));
    say("ok getpid");
    say("ok gettid");
    say("ok tgkill");
    say("ok rt_sigreturn");
    sys::restart_syscall().unwrap_or_else(|e| fail(&e));
    say("ok restart_syscall");
    let _ = go_tx.send(());
    thread.join().unwrap_or_else(|_| fail("thread panicked"));
    say("ok exit");
    // Returning from main calls exit_group; the test checks the exit status.
    say("ok exit_group");
}

fn seccomp_forbidden(case: &str) {
    install_heap(false);
    let probe = TracerProbe::for_process().unwrap_or_else(|e| fail(&e.to_string()));
    let other = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDONLY,
        rustix::fs::Mode::empty(),
    )
    .unwrap_or_else(|e| fail(&e.to_string()));
    seccomp_policy::install(ENCLAVE_POLICY, PolicyParams::current())
        .unwrap_or_else(|e| fail(&e.to_string()));
    say("installed");
    let result = sys::forbidden(case, &probe, &other);
    say(&format!("survived {case}: {result:?}"));
}

fn landlock() {
    let before = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDONLY,
        rustix::fs::Mode::empty(),
    )
    .unwrap_or_else(|e| fail(&format!("/dev/null before Landlock: {e}")));
    let probe = TracerProbe::for_process().unwrap_or_else(|e| fail(&e.to_string()));
    let report = landlock_policy::restrict_self().unwrap_or_else(|e| fail(&e.to_string()));
    say(&format!(
        "report abi={} enforcement={:?} all_threads={}",
        report.kernel_abi.unwrap_or(0),
        report.enforcement,
        report.all_threads
    ));
    use rustix::fs::{Mode, OFlags};
    let attempts: [(&str, OFlags); 5] = [
        ("/dev/null", OFlags::RDONLY),
        ("/proc/self/status", OFlags::RDONLY),
        ("/etc/hostname", OFlags::RDONLY),
        ("/tmp", OFlags::RDONLY | OFlags::DIRECTORY),
        (
            "/tmp/coffer-landlock-probe",
            OFlags::WRONLY | OFlags::CREATE,
        ),
    ];
    for (path, flags) in attempts {
        match rustix::fs::open(path, flags, Mode::RUSR | Mode::WUSR) {
            Ok(_) => say(&format!("opened {path}")),
            Err(e) => say(&format!("denied {path} {}", e.raw_os_error())),
        }
    }
    // Descriptors opened before keep working.
    let mut byte = [0u8; 1];
    match rustix::io::read(&before, &mut byte) {
        Ok(n) => say(&format!("read-before {n}")),
        Err(e) => say(&format!("read-before-failed {e}")),
    }
    match probe.tracer_pid() {
        Ok(_) => say("probe ok"),
        Err(e) => say(&format!("probe failed {e}")),
    }
}

fn tracer_watch(debug: bool) {
    install_heap(debug);
    let sandboxing =
        lockdown::begin(LockdownSpec { debug }).unwrap_or_else(|e| fail(&e.to_string()));
    let (ask_tx, ask_rx) = std::sync::mpsc::channel::<()>();
    let (answer_tx, answer_rx) = std::sync::mpsc::channel::<String>();
    let worker = sandboxing
        .spawn_worker(256 * 1024, move |probe| {
            let _ = answer_tx.send(format!(
                "worker-tid {}",
                rustix::thread::gettid().as_raw_nonzero()
            ));
            while ask_rx.recv().is_ok() {
                let tracer = match probe.tracer_pid() {
                    Ok(p) => p.unwrap_or(0).to_string(),
                    Err(e) => format!("error:{e}"),
                };
                if answer_tx.send(tracer).is_err() {
                    break;
                }
            }
        })
        .unwrap_or_else(|e| fail(&e.to_string()));
    let locked = sandboxing.finish().unwrap_or_else(|e| fail(&e.to_string()));
    say(&answer_rx.recv().unwrap_or_default());
    say(&format!("locked {}", locked.landlock()));
    let mut stdin = std::io::stdin().lock();
    let mut line = [0u8; 1];
    loop {
        match stdin.read(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line[0] == b'\n' => {
                let main = match locked.tracer_pid() {
                    Ok(p) => p.unwrap_or(0).to_string(),
                    Err(e) => format!("error:{e}"),
                };
                if ask_tx.send(()).is_err() {
                    break;
                }
                let worker = answer_rx.recv().unwrap_or_default();
                say(&format!("main={main} worker={worker}"));
            }
            Ok(_) => {}
        }
    }
    drop(ask_tx);
    let _ = worker.join();
}

/// The heap's arena comes first in every role that locks down: every allocation from then on
/// is secret (or, for DEBUG, ordinary) memory, and needs no `mmap` or `brk` under seccomp.
/// 4 MiB stays within RLIMIT_MEMLOCK (8 MiB) for a probe started without `CAP_IPC_LOCK`.
fn install_heap(debug: bool) {
    HEAP.install(
        SecretRegion::new(4 << 20, MemoryKind::for_debug(debug))
            .unwrap_or_else(|e| fail(&e.to_string())),
    )
    .unwrap_or_else(|e| fail(&e.to_string()));
}

fn enclave_hold(debug: bool) {
    install_heap(debug);
    let sandboxing =
        lockdown::begin(LockdownSpec { debug }).unwrap_or_else(|e| fail(&e.to_string()));
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let worker = sandboxing
        .spawn_worker(256 * 1024, move |_probe| {
            if go_rx.recv().is_err() {
                return false;
            }
            // Descriptor 3 is the pipe the test passed: the marker, then the secret.
            let input = sys::fd3();
            if !read_exact(
                input.as_fd(),
                &mut *MARKER.lock().unwrap_or_else(|p| p.into_inner()),
            ) {
                return false;
            }
            // The kernel copies the secret from the pipe straight into this stack buffer, on
            // the worker's secret stack: it never passes through ordinary memory.
            let mut secret = [0u8; 32];
            if !read_exact(input.as_fd(), &mut secret) {
                return false;
            }
            let mut copies: Vec<[u8; 32]> = Vec::with_capacity(1000);
            for _ in 0..1000 {
                copies.push(secret);
            }
            say("ready");
            // Hold everything until the test closes standard input.
            let mut byte = [0u8; 1];
            while matches!(rustix::io::read(std::io::stdin(), &mut byte), Ok(n) if n > 0) {}
            std::hint::black_box((&secret, &copies));
            true
        })
        .unwrap_or_else(|e| fail(&e.to_string()));
    let _locked = sandboxing.finish().unwrap_or_else(|e| fail(&e.to_string()));
    let _ = go_tx.send(());
    if !worker.join().unwrap_or(false) {
        fail("the worker failed");
    }
}

fn read_exact(fd: BorrowedFd<'_>, buf: &mut [u8]) -> bool {
    let mut got = 0;
    while got < buf.len() {
        match rustix::io::read(fd, buf.get_mut(got..).unwrap_or(&mut [])) {
            Ok(0) => return false,
            Ok(n) => got += n,
            Err(Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
    true
}

fn attach(tid: i32) {
    match sys::ptrace_seize(tid) {
        Ok(()) => say("attached"),
        Err(e) => say(&format!("denied {}", e.raw_os_error())),
    }
    let mut byte = [0u8; 1];
    while matches!(rustix::io::read(std::io::stdin(), &mut byte), Ok(n) if n > 0) {}
}

/// Raw system calls for the exercises.
#[allow(unsafe_code)]
mod sys {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use coffer_boundary::TracerProbe;
    use rustix::io::Errno;

    fn errno() -> Errno {
        Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO)
    }

    pub(super) fn fd3() -> OwnedFd {
        // SAFETY: the test passes the pipe's read end as descriptor 3 and nothing else in this
        // process owns it; it is taken once.
        unsafe { OwnedFd::from_raw_fd(3) }
    }

    pub(super) fn socketpair() -> Result<(OwnedFd, OwnedFd), Errno> {
        let mut fds = [0i32; 2];
        // SAFETY: `fds` has room for the two descriptors the call writes.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(errno());
        }
        // SAFETY: both descriptors were just created and are owned by no one else.
        Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
    }

    pub(super) fn sendmsg_recvmsg(a: &OwnedFd, b: &OwnedFd) -> Result<(), Errno> {
        let mut out = [7u8; 1];
        let mut inp = [0u8; 1];
        let mut iov_out = libc::iovec {
            iov_base: out.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut iov_in = libc::iovec {
            iov_base: inp.as_mut_ptr().cast(),
            iov_len: 1,
        };
        // SAFETY: zeroed msghdr is valid (no name, no control); the iovecs point at live local
        // buffers of the stated length.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov_out;
            msg.msg_iovlen = 1;
            if libc::sendmsg(a.as_raw_fd(), &msg, 0) != 1 {
                return Err(errno());
            }
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov_in;
            msg.msg_iovlen = 1;
            if libc::recvmsg(b.as_raw_fd(), &mut msg, 0) != 1 {
                return Err(errno());
            }
        }
        if inp[0] == 7 { Ok(()) } else { Err(Errno::IO) }
    }

    fn futex(word: &AtomicU32, op: i32, val: u32, bitset: u32) -> i64 {
        let timeout: *const libc::timespec = std::ptr::null();
        // SAFETY: `word` is a live, aligned u32; the timeout is NULL; the value mismatch makes
        // every wait return at once with EAGAIN, and wakes have no waiter.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                op,
                val,
                timeout,
                std::ptr::null::<u32>(),
                bitset,
            )
        }
    }

    pub(super) fn futexes() -> Result<(), String> {
        let word = AtomicU32::new(1);
        for private in [0, libc::FUTEX_PRIVATE_FLAG] {
            if futex(&word, libc::FUTEX_WAKE | private, 1, 0) != 0 {
                return Err(format!("FUTEX_WAKE: {}", errno()));
            }
            if futex(&word, libc::FUTEX_WAKE_BITSET | private, 1, u32::MAX) != 0 {
                return Err(format!("FUTEX_WAKE_BITSET: {}", errno()));
            }
            if futex(&word, libc::FUTEX_WAIT | private, 0, 0) != -1 || errno() != Errno::AGAIN {
                return Err(format!("FUTEX_WAIT: {}", errno()));
            }
            let op = libc::FUTEX_WAIT_BITSET | private | libc::FUTEX_CLOCK_REALTIME;
            if futex(&word, op, 0, u32::MAX) != -1 || errno() != Errno::AGAIN {
                return Err(format!("FUTEX_WAIT_BITSET: {}", errno()));
            }
        }
        Ok(())
    }

    pub(super) fn clocks() -> Result<(), String> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a live timespec the kernel writes.
        if unsafe { libc::syscall(libc::SYS_clock_gettime, libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
            return Err(format!("clock_gettime: {}", errno()));
        }
        let nap = libc::timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000,
        };
        let rem: *mut libc::timespec = std::ptr::null_mut();
        // SAFETY: `nap` is a live timespec the kernel reads; no remainder is asked for.
        if unsafe {
            libc::syscall(
                libc::SYS_clock_nanosleep,
                libc::CLOCK_MONOTONIC,
                0,
                &nap,
                rem,
            )
        } != 0
        {
            return Err(format!("clock_nanosleep: {}", errno()));
        }
        // SAFETY: as above.
        if unsafe { libc::syscall(libc::SYS_nanosleep, &nap, rem) } != 0 {
            return Err(format!("nanosleep: {}", errno()));
        }
        Ok(())
    }

    pub(super) fn writev(fd: &OwnedFd) -> Result<(), String> {
        let byte = [b'v'];
        let iov = libc::iovec {
            iov_base: byte.as_ptr() as *mut libc::c_void,
            iov_len: 1,
        };
        // SAFETY: one iovec pointing at a live one-byte buffer the kernel only reads.
        if unsafe { libc::syscall(libc::SYS_writev, fd.as_raw_fd(), &iov, 1) } != 1 {
            return Err(format!("writev: {}", errno()));
        }
        Ok(())
    }

    pub(super) fn fcntl_getfd(fd: &OwnedFd) -> Result<(), String> {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        if unsafe { libc::syscall(libc::SYS_fcntl, fd.as_raw_fd(), libc::F_GETFD) } < 0 {
            return Err(format!("fcntl: {}", errno()));
        }
        Ok(())
    }

    pub(super) fn madvise_dontneed(
        region: &mut coffer_boundary::SecretRegion,
    ) -> Result<(), String> {
        // SAFETY: MADV_DONTNEED on a private anonymous region this process owns only resets its
        // pages to zero; nothing in it is in use.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_madvise,
                region.as_ptr(),
                region.len(),
                libc::MADV_DONTNEED,
            )
        };
        if rc != 0 {
            return Err(format!("madvise: {}", errno()));
        }
        Ok(())
    }

    pub(super) fn getrandom() -> Result<(), String> {
        let mut buf = [0u8; 16];
        // SAFETY: the kernel writes at most 16 bytes into `buf`.
        let n = unsafe { libc::syscall(libc::SYS_getrandom, buf.as_mut_ptr(), buf.len(), 0) };
        if n != 16 {
            return Err(format!("getrandom: {}", errno()));
        }
        Ok(())
    }

    pub(super) fn signal_masks() -> Result<(), String> {
        // SAFETY: `old` is a live stack_t the kernel fills; no new stack is set.
        let rc = unsafe {
            let mut old: libc::stack_t = std::mem::zeroed();
            libc::syscall(
                libc::SYS_sigaltstack,
                std::ptr::null::<libc::stack_t>(),
                &mut old,
            )
        };
        if rc != 0 {
            return Err(format!("sigaltstack: {}", errno()));
        }
        // SAFETY: a NULL new set only reads the mask into `old` (8 bytes, the kernel's sigset).
        let rc = unsafe {
            let mut old = 0u64;
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_BLOCK,
                std::ptr::null::<u64>(),
                &mut old,
                8,
            )
        };
        if rc != 0 {
            return Err(format!("rt_sigprocmask: {}", errno()));
        }
        Ok(())
    }

    static CAUGHT: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_sigabrt(_: libc::c_int) {
        CAUGHT.store(true, Ordering::SeqCst);
    }

    pub(super) fn catch_sigabrt() {
        // SAFETY: installs an async-signal-safe handler (one atomic store) for SIGABRT; the
        // sigaction struct is fully initialised.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigabrt as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGABRT, &action, std::ptr::null_mut());
        }
    }

    pub(super) fn abort_to_self() -> Result<(), String> {
        // SAFETY: getpid and gettid take no arguments.
        let (pid, tid) = unsafe {
            (
                libc::syscall(libc::SYS_getpid),
                libc::syscall(libc::SYS_gettid),
            )
        };
        // SAFETY: signals this very thread with SIGABRT, which `catch_sigabrt` handles; the
        // handler returns through rt_sigreturn.
        if unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGABRT) } != 0 {
            return Err(format!("tgkill: {}", errno()));
        }
        if CAUGHT.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("SIGABRT was not delivered".into())
        }
    }

    pub(super) fn restart_syscall() -> Result<(), String> {
        // SAFETY: with no interrupted call to restart, restart_syscall returns EINTR.
        let rc = unsafe { libc::syscall(libc::SYS_restart_syscall) };
        if rc == -1 && errno() == Errno::INTR {
            Ok(())
        } else {
            Err(format!("restart_syscall: {rc} {}", errno()))
        }
    }

    pub(super) fn ptrace_seize(tid: i32) -> Result<(), Errno> {
        // SAFETY: PTRACE_SEIZE takes a tid and no memory; it does not stop the tracee.
        let rc = unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, 0usize, 0usize) };
        if rc == 0 { Ok(()) } else { Err(errno()) }
    }

    /// Makes the forbidden call named `case`; under the policy it never returns.
    pub(super) fn forbidden(case: &str, probe: &TracerProbe, other: &OwnedFd) -> i64 {
        let mut buf = [0u8; 64];
        let word = AtomicU32::new(0);
        // SAFETY: each call is harmless if it were allowed: opens read-only, creates a socket or
        // mapping that is then leaked, execs nothing valid ("/nonexistent"), signals a tgid that
        // does not exist, reads into `buf` (64 bytes). The point is that the kernel kills the
        // process before any of them runs.
        unsafe {
            match case {
                "openat" => libc::syscall(
                    libc::SYS_openat,
                    libc::AT_FDCWD,
                    c"/dev/null".as_ptr(),
                    libc::O_RDONLY,
                ),
                "open" => libc::syscall(libc::SYS_open, c"/dev/null".as_ptr(), libc::O_RDONLY),
                "socket" => libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0),
                "execve" => libc::syscall(
                    libc::SYS_execve,
                    c"/nonexistent".as_ptr(),
                    std::ptr::null::<*const libc::c_char>(),
                    std::ptr::null::<*const libc::c_char>(),
                ),
                "mmap-exec" => libc::syscall(
                    libc::SYS_mmap,
                    0usize,
                    4096usize,
                    libc::PROT_READ | libc::PROT_EXEC,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                ),
                "mmap-rw" => libc::syscall(
                    libc::SYS_mmap,
                    0usize,
                    4096usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                ),
                "mprotect" => libc::syscall(
                    libc::SYS_mprotect,
                    buf.as_mut_ptr() as usize & !4095,
                    4096usize,
                    libc::PROT_READ,
                ),
                "brk" => libc::syscall(libc::SYS_brk, 0usize),
                "clone" => libc::syscall(
                    libc::SYS_clone,
                    libc::SIGCHLD,
                    0usize,
                    0usize,
                    0usize,
                    0usize,
                ),
                "ptrace" => libc::syscall(libc::SYS_ptrace, libc::PTRACE_TRACEME, 0, 0, 0),
                "kill" => libc::syscall(libc::SYS_kill, libc::getpid(), 0),
                "prctl" => libc::syscall(libc::SYS_prctl, libc::PR_SET_DUMPABLE, 1, 0, 0, 0),
                "memfd_create" => libc::syscall(libc::SYS_memfd_create, c"x".as_ptr(), 0),
                "rt_sigaction" => libc::syscall(
                    libc::SYS_rt_sigaction,
                    libc::SIGUSR1,
                    std::ptr::null::<u8>(),
                    buf.as_mut_ptr(),
                    8,
                ),
                "futex-lock-pi" => libc::syscall(
                    libc::SYS_futex,
                    word.as_ptr(),
                    libc::FUTEX_LOCK_PI | libc::FUTEX_PRIVATE_FLAG,
                    0,
                    std::ptr::null::<libc::timespec>(),
                ),
                "futex-requeue" => libc::syscall(
                    libc::SYS_futex,
                    word.as_ptr(),
                    libc::FUTEX_CMP_REQUEUE | libc::FUTEX_PRIVATE_FLAG,
                    1,
                    1usize,
                    word.as_ptr(),
                    0,
                ),
                "pread-offset" => libc::syscall(
                    libc::SYS_pread64,
                    probe.as_raw_fd(),
                    buf.as_mut_ptr(),
                    64usize,
                    1i64,
                ),
                "pread-other-fd-offset" => libc::syscall(
                    libc::SYS_pread64,
                    other.as_raw_fd(),
                    buf.as_mut_ptr(),
                    64usize,
                    4096i64,
                ),
                "tgkill-other-signal" => libc::syscall(
                    libc::SYS_tgkill,
                    libc::getpid(),
                    libc::gettid(),
                    libc::SIGUSR1,
                ),
                "tgkill-other-process" => {
                    libc::syscall(libc::SYS_tgkill, 0x3fff_fff0, 0x3fff_fff0, libc::SIGABRT)
                }
                "x32-getpid" => libc::syscall(libc::SYS_getpid | 0x4000_0000),
                _ => -2,
            }
        }
    }
}
