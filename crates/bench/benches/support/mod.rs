//! What the `platform` and `sdk` benches share: the root rule, the daemon, the bench enclave's
//! bundles, the machine's description and the tables' rows.

#![allow(dead_code)] // Each bench uses part of it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use coffer_bench::{Stats, micros};
use coffer_platform::LaunchPolicy;
use coffer_sign::EnclaveConfig;
use coffer_testkit::{Daemon, enclave};

/// The VM size the daemon runs as: 112 MiB of EPC, room for a 64 MiB enclave.
pub const VM_SIZE: &str = "Standard_DC4s_v2";

/// Serves this process as a peer of the baselines if it was started as one; true then (the
/// bench's `main` returns at once). Peers of other modes are a bug.
pub fn serve_peer() -> bool {
    let Some((mode, fd)) = coffer_bench::peer_request() else {
        return false;
    };
    if coffer_bench::serve_baseline(&mode, fd).is_err() {
        panic!("unknown peer mode {mode}");
    }
    true
}

/// Whether the bench can run: it needs root (the daemon switches uids). Prints why not.
pub fn can_run(bench: &str) -> bool {
    if std::env::args().any(|a| a == "--list") {
        return false;
    }
    coffer_testkit::require_root(bench)
}

/// The platform daemon, in this process.
pub fn daemon() -> Daemon {
    Daemon::start(VM_SIZE, LaunchPolicy::default(), Duration::from_secs(60))
}

/// A production configuration of the bench enclave.
pub fn config(heap_size: u64, tcs_count: u32, max_call_size: u64) -> EnclaveConfig {
    EnclaveConfig {
        isv_prod_id: 9,
        heap_size,
        tcs_count,
        max_call_size,
        ..enclave::config()
    }
}

/// The bench enclave (built statically before anything is timed) signed with the vectors' key for
/// `config`, written as `name` into the daemon's directory. Returns the path and the enclave's EPC
/// size.
pub fn bundle(d: &Daemon, name: &str, config: &EnclaveConfig) -> (PathBuf, u64) {
    let image = enclave::static_image("bench-enclave");
    let b = enclave::sign(&coffer_testkit::vector_key(), config, image);
    let epc = b
        .epc_size()
        .unwrap_or_else(|e| panic!("the bench enclave's EPC size: {e}"));
    (
        enclave::write_bundle(d.dir.path(), &format!("{name}.coffer"), &b),
        epc,
    )
}

fn read_trimmed(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| format!("unknown ({program} failed)"))
}

/// The 1-, 5- and 15-minute load averages.
pub fn load() -> String {
    read_trimmed("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The machine, the date and the load, as the table's preamble.
pub fn print_machine(bench: &str) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("## coffer-bench {bench}\n");
    println!("- date: {}", command_output("date", &["-u"]));
    println!("- CPU: {cpu}, {cores} cores");
    println!("- kernel: {}", read_trimmed("/proc/sys/kernel/osrelease"));
    println!("- rustc: {}", command_output("rustc", &["--version"]));
    println!("- daemon VM size: {VM_SIZE}");
    println!("- load average at start: {}\n", load());
}

/// A latency row: median and p99, and both as ratios to the baseline's.
pub fn latency_row(name: &str, s: &Stats, base: &Stats) {
    println!(
        "| {name} | {:.2} µs | {:.2} µs | {:.2} | {:.2} | {} |",
        micros(s.median),
        micros(s.p99),
        s.median.as_secs_f64() / base.median.as_secs_f64(),
        s.p99.as_secs_f64() / base.p99.as_secs_f64(),
        s.n
    );
}

/// The header of a table of [`latency_row`]s.
pub fn latency_header(baseline: &str) {
    println!(
        "| measurement | median | p99 | median / {baseline} median | p99 / {baseline} p99 | samples |"
    );
    println!("|---|---|---|---|---|---|");
}

/// Bytes per second at the median of `s`, for `bytes` moved per sample, in GB/s (10⁹).
pub fn gbps(bytes: usize, s: &Stats) -> f64 {
    bytes as f64 / s.median.as_secs_f64() / 1e9
}

/// Times `f` once per sample, after `warmup` unrecorded calls.
pub fn sample(iters: usize, warmup: usize, mut f: impl FnMut()) -> Stats {
    let mut times = Vec::with_capacity(iters);
    for i in 0..warmup + iters {
        let t = std::time::Instant::now();
        f();
        if i >= warmup {
            times.push(t.elapsed());
        }
    }
    Stats::of(times)
}

/// Samples of idle calls: before each, this thread busy-waits `idle` (not timed), long enough
/// for the enclave's worker to stop polling its slot and sleep, so each call pays the wake-up.
pub fn sample_after_idle(
    iters: usize,
    warmup: usize,
    idle: Duration,
    mut f: impl FnMut(),
) -> Stats {
    let mut times = Vec::with_capacity(iters);
    for i in 0..warmup + iters {
        let gap = std::time::Instant::now();
        while gap.elapsed() < idle {
            std::hint::spin_loop();
        }
        let t = std::time::Instant::now();
        f();
        if i >= warmup {
            times.push(t.elapsed());
        }
    }
    Stats::of(times)
}

/// Samples of calls that take their input by value: `input` makes each call's input before the
/// clock starts, and the call's output is dropped after it stops, so neither the caller's copy
/// of the argument nor freeing the result is counted.
pub fn sample_owned<I, O>(
    iters: usize,
    warmup: usize,
    mut input: impl FnMut() -> I,
    mut call: impl FnMut(I) -> O,
) -> Stats {
    let mut times = Vec::with_capacity(iters);
    for i in 0..warmup + iters {
        let arg = input();
        let t = std::time::Instant::now();
        let out = call(arg);
        let elapsed = t.elapsed();
        drop(std::hint::black_box(out));
        if i >= warmup {
            times.push(elapsed);
        }
    }
    Stats::of(times)
}
