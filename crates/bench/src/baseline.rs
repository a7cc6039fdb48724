//! The cross-process baselines: a futex round trip and a spin round trip between two processes
//! over one word of shared memory, one round trip at a time, and the median and p99 of such
//! samples.
//!
//! A benchmark starts its peer by re-executing itself ([`spawn_peer`]) with the mode and the
//! shared memfd's descriptor number in the environment; the peer's `main` first asks
//! [`peer_request`] whether it is one, and serves the baselines with [`serve_baseline`].

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use coffer_channel::SharedMapping;
use rustix::thread::futex;

/// The environment variable that names a peer's mode.
pub const PEER_ENV: &str = "COFFER_BENCH_PEER";
/// The environment variable that holds the peer's shared memfd descriptor number.
pub const FD_ENV: &str = "COFFER_BENCH_FD";

/// The baselines' shared memory: one page, of which the first word is used.
const PAGE: usize = 4096;
/// The value that tells a ping-pong peer to stop.
const STOP: u32 = u32::MAX - 1;

/// How one side of a ping-pong waits for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// `FUTEX_WAIT` on the word, `FUTEX_WAKE` after each store: the round trip of two
    /// processes that sleep, as the channel's calls when nobody polls.
    Futex,
    /// Polling the word: the round trip of two processes that never sleep, as switchless calls.
    Spin,
}

impl Wait {
    /// The mode name a peer is started with.
    pub fn mode(self) -> &'static str {
        match self {
            Wait::Futex => "futex",
            Wait::Spin => "spin",
        }
    }
}

/// Median and 99th percentile of one-at-a-time samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub median: Duration,
    pub p99: Duration,
    /// The number of samples.
    pub n: usize,
}

impl Stats {
    /// The median and p99 of `samples` (at least one).
    pub fn of(mut samples: Vec<Duration>) -> Stats {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_unstable();
        let n = samples.len();
        Stats {
            median: samples[n / 2],
            p99: samples[(n * 99 / 100).min(n - 1)],
            n,
        }
    }

    /// [`Stats::of`] samples given in nanoseconds.
    pub fn of_ns(samples: &[u64]) -> Stats {
        Stats::of(samples.iter().map(|&ns| Duration::from_nanos(ns)).collect())
    }
}

/// Whether this process was started as a benchmark's peer: its mode and the shared memfd.
///
/// The descriptor is reopened through `/proc/self/fd`, which gives the same memfd without
/// adopting a raw descriptor number.
pub fn peer_request() -> Option<(String, OwnedFd)> {
    let mode = std::env::var(PEER_ENV).ok()?;
    let raw: i32 = std::env::var(FD_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{PEER_ENV} is set without a descriptor number in {FD_ENV}"));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/self/fd/{raw}"))
        .unwrap_or_else(|e| panic!("reopening the peer's descriptor {raw}: {e}"));
    Some((mode, file.into()))
}

/// Starts this executable again as the peer `mode`, sharing `fd` with it.
pub fn spawn_peer(mode: &str, fd: BorrowedFd<'_>) -> Child {
    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())
        .unwrap_or_else(|e| panic!("clearing close-on-exec of the peer's memfd: {e}"));
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("this executable's path: {e}"));
    let child = Command::new(exe)
        .env(PEER_ENV, mode)
        .env(FD_ENV, fd.as_raw_fd().to_string())
        .spawn()
        .unwrap_or_else(|e| panic!("starting the peer process: {e}"));
    // Later children must not inherit it.
    let _ = rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC);
    child
}

fn futex_wait_for(w: &AtomicU32, want: u32) {
    loop {
        let v = w.load(Ordering::Acquire);
        if v == want || v == STOP {
            return;
        }
        let _ = futex::wait(w, futex::Flags::empty(), v, None);
    }
}

fn spin_wait_for(w: &AtomicU32, want: u32) {
    loop {
        let v = w.load(Ordering::Acquire);
        if v == want || v == STOP {
            return;
        }
        std::hint::spin_loop();
    }
}

fn wait_for(wait: Wait, w: &AtomicU32, want: u32) {
    match wait {
        Wait::Futex => futex_wait_for(w, want),
        Wait::Spin => spin_wait_for(w, want),
    }
}

/// Serves the ping-pong of `mode` (`futex` or `spin`) as the peer, until the other side stops
/// it. Any other mode gives the descriptor back, for the benchmark's own peers.
pub fn serve_baseline(mode: &str, fd: OwnedFd) -> Result<(), OwnedFd> {
    let wait = match mode {
        "futex" => Wait::Futex,
        "spin" => Wait::Spin,
        _ => return Err(fd),
    };
    let m = SharedMapping::map(fd.as_fd(), PAGE)
        .unwrap_or_else(|e| panic!("mapping the ping-pong word: {e}"));
    let w = m.u32_at(0);
    let mut expect = 1u32;
    loop {
        wait_for(wait, w, expect);
        if w.load(Ordering::Acquire) == STOP {
            return Ok(());
        }
        w.store(expect + 1, Ordering::Release);
        if wait == Wait::Futex {
            let _ = futex::wake(w, futex::Flags::empty(), 1);
        }
        expect += 2;
    }
}

/// `iters` round trips (after `warmup` unrecorded ones) with a peer process, each timed from
/// this side's store to its seeing the peer's answer.
pub fn pingpong(wait: Wait, iters: usize, warmup: usize) -> Stats {
    let (fd, m) = SharedMapping::create("coffer-bench-pingpong", PAGE)
        .unwrap_or_else(|e| panic!("the ping-pong memfd: {e}"));
    let mut peer = spawn_peer(wait.mode(), fd.as_fd());
    let w = m.u32_at(0);
    let mut times = Vec::with_capacity(iters);
    let mut v = 0u32;
    for i in 0..warmup + iters {
        let t = Instant::now();
        w.store(v + 1, Ordering::Release);
        if wait == Wait::Futex {
            let _ = futex::wake(w, futex::Flags::empty(), 1);
        }
        wait_for(wait, w, v + 2);
        if i >= warmup {
            times.push(t.elapsed());
        }
        v += 2;
    }
    w.store(STOP, Ordering::Release);
    let _ = futex::wake(w, futex::Flags::empty(), 1);
    let _ = peer.wait();
    Stats::of(times)
}

/// A duration in microseconds, for the tables.
pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
