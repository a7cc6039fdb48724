//! Shared by the runtime's tests: building the enclaves statically, and playing the platform
//! daemon's part (channel, socket pair, Boot, Ready) and the host's (ECALLs).

#![allow(dead_code, clippy::unwrap_used)]

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::OnceLock;
use std::time::Duration;

use coffer_abi::{AttributesFlags, Codec, ReportBody};
use coffer_boundary::{Credentials, EnclaveChild, SealedImage, SpawnSpec, spawn_enclave_process};
use coffer_channel::{CallError, Channel, ChannelLayout, HostCall, OcallHandler, Status};
use coffer_enclave::interface::{CallInfo, DispatchError, Transport, TransportError};
use coffer_proto::enclave::{Boot, DaemonReply, EnclaveMessage, fds};

/// The statically linked enclave binaries.
pub struct Binaries {
    pub hello: PathBuf,
    pub test_enclave: PathBuf,
}

/// Builds `hello-enclave` and the `test-enclave` example as `coffer build` does (static-pie,
/// release, explicit target), once per test binary, in a target directory of their own so the
/// build does not wait for the lock of the `cargo test` that runs us.
pub fn binaries() -> &'static Binaries {
    static BUILT: OnceLock<Binaries> = OnceLock::new();
    BUILT.get_or_init(|| Binaries {
        hello: coffer_testkit::build_static_enclave("hello-enclave"),
        test_enclave: coffer_testkit::build_static_example("coffer-enclave", "test-enclave"),
    })
}

/// `nobody`, the enclave identity the tests use as root.
pub const NOBODY: Credentials = Credentials {
    uid: 65534,
    gid: 65534,
};

// Not every test file uses both.
#[allow(unused_imports)]
pub use coffer_testkit::{is_root, require_root};

/// How to launch an enclave.
#[derive(Clone)]
pub struct Options {
    pub debug: bool,
    pub tcs: u32,
    pub slot_size: u32,
    pub heap_size: u64,
    pub stack_size: u64,
    pub interface_id: Vec<u8>,
    pub interface_names: Vec<String>,
    pub switchless_spin_ns: u64,
}

impl Options {
    /// `examples/hello/enclave.toml`.
    pub fn hello() -> Self {
        Options {
            debug: false,
            tcs: 2,
            slot_size: 65536,
            heap_size: 4 << 20,
            stack_size: 256 << 10,
            interface_id: Vec::new(),
            interface_names: Vec::new(),
            switchless_spin_ns: 0,
        }
    }

    pub fn debug(mut self) -> Self {
        self.debug = true;
        self
    }
}

/// The identity the test daemon gives an enclave.
pub fn identity(debug: bool) -> ReportBody {
    let mut flags = AttributesFlags::INIT | AttributesFlags::MODE64BIT;
    if debug {
        flags |= AttributesFlags::DEBUG;
    }
    let mut body = ReportBody {
        mrenclave: [0x3e; 32],
        mrsigner: [0x5a; 32],
        isvprodid: 1,
        isvsvn: 1,
        ..ReportBody::default()
    };
    body.attributes.flags = flags;
    body.attributes.xfrm = 3;
    body
}

/// A launched enclave, with the daemon's and the host's ends.
pub struct Enclave {
    pub child: EnclaveChild,
    /// The daemon's end of the socket pair (the enclave has the other as descriptor 3).
    pub daemon: OwnedFd,
    /// The daemon's view of the channel (to mark it running or lost).
    pub channel: Channel,
    /// The host's view of the channel.
    pub host: Channel,
    reaped: Option<ExitStatus>,
}

/// Starts `image` (as `nobody` with `CAP_IPC_LOCK` when root) with a channel of `layout`; the
/// Boot is the caller's to send.
pub fn spawn(image: &Path, layout: ChannelLayout) -> Enclave {
    let bytes = std::fs::read(image).unwrap();
    let sealed = SealedImage::new("coffer-enclave-test", &bytes).unwrap();
    let (channel_fd, channel) = Channel::create(layout).unwrap();
    let host = Channel::open(channel_fd.as_fd(), layout).unwrap();
    let (daemon, enclave_end) = coffer_proto::seqpacket_pair().unwrap();
    // Nothing the test does should wait forever on a silent enclave.
    rustix::net::sockopt::set_socket_timeout(
        &daemon,
        rustix::net::sockopt::Timeout::Recv,
        Some(Duration::from_secs(60)),
    )
    .unwrap();
    let root = is_root();
    let child = spawn_enclave_process(SpawnSpec {
        image: &sealed,
        argv: vec!["enclave".into()],
        envp: Vec::new(),
        fds: vec![
            (enclave_end.as_fd(), fds::DAEMON),
            (channel_fd.as_fd(), fds::CHANNEL),
        ],
        credentials: root.then_some(NOBODY),
        keep_ipc_lock: root,
    })
    .unwrap();
    Enclave {
        child,
        daemon,
        channel,
        host,
        reaped: None,
    }
}

/// The Boot for `options`.
pub fn boot(options: &Options) -> Boot {
    Boot {
        identity: identity(options.debug).to_bytes(),
        heap_size: options.heap_size,
        stack_size: options.stack_size,
        tcs_count: options.tcs,
        debug: options.debug,
        slot_count: options.tcs,
        slot_size: options.slot_size,
        ecall_interface: options
            .interface_id
            .get(..32)
            .and_then(|id| id.try_into().ok()),
        ocall_interface: options
            .interface_id
            .get(32..64)
            .and_then(|id| id.try_into().ok()),
        interface_names: options.interface_names.clone(),
        switchless_spin_ns: options.switchless_spin_ns,
    }
}

/// Launches `image` with `options`, waits for Ready and takes the enclave's key mailbox, as the
/// daemon does; returns the mailbox for the test to serve.
pub fn launch_with_mailbox(
    image: &Path,
    options: &Options,
) -> (Enclave, coffer_channel::mailbox::MailboxServer) {
    let layout = ChannelLayout::new(options.tcs, options.slot_size).unwrap();
    let enclave = spawn(image, layout);
    enclave.send(&boot(options));
    assert!(matches!(enclave.recv(), EnclaveMessage::Ready { .. }));
    let (msg, fds) = coffer_proto::recv::<EnclaveMessage>(enclave.daemon.as_fd()).unwrap();
    assert_eq!(msg, EnclaveMessage::KeyMailbox);
    assert_eq!(fds.len(), 1);
    let mailbox = coffer_channel::mailbox::Mailbox::open(fds[0].as_fd()).unwrap();
    enclave.reply(&DaemonReply::Accepted);
    enclave.channel.set_running();
    (
        enclave,
        coffer_channel::mailbox::MailboxServer::new(mailbox),
    )
}

/// Launches `image` with `options` and waits for Ready, as the daemon does.
pub fn launch(image: &Path, options: &Options) -> Enclave {
    let layout = ChannelLayout::new(options.tcs, options.slot_size).unwrap();
    let enclave = spawn(image, layout);
    enclave.send(&boot(options));
    match enclave.recv() {
        EnclaveMessage::Ready { secret_memory } => {
            assert_eq!(secret_memory, !options.debug, "secret memory reported");
        }
        other => panic!("expected Ready, got {other:?}"),
    }
    // The runtime offers its key mailbox next; this daemon keeps EGETKEY on the socket, where
    // the tests see the requests.
    match enclave.recv() {
        EnclaveMessage::KeyMailbox => enclave.reply(&DaemonReply::Error("not here".into())),
        other => panic!("expected KeyMailbox, got {other:?}"),
    }
    enclave.channel.set_running();
    enclave
}

impl Enclave {
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The next message from the enclave.
    pub fn recv(&self) -> EnclaveMessage {
        coffer_proto::recv::<EnclaveMessage>(self.daemon.as_fd())
            .unwrap()
            .0
    }

    pub fn reply(&self, reply: &DaemonReply) {
        self.send(reply);
    }

    pub fn send<T: serde::Serialize>(&self, msg: &T) {
        coffer_proto::send(self.daemon.as_fd(), msg, &[]).unwrap();
    }

    /// Waits up to `timeout` for the process to end; false if it still runs.
    pub fn ends_within(&self, timeout: Duration) -> bool {
        use rustix::event::{PollFd, PollFlags, Timespec};
        let pidfd = self.child.pidfd();
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        let timeout = Timespec::try_from(timeout).unwrap();
        rustix::event::poll(&mut fds, Some(&timeout)).unwrap() == 1
    }

    /// Marks the enclave lost, as the daemon does when it sees the process end.
    pub fn mark_lost(&self, reason: &str) {
        self.channel
            .mark_lost(coffer_channel::EnclaveState::Lost, 1, reason);
    }

    /// An ECALL from the host, whose OCALLs `ocall` serves.
    pub fn ecall_with(
        &self,
        id: u32,
        input: &[u8],
        ocall: &mut OcallHandler<'_>,
    ) -> Result<HostCall, CallError> {
        self.host.claim(true)?.ecall(id, input, ocall)
    }

    /// An ECALL that makes no OCALL.
    pub fn ecall(&self, id: u32, input: &[u8]) -> Result<HostCall, CallError> {
        self.ecall_with(id, input, &mut |id, _| panic!("unexpected OCALL {id}"))
    }

    /// Runs `call` (the host's part) on a thread while `daemon` runs here. Should `daemon` fail,
    /// the enclave is killed and marked lost first, so that the call returns and the failure is
    /// reported instead of hanging the test.
    pub fn with_call<R: Send>(
        &self,
        call: impl FnOnce(&Enclave) -> R + Send,
        daemon: impl FnOnce(&Enclave),
    ) -> R {
        std::thread::scope(|s| {
            let handle = s.spawn(|| call(self));
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| daemon(self)));
            if outcome.is_err() {
                let _ = self.child.kill();
                self.mark_lost("the test failed");
            }
            let result = handle.join();
            match (outcome, result) {
                (Err(panic), _) | (Ok(()), Err(panic)) => std::panic::resume_unwind(panic),
                (Ok(()), Ok(r)) => r,
            }
        })
    }

    /// Waits for the process to end, as the daemon does.
    pub fn wait(&mut self) -> ExitStatus {
        if let Some(status) = self.reaped {
            return status;
        }
        let status = self.child.wait().unwrap();
        self.reaped = Some(status);
        status
    }
}

impl Drop for Enclave {
    fn drop(&mut self) {
        if self.reaped.is_none() && self.child.kill().is_ok() {
            let _ = self.child.wait();
        }
    }
}

/// A signal's name for assertion messages.
pub fn signal(status: ExitStatus) -> Option<i32> {
    status.signal()
}

/// The host's typed side over the test's channel, for the proxies a trait generates:
/// `HelloProxy::new(enclave.typed(|id, input| dispatched(hello_host_dispatch(&host, id, input))))`.
/// `ocalls` answers the enclave's OCALLs with a status and bytes, as a raw handler does.
pub struct Typed<'a, F> {
    enclave: &'a Enclave,
    ocalls: F,
}

impl Enclave {
    pub fn typed<F: Fn(u32, &[u8]) -> (Status, Vec<u8>)>(&self, ocalls: F) -> Typed<'_, F> {
        Typed {
            enclave: self,
            ocalls,
        }
    }
}

/// A typed OCALL dispatcher's answer as a raw OCALL handler gives it.
pub fn dispatched(r: Result<Vec<u8>, DispatchError>) -> (Status, Vec<u8>) {
    match r {
        Ok(out) => (Status::Ok, out),
        Err(DispatchError::UnknownCall(_)) => (Status::UnknownCall, Vec::new()),
        Err(e) => (Status::Failed, e.to_string().into_bytes()),
    }
}

impl<F: Fn(u32, &[u8]) -> (Status, Vec<u8>)> Transport for Typed<'_, F> {
    fn call(&self, call: &CallInfo, input: &[u8]) -> Result<Vec<u8>, TransportError> {
        let r = self
            .enclave
            .ecall_with(call.id, input, &mut |id, data| (self.ocalls)(id, data))
            .map_err(|e| match e {
                CallError::EnclaveLost { reason, .. } => TransportError::EnclaveLost(reason),
                other => TransportError::Other(other.to_string()),
            })?;
        match r.status {
            Status::Ok => Ok(r.output),
            Status::UnknownCall => Err(TransportError::UnknownCall(call.id)),
            Status::Failed => Err(TransportError::Refused(
                String::from_utf8_lossy(&r.output).into_owned(),
            )),
            Status::BadMessage => Err(TransportError::Refused("bad message".into())),
        }
    }
}
