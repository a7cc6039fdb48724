//! Threads whose stack, and with it their static thread-local storage, live in secret memory.
//!
//! glibc places a thread's descriptor and static TLS block at the top of a stack the caller
//! provides (`pthread_attr_setstack`), so a thread started on a [`SecretRegion`] keeps its
//! locals, spilled registers, signal frames and `thread_local!` data out of ordinary memory.
//! The region has a guard page below it ([`SecretRegion::with_guard_page`]), so an overflow
//! faults instead of running into other memory.
//!
//! glibc's `pthread_join` sleeps on a *shared* futex in the thread's descriptor, which lives at
//! the top of the secret stack, and shared futexes fail with `EFAULT` on secret memory (glibc
//! then aborts). [`SecretThread::join`] therefore waits for the result on a private futex (a
//! std `Condvar` in the heap) and then reaps the ended thread with `pthread_tryjoin_np`, which
//! never sleeps on that futex.
//!
//! This module must never free a stack while its thread may still run: a handle dropped without
//! [`SecretThread::join`] detaches the thread and leaks its stack.

use std::sync::{Arc, Condvar, Mutex};

use rustix::io::Errno;
use thiserror::Error;

use crate::secret_mem::{MemoryKind, SecretMemError, SecretRegion};

/// Why a secret-stack thread could not be started or joined.
#[derive(Debug, Error)]
pub enum ThreadError {
    /// The stack region could not be created.
    #[error("creating the thread's stack failed: {0}")]
    Stack(#[from] SecretMemError),
    /// The stack is smaller than glibc accepts.
    #[error("a thread stack of {len} bytes is too small; the minimum is {min}")]
    TooSmall { len: usize, min: usize },
    /// Setting up the thread attributes failed.
    #[error("setting up the thread attributes failed: {0}")]
    Attributes(Errno),
    /// `pthread_create` failed (a stack too small for the static TLS gives EINVAL).
    #[error("pthread_create failed: {0}")]
    Create(Errno),
    /// `pthread_join` failed.
    #[error("pthread_join failed: {0}")]
    Join(Errno),
    /// The thread's function panicked.
    #[error("the thread panicked")]
    Panicked,
}

/// A running thread on a secret stack; [`SecretThread::join`] returns its result.
#[derive(Debug)]
pub struct SecretThread<T> {
    thread: libc::pthread_t,
    /// `None` once joined.
    stack: Option<SecretRegion>,
    completion: Arc<Completion<T>>,
}

/// Where the thread leaves its result.
#[derive(Debug)]
struct Completion<T> {
    result: Mutex<Option<std::thread::Result<T>>>,
    done: Condvar,
}

impl<T> Completion<T> {
    fn finish(&self, result: std::thread::Result<T>) {
        let mut slot = self.result.lock().unwrap_or_else(|p| p.into_inner());
        *slot = Some(result);
        self.done.notify_all();
    }

    fn wait(&self) -> std::thread::Result<T> {
        let mut slot = self.result.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(result) = slot.take() {
                return result;
            }
            slot = self.done.wait(slot).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Starts `f` on a new thread whose stack is a fresh region of `stack_size` bytes of `kind`
/// memory (plus a guard page).
pub fn spawn_on_secret_stack<F, T>(
    stack_size: usize,
    kind: MemoryKind,
    f: F,
) -> Result<SecretThread<T>, ThreadError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let min = sys::stack_min();
    if stack_size < min {
        return Err(ThreadError::TooSmall {
            len: stack_size,
            min,
        });
    }
    let stack = SecretRegion::with_guard_page(stack_size, kind)?;
    let completion = Arc::new(Completion {
        result: Mutex::new(None),
        done: Condvar::new(),
    });
    let signal = Arc::clone(&completion);
    let body = Box::new(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        signal.finish(result);
    });
    let thread = sys::spawn(&stack, body)?;
    Ok(SecretThread {
        thread,
        stack: Some(stack),
        completion,
    })
}

impl<T> SecretThread<T> {
    /// The stack's usable address range.
    pub fn stack_range(&self) -> Option<std::ops::Range<usize>> {
        self.stack
            .as_ref()
            .map(|s| s.as_ptr() as usize..s.as_ptr() as usize + s.len())
    }

    /// Waits for the thread, then zeroizes and unmaps its stack.
    pub fn join(mut self) -> Result<T, ThreadError> {
        let result = self.completion.wait();
        // The function has returned; the thread is at most finishing its exit.
        sys::reap(self.thread)?;
        // The thread has ended: its stack may go (zeroized on drop).
        self.stack = None;
        result.map_err(|_| ThreadError::Panicked)
    }
}

impl<T> Drop for SecretThread<T> {
    fn drop(&mut self) {
        if let Some(stack) = self.stack.take() {
            // Not joined: the thread may still run on this stack, which must outlive it.
            std::mem::forget(stack);
            sys::detach(self.thread);
        }
    }
}

/// `pthread_create` with a caller-provided stack, and the start trampoline.
#[allow(unsafe_code)]
mod sys {
    use std::ffi::c_void;

    use rustix::io::Errno;

    use super::ThreadError;
    use crate::secret_mem::SecretRegion;

    pub(super) fn stack_min() -> usize {
        // SAFETY: sysconf only reads a system constant.
        let min = unsafe { libc::sysconf(libc::_SC_THREAD_STACK_MIN) };
        usize::try_from(min)
            .unwrap_or(libc::PTHREAD_STACK_MIN)
            .max(libc::PTHREAD_STACK_MIN)
    }

    type Body = Box<dyn FnOnce() + Send>;

    extern "C" fn start(arg: *mut c_void) -> *mut c_void {
        // SAFETY: `arg` is the `Box<Body>` leaked by `spawn` for this thread alone.
        let body = unsafe { Box::from_raw(arg.cast::<Body>()) };
        // `body` catches panics itself: none unwinds out of this `extern "C"` function.
        body();
        std::ptr::null_mut()
    }

    fn errno(code: i32) -> Errno {
        Errno::from_raw_os_error(code)
    }

    pub(super) fn spawn(stack: &SecretRegion, body: Body) -> Result<libc::pthread_t, ThreadError> {
        let arg = Box::into_raw(Box::new(body));
        // SAFETY: `attr` is initialised by pthread_attr_init before use and destroyed after
        // pthread_create copied it. The stack range is a committed read-write mapping owned by
        // the returned handle, which keeps it until the thread is reaped or leaks it on detach,
        // so it outlives the thread. `arg` is reclaimed exactly once: by `start` on success, or
        // here when pthread_create fails (then no thread saw it).
        unsafe {
            let mut attr: libc::pthread_attr_t = std::mem::zeroed();
            let rc = libc::pthread_attr_init(&mut attr);
            if rc != 0 {
                drop(Box::from_raw(arg));
                return Err(ThreadError::Attributes(errno(rc)));
            }
            let rc = libc::pthread_attr_setstack(&mut attr, stack.as_ptr().cast(), stack.len());
            if rc != 0 {
                libc::pthread_attr_destroy(&mut attr);
                drop(Box::from_raw(arg));
                return Err(ThreadError::Attributes(errno(rc)));
            }
            let mut thread: libc::pthread_t = 0;
            let rc = libc::pthread_create(&mut thread, &attr, start, arg.cast());
            libc::pthread_attr_destroy(&mut attr);
            if rc != 0 {
                drop(Box::from_raw(arg));
                return Err(ThreadError::Create(errno(rc)));
            }
            Ok(thread)
        }
    }

    /// Reaps a thread whose function has returned, without sleeping on the descriptor's
    /// shared futex: `pthread_tryjoin_np` until the kernel has marked the thread gone.
    pub(super) fn reap(thread: libc::pthread_t) -> Result<(), ThreadError> {
        loop {
            // SAFETY: `thread` is a joinable thread started by `spawn`, not yet joined nor
            // detached (the handle is being consumed); no return value is asked for.
            let rc = unsafe { libc::pthread_tryjoin_np(thread, std::ptr::null_mut()) };
            match rc {
                0 => return Ok(()),
                libc::EBUSY => rustix::thread::sched_yield(),
                other => return Err(ThreadError::Join(errno(other))),
            }
        }
    }

    pub(super) fn detach(thread: libc::pthread_t) {
        // SAFETY: `thread` is joinable and neither joined nor detached before (the handle is
        // being dropped).
        unsafe { libc::pthread_detach(thread) };
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_thread_on_a_secret_stack() {
        let thread = spawn_on_secret_stack(256 * 1024, MemoryKind::Secret, || {
            let local = 42u64;
            std::hint::black_box(&local) as *const u64 as usize
        })
        .unwrap();
        let range = thread.stack_range().unwrap();
        let local_addr = thread.join().unwrap();
        assert!(
            range.contains(&local_addr),
            "{local_addr:#x} not in {range:x?}"
        );
    }

    #[test]
    fn thread_locals_live_on_the_secret_stack() {
        thread_local! {
            static TLS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
        }
        let thread = spawn_on_secret_stack(256 * 1024, MemoryKind::Secret, || {
            TLS.with(|c| c.as_ptr() as usize)
        })
        .unwrap();
        let range = thread.stack_range().unwrap();
        let tls_addr = thread.join().unwrap();
        assert!(range.contains(&tls_addr), "{tls_addr:#x} not in {range:x?}");
    }

    #[test]
    fn reports_a_panic_on_join() {
        let thread =
            spawn_on_secret_stack(256 * 1024, MemoryKind::Ordinary, || panic!("on purpose"))
                .unwrap();
        assert!(matches!(thread.join(), Err(ThreadError::Panicked)));
    }

    #[test]
    fn rejects_a_tiny_stack() {
        assert!(matches!(
            spawn_on_secret_stack(1024, MemoryKind::Secret, || ()),
            Err(ThreadError::TooSmall { .. })
        ));
    }
}
