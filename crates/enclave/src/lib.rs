//! # coffer-enclave: the trusted runtime linked into every enclave binary
//!
//! An enclave is a statically linked Rust program whose `main` is this runtime. The platform
//! daemon starts it behind the boundary of DESIGN §1 (its own uid, a sealed image, `no_new_privs`)
//! with two descriptors (`coffer_proto::enclave::fds`): 3, a `SOCK_SEQPACKET` socket to the
//! daemon, and 4, the channel memfd it shares with the host. [`run`] then:
//!
//! 1. reads [`Boot`](coffer_proto::enclave::Boot) from the daemon (the daemon speaks first) and
//!    checks it;
//! 2. maps the heap (`heap_size`) in `memfd_secret` memory (ordinary memory for a DEBUG enclave,
//!    which a debugger may read, as SGX's DEBUG attribute allows) and makes it the global
//!    allocator's arena: from here on every Rust allocation is secret;
//! 3. maps the channel with the geometry the daemon gave (never the one written in the shared
//!    memory);
//! 4. locks the process down (`coffer_boundary::lockdown`): non-dumpable unless DEBUG, one
//!    worker per TCS on a secret stack of `stack_size` bytes, Landlock on every thread, then the
//!    seccomp allowlist on all threads at once;
//! 5. answers [`Ready`](coffer_proto::enclave::EnclaveMessage::Ready); the workers serve ECALLs
//!    and the main thread waits for them to end.
//!
//! ## Writing an enclave
//!
//! Declare the ECALLs as a trait with `#[ecalls]` and the OCALLs the host provides with
//! `#[ocalls]`, in a crate the host links too (the hello example's `hello-common`), implement the
//! first in the enclave and serve it with [`entry_interface!`]:
//!
//! ```no_run
//! # mod common {
//! #[coffer_interface::ecalls]
//! pub trait Greeter {
//!     fn greet(&self, name: String) -> Result<String, String>;
//! }
//!
//! #[coffer_interface::ocalls]
//! pub trait GreeterHost {
//!     fn shout(&self, text: String) -> String;
//! }
//! # }
//! # use common::*;
//!
//! struct Enclave {
//!     host: GreeterHostProxy<coffer_enclave::Ocalls>,
//! }
//!
//! impl Greeter for Enclave {
//!     fn greet(&self, name: String) -> Result<String, String> {
//!         // An OCALL on the host thread that made this ECALL.
//!         self.host.shout(format!("hello, {name}")).map_err(|e| e.to_string())
//!     }
//! }
//!
//! coffer_enclave::entry_interface!(
//!     GREETER_INTERFACE,
//!     greeter_dispatch,
//!     Enclave { host: GreeterHostProxy::new(coffer_enclave::ocalls()) },
//!     ocalls: GREETER_HOST_INTERFACE,
//! );
//! ```
//!
//! Arguments and results are any `serde` types, passed by value; a method's own `Result` error
//! reaches the host as a value. Before it reports ready the enclave compares the interface ids
//! the host sent (`coffer_host::EnclaveOptions::typed`) with its own: a host built from another
//! version of either trait is refused at creation with `LaunchFailed("… interface mismatch: the
//! host expects Greeter <id>, this enclave implements Greeter <id>")`. A method reaches its
//! [`Ctx`] (EGETKEY, sealing, reports) through [`with_ctx`]. A call the trait does not have is
//! answered `UnknownCall`; arguments that do not decode fail the call with the reason.
//!
//! The raw interface underneath takes a handler of call ids and bytes:
//!
//! ```no_run
//! use coffer_enclave::{Ctx, HandlerError};
//!
//! const GREET: u32 = 1;
//! const OCALL_NAME: u32 = 1;
//!
//! fn handle(ctx: &Ctx<'_>, call_id: u32, input: &[u8]) -> Result<Vec<u8>, HandlerError> {
//!     match call_id {
//!         GREET => {
//!             let name = ctx.ocall(OCALL_NAME, input)?;
//!             Ok([b"hello, ".as_slice(), &name].concat())
//!         }
//!         _ => Err(HandlerError::UnknownCall),
//!     }
//! }
//!
//! coffer_enclave::entry!(handle);
//! ```
//!
//! Build it as `coffer build` does: `cargo build --release --target x86_64-unknown-linux-gnu`
//! with `RUSTFLAGS="-C target-feature=+crt-static"`.
//!
//! The handler runs on the worker that owns the slot the host called through, with up to
//! `tcs_count` calls at once, so it must be `Sync`. Through [`Ctx`] it makes OCALLs to the
//! calling host thread and asks the platform for EGETKEY and EREPORT. An error it returns reaches
//! the host as a failed call carrying the error's bytes; [`HandlerError::UnknownCall`] says the call
//! id is not one of the enclave's.
//!
//! ## Switchless calls
//!
//! When the host creates the enclave with `coffer_host::SwitchlessConfig`, the boot carries its
//! spin and every worker polls its slot for that long after each call before it sleeps on the
//! futex, so that a call arriving meanwhile is taken without a wake-up; an OCALL the trait marks
//! `#[switchless]` polls for the host's answer as long. Otherwise a worker polls for 5 µs after a
//! call (a host that calls again at once finds it awake) and then sleeps.
//!
//! ## Sealing and local attestation
//!
//! [`Ctx::seal`] and [`Ctx::unseal`] (module [`sealing`]) encrypt data for this enclave
//! ([`SealPolicy::MrEnclave`]) or for its signer's product at this or a later ISVSVN
//! ([`SealPolicy::MrSigner`]), with keys the platform derives (EGETKEY); the platform's root key
//! never enters the enclave. [`Ctx::target_info`], [`Ctx::report_for`] and
//! [`Ctx::verify_report`] give local attestation between two enclaves of one platform, and the
//! `attest_*` methods (module [`local_attest`]) run the mutual handshake across ECALLs, ending
//! with a session key that never leaves either enclave.
//!
//! ## What is secret memory, and what is not
//!
//! Secret (`memfd_secret`: unreadable from outside the process, for root and debuggers too):
//! - the heap: every `Box`, `Vec`, `String` created after start-up, including ECALL inputs
//!   (copied out of the shared channel before the handler sees them), OCALL results and keys from
//!   [`Ctx::egetkey`];
//! - each worker's stack, and the worker's thread-local storage, which glibc places at the top
//!   of that stack. Handler locals and `thread_local!` values live there.
//!
//! Not secret (ordinary memory that root can read through `/proc/PID/mem`):
//! - statics (`static`, `.data` and `.bss`), which come from the ELF image. Never keep a secret
//!   in a static; a static that holds a heap pointer (a `Mutex<Vec<u8>>`) is fine, its bytes are
//!   in the heap;
//! - glibc's own `malloc`, used by glibc internally and by the Rust runtime before the heap is
//!   installed (nothing secret exists then);
//! - the main thread's stack: the main thread only starts the workers and waits;
//! - the channel memfd shared with the host: whatever an ECALL returns or an OCALL sends is
//!   public by definition.
//!
//! ## Sizing the heap
//!
//! The heap never grows (mapping memory after lockdown is forbidden); an allocation that does
//! not fit aborts the enclave. Besides the handler's own data it holds, per running ECALL, a
//! copy of the input and the result (each at most the channel's call buffer, `max_call_size`),
//! and during a platform request (EGETKEY, EREPORT, quote) one 256 KiB message buffer.
//!
//! ## Rules inside an enclave
//!
//! - No stdio: `println!`, `eprintln!` and logging would need descriptors the enclave does not
//!   have, and glibc's stdio buffers are ordinary memory. Talk to the host through OCALLs.
//! - No system calls outside the seccomp allowlist (`coffer_boundary::seccomp_policy`): opening a
//!   file, a socket, mapping memory or starting a thread kills the enclave with `SIGSYS`, which
//!   the daemon reports as a sandbox violation. The enclave reaches the world only through
//!   OCALLs.
//! - A panic aborts the whole enclave (`SIGABRT`), as an SGX enclave that aborts: the daemon
//!   marks it lost and the host's calls fail with `EnclaveLost`. Nothing unwinds past a handler.
//! - Before each ECALL the worker checks whether a tracer is attached to its own thread or to
//!   the main thread (a root debugger; others cannot attach to a non-dumpable process). If one
//!   is, and the enclave is not DEBUG, the enclave reports itself lost to the daemon and exits at
//!   once, without running the call: its secret memory goes with the process.
//!
//! ## Exit status
//!
//! The daemon learns why an enclave ended from its messages and its exit status: see
//! [`exit_code`]; a panic ends it with `SIGABRT`, a sandbox violation with `SIGSYS`.
//!
//! This crate must never use stdio, keep secrets in statics, or make system calls outside the
//! seccomp policy. Its one unsafe module takes ownership of the two inherited descriptors.

#![deny(unsafe_code)]

mod boot;
mod ctx;
mod entropy;
pub mod local_attest;
mod runtime;
pub mod sealing;
mod services;
mod sys;
mod typed;

pub use boot::BootError;
pub use ctx::{Ctx, HandlerError, OcallError, error_message};
pub use local_attest::{Established, HandshakeError};
pub use runtime::{StartError, exit_code, run};
pub use sealing::{KeyError, SealError, SealPolicy, SecretBytes, UnsealError, Unsealed};
pub use services::ServiceError;
pub use sys::DescriptorError;
pub use typed::{
    Interface, InterfaceMismatch, NamedInterface, Ocalls, ocalls, run_interface, with_ctx,
};

/// Typed interfaces: `#[ecalls]`, `#[ocalls]`, the proxies' `Transport` and their errors.
pub use coffer_interface as interface;

/// The SGX structures a handler works with (`Keyrequest`, `Targetinfo`, `Report`, …).
pub use coffer_abi as abi;
/// Keys from [`Ctx::egetkey`] come wrapped in [`zeroize::Zeroizing`].
pub use zeroize;

/// Every allocation of an enclave process: glibc's `malloc` until [`run`] installs the secret
/// arena, the arena afterwards. Declared here so that linking the runtime is enough.
#[global_allocator]
static HEAP: coffer_boundary::SecretHeap = coffer_boundary::SecretHeap::new();

/// Generates the enclave's `fn main()`, which hands `handler` to [`run`].
///
/// `handler` is a function or closure `Fn(&Ctx<'_>, u32, &[u8]) -> Result<Vec<u8>, HandlerError>`
/// that is `Send + Sync + 'static`.
#[macro_export]
macro_rules! entry {
    ($handler:expr) => {
        fn main() {
            $crate::run($handler)
        }
    };
}
