//! Host application / CLI ↔ platform daemon.
//!
//! A client connects to the daemon's socket. Enclaves it creates belong to that connection: when
//! the connection closes (the host process ends), the daemon destroys them, as an SGX enclave
//! dies with its host process.

use serde::{Deserialize, Serialize};

/// A request from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Create an enclave from the bundle whose file descriptor is attached.
    Create(CreateOptions),
    /// Destroy an enclave this connection created (root may destroy any).
    Destroy { id: u64 },
    /// Report the node's EPC and its enclaves.
    Status,
}

/// Options of a create request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CreateOptions {
    /// The ids of the host's typed interfaces, 32 bytes each: the ECALL interface, then
    /// (optionally) the OCALL interface it serves. The enclave refuses to start with others.
    /// Empty when the host uses raw calls.
    pub interface_id: Vec<u8>,
    /// The trait names of those interfaces, in the same order, so that the enclave can name a
    /// mismatch (at most [`crate::enclave::MAX_INTERFACE_NAMES`] of
    /// [`crate::enclave::MAX_INTERFACE_NAME`] bytes).
    pub interface_names: Vec<String>,
    /// Switchless calls: how long, in nanoseconds, the enclave's workers poll their slot for the
    /// next ECALL and for OCALL answers before they sleep (at most
    /// [`crate::enclave::MAX_SWITCHLESS_SPIN_NS`]); 0 turns switchless calls off.
    pub switchless_spin_ns: u64,
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The enclave runs; the channel memfd is attached.
    Created(Created),
    Destroyed {
        id: u64,
    },
    Status(PlatformStatus),
    Error(PlatformError),
}

/// A created enclave, as its host needs to know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    pub id: u64,
    pub pid: u32,
    pub mrenclave: [u8; 32],
    pub mrsigner: [u8; 32],
    pub debug: bool,
    pub epc_bytes: u64,
    /// The channel geometry (TCS count and call-buffer size).
    pub slot_count: u32,
    pub slot_size: u32,
}

/// The node as `coffer platform status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformStatus {
    pub vm_size: String,
    pub epc_total: u64,
    pub epc_used: u64,
    /// How hardened the host is: the soft backend's TCB level and one advisory for each
    /// channel into enclaves open to root on this host.
    pub tcb: crate::tcb::TcbStatus,
    pub enclaves: Vec<EnclaveStatus>,
}

/// One enclave in the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnclaveStatus {
    pub id: u64,
    pub pid: u32,
    pub mrenclave: [u8; 32],
    pub mrsigner: [u8; 32],
    pub debug: bool,
    pub epc_bytes: u64,
    /// `running`, `lost` (with `lost_reason`), `starting`.
    pub state: String,
    pub lost_reason: Option<String>,
    /// The uid of the client that created it.
    pub owner_uid: u32,
}

/// Why the daemon refused a request. Each refusal names its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PlatformError {
    #[error("bad bundle: {0}")]
    BadBundle(String),
    #[error("bad signature: {0}")]
    BadSignature(String),
    #[error(
        "measurement mismatch: SIGSTRUCT ENCLAVEHASH is {expected} but the image and configuration measure {actual}"
    )]
    MeasurementMismatch { expected: String, actual: String },
    #[error(
        "attributes {attributes} do not match SIGSTRUCT's required {required} under mask {mask}"
    )]
    AttributesMismatch {
        attributes: String,
        required: String,
        mask: String,
    },
    #[error("debug not allowed: this platform was started without --allow-debug")]
    DebugNotAllowed,
    #[error("signer not allowed: MRSIGNER {mrsigner} is not on the platform's signer allowlist")]
    SignerNotAllowed { mrsigner: String },
    #[error(
        "EPC exhausted: the enclave needs {asked} bytes but only {free} of {total} bytes are free on this {vm_size} node"
    )]
    EpcExhausted {
        asked: u64,
        free: u64,
        total: u64,
        vm_size: String,
    },
    #[error("no enclave with id {0}")]
    NoSuchEnclave(u64),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("the enclave failed to start: {0}")]
    LaunchFailed(String),
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("internal platform error: {0}")]
    Internal(String),
}
