//! Host application / CLI ↔ platform daemon.
//!
//! A client connects to the daemon's socket. Enclaves it creates belong to that connection: when
//! the connection closes (the host process ends), the daemon destroys them, as an SGX enclave
//! dies with its host process.

use serde::{Deserialize, Serialize};

use crate::enclave::{MAX_INTERFACE_NAME, MAX_INTERFACE_NAMES, MAX_SWITCHLESS_SPIN_NS};

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

/// The id of a typed interface (`coffer-interface`): a SHA-256 of its description.
pub type InterfaceId = [u8; 32];

/// Options of a create request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CreateOptions {
    /// The id of the host's typed ECALL interface; the enclave refuses to start with another.
    /// `None` when the host uses raw calls.
    pub ecall_interface: Option<InterfaceId>,
    /// The id of the typed OCALL interface the host serves (only with an ECALL interface).
    pub ocall_interface: Option<InterfaceId>,
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
        "measurement mismatch: SIGSTRUCT ENCLAVEHASH is {} but the image and configuration measure {}",
        hex::encode(.expected),
        hex::encode(.actual)
    )]
    MeasurementMismatch {
        expected: [u8; 32],
        actual: [u8; 32],
    },
    #[error(
        "attributes {} do not match SIGSTRUCT's required {} under mask {}",
        hex::encode(.attributes),
        hex::encode(.required),
        hex::encode(.mask)
    )]
    AttributesMismatch {
        attributes: [u8; 16],
        required: [u8; 16],
        mask: [u8; 16],
    },
    #[error("debug not allowed: this platform was started without --allow-debug")]
    DebugNotAllowed,
    #[error(
        "signer not allowed: MRSIGNER {} is not on the platform's signer allowlist",
        hex::encode(.mrsigner)
    )]
    SignerNotAllowed { mrsigner: [u8; 32] },
    #[error(
        "EPC exhausted: the enclave needs {asked} bytes but only {free} of {total} bytes are free on this {vm_size} node"
    )]
    EpcExhausted {
        asked: u64,
        free: u64,
        total: u64,
        vm_size: String,
    },
    #[error(
        "EPC quota exceeded: uid {uid} holds {in_use} bytes of EPC and asks for {requested} more, \
         over the per-uid quota of {quota} bytes"
    )]
    EpcQuotaExceeded {
        uid: u32,
        quota: u64,
        in_use: u64,
        requested: u64,
    },
    #[error("the daemon serves at most {limit} clients at once")]
    TooManyClients { limit: u64 },
    #[error("the node runs the maximum of {limit} enclaves")]
    TooManyEnclaves { limit: u64 },
    #[error("uid {uid} already holds the maximum of {limit} connections to the daemon")]
    TooManyConnections { uid: u32, limit: u32 },
    #[error("no enclave with id {0}")]
    NoSuchEnclave(u64),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("the enclave failed to start: {0}")]
    LaunchFailed(String),
    /// The request broke one of the protocol's limits ([`Request::check`]).
    #[error("malformed request: {0}")]
    Invalid(#[from] RequestError),
    /// The request could not be read (its frame, as [`crate::FrameError`] said).
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("internal platform error: {0}")]
    Internal(String),
}

/// Why a well-framed request breaks the protocol's limits. Every limit on what a client may ask
/// lives here, so that the daemon, the fuzz target and any other receiver check the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RequestError {
    #[error(
        "{request} needs exactly {wanted} attached descriptors (the bundle file for Create), got {got}"
    )]
    Descriptors {
        request: String,
        wanted: u32,
        got: u32,
    },
    #[error("an OCALL interface id without an ECALL interface id")]
    OcallWithoutEcall,
    #[error(
        "{count} interface names: at most {MAX_INTERFACE_NAMES} of {MAX_INTERFACE_NAME} bytes each"
    )]
    InterfaceNameCount { count: u64 },
    #[error(
        "an interface name of {len} bytes: at most {MAX_INTERFACE_NAMES} of {MAX_INTERFACE_NAME} bytes each"
    )]
    InterfaceNameLength { len: u64 },
    #[error("a switchless spin of {ns} ns exceeds {MAX_SWITCHLESS_SPIN_NS} ns")]
    SwitchlessSpin { ns: u64 },
}

fn len(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl Request {
    /// The request's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Create(_) => "Create",
            Request::Destroy { .. } => "Destroy",
            Request::Status => "Status",
        }
    }

    /// Checks the request, received with `fds` descriptors attached, against the protocol's
    /// limits: Create carries exactly one descriptor (the bundle) and options within
    /// [`CreateOptions::check`]; the others carry none.
    pub fn check(&self, fds: usize) -> Result<(), RequestError> {
        let wanted = match self {
            Request::Create(_) => 1,
            Request::Destroy { .. } | Request::Status => 0,
        };
        if fds != wanted {
            return Err(RequestError::Descriptors {
                request: self.name().to_owned(),
                wanted: u32::try_from(wanted).unwrap_or(u32::MAX),
                got: u32::try_from(fds).unwrap_or(u32::MAX),
            });
        }
        match self {
            Request::Create(options) => options.check(),
            Request::Destroy { .. } | Request::Status => Ok(()),
        }
    }
}

impl CreateOptions {
    /// The interface ids and names and the switchless spin reach the enclave as they are:
    /// refuse sizes that would make it hold or spin more than a host can reasonably ask for.
    pub fn check(&self) -> Result<(), RequestError> {
        check_interfaces(
            self.ecall_interface.as_ref(),
            self.ocall_interface.as_ref(),
            &self.interface_names,
        )?;
        if self.switchless_spin_ns > MAX_SWITCHLESS_SPIN_NS {
            return Err(RequestError::SwitchlessSpin {
                ns: self.switchless_spin_ns,
            });
        }
        Ok(())
    }
}

/// The limits on interface ids and names, shared by [`CreateOptions`] and [`crate::enclave::Boot`].
pub(crate) fn check_interfaces(
    ecalls: Option<&InterfaceId>,
    ocalls: Option<&InterfaceId>,
    names: &[String],
) -> Result<(), RequestError> {
    if ocalls.is_some() && ecalls.is_none() {
        return Err(RequestError::OcallWithoutEcall);
    }
    if names.len() > MAX_INTERFACE_NAMES {
        return Err(RequestError::InterfaceNameCount {
            count: len(names.len()),
        });
    }
    if let Some(long) = names.iter().find(|n| n.len() > MAX_INTERFACE_NAME) {
        return Err(RequestError::InterfaceNameLength {
            len: len(long.len()),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ok() -> CreateOptions {
        CreateOptions {
            ecall_interface: Some([1; 32]),
            ocall_interface: Some([2; 32]),
            interface_names: vec!["Hello".into(), "HelloHost".into()],
            switchless_spin_ns: 10_000_000,
        }
    }

    #[test]
    fn rejects_a_lone_ocall_interface_oversized_names_and_switchless_spins() {
        ok().check().unwrap();
        let mut id = ok();
        id.ecall_interface = None;
        assert_eq!(id.check(), Err(RequestError::OcallWithoutEcall));
        let mut names = ok();
        names.interface_names.push("Third".into());
        let err = names.check().unwrap_err();
        assert!(
            err.to_string().contains("at most 2 interface names")
                || err.to_string().contains("at most 2 of 128 bytes"),
            "{err}"
        );
        let mut long = ok();
        long.interface_names[0] = "x".repeat(129);
        assert_eq!(
            long.check(),
            Err(RequestError::InterfaceNameLength { len: 129 })
        );
        let mut spin = ok();
        spin.switchless_spin_ns += 1;
        assert_eq!(
            PlatformError::from(spin.check().unwrap_err()).to_string(),
            "malformed request: a switchless spin of 10000001 ns exceeds 10000000 ns"
        );
    }

    #[test]
    fn create_needs_one_descriptor_and_the_others_none() {
        Request::Create(ok()).check(1).unwrap();
        Request::Status.check(0).unwrap();
        let err = Request::Create(ok()).check(0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Create needs exactly 1 attached descriptors (the bundle file for Create), got 0"
        );
        assert!(Request::Destroy { id: 1 }.check(1).is_err());
    }

    #[test]
    fn names_measurements_in_hex() {
        let e = PlatformError::MeasurementMismatch {
            expected: [0xab; 32],
            actual: [0x01; 32],
        };
        let msg = e.to_string();
        assert!(msg.contains(&"ab".repeat(32)), "{msg}");
        assert!(msg.contains(&"01".repeat(32)), "{msg}");
        let q = PlatformError::EpcQuotaExceeded {
            uid: 1000,
            quota: 8 << 20,
            in_use: 6 << 20,
            requested: 4 << 20,
        };
        assert!(q.to_string().contains("quota of 8388608 bytes"), "{q}");
    }
}
