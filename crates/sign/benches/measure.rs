//! Measurement throughput: MRENCLAVE of a 64 MiB synthetic enclave image against raw SHA-256 of
//! the same bytes, in the same run. Criterion reports both in MB/s (its "thrpt" line) of image
//! bytes. MRENCLAVE hashes 5184 bytes of records per 4096-byte page (an EADD record, and 16 EEXTEND
//! records of 64 + 256 bytes), so the group `measure_64MiB_stream` reports the same measurement in
//! hashed bytes per second, the figure comparable with raw SHA-256.
//!
//! Run with `cargo bench -p coffer-sign --bench measure`.

#![allow(clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest, Sha256};

use coffer_testkit::elf;

const IMAGE: usize = 64 << 20;

fn image() -> Vec<u8> {
    // Pseudo-random code bytes so nothing is special about zero pages.
    let code = coffer_testkit::rng::bytes(0x9e37_79b9_7f4a_7c15, IMAGE);
    elf::static_elf(&code, &[1; 4096], 0)
}

fn config() -> coffer_sign::EnclaveConfig {
    coffer_sign::EnclaveConfig::from_toml(
        "isv_prod_id = 0\nisv_svn = 0\nheap_size = 0x100000\nstack_size = 0x10000\n\
         tcs_count = 1\ndebug = false\n",
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let image = image();
    let config = config();
    let mut g = c.benchmark_group("measure_64MiB");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(image.len() as u64));
    g.bench_function("mrenclave", |b| {
        b.iter(|| coffer_sign::measure_enclave(std::hint::black_box(&image), &config).unwrap())
    });
    g.bench_function("sha256_raw", |b| {
        b.iter(|| Sha256::digest(std::hint::black_box(&image)))
    });
    g.finish();

    let mut stream = 0u64;
    let mut count = |r: &coffer_abi::measure::MeasurementRecord| {
        stream += r.encoded_len() as u64;
        Ok(())
    };
    coffer_sign::layout::measure_enclave_with_sink(&image, &config, &mut count).unwrap();
    let mut g = c.benchmark_group("measure_64MiB_stream");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(stream));
    g.bench_function("mrenclave", |b| {
        b.iter(|| coffer_sign::measure_enclave(std::hint::black_box(&image), &config).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
