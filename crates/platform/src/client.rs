//! A minimal client of the daemon's socket, for `coffer platform status` and tests. Host
//! applications use `coffer-host`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use coffer_proto::client::{Request, Response};
use coffer_proto::{FrameError, recv, send};

/// Why a request to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to the platform daemon at {path}: {source}")]
    Connect {
        path: String,
        source: rustix::io::Errno,
    },
    #[error("platform daemon connection: {0}")]
    Frame(#[from] FrameError),
}

/// Connects to the daemon's `SOCK_SEQPACKET` socket.
pub fn connect(path: &Path) -> Result<OwnedFd, ClientError> {
    coffer_proto::connect(path).map_err(|source| ClientError::Connect {
        path: path.display().to_string(),
        source,
    })
}

/// Sends one request (with `fds` attached) and returns the answer and its descriptors.
pub fn call(
    sock: &OwnedFd,
    request: &Request,
    fds: &[BorrowedFd<'_>],
) -> Result<(Response, Vec<OwnedFd>), ClientError> {
    send(sock.as_fd(), request, fds)?;
    Ok(recv(sock.as_fd())?)
}
