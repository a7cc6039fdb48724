//! The connection to the platform daemon.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use coffer_channel::LayoutError;
use coffer_proto::FrameError;
use coffer_proto::client::{
    CreateOptions, InterfaceId, PlatformError, PlatformStatus, Request, Response,
};

use crate::enclave::{Enclave, EnclaveOptions};

/// Why talking to the platform daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot connect to the platform daemon at {path}: {source}")]
    Connect {
        path: PathBuf,
        source: rustix::io::Errno,
    },
    #[error("cannot open bundle {path}: {source}")]
    Bundle {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("platform daemon connection")]
    Frame(#[from] FrameError),
    /// The daemon refused the request; the error names the reason.
    #[error("{0}")]
    Refused(#[from] PlatformError),
    #[error(
        "interface ids of {len} bytes: give none (raw calls), the ECALL interface's 32, or 64 with \
         the OCALL interface's"
    )]
    InterfaceIds { len: usize },
    /// The daemon answered a request with another kind of response.
    #[error("the platform daemon answered {request} with {got} instead of {expected}")]
    UnexpectedResponse {
        request: &'static str,
        expected: &'static str,
        got: &'static str,
    },
    /// `Created` must carry exactly the channel memfd.
    #[error("the platform daemon sent {count} descriptors with Created, not the one channel")]
    ChannelDescriptors { count: usize },
    /// The channel geometry in `Created` is not one a channel can have.
    #[error("the platform daemon's channel geometry is invalid")]
    ChannelLayout(#[source] LayoutError),
    /// A thread panicked while it held the daemon connection: what it sent or received is
    /// unknown, so the connection is not used again.
    #[error("the platform daemon connection is poisoned by a panic during a request")]
    ConnectionPoisoned,
    #[error("the enclave's call channel could not be opened")]
    Channel(#[from] coffer_channel::CallError),
}

/// A response's name, for errors (never its content).
fn response_name(r: &Response) -> &'static str {
    match r {
        Response::Created(_) => "Created",
        Response::Destroyed { .. } => "Destroyed",
        Response::Status(_) => "Status",
        Response::Error(_) => "Error",
    }
}

fn unexpected(request: &'static str, expected: &'static str, got: &Response) -> HostError {
    HostError::UnexpectedResponse {
        request,
        expected,
        got: response_name(got),
    }
}

/// One connection to the daemon, shared by the enclaves it created.
#[derive(Debug)]
pub(crate) struct Conn {
    sock: Mutex<OwnedFd>,
}

impl Conn {
    /// Sends a request and waits for its answer (one request at a time on the connection).
    pub(crate) fn call(
        &self,
        req: &Request,
        fds: &[std::os::fd::BorrowedFd<'_>],
    ) -> Result<(Response, Vec<OwnedFd>), HostError> {
        let sock = self
            .sock
            .lock()
            .map_err(|_| HostError::ConnectionPoisoned)?;
        coffer_proto::send(sock.as_fd(), req, fds)?;
        Ok(coffer_proto::recv(sock.as_fd())?)
    }
}

/// A connection to the node's platform daemon.
#[derive(Debug, Clone)]
pub struct Platform {
    conn: Arc<Conn>,
}

impl Platform {
    /// Connects to the daemon's socket.
    pub fn connect(path: impl AsRef<Path>) -> Result<Platform, HostError> {
        let path = path.as_ref();
        let sock = coffer_proto::connect(path).map_err(|source| HostError::Connect {
            path: path.to_owned(),
            source,
        })?;
        Ok(Platform {
            conn: Arc::new(Conn {
                sock: Mutex::new(sock),
            }),
        })
    }

    /// Creates an enclave from a signed bundle (`coffer sign` / `coffer build` output).
    pub fn create_enclave(&self, bundle: &Path) -> Result<Enclave, HostError> {
        self.create_enclave_with(bundle, EnclaveOptions::default())
    }

    /// Creates an enclave with options.
    pub fn create_enclave_with(
        &self,
        bundle: &Path,
        options: EnclaveOptions,
    ) -> Result<Enclave, HostError> {
        let file = std::fs::File::open(bundle).map_err(|source| HostError::Bundle {
            path: bundle.to_owned(),
            source,
        })?;
        let (ecall_interface, ocall_interface) = interfaces(&options.interface_id)?;
        let req = Request::Create(CreateOptions {
            ecall_interface,
            ocall_interface,
            interface_names: options.interface_names.clone(),
            switchless_spin_ns: options
                .switchless
                .map_or(0, |s| u64::try_from(s.spin.as_nanos()).unwrap_or(u64::MAX)),
        });
        let (resp, mut fds) = self.conn.call(&req, &[file.as_fd()])?;
        match resp {
            Response::Created(created) => {
                if fds.len() != 1 {
                    return Err(HostError::ChannelDescriptors { count: fds.len() });
                }
                let fd = fds.remove(0);
                Enclave::new(self.conn.clone(), created, fd, options)
            }
            Response::Error(e) => Err(HostError::Refused(e)),
            other => Err(unexpected("Create", "Created", &other)),
        }
    }

    /// The node's EPC use and enclaves.
    pub fn status(&self) -> Result<PlatformStatus, HostError> {
        match self.conn.call(&Request::Status, &[])?.0 {
            Response::Status(s) => Ok(s),
            Response::Error(e) => Err(HostError::Refused(e)),
            other => Err(unexpected("Status", "Status", &other)),
        }
    }

    /// Destroys an enclave by id (one this connection created, or any when the caller is root).
    pub fn destroy(&self, id: u64) -> Result<(), HostError> {
        destroy(&self.conn, id)
    }
}

/// The typed interface ids of `EnclaveOptions::interface_id` (the ECALL interface's id, then
/// optionally the OCALL interface's).
fn interfaces(ids: &[u8]) -> Result<(Option<InterfaceId>, Option<InterfaceId>), HostError> {
    let bad = || HostError::InterfaceIds { len: ids.len() };
    let id = |bytes: &[u8]| InterfaceId::try_from(bytes).map_err(|_| bad());
    match ids.len() {
        0 => Ok((None, None)),
        32 => Ok((Some(id(ids)?), None)),
        64 => {
            let (e, o) = ids.split_at(32);
            Ok((Some(id(e)?), Some(id(o)?)))
        }
        _ => Err(bad()),
    }
}

pub(crate) fn destroy(conn: &Conn, id: u64) -> Result<(), HostError> {
    match conn.call(&Request::Destroy { id }, &[])?.0 {
        Response::Destroyed { .. } => Ok(()),
        Response::Error(e) => Err(HostError::Refused(e)),
        other => Err(unexpected("Destroy", "Destroyed", &other)),
    }
}
