//! A debugger attaching to an enclave: `PTRACE_SEIZE` from this process, and reaping the
//! threads it traced when the enclave ends. The one module of the kit that talks to the kernel
//! directly (rustix has no `ptrace`).

use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `PTRACE_SEIZE`s thread `tid` from the calling thread, which becomes its tracer (the kernel
/// names that thread's id as `TracerPid`). The tracee is not stopped.
pub fn seize(tid: u32) -> std::io::Result<()> {
    let tid =
        libc::pid_t::try_from(tid).map_err(|_| std::io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: PTRACE_SEIZE reads no memory of ours (addr and data are 0, no options); it only
    // makes the calling thread the tracer of `tid`.
    let rc = unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, 0usize, 0usize) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Reaps traced thread `tid` of an ending process: a traced thread's exit goes to its tracer,
/// not to the parent, and the process is not gone (its pidfd not readable, the parent's wait
/// not done) before it is reaped. Returns once it is reaped or no longer ours to reap; fails
/// the test when it still runs after `timeout`.
pub fn reap_traced_thread(tid: u32, timeout: Duration) {
    let tid = libc::pid_t::try_from(tid).expect("a thread id fits pid_t");
    let deadline = Instant::now() + timeout;
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer for the call's duration; WNOHANG keeps the
        // call from blocking.
        let rc = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
        if rc != 0 {
            return;
        }
        assert!(Instant::now() < deadline, "thread {tid} still runs");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A debugger attached to one thread from a thread of its own, for as long as the value lives.
/// Dropping it ends that thread, and the kernel detaches a tracer's tracees when it exits (and
/// hands a traced thread that has already ended back to its parent), so nothing is left to reap.
#[derive(Debug)]
pub struct Tracer {
    tid: u32,
    release: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Tracer {
    /// Attaches to thread `tracee`.
    pub fn attach(tracee: u32) -> std::io::Result<Tracer> {
        let (attached_tx, attached_rx) = channel();
        let (release, released) = channel::<()>();
        let thread = std::thread::spawn(move || {
            let tid = rustix::thread::gettid().as_raw_nonzero().get();
            let outcome = seize(tracee).map(|()| tid.unsigned_abs());
            let holding = outcome.is_ok();
            let _ = attached_tx.send(outcome);
            if holding {
                // Until the Tracer is dropped (the sender goes, and recv fails).
                let _ = released.recv();
            }
        });
        let tid = attached_rx
            .recv()
            .map_err(|_| std::io::Error::other("the tracer thread ended"))??;
        Ok(Tracer {
            tid,
            release: Some(release),
            thread: Some(thread),
        })
    }

    /// The tracing thread's id: what the kernel reports as the tracee's `TracerPid`.
    pub fn tid(&self) -> u32 {
        self.tid
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        self.release = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
