//! A created enclave: raw ECALLs, and typed ones through its [`Transport`].

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use coffer_channel::{CallError, Channel, ChannelLayout, Status, WaitPolicy};
use coffer_interface::{
    CallInfo, Dispatch, DispatchError, InterfaceInfo, Transport, TransportError,
};
use coffer_proto::client::Created;

use crate::platform::{Conn, HostError, destroy};

/// Serves a typed enclave's OCALLs: call id and encoded arguments in, encoded result out (the
/// `<trait>_dispatch` an `#[ocalls]` trait generates, bound to the host's implementation).
pub type OcallDispatch = dyn Fn(u32, &[u8]) -> Result<Vec<u8>, DispatchError> + Send + Sync;

/// Switchless calls, as Intel's and Open Enclave's: a call the trait marks `#[switchless]` is
/// handed to an enclave worker that is already polling its slot, and the calling host thread
/// polls for the result and for the enclave's OCALL requests, instead of futex wake-ups on both
/// sides. Each side polls for `spin` at most (the worker after each call, the host while it
/// waits) and then falls back to sleeping on the futex, so an idle enclave costs no CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchlessConfig {
    pub spin: Duration,
}

impl Default for SwitchlessConfig {
    /// 100 µs: long enough for a burst of calls to find the worker polling, short enough that an
    /// idle enclave thread sleeps almost at once.
    fn default() -> Self {
        SwitchlessConfig {
            spin: Duration::from_micros(100),
        }
    }
}

/// How the host wants its enclave.
#[derive(Clone, Default)]
pub struct EnclaveOptions {
    /// The ids of the typed interfaces the enclave must implement, 32 bytes each: the ECALL
    /// interface, then the OCALL interface the host serves ([`EnclaveOptions::typed`],
    /// [`EnclaveOptions::serving`]); empty for raw calls. On a mismatch the enclave refuses to
    /// start and creation fails with `LaunchFailed` naming both sides' interfaces.
    pub interface_id: Vec<u8>,
    /// The trait names of those interfaces, for the enclave's mismatch message.
    pub interface_names: Vec<String>,
    /// When every TCS is busy: wait for one (true) or fail with `OutOfTcs` (false, SGX's behaviour).
    pub wait_for_tcs: bool,
    /// How long a caller spins before sleeping while the enclave works (calls that are not
    /// switchless); `None`: the channel's default.
    pub wait_policy: Option<WaitPolicy>,
    /// Switchless calls for the calls the trait marks `#[switchless]`; `None`: off.
    pub switchless: Option<SwitchlessConfig>,
    /// Serves the enclave's typed OCALLs; `None`: every OCALL is refused as unknown.
    pub ocalls: Option<Arc<OcallDispatch>>,
}

impl std::fmt::Debug for EnclaveOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnclaveOptions")
            .field("interface_id", &self.interface_id)
            .field("interface_names", &self.interface_names)
            .field("wait_for_tcs", &self.wait_for_tcs)
            .field("wait_policy", &self.wait_policy)
            .field("switchless", &self.switchless)
            .field("ocalls", &self.ocalls.as_ref().map(|_| "…"))
            .finish()
    }
}

impl EnclaveOptions {
    /// Options for a host that calls the enclave through the `#[ecalls]` interface `ecalls`
    /// (`HELLO_INTERFACE`): an enclave built from another version of the trait is refused at
    /// creation.
    pub fn typed(ecalls: &InterfaceInfo) -> Self {
        EnclaveOptions {
            interface_id: ecalls.id.to_vec(),
            interface_names: vec![ecalls.name.to_owned()],
            ..EnclaveOptions::default()
        }
    }

    /// Serves the enclave's OCALLs of the `#[ocalls]` interface `ocalls` with `imp`, through
    /// `dispatch` (the `<trait>_dispatch` generated for the same trait), on the thread that made
    /// the ECALL. After [`EnclaveOptions::typed`], an enclave that calls another version of the
    /// trait is refused at creation too.
    pub fn serving<I: Send + Sync + 'static>(
        mut self,
        ocalls: &InterfaceInfo,
        imp: I,
        dispatch: Dispatch<I>,
    ) -> Self {
        if self.interface_id.len() == ocalls.id.len() {
            self.interface_id.extend_from_slice(&ocalls.id);
            self.interface_names.push(ocalls.name.to_owned());
        }
        self.ocalls = Some(Arc::new(move |id, input| dispatch(&imp, id, input)));
        self
    }

    /// Turns switchless calls on for the calls the trait marks `#[switchless]`.
    pub fn switchless(mut self, config: SwitchlessConfig) -> Self {
        self.switchless = Some(config);
        self
    }

    /// Waits for a free TCS instead of failing with `OutOfTcs`.
    pub fn wait_for_tcs(mut self, wait: bool) -> Self {
        self.wait_for_tcs = wait;
        self
    }
}

/// Why an ECALL failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EcallError {
    /// The enclave is lost; every later call fails the same way.
    #[error("EnclaveLost: {reason}")]
    EnclaveLost { reason: String },
    /// Every TCS is busy.
    #[error("OutOfTcs: all {tcs} enclave threads are busy")]
    OutOfTcs { tcs: u32 },
    #[error("the enclave has no ECALL with id {0}")]
    UnknownCall(u32),
    /// The enclave's handler returned an error; the bytes are its error value.
    #[error("the ECALL failed inside the enclave ({} bytes of error)", .0.len())]
    Failed(Vec<u8>),
    #[error("the enclave refused the call's message as malformed or too large")]
    BadMessage,
    #[error("the call channel failed")]
    Channel(#[source] CallError),
}

impl From<CallError> for EcallError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::EnclaveLost { reason, .. } => EcallError::EnclaveLost { reason },
            CallError::OutOfTcs { slots } => EcallError::OutOfTcs { tcs: slots },
            other => EcallError::Channel(other),
        }
    }
}

/// A host function serving OCALLs: id and input in; `Ok(output)` or `Err(status, output)` out.
pub type OcallHandler<'a> = dyn FnMut(u32, &[u8]) -> Result<Vec<u8>, (Status, Vec<u8>)> + 'a;

/// An enclave this host created. It is the [`Transport`] of its typed proxies:
/// `HelloProxy::new(&enclave)`.
pub struct Enclave {
    conn: Arc<Conn>,
    info: Created,
    channel: Channel,
    wait_for_tcs: bool,
    switchless: Option<WaitPolicy>,
    ocalls: Option<Arc<OcallDispatch>>,
    destroyed: bool,
    _channel_fd: OwnedFd,
}

impl std::fmt::Debug for Enclave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enclave")
            .field("info", &self.info)
            .field("channel", &self.channel)
            .field("wait_for_tcs", &self.wait_for_tcs)
            .field("switchless", &self.switchless)
            .finish_non_exhaustive()
    }
}

impl Enclave {
    pub(crate) fn new(
        conn: Arc<Conn>,
        info: Created,
        fd: OwnedFd,
        options: EnclaveOptions,
    ) -> Result<Enclave, HostError> {
        let layout = ChannelLayout::new(info.slot_count, info.slot_size)
            .map_err(HostError::ChannelLayout)?;
        let mut channel = Channel::open(fd.as_fd(), layout)?;
        if let Some(p) = options.wait_policy {
            channel.set_wait_policy(p);
        }
        Ok(Enclave {
            conn,
            info,
            channel,
            wait_for_tcs: options.wait_for_tcs,
            switchless: options.switchless.map(|s| WaitPolicy { spin: s.spin }),
            ocalls: options.ocalls,
            destroyed: false,
            _channel_fd: fd,
        })
    }

    pub fn id(&self) -> u64 {
        self.info.id
    }

    /// The enclave process's pid (for operators; the host cannot read its memory).
    pub fn pid(&self) -> u32 {
        self.info.pid
    }

    pub fn mrenclave(&self) -> [u8; 32] {
        self.info.mrenclave
    }

    pub fn mrsigner(&self) -> [u8; 32] {
        self.info.mrsigner
    }

    pub fn debug(&self) -> bool {
        self.info.debug
    }

    /// Number of TCS (concurrent ECALLs).
    pub fn tcs_count(&self) -> u32 {
        self.info.slot_count
    }

    /// The largest call argument or result in bytes.
    pub fn max_message(&self) -> usize {
        self.info.slot_size as usize
    }

    /// An ECALL whose OCALLs (if any) are refused as unknown.
    pub fn ecall(&self, id: u32, input: &[u8]) -> Result<Vec<u8>, EcallError> {
        self.ecall_with(id, input, &mut |_, _| {
            Err((Status::UnknownCall, Vec::new()))
        })
    }

    /// An ECALL whose OCALLs are served by `ocalls` on this thread.
    pub fn ecall_with(
        &self,
        id: u32,
        input: &[u8],
        ocalls: &mut OcallHandler<'_>,
    ) -> Result<Vec<u8>, EcallError> {
        self.ecall_with_policy(id, input, self.channel.wait_policy(), ocalls)
    }

    /// [`Enclave::ecall_with`], waiting for the result and OCALL requests as `policy` says.
    fn ecall_with_policy(
        &self,
        id: u32,
        input: &[u8],
        policy: WaitPolicy,
        ocalls: &mut OcallHandler<'_>,
    ) -> Result<Vec<u8>, EcallError> {
        let mut claim = self.channel.claim(self.wait_for_tcs)?;
        let r = claim.ecall_with_policy(
            id,
            input,
            policy,
            &mut |oid, data| match ocalls(oid, data) {
                Ok(out) => (Status::Ok, out),
                Err((status, out)) => (status, out),
            },
        )?;
        match r.status {
            Status::Ok => Ok(r.output),
            Status::UnknownCall => Err(EcallError::UnknownCall(id)),
            Status::Failed => Err(EcallError::Failed(r.output)),
            Status::BadMessage => Err(EcallError::BadMessage),
        }
    }

    /// Destroys the enclave now.
    pub fn destroy(mut self) -> Result<(), HostError> {
        self.destroyed = true;
        destroy(&self.conn, self.info.id)
    }
}

impl Drop for Enclave {
    fn drop(&mut self) {
        if !self.destroyed
            && let Err(e) = destroy(&self.conn, self.info.id)
        {
            tracing::debug!(id = self.info.id, "destroy on drop: {e}");
        }
    }
}

/// A typed call's failure. A failed call of a typed enclave carries its dispatcher's reason
/// (arguments that did not decode); the method's own `Result` error is a value and never gets
/// here.
impl From<EcallError> for TransportError {
    fn from(e: EcallError) -> Self {
        match e {
            EcallError::EnclaveLost { reason } => TransportError::EnclaveLost(reason),
            EcallError::OutOfTcs { tcs } => TransportError::OutOfTcs(tcs),
            EcallError::UnknownCall(id) => TransportError::UnknownCall(id),
            EcallError::Failed(bytes) => {
                TransportError::Refused(String::from_utf8_lossy(&bytes).into_owned())
            }
            EcallError::BadMessage => TransportError::Refused(
                "the enclave found the call's message malformed, or its answer did not fit the \
                 call buffer"
                    .into(),
            ),
            e @ EcallError::Channel(_) => TransportError::Other(e.to_string()),
        }
    }
}

impl Transport for Enclave {
    /// Makes the ECALL, serving its OCALLs with the options' dispatcher on this thread. A call
    /// the trait marks `#[switchless]` is switchless when the options turned switchless on.
    fn call(&self, call: &CallInfo, input: &[u8]) -> Result<Vec<u8>, TransportError> {
        let policy = match self.switchless {
            Some(p) if call.switchless => p,
            _ => self.channel.wait_policy(),
        };
        let dispatch = self.ocalls.as_deref();
        let mut serve = |id: u32, data: &[u8]| match dispatch.map(|d| d(id, data)) {
            Some(Ok(out)) => Ok(out),
            None | Some(Err(DispatchError::UnknownCall(_))) => Err((Status::UnknownCall, vec![])),
            Some(Err(e)) => Err((Status::Failed, e.to_string().into_bytes())),
        };
        Ok(self.ecall_with_policy(call.id, input, policy, &mut serve)?)
    }
}
