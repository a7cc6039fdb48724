//! Starting an enclave process and bringing it to `Ready`.
//!
//! The daemon creates the channel memfd and a socket pair, seals the image into a memfd and
//! starts the process from it (fd 3: its end of the pair, fd 4: the channel), under the enclave's
//! own uid with `CAP_IPC_LOCK` as its one ambient capability and `no_new_privs`
//! ([`coffer_boundary::spawn_enclave_process`]). It then sends [`Boot`] and waits, with a
//! timeout, for `Ready`. On any failure the process is killed and reaped: nothing half-started
//! survives a refused launch.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use coffer_abi::{Codec, ReportBody};
use coffer_boundary::{Credentials, EnclaveChild, SealedImage, SpawnSpec, spawn_enclave_process};
use coffer_channel::{Channel, ChannelLayout};
use coffer_proto::enclave::{Boot, EnclaveMessage, fds};
use coffer_proto::{FrameError, recv, send, seqpacket_pair};

use crate::lost::exit_reason;
use crate::table::Live;
use crate::wait::readable;

/// Why an enclave could not be started. Every variant ends the launch with nothing left running.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("bad channel geometry: {0}")]
    Layout(#[from] coffer_channel::LayoutError),
    #[error("creating the call channel failed: {0}")]
    Channel(#[from] coffer_channel::CallError),
    #[error("creating the daemon socket pair failed: {0}")]
    Socket(FrameError),
    #[error("sealing the image failed: {0}")]
    Seal(#[from] coffer_boundary::sealed_image::SealedImageError),
    #[error("{0}")]
    Spawn(#[from] coffer_boundary::process::SpawnError),
    #[error("sending Boot to the enclave failed: {0}")]
    Boot(FrameError),
    #[error("the enclave did not report ready within {0:?}")]
    Timeout(Duration),
    #[error("the enclave refused to start: {0}")]
    Failed(String),
    #[error("the enclave process ended before it was ready: {0}")]
    Ended(String),
    #[error("the enclave broke the start-up protocol: {0}")]
    Protocol(String),
    #[error("waiting for the enclave failed: {0}")]
    Wait(rustix::io::Errno),
}

/// Everything a launch needs.
#[derive(Debug)]
pub struct LaunchSpec<'a> {
    pub id: u64,
    /// The measured ELF image.
    pub image: &'a [u8],
    /// The enclave's SECS as EREPORT reports it (REPORTDATA zero).
    pub identity: &'a ReportBody,
    pub heap_size: u64,
    pub stack_size: u64,
    pub tcs_count: u32,
    pub debug: bool,
    pub max_call_size: u32,
    pub interface_id: Vec<u8>,
    pub interface_names: Vec<String>,
    pub switchless_spin_ns: u64,
    /// `None`: keep the daemon's uid (a daemon not running as root).
    pub credentials: Option<Credentials>,
    pub keep_ipc_lock: bool,
    pub ready_timeout: Duration,
}

/// A started enclave that reported ready.
#[derive(Debug)]
pub struct Launched {
    pub live: Live,
    /// The daemon's end of the enclave's socket.
    pub socket: OwnedFd,
    /// The channel memfd, for the host.
    pub channel_fd: OwnedFd,
    /// Whether the enclave's heap and stacks are in secret memory.
    pub secret_memory: bool,
}

/// Starts the enclave and waits for it to be ready.
pub fn launch(spec: LaunchSpec<'_>) -> Result<Launched, LaunchError> {
    let layout = ChannelLayout::new(spec.tcs_count, spec.max_call_size)?;
    let (channel_fd, channel) = Channel::create(layout)?;
    let (socket, enclave_end) = seqpacket_pair().map_err(LaunchError::Socket)?;
    let name = format!("coffer-enclave-{}", spec.id);
    let image = SealedImage::new(&name, spec.image)?;
    let child = spawn_enclave_process(SpawnSpec {
        image: &image,
        argv: vec![name],
        envp: Vec::new(),
        fds: vec![
            (enclave_end.as_fd(), fds::DAEMON),
            (channel_fd.as_fd(), fds::CHANNEL),
        ],
        credentials: spec.credentials,
        keep_ipc_lock: spec.keep_ipc_lock,
    })?;
    // The enclave holds the only other end now: when it exits, the socket reports it.
    drop(enclave_end);
    drop(image);

    let boot = Boot {
        identity: spec.identity.to_bytes(),
        heap_size: spec.heap_size,
        stack_size: spec.stack_size,
        tcs_count: spec.tcs_count,
        debug: spec.debug,
        slot_count: layout.slot_count,
        slot_size: layout.slot_size,
        interface_id: spec.interface_id,
        interface_names: spec.interface_names,
        switchless_spin_ns: spec.switchless_spin_ns,
    };
    let ready = match send(socket.as_fd(), &boot, &[]) {
        Ok(()) => await_ready(&child, &socket, spec.ready_timeout),
        Err(FrameError::Closed) => Err(ended(&child)),
        Err(e) => Err(LaunchError::Boot(e)),
    };
    match ready {
        Ok(secret_memory) => {
            channel.set_running();
            Ok(Launched {
                live: Live { child, channel },
                socket,
                channel_fd,
                secret_memory,
            })
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

fn await_ready(
    child: &EnclaveChild,
    socket: &OwnedFd,
    timeout: Duration,
) -> Result<bool, LaunchError> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(LaunchError::Timeout(timeout));
        }
        let ready = readable(&[socket.as_fd()], left).map_err(LaunchError::Wait)?;
        if !ready.first().copied().unwrap_or(false) {
            continue;
        }
        match recv::<EnclaveMessage>(socket.as_fd()) {
            Ok((EnclaveMessage::Ready { secret_memory }, _)) => return Ok(secret_memory),
            Ok((EnclaveMessage::Failed { reason }, _)) => return Err(LaunchError::Failed(reason)),
            Ok((EnclaveMessage::Lost { reason }, _)) => return Err(LaunchError::Failed(reason)),
            Ok((other, _)) => {
                return Err(LaunchError::Protocol(format!(
                    "it sent {} before Ready",
                    message_name(&other)
                )));
            }
            Err(FrameError::Closed) => return Err(ended(child)),
            Err(e) => return Err(LaunchError::Protocol(e.to_string())),
        }
    }
}

/// The enclave closed its socket: it has ended or is about to (after a second, it is killed);
/// reap it and say why.
fn ended(child: &EnclaveChild) -> LaunchError {
    let exited = readable(&[child.pidfd()], Duration::from_secs(1))
        .ok()
        .and_then(|r| r.first().copied())
        .unwrap_or(false);
    if !exited {
        let _ = child.kill();
    }
    match child.wait() {
        Ok(status) => LaunchError::Ended(exit_reason(status).1),
        Err(e) => LaunchError::Wait(e),
    }
}

/// A message's name, for logs and errors (never its content).
pub fn message_name(m: &EnclaveMessage) -> &'static str {
    match m {
        EnclaveMessage::Ready { .. } => "Ready",
        EnclaveMessage::Failed { .. } => "Failed",
        EnclaveMessage::Lost { .. } => "Lost",
        EnclaveMessage::Egetkey { .. } => "Egetkey",
        EnclaveMessage::Ereport { .. } => "Ereport",
        EnclaveMessage::Quote { .. } => "Quote",
        EnclaveMessage::QeTargetinfo => "QeTargetinfo",
        EnclaveMessage::KeyMailbox => "KeyMailbox",
    }
}
