//! The daemon: the listening socket, one thread per client, the request handlers, and the
//! lifecycle of every enclave.
//!
//! ```text
//! accept ──► client thread (SO_PEERCRED) ──Create──► admit ► reserve EPC ► launch ► supervisor thread
//!                 │                        ──Destroy─► kill ► mark destroyed ► wait exit ► return EPC
//!                 └── connection closed ──► destroy every enclave it created
//! ```
//!
//! The socket is `0666` by default: any local user may create enclaves, as any member of the
//! group owning `/dev/sgx_enclave` may on SGX hardware; `--socket-group` with `--socket-mode
//! 0660` narrows it to a group. Clients are told apart by `SO_PEERCRED`: an enclave belongs to
//! the connection that created it, only that connection or root may destroy it, and a caller
//! other than root sees only its own uid's enclaves in the status.
//!
//! So that one local user cannot lock the others out (DESIGN §4, `docs/security.md`), the
//! daemon can cap each uid's EPC (`epc_quota_per_uid`) and open connections
//! (`max_connections_per_uid`), and close connections that hold no enclave after
//! `idle_timeout` of silence. Root is never limited.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_channel::EnclaveState;
use coffer_proto::client::{
    CreateOptions, Created, PlatformError, PlatformStatus, Request, RequestError, Response,
};
use coffer_proto::{FrameError, recv, send};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use crate::admit::{admit, read_bundle};
use crate::config::PlatformConfig;
use crate::launcher;
use crate::lost::code;
use crate::services::CpuServices;
use crate::shared::{Gate, Shared};
use crate::state::open_state_dir;
use crate::table::{AdmitError, NewEntry, Reservation, State, Table};
use crate::tcb::HostFacts;
use crate::wait::readable;

/// The most clients connected at once; each has a thread.
pub const MAX_CLIENTS: usize = 256;
/// How many bundles are read and measured at once. A bundle may be a gigabyte: this bounds the
/// memory and CPU that concurrent create requests can take before the EPC budget (which counts
/// the image) takes over.
pub const MAX_CONCURRENT_ADMISSIONS: usize = 2;
/// How long a destroy waits for the killed process to end before returning its EPC anyway.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("no randomness for the report KEYID: {0}")]
    Random(#[source] getrandom::Error),
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

/// A bound, ready platform daemon.
#[derive(Debug)]
pub struct PlatformDaemon {
    shared: Arc<Shared>,
    listener: OwnedFd,
    stopping: Arc<AtomicBool>,
}

/// Stops a [`PlatformDaemon`] serving on another thread: [`PlatformDaemon::serve`] accepts no
/// more clients and returns `Ok(())`. Connections already accepted are served until they close.
#[derive(Debug)]
pub struct StopHandle {
    listener: OwnedFd,
    stopping: Arc<AtomicBool>,
}

impl StopHandle {
    /// Shuts the listening socket for reading, which wakes the `accept` in
    /// [`PlatformDaemon::serve`] with an error that it then takes as the request to stop.
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

impl PlatformDaemon {
    /// Loads (or creates) the state directory and binds the socket.
    pub fn bind(config: PlatformConfig) -> Result<PlatformDaemon, ServeError> {
        let state = open_state_dir(&config.state_dir)?;
        let mut keyid = [0u8; 32];
        getrandom::fill(&mut keyid).map_err(ServeError::Random)?;
        let root = rustix::process::geteuid().is_root();
        let keep_ipc_lock = rustix::thread::capabilities(None)
            .map(|c| {
                c.effective
                    .contains(rustix::thread::CapabilitySet::IPC_LOCK)
            })
            .unwrap_or(false);
        let listener = bind_socket(&config.socket, config.socket_mode, config.socket_group)?;
        let tcb = HostFacts::probe().tcb_status();
        tracing::info!(
            vm_size = config.vm_size.name,
            epc_bytes = config.vm_size.epc_bytes,
            socket = %config.socket.display(),
            socket_group = config.socket_group,
            cpusvn = %hex::encode(state.cpusvn),
            owner_epoch = %hex::encode(state.owner_epoch),
            allow_debug = config.policy.allow_debug,
            allowlisted_signers = config.policy.signer_allowlist.as_ref().map(|l| l.len()),
            epc_quota_per_uid = config.epc_quota_per_uid,
            max_connections_per_uid = config.max_connections_per_uid,
            idle_timeout_secs = config.idle_timeout.map(|t| t.as_secs()),
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
        Ok(PlatformDaemon {
            shared: Arc::new(Shared {
                config,
                services: CpuServices::new(state.root, keyid),
                table,
                root,
                keep_ipc_lock,
                clients: AtomicUsize::new(0),
                connections: Mutex::default(),
                next_conn: AtomicU64::new(1),
                admissions: Gate::new(MAX_CONCURRENT_ADMISSIONS),
            }),
            listener,
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }

    /// A handle that stops [`PlatformDaemon::serve`] from another thread (it holds a duplicate
    /// of the listening socket).
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

    /// The node's status with every enclave, as root's `coffer platform status` shows it.
    pub fn status(&self) -> PlatformStatus {
        status(&self.shared, 0)
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
            let client = match rustix::net::sockopt::socket_peercred(&sock) {
                Ok(cred) => Client {
                    conn: self.shared.next_conn.fetch_add(1, Ordering::SeqCst),
                    uid: cred.uid.as_raw(),
                    pid: cred.pid.as_raw_nonzero().get(),
                },
                Err(e) => {
                    tracing::warn!("SO_PEERCRED failed: {e}; closing the connection");
                    continue;
                }
            };
            let shared = Arc::clone(&self.shared);
            if shared.clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
                shared.clients.fetch_sub(1, Ordering::SeqCst);
                refuse(
                    &sock,
                    PlatformError::TooManyClients {
                        limit: MAX_CLIENTS as u64,
                    },
                );
                continue;
            }
            if let Err(limit) = shared.connected(client.uid) {
                shared.clients.fetch_sub(1, Ordering::SeqCst);
                tracing::info!(
                    uid = client.uid,
                    limit,
                    "refused a connection over the uid's cap"
                );
                refuse(
                    &sock,
                    PlatformError::TooManyConnections {
                        uid: client.uid,
                        limit,
                    },
                );
                continue;
            }
            let spawned = std::thread::Builder::new()
                .name("coffer-client".into())
                .spawn(move || {
                    serve_client(&shared, client, sock);
                    shared.disconnected(client.uid);
                    shared.clients.fetch_sub(1, Ordering::SeqCst);
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start a client thread: {e}");
                self.shared.disconnected(client.uid);
                self.shared.clients.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

/// Answers a connection that will not be served with `why`, then closes it. What the client
/// already sent is read and dropped first: a Unix socket closed with unread data resets the
/// connection, and the client would see the reset instead of the refusal.
fn refuse(sock: &OwnedFd, why: PlatformError) {
    let _ = send(sock.as_fd(), &Response::Error(why), &[]);
    let mut buf = [0u8; 512];
    for _ in 0..16 {
        match rustix::net::recv(sock, &mut buf, rustix::net::RecvFlags::DONTWAIT) {
            Ok((0, _)) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

fn bind_socket(path: &Path, mode: u32, group: Option<u32>) -> Result<OwnedFd, ServeError> {
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
        if coffer_proto::connect(path).is_ok() {
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
    // Group and mode are set before `listen`: nobody can connect before they hold.
    if let Some(gid) = group {
        rustix::fs::chown(path, None, Some(rustix::fs::Gid::from_raw(gid)))
            .map_err(sock_err("chgrp"))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        ServeError::SocketFile {
            path: path.to_owned(),
            source,
        }
    })?;
    rustix::net::listen(&sock, 128).map_err(sock_err("listen"))?;
    Ok(sock)
}

/// Whether connection `conn` holds an enclave (in any state).
fn holds_enclave(shared: &Shared, conn: u64) -> bool {
    shared.table().enclaves.values().any(|e| e.conn == conn)
}

/// Waits for the next request. With an idle timeout, a connection that holds no enclave and
/// stays silent that long is closed (`false`); one that holds an enclave waits on.
fn await_request(shared: &Shared, client: Client, sock: &OwnedFd) -> bool {
    let Some(idle) = shared.config.idle_timeout else {
        return true;
    };
    loop {
        match readable(&[sock.as_fd()], idle) {
            Ok(r) if r.first().copied().unwrap_or(false) => return true,
            Ok(_) if !holds_enclave(shared, client.conn) => {
                tracing::info!(
                    conn = client.conn,
                    uid = client.uid,
                    "closing a connection idle for {idle:?} that holds no enclave"
                );
                return false;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(conn = client.conn, "waiting for a request failed: {e}");
                return false;
            }
        }
    }
}

fn serve_client(shared: &Arc<Shared>, client: Client, sock: OwnedFd) {
    tracing::debug!(
        conn = client.conn,
        uid = client.uid,
        pid = client.pid,
        "client connected"
    );
    while await_request(shared, client, &sock) {
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
            Request::Status => (Response::Status(status(shared, client.uid)), None),
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

/// The node's status as `uid` may see it: root sees every enclave, anyone else only the
/// enclaves its uid created (their pids, measurements and owners are nobody else's business).
fn status(shared: &Shared, uid: u32) -> PlatformStatus {
    let tcb = HostFacts::probe().tcb_status();
    let t = shared.table();
    PlatformStatus {
        vm_size: shared.config.vm_size.name.to_owned(),
        epc_total: t.epc.total(),
        epc_used: t.epc.used(),
        tcb,
        enclaves: t
            .enclaves
            .values()
            .filter(|e| uid == 0 || e.owner_uid == uid)
            .map(|e| e.status())
            .collect(),
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
    let quota = shared.config.epc_quota_per_uid.filter(|_| client.uid != 0);
    let admitted = {
        let _pass = shared.admissions.enter();
        let bytes = read_bundle(bundle_fd)?;
        admit(
            &bytes,
            &shared.config.policy,
            shared.services.cpusvn(),
            |asked| {
                let t = shared.table();
                if let Some(quota) = quota {
                    let in_use = t.epc_of(client.uid);
                    if in_use.saturating_add(asked) > quota {
                        return Err(quota_exceeded(client.uid, quota, in_use, asked));
                    }
                }
                let free = t.epc.free();
                if asked > free {
                    return Err(epc_exhausted(shared, asked, free));
                }
                Ok(())
            },
        )?
    };
    let b = &admitted.bundle;
    let reservation = Reservation::new(
        &shared.table,
        NewEntry {
            conn: client.conn,
            owner_uid: client.uid,
            mrenclave: b.mrenclave(),
            mrsigner: b.mrsigner(),
            debug: b.debug(),
            epc_bytes: b.epc_size(),
        },
        quota,
    )
    .map_err(|e| match e {
        AdmitError::Epc(e) => epc_exhausted(shared, e.asked, e.free),
        AdmitError::Quota {
            in_use,
            asked,
            quota,
        } => quota_exceeded(client.uid, quota, in_use, asked),
        AdmitError::TooMany => PlatformError::TooManyEnclaves {
            limit: crate::table::MAX_ENCLAVES as u64,
        },
    })?;
    let created = launcher::start(shared, &reservation, &admitted, options, client.uid)?;
    reservation.commit();
    Ok(created)
}

fn quota_exceeded(uid: u32, quota: u64, in_use: u64, requested: u64) -> PlatformError {
    let e = PlatformError::EpcQuotaExceeded {
        uid,
        quota,
        in_use,
        requested,
    };
    tracing::info!("refused: {e}");
    e
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
