//! What a handler sees of the enclave: OCALLs, the platform's services, its own identity.

use coffer_abi::{Keyrequest, Report, ReportBody, Targetinfo};
use coffer_channel::{CallError, EnclaveSlot, Status};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::runtime::Runtime;
use crate::services::ServiceError;

/// How an ECALL handler fails.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HandlerError {
    /// The call id is not one of the enclave's; the host gets `Status::UnknownCall`.
    #[error("unknown call id")]
    UnknownCall,
    /// The call failed; the host gets `Status::Failed` with these bytes (never put a secret in
    /// them: they leave the enclave).
    #[error("the call failed: {}", String::from_utf8_lossy(.0))]
    Failed(Vec<u8>),
}

impl HandlerError {
    /// A failure whose bytes are `reason`'s message.
    pub fn failed(reason: impl std::fmt::Display) -> Self {
        HandlerError::Failed(reason.to_string().into_bytes())
    }

    /// A failure whose bytes are `error`'s message followed by those of its sources, each after
    /// `": "`, so that the host reads the cause too ("… the platform daemon is unreachable: the
    /// peer closed the connection").
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> Self {
        HandlerError::Failed(error_message(error).into_bytes())
    }
}

/// `error`'s message followed by those of its sources, each after `": "`: the whole cause, for
/// an error that leaves the enclave as text.
pub fn error_message(error: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(error), |e| e.source())
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

impl From<OcallError> for HandlerError {
    fn from(e: OcallError) -> Self {
        HandlerError::from_error(&e)
    }
}

impl From<ServiceError> for HandlerError {
    fn from(e: ServiceError) -> Self {
        HandlerError::from_error(&e)
    }
}

/// Why an OCALL did not return a result.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OcallError {
    /// The host has no OCALL with this id.
    #[error("the host has no OCALL {id}")]
    UnknownCall { id: u32 },
    /// The host's handler failed; `output` is its error bytes (untrusted, like every OCALL
    /// result).
    #[error("the host's OCALL {id} failed: {}", String::from_utf8_lossy(.output))]
    Failed { id: u32, output: Vec<u8> },
    /// The host found the message malformed, or its answer did not fit the call buffer.
    #[error("the host refused OCALL {id}: malformed message or answer too large")]
    BadMessage { id: u32 },
    /// The channel failed: the enclave is lost or destroyed, the input exceeds the call buffer,
    /// or the host broke the protocol.
    #[error("OCALL {id}: {source}")]
    Channel { id: u32, source: CallError },
}

/// The context of one ECALL: the slot it came through and the enclave it runs in.
pub struct Ctx<'a> {
    pub(crate) rt: &'a Runtime,
    pub(crate) slot: EnclaveSlot<'a>,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("slot", &self.slot)
            .field("debug", &self.rt.settings.debug)
            .finish_non_exhaustive()
    }
}

impl Ctx<'_> {
    /// Makes OCALL `id` with `input` on the host thread that made this ECALL, and returns the
    /// host's answer, copied into enclave memory. The answer is untrusted input.
    pub fn ocall(&self, id: u32, input: &[u8]) -> Result<Vec<u8>, OcallError> {
        self.ocall_with_policy(id, input, self.rt.channel.wait_policy())
    }

    /// [`Ctx::ocall`], spinning for the answer as `policy` says (a switchless OCALL spins longer).
    pub(crate) fn ocall_with_policy(
        &self,
        id: u32,
        input: &[u8],
        policy: coffer_channel::WaitPolicy,
    ) -> Result<Vec<u8>, OcallError> {
        let call = self
            .slot
            .ocall_with_policy(id, input, policy)
            .map_err(|source| OcallError::Channel { id, source })?;
        match call.status {
            Status::Ok => Ok(call.output),
            Status::UnknownCall => Err(OcallError::UnknownCall { id }),
            Status::BadMessage => Err(OcallError::BadMessage { id }),
            Status::Failed => Err(OcallError::Failed {
                id,
                output: call.output,
            }),
        }
    }

    /// EGETKEY: the key `request` describes, derived by the platform for this enclave's identity.
    /// The key lives in the heap (secret memory) and is wiped when dropped.
    pub fn egetkey(&self, request: &Keyrequest) -> Result<Zeroizing<[u8; 16]>, ServiceError> {
        self.rt.services.egetkey(request)
    }

    /// EREPORT: a REPORT of this enclave with `reportdata`, MAC'd for the enclave `target`
    /// names. The platform's answer is checked to be this enclave's and of this `reportdata`.
    pub fn ereport(
        &self,
        target: &Targetinfo,
        reportdata: &[u8; 64],
    ) -> Result<Report, ServiceError> {
        self.rt
            .services
            .ereport(&self.rt.settings.identity, target, reportdata)
    }

    /// The quoting enclave's TARGETINFO, to target a REPORT at it for [`Ctx::quote`].
    pub fn qe_targetinfo(&self) -> Result<Targetinfo, ServiceError> {
        self.rt.services.qe_targetinfo()
    }

    /// Turns a REPORT targeted at the quoting enclave into a quote (DCAP ECDSA, version 3).
    pub fn quote(&self, report: &Report) -> Result<Vec<u8>, ServiceError> {
        self.rt.services.quote(report)
    }

    /// This enclave's identity as EREPORT reports it (REPORTDATA zero), from the daemon at
    /// start.
    pub fn identity(&self) -> &ReportBody {
        &self.rt.settings.identity
    }

    /// Whether this is a DEBUG enclave (its memory is ordinary and a debugger may attach).
    pub fn is_debug(&self) -> bool {
        self.rt.settings.debug
    }

    /// The interface id the host created the enclave with (empty for raw calls).
    pub fn interface_id(&self) -> &[u8] {
        &self.rt.settings.interface_id
    }
}
