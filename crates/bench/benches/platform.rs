//! Issue 3's benchmarks, in one run with their baselines: enclave creation (create → `Ready` →
//! first ECALL answered) for 4 MiB and 64 MiB heaps, MRENCLAVE throughput next to raw SHA-256 of
//! the same bytes, and the raw ECALL round trip through a real enclave, next to the futex round
//! trip between two processes.
//!
//! `cargo bench -p coffer-bench --bench platform` (as root: the daemon runs in this process).

use std::time::{Duration, Instant};

use bench_common::NOOP_CALL_ID;
use coffer_bench::{Stats, Wait, micros, pingpong};
use coffer_host::{EnclaveOptions, Platform};
use sha2::{Digest, Sha256};

mod support;
use support::{bundle, config, latency_header, latency_row, sample, sample_after_idle};

use coffer_testkit::elf;

const ROUND_TRIPS: usize = 20_000;
const WARMUP: usize = 1_000;
/// Calls made after an idle gap, and the gap: longer than the 5 µs an enclave worker that is not
/// switchless polls after a call.
const IDLE_CALLS: usize = 5_000;
const IDLE: Duration = Duration::from_micros(50);
/// Enclaves created per size (after one unrecorded).
const CREATIONS: usize = 20;
/// Image bytes of the synthetic enclave whose MRENCLAVE is measured.
const IMAGE: usize = 64 << 20;
/// Measurements of that image (and SHA-256 runs over it).
const HASH_RUNS: usize = 7;

fn main() {
    if support::serve_peer() || !support::can_run("coffer-bench platform") {
        return;
    }
    // Nothing below the build is timed until the baseline.
    coffer_testkit::enclave::static_image("bench-enclave");
    let d = support::daemon();
    let platform = Platform::connect(&d.socket).expect("connecting to the daemon");
    support::print_machine("platform (issue 3)");

    let futex = pingpong(Wait::Futex, ROUND_TRIPS, WARMUP);

    // Creation: the host's create call (the daemon verifies and measures the bundle, starts the
    // process, the runtime maps its secret heap and reports Ready) and the first ECALL's answer.
    let mut creation = Vec::new();
    for (name, heap) in [("4 MiB", 4u64 << 20), ("64 MiB", 64 << 20)] {
        let (path, epc) = bundle(&d, &format!("heap-{heap}"), &config(heap, 1, 64 << 10));
        let mut times = Vec::with_capacity(CREATIONS);
        for i in 0..=CREATIONS {
            let t = Instant::now();
            let e = platform
                .create_enclave_with(&path, EnclaveOptions::default())
                .unwrap_or_else(|err| panic!("creating the {name} enclave: {err}"));
            e.ecall(NOOP_CALL_ID, &[])
                .unwrap_or_else(|err| panic!("the first ECALL of the {name} enclave: {err}"));
            let elapsed = t.elapsed();
            e.destroy().expect("destroying the enclave");
            if i > 0 {
                times.push(elapsed);
            }
        }
        creation.push((name, epc, Stats::of(times)));
    }

    let (image_mbps, sha_mbps, stream_mbps) = measurement();

    let (path, _) = bundle(&d, "raw", &config(4 << 20, 1, 64 << 10));
    let e = platform
        .create_enclave_with(&path, EnclaveOptions::default())
        .expect("creating the enclave");
    let raw = sample(ROUND_TRIPS, WARMUP, || {
        e.ecall(NOOP_CALL_ID, &[]).expect("the raw ECALL");
    });
    let raw_idle = sample_after_idle(IDLE_CALLS, WARMUP, IDLE, || {
        e.ecall(NOOP_CALL_ID, &[]).expect("the raw ECALL");
    });
    drop(e);

    latency_header("futex");
    latency_row("futex round trip, two processes (baseline)", &futex, &futex);
    latency_row(
        "raw ECALL round trip, back to back (the worker is still polling)",
        &raw,
        &futex,
    );
    latency_row(
        &format!(
            "raw ECALL round trip after {} µs idle (the worker sleeps: futex wake-up)",
            IDLE.as_micros()
        ),
        &raw_idle,
        &futex,
    );
    for (name, epc, s) in &creation {
        println!(
            "| enclave creation, {name} heap ({:.1} MiB EPC), create → Ready → first ECALL | {:.2} ms | {:.2} ms (max) | {:.0} | {:.0} | {} |",
            *epc as f64 / (1u64 << 20) as f64,
            s.median.as_secs_f64() * 1e3,
            s.p99.as_secs_f64() * 1e3,
            s.median.as_secs_f64() / futex.median.as_secs_f64(),
            s.p99.as_secs_f64() / futex.p99.as_secs_f64(),
            s.n
        );
    }
    println!();
    println!("| throughput (64 MiB image, median of {HASH_RUNS}) | MB/s | ratio to raw SHA-256 |");
    println!("|---|---|---|");
    println!("| raw SHA-256 of the image bytes (baseline) | {sha_mbps:.0} | 1.00 |");
    println!(
        "| MRENCLAVE, image bytes per second | {image_mbps:.0} | {:.2} |",
        image_mbps / sha_mbps
    );
    println!(
        "| MRENCLAVE, hashed record bytes per second (5184 per 4096-byte page) | {stream_mbps:.0} | {:.2} |",
        stream_mbps / sha_mbps
    );
    println!(
        "\nfutex baseline: median {:.2} µs, p99 {:.2} µs; load average at the end: {}",
        micros(futex.median),
        micros(futex.p99),
        support::load()
    );
}

/// MRENCLAVE of a synthetic enclave with a 64 MiB code segment, and raw SHA-256 of the same
/// bytes, in MB/s (10⁶) at the median: image bytes, SHA-256, and the measurement's hashed
/// record stream.
fn measurement() -> (f64, f64, f64) {
    let code = coffer_testkit::rng::bytes(0x9e37_79b9_7f4a_7c15, IMAGE);
    let image = elf::static_elf(&code, &[1; 4096], 0);
    let config = config(1 << 20, 1, 64 << 10);
    let mut stream = 0u64;
    let mut count = |r: &coffer_abi::measure::MeasurementRecord| {
        stream += r.encoded_len() as u64;
        Ok(())
    };
    coffer_sign::layout::measure_enclave_with_sink(&image, &config, &mut count)
        .expect("measuring the image");
    let time = |f: &mut dyn FnMut()| -> Duration {
        let mut v = Vec::with_capacity(HASH_RUNS);
        for _ in 0..HASH_RUNS {
            let t = Instant::now();
            f();
            v.push(t.elapsed());
        }
        Stats::of(v).median
    };
    let m = time(&mut || {
        std::hint::black_box(
            coffer_sign::measure_enclave(std::hint::black_box(&image), &config).expect("measuring"),
        );
    });
    let s = time(&mut || {
        std::hint::black_box(Sha256::digest(std::hint::black_box(&image)));
    });
    let mbps = |bytes: u64, d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
    (
        mbps(image.len() as u64, m),
        mbps(image.len() as u64, s),
        mbps(stream, m),
    )
}
