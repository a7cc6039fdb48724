//! # coffer-boundary: the kernel mechanisms of the soft backend's enclave boundary
//!
//! Without SGX hardware, Coffer's soft backend enforces the enclave boundary with the Linux
//! kernel (DESIGN §1). This crate owns those mechanisms, and nothing else: it is linked into
//! the privileged platform daemon and into static-pie enclave binaries, so it stays small and
//! pulls in no runtime (no async, no I/O framework).
//!
//! | SGX property | mechanism | module |
//! |---|---|---|
//! | enclave memory unreadable through `/proc/PID/mem`, ptrace and `process_vm_readv`, root's included (root still reads it from the enclave's own context: BPF, uprobes, perf; `docs/advisories.md`) | heap and thread stacks in `memfd_secret(2)` memory | [`secret_mem`], [`secret_heap`], [`threads`] |
//! | the code is exactly what was measured | the image runs from a sealed memfd, by descriptor | [`sealed_image`] |
//! | the enclave makes no system calls of its own | a seccomp allowlist (default: kill), Landlock with no rights, `no_new_privs` | [`seccomp_policy`], [`landlock_policy`], [`mod@lockdown`] |
//! | no one attaches to the enclave unnoticed | its own unprivileged uid, non-dumpable (no attach without CAP_SYS_PTRACE), tracer detection (a debugger that stays attached, not a sub-millisecond attach by root) | [`process`], [`tracer`] |
//!
//! ## The daemon's side
//!
//! Seal the measured image with [`SealedImage::new`], then [`spawn_enclave_process`] with the
//! descriptors the enclave gets (its channel to the host), the enclave's uid and gid, and
//! `keep_ipc_lock`: the child switches identity keeping `CAP_IPC_LOCK` as its one ambient
//! capability (secret memory is charged to `RLIMIT_MEMLOCK`, 8 MiB here, and root has no
//! `CAP_SYS_RESOURCE` to raise it), sets `no_new_privs` and executes the sealed memfd. The
//! image is execute-only, so the enclave process is non-dumpable from its first instruction.
//!
//! ## The enclave's side
//!
//! ```no_run
//! use coffer_boundary::{LockdownSpec, MemoryKind, SecretHeap, SecretRegion, lockdown};
//!
//! #[global_allocator]
//! static HEAP: SecretHeap = SecretHeap::new();
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let debug = false;
//!     // Every allocation from here on is secret memory.
//!     HEAP.install(SecretRegion::new(16 << 20, MemoryKind::for_debug(debug))?)?;
//!     let sandboxing = lockdown::begin(LockdownSpec { debug })?;
//!     let worker = sandboxing.spawn_worker(1 << 20, |tracer| {
//!         // Serve ECALLs; before each, `tracer.tracer_pid()` must be `Ok(None)`.
//!     })?;
//!     let locked = sandboxing.finish()?;
//!     assert_eq!(locked.tracer_pid()?, None);
//!     worker.join()?;
//!     Ok(())
//! }
//! ```
//!
//! The main thread's stack and glibc's own `malloc` (stdio buffers) stay ordinary memory, so
//! the enclave runtime keeps secrets off them: no stdio inside an enclave, and the main thread
//! only starts the workers and waits.
//!
//! Unsafe code lives only in the private `sys` modules, each block with a `SAFETY` comment.

#![deny(unsafe_code)]

pub mod landlock_policy;
pub mod lockdown;
pub mod process;
pub mod sealed_image;
pub mod seccomp_policy;
pub mod secret_heap;
pub mod secret_mem;
pub mod threads;
pub mod tracer;

pub use landlock_policy::{Enforcement, LandlockReport};
pub use lockdown::{LockdownSpec, LockedDown, Sandboxing, lockdown};
pub use process::{Credentials, EnclaveChild, SpawnSpec, spawn_enclave_process};
pub use sealed_image::SealedImage;
pub use secret_heap::SecretHeap;
pub use secret_mem::{MemoryKind, SecretRegion, secret_memory_available};
pub use threads::{SecretThread, spawn_on_secret_stack};
pub use tracer::TracerProbe;
