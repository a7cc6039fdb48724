//! Issue 4's benchmarks, in one run with their baselines: typed ECALL and OCALL round trips (next
//! to the futex round trip between two processes), the switchless ECALL round trip (next to the
//! spin round trip between two processes), 1 MiB argument in and result out (next to memcpy of
//! the same bytes in this process), and sealing 1 MiB (next to AES-GCM of the same crate in the
//! enclave process, timed inside the enclave).
//!
//! `cargo bench -p coffer-bench --bench sdk` (as root: the daemon runs in this process).

use std::time::Duration;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};

use bench_common::{
    BENCH_HOST_INTERFACE, BENCH_INTERFACE, BenchHost, BenchProxy, Bytes, bench_host_dispatch,
};
use coffer_bench::{Stats, Wait, micros, pingpong};
use coffer_host::{EnclaveOptions, Platform, SwitchlessConfig};

mod support;
use support::{
    bundle, config, gbps, latency_header, latency_row, sample, sample_after_idle, sample_owned,
};

const ROUND_TRIPS: usize = 20_000;
const WARMUP: usize = 1_000;
/// Calls made after an idle gap, and the gap: longer than the 5 µs an enclave worker that is not
/// switchless polls after a call, shorter than a switchless worker's 100 µs.
const IDLE_CALLS: usize = 5_000;
const IDLE: Duration = Duration::from_micros(50);
/// A gap longer than the switchless worker's spin.
const SWITCHLESS_IDLE: Duration = Duration::from_micros(300);
const MIB: usize = 1 << 20;
/// 1 MiB calls and seals.
const BIG_ITERS: usize = 300;
const BIG_WARMUP: usize = 20;
/// The bench enclave's call buffer: 1 MiB and a page for the encoding's length prefix.
const MAX_CALL_SIZE: u64 = (1 << 20) + 4096;

/// The host's OCALLs.
#[derive(Clone, Copy)]
struct Host;

impl BenchHost for Host {
    fn noop(&self) {}
}

fn main() {
    if support::serve_peer() || !support::can_run("coffer-bench sdk") {
        return;
    }
    coffer_testkit::enclave::static_image("bench-enclave");
    let d = support::daemon();
    let platform = Platform::connect(&d.socket).expect("connecting to the daemon");
    let (path, _) = bundle(&d, "sdk", &config(16 << 20, 1, MAX_CALL_SIZE));
    let typed = || {
        EnclaveOptions::typed(&BENCH_INTERFACE).serving(
            &BENCH_HOST_INTERFACE,
            Host,
            bench_host_dispatch,
        )
    };
    support::print_machine("sdk (issue 4)");

    let futex = pingpong(Wait::Futex, ROUND_TRIPS, WARMUP);
    let spin = pingpong(Wait::Spin, ROUND_TRIPS, WARMUP);

    // Typed calls, on an enclave without switchless calls.
    let e = platform
        .create_enclave_with(&path, typed())
        .expect("creating the enclave");
    let bench = BenchProxy::new(&e);
    let ecall = sample(ROUND_TRIPS, WARMUP, || bench.noop().expect("noop"));
    let ecall_idle = sample_after_idle(IDLE_CALLS, WARMUP, IDLE, || bench.noop().expect("noop"));
    let mut inside = Vec::with_capacity(ROUND_TRIPS);
    let ecall_ocall = sample(ROUND_TRIPS, WARMUP, || {
        inside.push(Duration::from_nanos(
            bench
                .ocall_once()
                .expect("ocall_once")
                .expect("the enclave's OCALL"),
        ));
    });
    let ocall = Stats::of(inside.split_off(WARMUP));
    let mut inside = Vec::with_capacity(IDLE_CALLS);
    let ecall_ocall_idle = sample_after_idle(IDLE_CALLS, WARMUP, IDLE, || {
        inside.push(Duration::from_nanos(
            bench
                .ocall_once()
                .expect("ocall_once")
                .expect("the enclave's OCALL"),
        ));
    });
    let ocall_idle = Stats::of(inside.split_off(WARMUP));

    // 1 MiB in and out.
    let data: Vec<u8> = (0u8..=255).cycle().take(MIB).collect();
    let mut dst = vec![0u8; MIB];
    let memcpy = sample(BIG_ITERS * 10, BIG_WARMUP, || {
        dst.copy_from_slice(std::hint::black_box(&data));
        std::hint::black_box(&mut dst);
    });
    let echo_vec = sample_owned(
        BIG_ITERS,
        BIG_WARMUP,
        || data.clone(),
        |arg| {
            let out = bench.echo(arg).expect("echo");
            assert_eq!(out.len(), MIB);
            out
        },
    );
    let echo_bytes = sample_owned(
        BIG_ITERS,
        BIG_WARMUP,
        || Bytes::from(data.clone()),
        |arg| {
            let out = bench.echo_bytes(arg).expect("echo_bytes");
            assert_eq!(out.len(), MIB);
            out
        },
    );
    let encoded = coffer_host::interface::encode(&(Bytes::from(data.clone()),)).expect("encoding");
    let echo_bytes_id = BENCH_INTERFACE
        .calls
        .iter()
        .find(|c| c.name == "echo_bytes")
        .expect("echo_bytes")
        .id;
    let echo_raw = sample_owned(
        BIG_ITERS,
        BIG_WARMUP,
        || (),
        |()| {
            let out = e.ecall(echo_bytes_id, &encoded).expect("raw echo_bytes");
            assert_eq!(out.len(), encoded.len());
            out
        },
    );

    // AES-GCM in this process (ordinary memory), for comparison with the enclave's.
    let gcm = Aes128Gcm::new(&[7u8; 16].into());
    let mut buf = data.clone();
    let host_gcm = sample(BIG_ITERS, BIG_WARMUP, || {
        let tag = gcm
            .encrypt_inout_detached(&Nonce::default(), &[], buf.as_mut_slice().into())
            .expect("AES-GCM");
        std::hint::black_box(tag);
    });

    // Sealing, timed inside the enclave, next to AES-GCM there.
    let seal = bench
        .seal_bench(
            1 << 20,
            u32::try_from(BIG_WARMUP + BIG_ITERS).expect("few iterations"),
        )
        .expect("seal_bench")
        .expect("sealing in the enclave");
    // The fixed cost of a seal: one byte (the EGETKEY request to the daemon, a key id).
    let small = bench
        .seal_bench(
            1,
            u32::try_from(BIG_WARMUP + BIG_ITERS).expect("few iterations"),
        )
        .expect("seal_bench")
        .expect("sealing in the enclave");
    let measured = |v: &[u64]| Stats::of_ns(&v[BIG_WARMUP..]);
    let (small_seal, small_unseal) = (measured(&small.seal_ns), measured(&small.unseal_ns));
    let copy_s = measured(&seal.copy_ns);
    let (seal_s, unseal_s) = (measured(&seal.seal_ns), measured(&seal.unseal_ns));
    let (enc_s, dec_s) = (
        measured(&seal.gcm_encrypt_ns),
        measured(&seal.gcm_decrypt_ns),
    );
    drop(e);

    // Switchless calls, on an enclave that has them.
    let e = platform
        .create_enclave_with(&path, typed().switchless(SwitchlessConfig::default()))
        .expect("creating the switchless enclave");
    let bench = BenchProxy::new(&e);
    let switchless = sample(ROUND_TRIPS, WARMUP, || {
        bench.noop_switchless().expect("noop_switchless")
    });
    let switchless_idle = sample_after_idle(IDLE_CALLS, WARMUP, IDLE, || {
        bench.noop_switchless().expect("noop_switchless")
    });
    let switchless_asleep = sample_after_idle(IDLE_CALLS / 5, WARMUP / 5, SWITCHLESS_IDLE, || {
        bench.noop_switchless().expect("noop_switchless")
    });
    let not_switchless = sample(ROUND_TRIPS, WARMUP, || bench.noop().expect("noop"));
    drop(e);

    latency_header("futex");
    latency_row("futex round trip, two processes (baseline)", &futex, &futex);
    latency_row("typed ECALL `noop()`", &ecall, &futex);
    latency_row(
        "typed OCALL `noop()`, timed inside the enclave",
        &ocall,
        &futex,
    );
    latency_row(
        "typed ECALL `ocall_once()` making one OCALL, timed by the host",
        &ecall_ocall,
        &futex,
    );
    let idle = IDLE.as_micros();
    latency_row(
        &format!("typed ECALL `noop()` after {idle} µs idle (worker asleep)"),
        &ecall_idle,
        &futex,
    );
    latency_row(
        &format!("typed OCALL `noop()` in an ECALL made after {idle} µs idle, timed inside"),
        &ocall_idle,
        &futex,
    );
    latency_row(
        &format!("typed ECALL `ocall_once()` after {idle} µs idle, timed by the host"),
        &ecall_ocall_idle,
        &futex,
    );
    println!();
    latency_header("spin");
    latency_row("spin round trip, two processes (baseline)", &spin, &spin);
    latency_row(
        "switchless typed ECALL `noop_switchless()` (100 µs worker spin)",
        &switchless,
        &spin,
    );
    latency_row(
        &format!(
            "switchless ECALL after {} µs idle (worker still polling)",
            IDLE.as_micros()
        ),
        &switchless_idle,
        &spin,
    );
    latency_row(
        &format!(
            "switchless ECALL after {} µs idle (past the worker's spin: futex wake-up)",
            SWITCHLESS_IDLE.as_micros()
        ),
        &switchless_asleep,
        &spin,
    );
    latency_row(
        "typed ECALL `noop()` on the same enclave (not switchless)",
        &not_switchless,
        &spin,
    );
    println!();
    println!(
        "| 1 MiB in and 1 MiB out | median | p99 | GB/s at the median | ratio to memcpy GB/s | samples |"
    );
    println!("|---|---|---|---|---|---|");
    let copy_gbps = gbps(MIB, &memcpy);
    let big = |name: &str, bytes: usize, s: &Stats| {
        let g = gbps(bytes, s);
        println!(
            "| {name} | {:.1} µs | {:.1} µs | {g:.2} | {:.2} | {} |",
            micros(s.median),
            micros(s.p99),
            g / copy_gbps,
            s.n
        );
    };
    big("memcpy of 1 MiB in this process (baseline)", MIB, &memcpy);
    big("typed `echo(Vec<u8>)`, 2 MiB moved", 2 * MIB, &echo_vec);
    big(
        "typed `echo_bytes(Bytes)`, 2 MiB moved",
        2 * MIB,
        &echo_bytes,
    );
    big(
        "raw ECALL of `echo_bytes`, input encoded once, 2 MiB moved",
        2 * MIB,
        &echo_raw,
    );
    println!();
    println!(
        "| 1 MiB, timed inside the enclave (unless said) | median | p99 | GB/s at the median | ratio to AES-GCM GB/s | samples |"
    );
    println!("|---|---|---|---|---|---|");
    let enc_gbps = gbps(MIB, &enc_s);
    let dec_gbps = gbps(MIB, &dec_s);
    let row = |name: &str, s: &Stats, base: f64| {
        let g = gbps(MIB, s);
        println!(
            "| {name} | {:.1} µs | {:.1} µs | {g:.2} | {:.2} | {} |",
            micros(s.median),
            micros(s.p99),
            g / base,
            s.n
        );
    };
    row(
        "AES-128-GCM encrypt in place (baseline for seal)",
        &enc_s,
        enc_gbps,
    );
    row(
        "AES-128-GCM decrypt in place (baseline for unseal)",
        &dec_s,
        dec_gbps,
    );
    row(
        &format!("`Ctx::seal` (blob {} bytes)", seal.blob_len),
        &seal_s,
        enc_gbps,
    );
    row("`Ctx::unseal`", &unseal_s, dec_gbps);
    row(
        "AES-128-GCM encrypt in place in the host process (for comparison)",
        &host_gcm,
        enc_gbps,
    );
    row(
        "copy into a new vector in the enclave's heap (for comparison)",
        &copy_s,
        enc_gbps,
    );
    println!(
        "\nFixed cost (1 byte): `Ctx::seal` median {:.1} µs, p99 {:.1} µs; `Ctx::unseal` median {:.1} µs, p99 {:.1} µs.",
        micros(small_seal.median),
        micros(small_seal.p99),
        micros(small_unseal.median),
        micros(small_unseal.p99)
    );
    println!(
        "\nfutex baseline: median {:.2} µs; spin baseline: median {:.2} µs; load average at the end: {}",
        micros(futex.median),
        micros(spin.median),
        support::load()
    );
}
