//! # coffer-host: the untrusted side of an enclave application
//!
//! A host application connects to the node's platform daemon, asks it to create an enclave from a
//! signed bundle, and then calls into the enclave directly through the shared call channel:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let platform = coffer_host::Platform::connect("/run/coffer/platform.sock")?;
//! let enclave = platform.create_enclave("app.coffer".as_ref())?;
//! let answer = enclave.ecall(1, b"input")?;
//! # Ok(()) }
//! ```
//!
//! ## Typed calls
//!
//! With the interface traits of the enclave (`#[ecalls]`, `#[ocalls]`, in a crate both sides
//! link), an [`Enclave`] is the transport of the generated proxy, and the host's implementation
//! of the OCALL trait serves the enclave's OCALLs on the calling thread:
//!
//! ```no_run
//! # mod common {
//! #[coffer_interface::ecalls]
//! pub trait Greeter {
//!     fn greet(&self, name: String) -> Result<String, String>;
//! }
//! #[coffer_interface::ocalls]
//! pub trait GreeterHost {
//!     fn shout(&self, text: String) -> String;
//! }
//! # }
//! # use common::*;
//! use coffer_host::{EnclaveOptions, Platform};
//!
//! struct Host;
//!
//! impl GreeterHost for Host {
//!     fn shout(&self, text: String) -> String {
//!         text.to_uppercase()
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let platform = Platform::connect("/run/coffer/platform.sock")?;
//! let options = EnclaveOptions::typed(&GREETER_INTERFACE).serving(
//!     &GREETER_HOST_INTERFACE,
//!     Host,
//!     greeter_host_dispatch,
//! );
//! let enclave = platform.create_enclave_with("app.coffer".as_ref(), options)?;
//! let greeting: Result<String, String> = GreeterProxy::new(&enclave).greet("Ada".into())?;
//! # Ok(()) }
//! ```
//!
//! An enclave built from another version of either trait refuses to start: creation fails with
//! [`PlatformError::LaunchFailed`] naming both interfaces. A proxy's call returns
//! `Result<method's result, TransportError>`: `EnclaveLost` (with the reason: a panic inside the
//! enclave aborts it, as an SGX enclave that aborts), `OutOfTcs` when every enclave thread is
//! busy (or the call waits, with [`EnclaveOptions::wait_for_tcs`]), `Refused` when the enclave
//! could not decode the arguments.
//!
//! ## Switchless calls
//!
//! [`EnclaveOptions::switchless`] turns on switchless calls for the methods the trait marks
//! `#[switchless]`, as Intel's and Open Enclave's switchless calls do: the enclave's workers
//! poll their slot for [`SwitchlessConfig::spin`] after each call instead of sleeping at once,
//! and the host thread making a switchless call polls for the result and for the enclave's
//! OCALL requests, so that neither side makes a futex system call while the other answers
//! within the spin; both fall back to the futex after it. Other calls spin only briefly
//! ([`WaitPolicy`]'s default) so that they do not burn CPU.
//!
//! ## Lifetime
//!
//! An enclave lives as long as its [`Enclave`] value and the [`Platform`] connection that made it:
//! dropping the value destroys the enclave, and so does the host process ending (the daemon
//! destroys every enclave of a closed connection). Once an enclave is *lost* (it crashed, its
//! sandbox killed it, a debugger was attached), every call returns [`EcallError::EnclaveLost`]
//! with the reason.
//!
//! Everything this crate handles is untrusted by the enclave: the enclave copies and checks all
//! input, and the host never sees enclave memory.

#![forbid(unsafe_code)]

mod enclave;
mod platform;

pub use coffer_channel::{Status, WaitPolicy};
/// Typed interfaces: `#[ecalls]`, `#[ocalls]`, the proxies' `Transport` and their errors.
pub use coffer_interface as interface;
pub use coffer_proto::client::{EnclaveStatus, PlatformError, PlatformStatus, RequestError};
pub use enclave::{
    EcallError, Enclave, EnclaveOptions, OcallDispatch, OcallHandler, SwitchlessConfig,
};
pub use platform::{HostError, Platform};
