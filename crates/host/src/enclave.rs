//! A created enclave and its ECALLs.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use coffer_channel::{CallError, Channel, ChannelLayout, Status, WaitPolicy};
use coffer_proto::client::Created;

use crate::platform::{Conn, HostError, destroy};

/// How the host wants its enclave.
#[derive(Debug, Clone, Default)]
pub struct EnclaveOptions {
    /// The interface id the enclave must implement (set by the typed interface; empty for raw calls).
    pub interface_id: Vec<u8>,
    /// When every TCS is busy: wait for one (true) or fail with `OutOfTcs` (false, SGX's behaviour).
    pub wait_for_tcs: bool,
    /// How long a caller spins before sleeping while the enclave works.
    pub wait_policy: Option<WaitPolicy>,
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
    #[error("{0}")]
    Channel(CallError),
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

/// An enclave this host created.
#[derive(Debug)]
pub struct Enclave {
    conn: Arc<Conn>,
    info: Created,
    channel: Channel,
    wait_for_tcs: bool,
    destroyed: bool,
    _channel_fd: OwnedFd,
}

impl Enclave {
    pub(crate) fn new(
        conn: Arc<Conn>,
        info: Created,
        fd: OwnedFd,
        options: EnclaveOptions,
    ) -> Result<Enclave, HostError> {
        let layout = ChannelLayout::new(info.slot_count, info.slot_size)
            .map_err(|e| HostError::Protocol(e.to_string()))?;
        let mut channel = Channel::open(fd.as_fd(), layout)?;
        if let Some(p) = options.wait_policy {
            channel.set_wait_policy(p);
        }
        Ok(Enclave {
            conn,
            info,
            channel,
            wait_for_tcs: options.wait_for_tcs,
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
        let mut claim = self.channel.claim(self.wait_for_tcs)?;
        let r = claim.ecall(id, input, &mut |oid, data| match ocalls(oid, data) {
            Ok(out) => (Status::Ok, out),
            Err((status, out)) => (status, out),
        })?;
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
