//! Start-up, lockdown and the ECALL workers.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use coffer_boundary::lockdown::{self, LockdownError, LockedDown, Worker};
use coffer_boundary::secret_heap::HeapError;
use coffer_boundary::secret_mem::SecretMemError;
use coffer_boundary::{LockdownSpec, MemoryKind, SecretRegion, TracerProbe};
use coffer_channel::{CallError, Channel, EnclaveSlot, Status, WaitPolicy};
use coffer_proto::enclave::{EnclaveMessage, fds};
use thiserror::Error;

use crate::boot::{BootError, Settings};
use crate::ctx::{Ctx, HandlerError};
use crate::services::Services;
use crate::sys::{self, DescriptorError};
use crate::typed::{self, Expected, InterfaceMismatch};

/// The exit statuses of an enclave process, for the daemon.
pub mod exit_code {
    /// Every worker stopped because the daemon marked the channel lost or destroyed.
    pub const STOPPED: i32 = 0;
    /// Descriptor 3 or 4 is missing or of the wrong kind: not started by a daemon.
    pub const NOT_LAUNCHED: i32 = 2;
    /// No boot message arrived (the daemon closed the socket or sent garbage).
    pub const NO_BOOT: i32 = 3;
    /// Start-up failed; `EnclaveMessage::Failed` said why.
    pub const SETUP_FAILED: i32 = 4;
    /// The enclave found itself tampered with (a tracer); `EnclaveMessage::Lost` said why.
    pub const LOST: i32 = 5;
}

/// Why the enclave could not start. Sent to the daemon as `EnclaveMessage::Failed`.
#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Boot(#[from] BootError),
    /// The heap could not be mapped.
    #[error("mapping the {len}-byte heap failed: {source}")]
    HeapMemory { len: usize, source: SecretMemError },
    /// The heap could not become the allocator's arena.
    #[error("installing the heap failed: {0}")]
    Heap(#[from] HeapError),
    /// The channel memfd is not the one the boot parameters describe.
    #[error("opening the channel failed: {0}")]
    Channel(#[from] CallError),
    /// A descriptor is unusable.
    #[error(transparent)]
    Descriptor(#[from] DescriptorError),
    /// The kernel's random source could not be opened before lockdown.
    #[error("opening the random source of getrandom {version} failed: {reason}")]
    Randomness {
        version: &'static str,
        reason: String,
    },
    /// Lockdown failed: the enclave must not run.
    #[error("locking the enclave down failed: {0}")]
    Lockdown(#[from] LockdownError),
    /// The host was built from other interface traits than this enclave.
    #[error(transparent)]
    Interface(#[from] InterfaceMismatch),
    /// Telling the daemon the enclave is ready failed.
    #[error("sending Ready to the daemon failed: {0}")]
    Ready(#[from] coffer_proto::FrameError),
}

/// The handler type [`run`] accepts, boxed.
type Handler = dyn Fn(&Ctx<'_>, u32, &[u8]) -> Result<Vec<u8>, HandlerError> + Send + Sync;

/// Everything the workers share once the enclave is locked down.
pub(crate) struct Runtime {
    pub settings: Settings,
    pub services: Arc<Services>,
    pub(crate) channel: Channel,
    /// The wait policy of switchless calls, when the host turned them on.
    pub(crate) switchless: Option<WaitPolicy>,
    locked: LockedDown,
    handler: Box<Handler>,
}

/// Runs the enclave with `handler` serving every ECALL, and never returns: the process ends
/// when the daemon marks the enclave lost or destroyed, when it finds itself tampered with, or
/// when start-up fails. See the crate documentation for the steps and [`exit_code`].
pub fn run<H>(handler: H) -> !
where
    H: Fn(&Ctx<'_>, u32, &[u8]) -> Result<Vec<u8>, HandlerError> + Send + Sync + 'static,
{
    run_with(Box::new(handler), None)
}

/// [`run`] with a boxed handler; a typed enclave also names the interfaces the host must use.
pub(crate) fn run_with(handler: Box<Handler>, expected: Option<Expected>) -> ! {
    // A panic anywhere aborts at once, before any unwinding or message: no stdio, no secret in
    // a panic message, and the daemon sees SIGABRT.
    std::panic::set_hook(Box::new(|_| std::process::abort()));

    let services = match sys::take(fds::DAEMON, "the daemon socket").and_then(check_socket) {
        Ok(sock) => Arc::new(Services::new(sock)),
        Err(e) => not_launched(&e),
    };
    let boot = match services.recv_boot() {
        Ok(boot) => boot,
        Err(_) => std::process::exit(exit_code::NO_BOOT),
    };
    let workers = match start(boot, &services, handler, expected) {
        Ok(workers) => workers,
        Err(e) => {
            let reason = e.to_string();
            let _ = services.notify(&EnclaveMessage::Failed { reason });
            std::process::exit(exit_code::SETUP_FAILED)
        }
    };
    // The main thread's stack is ordinary memory: it only waits from here on.
    for worker in workers {
        let _ = worker.join();
    }
    std::process::exit(exit_code::STOPPED)
}

/// Steps 2 to 5 of the crate documentation; returns the running workers.
fn start(
    boot: coffer_proto::enclave::Boot,
    services: &Arc<Services>,
    handler: Box<Handler>,
    expected: Option<Expected>,
) -> Result<Vec<Worker<()>>, StartError> {
    let settings = Settings::from_boot(boot)?;
    if let Some(expected) = expected {
        expected.check(&settings)?;
    }
    let kind = MemoryKind::for_debug(settings.debug);
    let heap =
        SecretRegion::new(settings.heap_size, kind).map_err(|source| StartError::HeapMemory {
            len: settings.heap_size,
            source,
        })?;
    crate::HEAP.install(heap)?;
    // Every allocation from here on is in the arena.

    let channel_fd = sys::take(fds::CHANNEL, "the channel memfd")?;
    let channel = Channel::open(channel_fd.as_fd(), settings.layout)?;
    // The mapping keeps the memory; the descriptor is not needed any more.
    drop(channel_fd);

    // The last files the enclave opens: the random sources (see `entropy`).
    crate::entropy::prepare()
        .map_err(|(version, reason)| StartError::Randomness { version, reason })?;
    // The key mailbox is shared memory, which only exists if made before lockdown. Without
    // one, EGETKEY stays on the socket.
    let mailbox = coffer_channel::mailbox::Mailbox::create().ok();
    let sandboxing = lockdown::begin(LockdownSpec {
        debug: settings.debug,
    })?;
    let mut workers = Vec::new();
    let mut starts: Vec<SyncSender<Arc<Runtime>>> = Vec::new();
    for index in 0..settings.workers {
        let (start_tx, start_rx) = sync_channel::<Arc<Runtime>>(1);
        workers.push(sandboxing.spawn_worker(settings.stack_size, move |probe| {
            worker(index, &start_rx, &probe);
        })?);
        starts.push(start_tx);
    }
    let locked = sandboxing.finish()?;
    // Locked down: seccomp is on every thread. Only now may the workers serve.
    let runtime = Arc::new(Runtime {
        switchless: typed::switchless_policy(&settings),
        settings,
        services: Arc::clone(services),
        channel,
        locked,
        handler,
    });
    typed::install(&runtime);
    for start in starts {
        // A worker that is gone already cannot receive; it will not serve either.
        let _ = start.send(Arc::clone(&runtime));
    }
    let secret_memory = !runtime.settings.debug;
    drop(runtime);
    services.notify(&EnclaveMessage::Ready { secret_memory })?;
    if let Some((fd, mailbox)) = mailbox {
        // A daemon that refuses, or a failure here, leaves EGETKEY on the socket; a daemon that
        // is gone shows itself on the next request.
        let _ = services.offer_mailbox(mailbox, fd);
    }
    Ok(workers)
}

fn check_socket(sock: std::os::fd::OwnedFd) -> Result<std::os::fd::OwnedFd, DescriptorError> {
    match rustix::net::sockopt::socket_type(&sock) {
        Ok(rustix::net::SocketType::SEQPACKET) => Ok(sock),
        _ => Err(DescriptorError::WrongKind {
            fd: fds::DAEMON,
            role: "the daemon socket",
            expected: "a SOCK_SEQPACKET socket",
        }),
    }
}

/// Started by hand: say so on standard error (nothing secret exists yet) and exit.
fn not_launched(e: &DescriptorError) -> ! {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "coffer enclave: {e}");
    std::process::exit(exit_code::NOT_LAUNCHED)
}

/// A worker thread: waits for the locked-down runtime, then serves its slot.
fn worker(index: u32, start: &Receiver<Arc<Runtime>>, probe: &TracerProbe) {
    let Ok(runtime) = start.recv() else {
        return;
    };
    if let Some(slot) = runtime.channel.enclave_slot(index) {
        serve(&runtime, index, slot, probe);
    }
}

/// How long a clean tracer check stays valid. Reading a `/proc` status file costs about 11 µs
/// here, more than the whole ECALL round trip, so the check is kept off the call path: a worker
/// refreshes it right after answering a call (while the host reads the result) once the last
/// check is [`TRACER_REFRESH`] old, and checks before serving only a call that arrives when the
/// last check is older than this — as one does after a quiet period, such as the milliseconds a
/// debugger needs to attach. The daemon polls every enclave thread as well, so a tracer is caught
/// even without calls.
const TRACER_RECHECK: std::time::Duration = std::time::Duration::from_millis(1);
/// Age at which a worker refreshes its tracer check after answering a call.
const TRACER_REFRESH: std::time::Duration = std::time::Duration::from_micros(500);

/// How long a worker that is not switchless polls its slot after a call before it sleeps: long
/// enough to catch a host that calls again at once, short enough not to burn CPU. (A call that
/// finds the worker asleep waits for the kernel to wake it, about 13 µs here; one that finds it
/// polling is taken in well under a microsecond.)
const IDLE_SPIN: WaitPolicy = WaitPolicy {
    spin: std::time::Duration::from_micros(5),
};

/// Serves ECALLs on `slot` until the enclave is lost or destroyed.
///
/// A switchless enclave's worker polls its slot for the switchless spin after each call, so
/// that the next call needs no futex wake-up; otherwise it sleeps after [`IDLE_SPIN`].
fn serve(rt: &Runtime, index: u32, slot: EnclaveSlot<'_>, probe: &TracerProbe) {
    let mut last_clean: Option<std::time::Instant> = None;
    let idle = rt.switchless.unwrap_or(IDLE_SPIN);
    loop {
        let call = match slot.wait_ecall_with_policy(idle) {
            Ok(call) => call,
            Err(CallError::EnclaveLost { .. }) => return,
            // The host broke the protocol on this slot; the slot answered or is waiting again.
            Err(_) => continue,
        };
        if last_clean.is_none_or(|t| t.elapsed() >= TRACER_RECHECK) {
            rt.check_tracers(probe);
            last_clean = Some(std::time::Instant::now());
        }
        let ctx = Ctx { rt, slot };
        let result = typed::serving(index, || (rt.handler)(&ctx, call.call_id, &call.input));
        let (status, output) = match result {
            Ok(output) => (Status::Ok, output),
            Err(HandlerError::UnknownCall) => (Status::UnknownCall, Vec::new()),
            Err(HandlerError::Failed(bytes)) => (Status::Failed, bytes),
        };
        // A result too large for the slot went out as BadMessage; the slot serves on.
        if let Err(CallError::EnclaveLost { .. }) = slot.respond(status, &output) {
            return;
        }
        if last_clean.is_none_or(|t| t.elapsed() >= TRACER_REFRESH) {
            rt.check_tracers(probe);
            last_clean = Some(std::time::Instant::now());
        }
    }
}

impl Runtime {
    /// Ends the enclave if a tracer is attached to the calling worker or to the main thread
    /// (a DEBUG enclave may be debugged). A probe that cannot be read counts as a tracer.
    fn check_tracers(&self, own: &TracerProbe) {
        if self.settings.debug {
            return;
        }
        let tracer = own
            .tracer_pid()
            .and_then(|pid| Ok(pid.or(self.locked.tracer_pid()?)));
        match tracer {
            Ok(None) => {}
            Ok(Some(pid)) => self.lose(format!("tracer attached (pid {pid})")),
            Err(e) => self.lose(format!("tracer check failed: {e}")),
        }
    }

    /// Reports the enclave lost and ends the process, without running another call.
    ///
    /// The runtime itself holds no secret; the handler's live in the heap and on the worker
    /// stacks, secret memory that the kernel frees with the process, right after this message.
    fn lose(&self, reason: String) -> ! {
        let _ = self.services.notify(&EnclaveMessage::Lost { reason });
        std::process::exit(exit_code::LOST)
    }
}
