//! Serving a typed interface: an `#[ecalls]` trait's implementation as the enclave's handler,
//! `#[ocalls]` proxies that call the host from inside an ECALL, and the check, before `Ready`,
//! that the host was built from the same traits.
//!
//! See "Writing an enclave" in the crate documentation.

use std::cell::Cell;
use std::sync::{Arc, OnceLock};

use coffer_channel::{CallError, WaitPolicy};
use coffer_interface::{
    CallInfo, Dispatch, DispatchError, InterfaceInfo, Transport, TransportError,
};
use thiserror::Error;

use crate::boot::Settings;
use crate::ctx::{Ctx, HandlerError, OcallError};
use crate::runtime::Runtime;

/// An enclave's typed interface: the implementation of its `#[ecalls]` trait, and the `#[ocalls]`
/// interface it calls, if any. [`run_interface`] serves it.
pub struct Interface<I> {
    ecalls: &'static InterfaceInfo,
    ocalls: Option<&'static InterfaceInfo>,
    imp: I,
    dispatch: Dispatch<I>,
}

impl<I> std::fmt::Debug for Interface<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interface")
            .field("ecalls", &self.ecalls.name)
            .field("ocalls", &self.ocalls.map(|o| o.name))
            .finish_non_exhaustive()
    }
}

impl<I: Send + Sync + 'static> Interface<I> {
    /// `imp` serves the ECALLs of `ecalls` through `dispatch` (the `<trait>_dispatch` the
    /// attribute generated for the same trait).
    pub fn new(ecalls: &'static InterfaceInfo, imp: I, dispatch: Dispatch<I>) -> Self {
        Interface {
            ecalls,
            ocalls: None,
            imp,
            dispatch,
        }
    }

    /// The enclave calls the host through `ocalls`: a host that serves another version of it is
    /// refused at creation too.
    pub fn calling(mut self, ocalls: &'static InterfaceInfo) -> Self {
        self.ocalls = Some(ocalls);
        self
    }
}

/// Runs the enclave serving `interface`, as [`crate::run`] does for a raw handler, and never
/// returns. Before it reports ready it compares the interface ids the host sent with its own: on
/// a mismatch it refuses to start, and the host's create fails with a `LaunchFailed` naming both.
/// A host that sent no id (raw calls) is accepted.
///
/// A call id the trait does not have is answered with `Status::UnknownCall`; arguments that do
/// not decode make the call fail with the reason (the host sees
/// `TransportError::Refused("malformed arguments: …")`); a panic aborts the enclave.
pub fn run_interface<I: Send + Sync + 'static>(interface: Interface<I>) -> ! {
    let expected = Expected {
        ecalls: interface.ecalls,
        ocalls: interface.ocalls,
    };
    let Interface { imp, dispatch, .. } = interface;
    let handler =
        move |_: &Ctx<'_>, call_id: u32, input: &[u8]| match dispatch(&imp, call_id, input) {
            Ok(output) => Ok(output),
            Err(DispatchError::UnknownCall(_)) => Err(HandlerError::UnknownCall),
            Err(e) => Err(HandlerError::failed(e)),
        };
    crate::runtime::run_with(Box::new(handler), Some(expected))
}

/// Generates the enclave's `fn main()`, serving an `#[ecalls]` trait's implementation with
/// [`run_interface`]:
///
/// ```ignore
/// coffer_enclave::entry_interface!(HELLO_INTERFACE, hello_dispatch, HelloEnclave::default());
/// // An enclave that calls the host through an `#[ocalls]` trait names it too:
/// coffer_enclave::entry_interface!(HELLO_INTERFACE, hello_dispatch, HelloEnclave::default(),
///     ocalls: HELLO_HOST_INTERFACE);
/// ```
#[macro_export]
macro_rules! entry_interface {
    ($interface:expr, $dispatch:expr, $imp:expr $(,)?) => {
        fn main() {
            $crate::run_interface($crate::Interface::new(&$interface, $imp, $dispatch))
        }
    };
    ($interface:expr, $dispatch:expr, $imp:expr, ocalls: $ocalls:expr $(,)?) => {
        fn main() {
            $crate::run_interface(
                $crate::Interface::new(&$interface, $imp, $dispatch).calling(&$ocalls),
            )
        }
    };
}

/// Why the enclave refused the host's interface. Sent to the daemon as `EnclaveMessage::Failed`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InterfaceMismatch {
    /// The host was built from another version of the ECALL trait.
    #[error("interface mismatch: the host expects {host}, this enclave implements {enclave}")]
    Ecalls {
        host: NamedInterface,
        enclave: NamedInterface,
    },
    /// The host serves another version of the OCALL trait.
    #[error("interface mismatch: the host serves OCALLs {host}, this enclave calls {enclave}")]
    Ocalls {
        host: NamedInterface,
        enclave: NamedInterface,
    },
    /// The host's interface id is neither one nor two 32-byte ids.
    #[error(
        "interface mismatch: the host sent a {len}-byte interface id (one or two 32-byte ids \
         expected), this enclave implements {enclave}"
    )]
    Length { len: usize, enclave: NamedInterface },
}

/// An interface as an error names it: its trait name, if known, and its id (shown in hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedInterface {
    pub name: Option<String>,
    pub id: [u8; 32],
}

impl std::fmt::Display for NamedInterface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name} {}", hex::encode(self.id)),
            None => write!(f, "interface {}", hex::encode(self.id)),
        }
    }
}

/// The interfaces a typed enclave serves and calls.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected {
    ecalls: &'static InterfaceInfo,
    ocalls: Option<&'static InterfaceInfo>,
}

const ID: usize = 32;

fn described(info: &InterfaceInfo) -> NamedInterface {
    NamedInterface {
        name: Some(info.name.to_owned()),
        id: info.id,
    }
}

impl Expected {
    /// Compares the host's interface ids (`CreateOptions::interface_id`: the ECALL interface's
    /// id, then optionally the OCALL interface's) with this enclave's.
    pub(crate) fn check(&self, settings: &Settings) -> Result<(), InterfaceMismatch> {
        let ids = settings.interface_id.as_slice();
        if ids.is_empty() {
            return Ok(());
        }
        let host = |i: usize, id: &[u8]| NamedInterface {
            name: settings
                .interface_names
                .get(i)
                .filter(|name| !name.is_empty())
                .cloned(),
            // Callers pass exactly 32 bytes (split above).
            id: <[u8; ID]>::try_from(id).unwrap_or_default(),
        };
        let (ecalls, ocalls) = match ids.len() {
            ID => (ids, None),
            n if n == 2 * ID => {
                let (e, o) = ids.split_at(ID);
                (e, Some(o))
            }
            len => {
                return Err(InterfaceMismatch::Length {
                    len,
                    enclave: described(self.ecalls),
                });
            }
        };
        if ecalls != self.ecalls.id.as_slice() {
            return Err(InterfaceMismatch::Ecalls {
                host: host(0, ecalls),
                enclave: described(self.ecalls),
            });
        }
        if let (Some(theirs), Some(ours)) = (ocalls, self.ocalls)
            && theirs != ours.id.as_slice()
        {
            return Err(InterfaceMismatch::Ocalls {
                host: host(1, theirs),
                enclave: described(ours),
            });
        }
        Ok(())
    }
}

/// The running enclave, for [`with_ctx`]. The static holds only a pointer to the runtime, which
/// lives in the heap.
static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();

thread_local! {
    /// The slot of the ECALL this worker is serving, if it is serving one. (A `Cell` of a `Copy`
    /// type with a const initialiser: no destructor to register, which glibc would allocate for.)
    static CURRENT: Cell<Option<u32>> = const { Cell::new(None) };
}

/// Makes the runtime reachable from [`with_ctx`] (once, before the workers serve).
pub(crate) fn install(runtime: &Arc<Runtime>) {
    let _ = RUNTIME.set(Arc::clone(runtime));
}

/// Runs `f` as the worker serving slot `slot`'s ECALL: [`with_ctx`] and [`ocalls`] reach it.
pub(crate) fn serving<R>(slot: u32, f: impl FnOnce() -> R) -> R {
    let outer = CURRENT.replace(Some(slot));
    let r = f();
    CURRENT.set(outer);
    r
}

/// Runs `f` with the context of the ECALL this thread is serving (to reach [`Ctx::egetkey`],
/// [`Ctx::seal`], [`Ctx::ereport`] from a typed implementation, whose methods get no `Ctx`).
/// `None` outside an ECALL.
pub fn with_ctx<R>(f: impl FnOnce(&Ctx<'_>) -> R) -> Option<R> {
    let slot = CURRENT.get()?;
    let rt = RUNTIME.get()?;
    let ctx = Ctx {
        rt,
        slot: rt.channel.enclave_slot(slot)?,
    };
    Some(f(&ctx))
}

/// The OCALL transport of the ECALL running on this thread, for an `#[ocalls]` proxy:
/// `HelloHostProxy::new(coffer_enclave::ocalls())`. It may be kept (in the implementation, say):
/// each call goes to the host thread of the ECALL being served when it is made.
pub fn ocalls() -> Ocalls {
    Ocalls(())
}

/// See [`ocalls`]. Outside an ECALL its calls fail with `TransportError::Other`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ocalls(());

impl Transport for Ocalls {
    fn call(&self, call: &CallInfo, input: &[u8]) -> Result<Vec<u8>, TransportError> {
        with_ctx(|ctx| ctx.call(call, input)).unwrap_or_else(|| {
            Err(TransportError::Other(
                "an OCALL can only be made by the thread serving an ECALL".into(),
            ))
        })
    }
}

/// A handler's [`Ctx`] is a transport too: `HelloHostProxy::new(ctx)`.
impl Transport for Ctx<'_> {
    fn call(&self, call: &CallInfo, input: &[u8]) -> Result<Vec<u8>, TransportError> {
        let policy = match self.rt.switchless {
            Some(spin) if call.switchless => spin,
            _ => self.rt.channel.wait_policy(),
        };
        self.ocall_with_policy(call.id, input, policy)
            .map_err(transport_error)
    }
}

/// An OCALL's failure as a typed proxy reports it.
fn transport_error(e: OcallError) -> TransportError {
    match e {
        OcallError::UnknownCall { id } => TransportError::UnknownCall(id),
        OcallError::Failed { output, .. } => {
            TransportError::Refused(String::from_utf8_lossy(&output).into_owned())
        }
        e @ OcallError::BadMessage { .. } => TransportError::Refused(e.to_string()),
        OcallError::Channel {
            source: CallError::EnclaveLost { reason, .. },
            ..
        } => TransportError::EnclaveLost(reason),
        e @ OcallError::Channel { .. } => TransportError::Other(e.to_string()),
    }
}

/// The wait policy of switchless calls, from the boot's spin.
pub(crate) fn switchless_policy(settings: &Settings) -> Option<WaitPolicy> {
    settings.switchless_spin.map(|spin| WaitPolicy { spin })
}
