//! Cross-process round trips: the futex and spin baselines and the channel's ECALL, measured one
//! call at a time so the median and p99 are real latencies.
//!
//! `cargo bench -p coffer-channel --bench roundtrip` re-executes itself as the peer process, which
//! maps the same memfd.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use coffer_channel::{Channel, ChannelLayout, SharedMapping, Status, WaitPolicy};
use rustix::thread::futex;

const ITERS: usize = 50_000;
const WARMUP: usize = 2_000;

fn futex_wait_for(w: &AtomicU32, want: u32) {
    loop {
        let v = w.load(Ordering::Acquire);
        if v == want {
            return;
        }
        let _ = futex::wait(w, futex::Flags::empty(), v, None);
    }
}

fn spin_wait_for(w: &AtomicU32, want: u32) {
    while w.load(Ordering::Acquire) != want {
        std::hint::spin_loop();
    }
}

fn child(mode: &str, fd: OwnedFd) {
    match mode {
        "futex" | "spin" => {
            let m = SharedMapping::map(fd.as_fd(), 4096).expect("map");
            let w = m.u32_at(0);
            let mut expect = 1;
            loop {
                if mode == "futex" {
                    futex_wait_for(w, expect);
                } else {
                    spin_wait_for(w, expect);
                }
                if expect == u32::MAX - 1 {
                    return;
                }
                w.store(expect + 1, Ordering::Release);
                if mode == "futex" {
                    let _ = futex::wake(w, futex::Flags::empty(), 1);
                }
                expect += 2;
            }
        }
        _ => {
            let (slots, size, spin) = parse_geometry(mode);
            let mut ch =
                Channel::open(fd.as_fd(), ChannelLayout::new(slots, size).expect("layout"))
                    .expect("open");
            ch.set_wait_policy(WaitPolicy { spin });
            let s = ch.enclave_slot(0).expect("slot");
            while let Ok(inc) = s.wait_ecall() {
                let out = if inc.call_id == 2 {
                    inc.input
                } else {
                    Vec::new()
                };
                if s.respond(Status::Ok, &out).is_err() {
                    return;
                }
            }
        }
    }
}

fn parse_geometry(mode: &str) -> (u32, u32, Duration) {
    let spin_us: u64 = mode.trim_start_matches("channel-").parse().unwrap_or(20);
    (1, 4 << 20, Duration::from_micros(spin_us))
}

fn spawn_peer(mode: &str, fd: BorrowedFd<'_>) -> std::process::Child {
    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty()).expect("clear cloexec");
    std::process::Command::new(std::env::current_exe().expect("exe"))
        .env("COFFER_BENCH_PEER", mode)
        .env("COFFER_BENCH_FD", fd.as_raw_fd().to_string())
        .spawn()
        .expect("spawn peer")
}

struct Stats {
    median: Duration,
    p99: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    Stats {
        median: v[v.len() / 2],
        p99: v[v.len() * 99 / 100],
    }
}

fn pingpong(mode: &str) -> Stats {
    let (fd, m) = SharedMapping::create("bench", 4096).expect("create");
    let mut peer = spawn_peer(mode, fd.as_fd());
    let w = m.u32_at(0);
    let mut times = Vec::with_capacity(ITERS);
    let mut v = 0u32;
    for i in 0..WARMUP + ITERS {
        let t = Instant::now();
        w.store(v + 1, Ordering::Release);
        if mode == "futex" {
            let _ = futex::wake(w, futex::Flags::empty(), 1);
            futex_wait_for(w, v + 2);
        } else {
            spin_wait_for(w, v + 2);
        }
        if i >= WARMUP {
            times.push(t.elapsed());
        }
        v += 2;
    }
    w.store(u32::MAX - 1, Ordering::Release);
    let _ = futex::wake(w, futex::Flags::empty(), 1);
    let _ = peer.kill();
    let _ = peer.wait();
    stats(times)
}

fn channel_roundtrip(spin_us: u64, payload: usize) -> (Stats, f64) {
    let layout = ChannelLayout::new(1, 4 << 20).expect("layout");
    let (fd, daemon) = Channel::create(layout).expect("create");
    let mut host = Channel::open(fd.as_fd(), layout).expect("open");
    host.set_wait_policy(WaitPolicy {
        spin: Duration::from_micros(spin_us),
    });
    let mut peer = spawn_peer(&format!("channel-{spin_us}"), fd.as_fd());
    let input = vec![0x5a; payload];
    let iters = if payload > 0 { 2_000 } else { ITERS };
    let mut times = Vec::with_capacity(iters);
    let mut claim = host.claim(false).expect("claim");
    let call = if payload > 0 { 2 } else { 1 };
    for i in 0..WARMUP.min(iters) + iters {
        let t = Instant::now();
        let r = claim.ecall(call, &input, &mut |_, _| (Status::UnknownCall, Vec::new()));
        let r = r.expect("ecall");
        assert_eq!(r.output.len(), if call == 2 { payload } else { 0 });
        if i >= WARMUP.min(iters) {
            times.push(t.elapsed());
        }
    }
    drop(claim);
    daemon.mark_lost(coffer_channel::EnclaveState::Destroyed, 0, "bench over");
    let _ = peer.wait();
    let s = stats(times);
    let gbps = if payload > 0 {
        (2 * payload) as f64 / s.median.as_secs_f64() / 1e9
    } else {
        0.0
    };
    (s, gbps)
}

fn main() {
    if let Ok(mode) = std::env::var("COFFER_BENCH_PEER") {
        let raw: i32 = std::env::var("COFFER_BENCH_FD")
            .ok()
            .and_then(|s| s.parse().ok())
            .expect("COFFER_BENCH_FD");
        let fd = unsafe_free_fd(raw);
        child(&mode, fd);
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let futex_rt = pingpong("futex");
    let spin_rt = pingpong("spin");
    println!("| measurement | median | p99 | ratio to futex round trip (median) |");
    println!("|---|---|---|---|");
    let row = |name: &str, s: &Stats| {
        println!(
            "| {name} | {:.2} µs | {:.2} µs | {:.2} |",
            s.median.as_secs_f64() * 1e6,
            s.p99.as_secs_f64() * 1e6,
            s.median.as_secs_f64() / futex_rt.median.as_secs_f64()
        );
    };
    row("futex round trip, two processes (baseline)", &futex_rt);
    row("spin round trip, two processes", &spin_rt);
    let (c0, _) = channel_roundtrip(0, 0);
    row("channel ECALL, no spin (futex only)", &c0);
    let (c20, _) = channel_roundtrip(20, 0);
    row("channel ECALL, 20 µs spin then futex (default)", &c20);
    let (big, gbps) = channel_roundtrip(20, 1 << 20);
    row("channel ECALL, 1 MiB in and 1 MiB out", &big);
    println!("\n1 MiB in + 1 MiB out: {gbps:.2} GB/s at the median");
}

fn unsafe_free_fd(raw: i32) -> OwnedFd {
    // std offers no safe way to adopt an inherited descriptor number; rustix's is the same call.
    #[allow(unsafe_code)]
    // SAFETY: the parent cleared close-on-exec on exactly this descriptor and passed its number;
    // nothing else in this freshly started process owns it.
    unsafe {
        OwnedFd::from_raw_fd(raw)
    }
}
