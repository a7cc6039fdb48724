//! One message per `SOCK_SEQPACKET` record, with optional file descriptors.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest message: control messages are small; this bounds what a peer can make the
/// receiver allocate.
pub const MAX_FRAME: usize = 256 * 1024;
/// The most descriptors one message may carry.
pub const MAX_FDS: usize = 4;

/// Why a message could not be sent or received.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the peer closed the connection")]
    Closed,
    #[error("socket error: {0}")]
    Io(#[from] rustix::io::Errno),
    #[error("message of {0} bytes is larger than the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("message carries more than {MAX_FDS} file descriptors")]
    TooManyFds,
    #[error("the message was truncated in transit")]
    Truncated,
    #[error("malformed message: {0}")]
    Decode(#[from] postcard::Error),
    #[error("malformed message: {0} trailing bytes after the message")]
    TrailingBytes(usize),
}

/// Connects to a daemon's `SOCK_SEQPACKET` socket at `path` (close-on-exec).
pub fn connect(path: &std::path::Path) -> Result<OwnedFd, rustix::io::Errno> {
    let sock = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    let addr = rustix::net::SocketAddrUnix::new(path)?;
    rustix::net::connect(&sock, &addr)?;
    Ok(sock)
}

/// Creates a connected pair of `SOCK_SEQPACKET` sockets (close-on-exec).
pub fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd), FrameError> {
    Ok(rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Sends `msg` with `fds` attached.
pub fn send<T: Serialize>(
    sock: BorrowedFd<'_>,
    msg: &T,
    fds: &[BorrowedFd<'_>],
) -> Result<(), FrameError> {
    if fds.len() > MAX_FDS {
        return Err(FrameError::TooManyFds);
    }
    let bytes = postcard::to_stdvec(msg)?;
    if bytes.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(bytes.len()));
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(FrameError::TooManyFds);
    }
    match rustix::io::retry_on_intr(|| {
        rustix::net::sendmsg(
            sock,
            &[IoSlice::new(&bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        )
    }) {
        Ok(n) if n == bytes.len() => Ok(()),
        Ok(_) => Err(FrameError::Truncated),
        Err(rustix::io::Errno::PIPE) => Err(FrameError::Closed),
        Err(e) => Err(FrameError::Io(e)),
    }
}

/// Receives one message and the descriptors attached to it.
pub fn recv<T: DeserializeOwned>(sock: BorrowedFd<'_>) -> Result<(T, Vec<OwnedFd>), FrameError> {
    let mut buf = vec![0u8; MAX_FRAME];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let r = match rustix::io::retry_on_intr(|| {
        rustix::net::recvmsg(
            sock,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
    }) {
        Ok(r) => r,
        Err(rustix::io::Errno::CONNRESET) => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e)),
    };
    let mut fds = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = m {
            fds.extend(rights);
        }
    }
    if r.flags.contains(ReturnFlags::TRUNC) || r.flags.contains(ReturnFlags::CTRUNC) {
        return Err(FrameError::Truncated);
    }
    if fds.len() > MAX_FDS {
        return Err(FrameError::TooManyFds);
    }
    if r.bytes == 0 {
        return Err(FrameError::Closed);
    }
    let msg = decode(&buf[..r.bytes])?;
    Ok((msg, fds))
}

/// Decodes one whole message: every byte must belong to it (postcard's `from_bytes` would
/// ignore a trailing remainder, so a peer could smuggle bytes past the decoder unnoticed).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    let (msg, rest) = postcard::take_from_bytes(bytes)?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes(rest.len()));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn accepts_a_message_with_descriptors() {
        let (a, b) = seqpacket_pair().unwrap();
        let (x, _y) = seqpacket_pair().unwrap();
        send(a.as_fd(), &("hello".to_string(), 7u32), &[x.as_fd()]).unwrap();
        let ((s, n), fds): ((String, u32), _) = recv(b.as_fd()).unwrap();
        assert_eq!((s.as_str(), n), ("hello", 7));
        assert_eq!(fds.len(), 1);
    }

    #[test]
    fn rejects_garbage_and_reports_a_closed_peer() {
        let (a, b) = seqpacket_pair().unwrap();
        rustix::net::send(&a, &[0xff, 0xff, 0xff], SendFlags::empty()).unwrap();
        assert!(matches!(
            recv::<(String, u64)>(b.as_fd()),
            Err(FrameError::Decode(_))
        ));
        drop(a);
        assert!(matches!(recv::<u32>(b.as_fd()), Err(FrameError::Closed)));
    }

    #[test]
    fn rejects_a_message_with_one_trailing_byte() {
        let (a, b) = seqpacket_pair().unwrap();
        let mut bytes = postcard::to_stdvec(&7u32).unwrap();
        rustix::net::send(&a, &bytes, SendFlags::empty()).unwrap();
        assert_eq!(recv::<u32>(b.as_fd()).unwrap().0, 7);
        bytes.push(0);
        rustix::net::send(&a, &bytes, SendFlags::empty()).unwrap();
        let err = recv::<u32>(b.as_fd()).unwrap_err();
        assert!(matches!(err, FrameError::TrailingBytes(1)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "malformed message: 1 trailing bytes after the message"
        );
    }

    #[test]
    fn rejects_oversized_messages() {
        let (a, _b) = seqpacket_pair().unwrap();
        let big = vec![0u8; MAX_FRAME + 1];
        assert!(matches!(
            send(a.as_fd(), &big, &[]),
            Err(FrameError::TooLarge(_))
        ));
    }
}
