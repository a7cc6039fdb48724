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
pub use coffer_proto::client::{EnclaveStatus, PlatformError, PlatformStatus};
pub use enclave::{
    EcallError, Enclave, EnclaveOptions, OcallDispatch, OcallHandler, SwitchlessConfig,
};
pub use platform::{HostError, Platform};
