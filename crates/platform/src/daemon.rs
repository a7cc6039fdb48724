//! The daemon: the listening socket, one thread per client, the request handlers, and the
//! lifecycle of every enclave.
//!
//! ```text
//! accept ──► client thread (SO_PEERCRED) ──Create──► admit ► charge EPC ► launch ► supervisor thread
//!                 │                        ──Destroy─► kill ► mark destroyed ► wait exit ► return EPC
//!                 └── connection closed ──► destroy every enclave it created
//! ```
//!
//! The socket is `0666` by default: any local user may create enclaves, as any member of the
//! group owning `/dev/sgx_enclave` may on SGX hardware; `--socket-mode` narrows it (e.g. `0660`
//! with a group). Clients are told apart by `SO_PEERCRED`: an enclave belongs to the connection
//! that created it, and only that connection or root may destroy it.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use coffer_boundary::Credentials;
use coffer_channel::EnclaveState;
use coffer_proto::client::{
    CreateOptions, Created, PlatformError, PlatformStatus, Request, RequestError, Response,
};
use coffer_proto::{FrameError, recv, send};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::admit::{LaunchPolicy, admit, read_bundle};
use crate::launch::{LaunchSpec, launch};
use crate::lost::code;
use crate::services::CpuServices;
use crate::state::{open_state_dir, random_bytes};
use crate::supervisor::{Supervised, supervise};
use crate::table::{AdmitError, NewEntry, State, Table};
use crate::tcb::HostFacts;
use crate::vm_size::VmSize;
use crate::wait::readable;

/// The most clients connected at once; each has a thread.
pub const MAX_CLIENTS: usize = 256;
/// How many bundles are read and measured at once. A bundle may be a gigabyte: this bounds the
/// memory and CPU that concurrent create requests can take before the EPC budget (which counts
/// the image) takes over.
pub const MAX_CONCURRENT_ADMISSIONS: usize = 2;
/// How long a destroy waits for the killed process to end before returning its EPC anyway.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// How the daemon is configured (`coffer platform serve` options).
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    pub vm_size: VmSize,
    pub socket: PathBuf,
    /// Permissions of the socket file (default 0666).
    pub socket_mode: u32,
    pub state_dir: PathBuf,
    pub policy: LaunchPolicy,
    /// Enclave `id` runs as uid and gid `uid_base + id` (when the daemon runs as root).
    pub uid_base: u32,
    /// How long an enclave may take to report ready.
    pub ready_timeout: Duration,
}

impl PlatformConfig {
    pub const DEFAULT_SOCKET_MODE: u32 = 0o666;
    pub const DEFAULT_UID_BASE: u32 = 1_000_000;
    pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(10);

    /// A configuration with the defaults for everything but the VM size, socket and state dir.
    pub fn new(vm_size: VmSize, socket: PathBuf, state_dir: PathBuf) -> Self {
        PlatformConfig {
            vm_size,
            socket,
            socket_mode: Self::DEFAULT_SOCKET_MODE,
            state_dir,
            policy: LaunchPolicy::default(),
            uid_base: Self::DEFAULT_UID_BASE,
            ready_timeout: Self::DEFAULT_READY_TIMEOUT,
        }
    }
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("no randomness for the report KEYID: {0}")]
    Random(rustix::io::Errno),
    #[error("{path} exists and is not a socket; refusing to replace it")]
    NotASocket { path: PathBuf },
    #[error("another daemon is already serving on {path}")]
    InUse { path: PathBuf },
    #[error("socket {path}: {what} failed: {source}")]
    Socket {
        path: PathBuf,
        what: &'static str,
        source: rustix::io::Errno,
    },
    #[error("socket {path}: {source}")]
    SocketFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("accepting connections failed: {0}")]
    Accept(rustix::io::Errno),
}

/// State every thread of the daemon shares.
#[derive(Debug)]
pub struct Shared {
    pub(crate) config: PlatformConfig,
    pub(crate) services: CpuServices,
    table: Mutex<Table>,
    root: bool,
    keep_ipc_lock: bool,
    clients: AtomicUsize,
    next_conn: AtomicU64,
    admissions: Gate,
}

/// A counting gate: at most `limit` holders at once.
#[derive(Debug)]
struct Gate {
    inside: Mutex<usize>,
    freed: Condvar,
    limit: usize,
}

/// A place in a [`Gate`], given back on drop.
#[derive(Debug)]
struct Pass<'a>(&'a Gate);

impl Gate {
    fn new(limit: usize) -> Self {
        Gate {
            inside: Mutex::new(0),
            freed: Condvar::new(),
            limit,
        }
    }

    fn enter(&self) -> Pass<'_> {
        let mut inside = self.inside.lock().unwrap_or_else(|e| e.into_inner());
        while *inside >= self.limit {
            inside = self.freed.wait(inside).unwrap_or_else(|e| e.into_inner());
        }
        *inside += 1;
        Pass(self)
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let mut inside = self.0.inside.lock().unwrap_or_else(|e| e.into_inner());
        *inside = inside.saturating_sub(1);
        self.0.freed.notify_one();
    }
}

impl Shared {
    /// The enclave table. A thread that panicked while holding it cannot have left it half
    /// changed (every change is a single insert, remove or field store), so a poisoned lock is
    /// taken over rather than taking the daemon down.
    pub(crate) fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A bound, ready daemon.
#[derive(Debug)]
pub struct Platform {
    shared: Arc<Shared>,
    listener: OwnedFd,
    stopping: Arc<AtomicBool>,
}

/// Stops a [`Platform`] serving on another thread: [`Platform::serve`] accepts no more clients
/// and returns `Ok(())`. Connections already accepted are served until they close.
#[derive(Debug)]
pub struct StopHandle {
    listener: OwnedFd,
    stopping: Arc<AtomicBool>,
}

impl StopHandle {
    /// Shuts the listening socket for reading, which wakes the `accept` in
    /// [`Platform::serve`] with an error that it then takes as the request to stop.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = rustix::net::shutdown(&self.listener, rustix::net::Shutdown::Read);
    }
}

/// The identity of one client connection.
#[derive(Debug, Clone, Copy)]
struct Client {
    conn: u64,
    uid: u32,
    pid: i32,
}

impl Platform {
    /// Loads (or creates) the state directory and binds the socket.
    pub fn bind(config: PlatformConfig) -> Result<Platform, ServeError> {
        let state = open_state_dir(&config.state_dir)?;
        let mut keyid = [0u8; 32];
        random_bytes(&mut keyid).map_err(ServeError::Random)?;
        let root = rustix::process::geteuid().is_root();
        let keep_ipc_lock = rustix::thread::capabilities(None)
            .map(|c| {
                c.effective
                    .contains(rustix::thread::CapabilitySet::IPC_LOCK)
            })
            .unwrap_or(false);
        let listener = bind_socket(&config.socket, config.socket_mode)?;
        let tcb = HostFacts::probe().tcb_status();
        tracing::info!(
            vm_size = config.vm_size.name,
            epc_bytes = config.vm_size.epc_bytes,
            socket = %config.socket.display(),
            allow_debug = config.policy.allow_debug,
            allowlisted_signers = config.policy.signer_allowlist.as_ref().map(|l| l.len()),
            "platform daemon ready; TCB status {tcb}"
        );
        if !root {
            tracing::warn!(
                "not running as root: enclaves run under this daemon's uid, not a uid of their own"
            );
        }
        if !keep_ipc_lock {
            tracing::warn!("no CAP_IPC_LOCK: enclave secret memory is limited by RLIMIT_MEMLOCK");
        }
        let table = Mutex::new(Table::new(config.vm_size.epc_bytes));
        Ok(Platform {
            shared: Arc::new(Shared {
                config,
                services: CpuServices::new(state.root, keyid),
                table,
                root,
                keep_ipc_lock,
                clients: AtomicUsize::new(0),
                next_conn: AtomicU64::new(1),
                admissions: Gate::new(MAX_CONCURRENT_ADMISSIONS),
            }),
            listener,
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }

    /// A handle that stops [`Platform::serve`] from another thread (it holds a duplicate of
    /// the listening socket).
    pub fn stop_handle(&self) -> Result<StopHandle, ServeError> {
        let listener = rustix::io::fcntl_dupfd_cloexec(&self.listener, 0).map_err(|source| {
            ServeError::Socket {
                path: self.shared.config.socket.clone(),
                what: "dup",
                source,
            }
        })?;
        Ok(StopHandle {
            listener,
            stopping: Arc::clone(&self.stopping),
        })
    }

    /// The node's status, as `coffer platform status` shows it.
    pub fn status(&self) -> PlatformStatus {
        status(&self.shared)
    }

    /// Accepts clients until the listener fails or a [`StopHandle`] stops it; each client gets
    /// its own thread.
    pub fn serve(self) -> Result<(), ServeError> {
        loop {
            let sock = match rustix::net::accept_with(&self.listener, SocketFlags::CLOEXEC) {
                Ok(s) => s,
                Err(_) if self.stopping.load(Ordering::SeqCst) => return Ok(()),
                Err(rustix::io::Errno::INTR | rustix::io::Errno::CONNABORTED) => continue,
                Err(
                    e @ (rustix::io::Errno::MFILE
                    | rustix::io::Errno::NFILE
                    | rustix::io::Errno::NOBUFS
                    | rustix::io::Errno::NOMEM),
                ) => {
                    tracing::error!("accept: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                Err(e) => return Err(ServeError::Accept(e)),
            };
            let shared = Arc::clone(&self.shared);
            if shared.clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
                shared.clients.fetch_sub(1, Ordering::SeqCst);
                let refusal = Response::Error(PlatformError::TooManyClients {
                    limit: MAX_CLIENTS as u64,
                });
                let _ = send(sock.as_fd(), &refusal, &[]);
                continue;
            }
            let spawned = std::thread::Builder::new()
                .name("coffer-client".into())
                .spawn(move || {
                    serve_client(&shared, sock);
                    shared.clients.fetch_sub(1, Ordering::SeqCst);
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start a client thread: {e}");
                self.shared.clients.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

fn bind_socket(path: &Path, mode: u32) -> Result<OwnedFd, ServeError> {
    let sock_err = |what: &'static str| {
        let path = path.to_owned();
        move |source| ServeError::Socket { path, what, source }
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(ServeError::NotASocket {
                path: path.to_owned(),
            });
        }
        if crate::client::connect(path).is_ok() {
            return Err(ServeError::InUse {
                path: path.to_owned(),
            });
        }
        std::fs::remove_file(path).map_err(|source| ServeError::SocketFile {
            path: path.to_owned(),
            source,
        })?;
    }
    let sock = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(sock_err("socket"))?;
    let addr = SocketAddrUnix::new(path).map_err(sock_err("naming"))?;
    rustix::net::bind(&sock, &addr).map_err(sock_err("bind"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        ServeError::SocketFile {
            path: path.to_owned(),
            source,
        }
    })?;
    rustix::net::listen(&sock, 128).map_err(sock_err("listen"))?;
    Ok(sock)
}

fn serve_client(shared: &Arc<Shared>, sock: OwnedFd) {
    let cred = match rustix::net::sockopt::socket_peercred(&sock) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("SO_PEERCRED failed: {e}; closing the connection");
            return;
        }
    };
    let client = Client {
        conn: shared.next_conn.fetch_add(1, Ordering::SeqCst),
        uid: cred.uid.as_raw(),
        pid: cred.pid.as_raw_nonzero().get(),
    };
    tracing::debug!(
        conn = client.conn,
        uid = client.uid,
        pid = client.pid,
        "client connected"
    );
    loop {
        let (request, fds) = match recv::<Request>(sock.as_fd()) {
            Ok(r) => r,
            Err(FrameError::Closed) => break,
            Err(
                e @ (FrameError::Decode(_)
                | FrameError::TrailingBytes(_)
                | FrameError::Truncated
                | FrameError::TooManyFds
                | FrameError::TooLarge(_)),
            ) => {
                let reply = Response::Error(PlatformError::BadRequest(e.to_string()));
                if send(sock.as_fd(), &reply, &[]).is_err() {
                    break;
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(conn = client.conn, "client connection failed: {e}");
                break;
            }
        };
        if let Err(e) = request.check(fds.len()) {
            tracing::debug!(conn = client.conn, "refused {}: {e}", request.name());
            if send(sock.as_fd(), &Response::Error(e.into()), &[]).is_err() {
                break;
            }
            continue;
        }
        let (reply, channel_fd) = match request {
            Request::Create(options) => match create(shared, client, options, fds) {
                Ok((created, fd)) => (Response::Created(created), Some(fd)),
                Err(e) => (Response::Error(e), None),
            },
            Request::Destroy { id } => match destroy(shared, client, id) {
                Ok(()) => (Response::Destroyed { id }, None),
                Err(e) => (Response::Error(e), None),
            },
            Request::Status => (Response::Status(status(shared)), None),
        };
        let attached: Vec<_> = channel_fd.iter().map(|fd| fd.as_fd()).collect();
        if let Err(e) = send(sock.as_fd(), &reply, &attached) {
            tracing::debug!(conn = client.conn, "reply failed: {e}");
            break;
        }
    }
    // The connection is gone: so are its enclaves.
    let owned: Vec<u64> = shared
        .table()
        .enclaves
        .values()
        .filter(|e| e.conn == client.conn)
        .map(|e| e.id)
        .collect();
    for id in owned {
        if let Err(e) = destroy(shared, client, id) {
            tracing::warn!(id, "destroying an enclave of a closed connection: {e}");
        }
    }
    tracing::debug!(conn = client.conn, "client disconnected");
}

fn status(shared: &Shared) -> PlatformStatus {
    let tcb = HostFacts::probe().tcb_status();
    let t = shared.table();
    PlatformStatus {
        vm_size: shared.config.vm_size.name.to_owned(),
        epc_total: t.epc.total(),
        epc_used: t.epc.used(),
        tcb,
        enclaves: t.enclaves.values().map(|e| e.status()).collect(),
    }
}

fn create(
    shared: &Arc<Shared>,
    client: Client,
    options: CreateOptions,
    mut fds: Vec<OwnedFd>,
) -> Result<(Created, OwnedFd), PlatformError> {
    // `Request::check` saw exactly one descriptor.
    let bundle_fd = fds
        .pop()
        .ok_or(PlatformError::Invalid(RequestError::Descriptors {
            request: "Create".into(),
            wanted: 1,
            got: 0,
        }))?;
    let pass = shared.admissions.enter();
    let bytes = read_bundle(bundle_fd)?;
    let admitted = admit(
        &bytes,
        &shared.config.policy,
        shared.services.cpusvn(),
        |asked| {
            let free = shared.table().epc.free();
            if asked > free {
                return Err(epc_exhausted(shared, asked, free));
            }
            Ok(())
        },
    )?;
    drop(bytes);
    drop(pass);
    let b = &admitted.bundle;
    let config = b.config();
    let max_call_size = u32::try_from(config.max_call_size).map_err(|_| {
        PlatformError::BadBundle(format!(
            "max_call_size {} is too large",
            config.max_call_size
        ))
    })?;
    let epc_bytes = b.epc_size();

    let admission = shared.table().admit(NewEntry {
        conn: client.conn,
        owner_uid: client.uid,
        mrenclave: b.mrenclave(),
        mrsigner: b.mrsigner(),
        debug: b.debug(),
        epc_bytes,
    });
    let id = match admission {
        Ok(id) => id,
        Err(AdmitError::Epc(e)) => return Err(epc_exhausted(shared, e.asked, e.free)),
        Err(AdmitError::TooMany) => {
            return Err(PlatformError::TooManyEnclaves {
                limit: crate::table::MAX_ENCLAVES as u64,
            });
        }
    };

    let credentials = if shared.root {
        let uid = u32::try_from(id)
            .ok()
            .and_then(|id| shared.config.uid_base.checked_add(id))
            .filter(|uid| *uid != u32::MAX);
        match uid {
            Some(uid) => Some(Credentials { uid, gid: uid }),
            None => {
                shared.table().remove(id);
                return Err(PlatformError::LaunchFailed(format!(
                    "no uid left for enclave {id} above the uid base {}",
                    shared.config.uid_base
                )));
            }
        }
    } else {
        None
    };

    let started = Instant::now();
    let launched = launch(LaunchSpec {
        id,
        image: b.image(),
        identity: &admitted.identity,
        heap_size: config.heap_size,
        stack_size: config.stack_size,
        tcs_count: config.tcs_count,
        debug: b.debug(),
        max_call_size,
        interface_id: options.interface_id,
        interface_names: options.interface_names,
        switchless_spin_ns: options.switchless_spin_ns,
        credentials,
        keep_ipc_lock: shared.keep_ipc_lock,
        ready_timeout: shared.config.ready_timeout,
    });
    let launched = match launched {
        Ok(l) => l,
        Err(e) => {
            shared.table().remove(id);
            tracing::warn!(id, "launch failed: {e}");
            return Err(PlatformError::LaunchFailed(e.to_string()));
        }
    };
    if !launched.secret_memory && !b.debug() {
        tracing::warn!(id, "a production enclave runs without secret memory");
    }

    let live = Arc::new(launched.live);
    let pid = live.child.pid();
    {
        let mut t = shared.table();
        if let Some(entry) = t.enclaves.get_mut(&id) {
            entry.state = State::Running;
            entry.live = Some(Arc::clone(&live));
        }
    }
    let supervised = Supervised {
        id,
        live: Arc::clone(&live),
        socket: launched.socket,
        identity: admitted.identity.clone(),
        debug: b.debug(),
    };
    let shared_for_thread = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name(format!("coffer-enclave-{id}"))
        .spawn(move || supervise(shared_for_thread, supervised));
    if let Err(e) = spawned {
        let _ = live.child.kill();
        let _ = live.child.wait();
        shared.table().remove(id);
        return Err(PlatformError::Internal(format!(
            "cannot start the enclave's supervisor thread: {e}"
        )));
    }
    tracing::info!(
        id,
        pid,
        uid = credentials.map(|c| c.uid),
        owner_uid = client.uid,
        mrenclave = %hex::encode(b.mrenclave()),
        epc_bytes,
        debug = b.debug(),
        millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "enclave created"
    );
    Ok((
        Created {
            id,
            pid,
            mrenclave: b.mrenclave(),
            mrsigner: b.mrsigner(),
            debug: b.debug(),
            epc_bytes,
            slot_count: config.tcs_count,
            slot_size: max_call_size,
        },
        launched.channel_fd,
    ))
}

fn epc_exhausted(shared: &Shared, asked: u64, free: u64) -> PlatformError {
    let e = PlatformError::EpcExhausted {
        asked,
        free,
        total: shared.config.vm_size.epc_bytes,
        vm_size: shared.config.vm_size.name.to_owned(),
    };
    tracing::info!("refused: {e}");
    e
}

fn destroy(shared: &Shared, client: Client, id: u64) -> Result<(), PlatformError> {
    let live = {
        let mut t = shared.table();
        let entry = t
            .enclaves
            .get_mut(&id)
            .ok_or(PlatformError::NoSuchEnclave(id))?;
        if entry.conn != client.conn && client.uid != 0 {
            return Err(PlatformError::PermissionDenied(format!(
                "enclave {id} belongs to another connection (uid {}); only it or root may destroy it",
                entry.owner_uid
            )));
        }
        match entry.state {
            State::Starting => {
                return Err(PlatformError::BadRequest(format!(
                    "enclave {id} is still starting"
                )));
            }
            State::Destroying => {
                return Err(PlatformError::BadRequest(format!(
                    "enclave {id} is already being destroyed"
                )));
            }
            State::Running | State::Lost(_) => {}
        }
        entry.state = State::Destroying;
        entry.live.clone()
    };
    if let Some(live) = live {
        live.channel.mark_lost(
            EnclaveState::Destroyed,
            code::DESTROYED,
            "the enclave was destroyed",
        );
        let _ = live.child.kill();
        // Its memory is gone once the process has ended; only then is its EPC free again.
        match readable(&[live.child.pidfd()], EXIT_WAIT) {
            Ok(r) if r.first().copied().unwrap_or(false) => {}
            _ => tracing::error!(
                id,
                "the enclave process has not ended {EXIT_WAIT:?} after SIGKILL; returning its EPC anyway"
            ),
        }
    }
    shared.table().remove(id);
    tracing::info!(id, by_uid = client.uid, "enclave destroyed");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[test]
    fn the_admission_gate_lets_in_at_most_its_limit() {
        let gate = Arc::new(Gate::new(2));
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gate, inside, most) = (gate.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    let _pass = gate.enter();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(10));
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=2).contains(&most), "{most} inside at once");
        assert_eq!(*gate.inside.lock().unwrap(), 0);
    }
}
