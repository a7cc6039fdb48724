//! Waiting on descriptors with a timeout.

use std::os::fd::BorrowedFd;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;

/// Waits until one of `fds` is readable (or hung up) or `timeout` passes; returns which are.
pub fn readable(fds: &[BorrowedFd<'_>], timeout: Duration) -> Result<Vec<bool>, Errno> {
    let mut pfds: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(fd, PollFlags::IN))
        .collect();
    let ts = Timespec::try_from(timeout).unwrap_or(Timespec {
        tv_sec: i64::MAX,
        tv_nsec: 0,
    });
    rustix::io::retry_on_intr(|| poll(&mut pfds, Some(&ts)))?;
    Ok(pfds.iter().map(|p| !p.revents().is_empty()).collect())
}
