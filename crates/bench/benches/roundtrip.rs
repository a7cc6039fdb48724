//! Cross-process round trips: the futex and spin baselines and the channel's ECALL, measured one
//! call at a time so the median and p99 are real latencies.
//!
//! `cargo bench -p coffer-bench --bench roundtrip` re-executes itself as the peer process, which
//! maps the same memfd.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use coffer_channel::{Channel, ChannelLayout, Status, WaitPolicy};

use coffer_bench::baseline::{self, Stats, Wait, pingpong, spawn_peer};

const ITERS: usize = 50_000;
const WARMUP: usize = 2_000;

/// The enclave side of the channel benchmarks: answers ECALL 2 with its input, others empty.
fn channel_peer(mode: &str, fd: OwnedFd) {
    let (slots, size, spin) = parse_geometry(mode);
    let mut ch =
        Channel::open(fd.as_fd(), ChannelLayout::new(slots, size).expect("layout")).expect("open");
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

fn parse_geometry(mode: &str) -> (u32, u32, Duration) {
    let spin_us: u64 = mode.trim_start_matches("channel-").parse().unwrap_or(20);
    (1, 4 << 20, Duration::from_micros(spin_us))
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
    let s = Stats::of(times);
    let gbps = if payload > 0 {
        (2 * payload) as f64 / s.median.as_secs_f64() / 1e9
    } else {
        0.0
    };
    (s, gbps)
}

fn main() {
    if let Some((mode, fd)) = baseline::peer_request() {
        if let Err(fd) = baseline::serve_baseline(&mode, fd) {
            channel_peer(&mode, fd);
        }
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let futex_rt = pingpong(Wait::Futex, ITERS, WARMUP);
    let spin_rt = pingpong(Wait::Spin, ITERS, WARMUP);
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
