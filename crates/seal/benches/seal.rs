//! Sealing throughput without the daemon: `seal` and `unseal` of 1 MiB against AES-128-GCM
//! encryption and decryption of the same 1 MiB in place, in the same run, with the `aes-gcm`
//! crate `coffer-seal` uses and with `aws-lc-rs` (the fastest AES-GCM in the dependency graph,
//! which the enclave cannot use: see `docs/benchmarks.md`). The key source is local (`coffer_cpu::PlatformRoot`),
//! so EGETKEY costs a key derivation here, not the round trip to the daemon an enclave pays.
//! Criterion reports each in bytes of data per second (its "thrpt" line).
//!
//! `seal` and `unseal` are timed without dropping their results, as the enclave benchmark
//! (`coffer-bench`'s `sdk`) times them; `unseal_and_drop` adds the drop of the unsealed
//! plaintext, which wipes it ([`coffer_seal::SecretBytes`]). Results are dropped between calls,
//! not kept: a fresh 1 MiB for every call would time the kernel's page faults.
//!
//! `wipe_1MiB` times the wipe alone: `coffer_seal::wipe` against a plain `memset` (`fill(0)`,
//! which the optimiser may drop when nothing reads the buffer afterwards, so the baseline reads
//! one byte of it) and against `zeroize` (1.9: a slice is filled and then hidden behind an
//! assembly barrier, as fast as `memset`; a `Vec`, which `Zeroizing<Vec<u8>>` wipes on drop, is
//! zeroized element by element with volatile writes).
//!
//! Run with `cargo bench -p coffer-seal --bench seal`.

#![allow(clippy::unwrap_used)]

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce, Tag};
use coffer_abi::keyrequest::Keyrequest;
use coffer_abi::{Attributes, AttributesFlags, ReportBody};
use coffer_cpu::PlatformRoot;
use coffer_seal::{KeyError, KeySource, SealPolicy, seal, unseal};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

const SIZE: usize = 1 << 20;

struct Enclave {
    platform: PlatformRoot,
    id: ReportBody,
}

impl KeySource for Enclave {
    fn identity(&self) -> &ReportBody {
        &self.id
    }
    fn egetkey(&self, r: &Keyrequest) -> Result<Zeroizing<[u8; 16]>, KeyError> {
        self.platform
            .egetkey(&self.id, r)
            .map_err(KeyError::Refused)
    }
}

fn enclave() -> Enclave {
    let platform = PlatformRoot::new([1; 16], [2; 16], [3; 16]);
    let id = ReportBody {
        mrenclave: [4; 32],
        mrsigner: [5; 32],
        isvsvn: 1,
        cpusvn: platform.cpusvn(),
        attributes: Attributes {
            flags: AttributesFlags::INIT | AttributesFlags::MODE64BIT,
            xfrm: 3,
        },
        ..ReportBody::default()
    };
    Enclave { platform, id }
}

/// Runs `f` `iters` times and sums the time of the calls alone: each result is dropped after the
/// clock stops (so that the next call can reuse its memory, as a caller's loop would).
fn timed_apart_from_drop<T>(iters: u64, mut f: impl FnMut() -> T) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let out = black_box(f());
        total += start.elapsed();
        drop(out);
    }
    total
}

fn bench(c: &mut Criterion) {
    let e = enclave();
    let data: Vec<u8> = (0..SIZE)
        .map(|i| (i * 7 + i / 4096).to_le_bytes()[0])
        .collect();
    let blob = seal(&e, SealPolicy::MrEnclave, b"", &data).unwrap();
    assert_eq!(unseal(&e, &blob).unwrap().plaintext.as_slice(), data);

    let gcm = Aes128Gcm::new(&[9u8; 16].into());
    let nonce = Nonce::default();
    let mut buf = data.clone();
    let tag: Tag = gcm
        .encrypt_inout_detached(&nonce, b"", buf.as_mut_slice().into())
        .unwrap();
    let ciphertext = buf.clone();

    let mut g = c.benchmark_group("seal_1MiB");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.bench_function("aes_gcm_encrypt_in_place", |b| {
        b.iter(|| {
            gcm.encrypt_inout_detached(&nonce, b"", black_box(buf.as_mut_slice()).into())
                .unwrap()
        })
    });
    let lc = aws_lc_rs::aead::LessSafeKey::new(
        aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_128_GCM, &[9u8; 16]).unwrap(),
    );
    let lc_nonce = || aws_lc_rs::aead::Nonce::assume_unique_for_key([0; 12]);
    g.bench_function("aws_lc_rs_encrypt_in_place", |b| {
        b.iter(|| {
            lc.seal_in_place_separate_tag(
                lc_nonce(),
                aws_lc_rs::aead::Aad::empty(),
                black_box(buf.as_mut_slice()),
            )
            .unwrap()
        })
    });
    g.bench_function("seal", |b| {
        b.iter_custom(|iters| {
            timed_apart_from_drop(iters, || {
                seal(&e, SealPolicy::MrEnclave, b"", black_box(&data)).unwrap()
            })
        })
    });
    g.bench_function("aes_gcm_decrypt_in_place", |b| {
        // Each decryption gets the ciphertext back, copied outside the clock.
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                buf.copy_from_slice(&ciphertext);
                let start = Instant::now();
                gcm.decrypt_inout_detached(&nonce, b"", black_box(buf.as_mut_slice()).into(), &tag)
                    .unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    let mut lc_sealed = data.clone();
    let lc_tag = lc
        .seal_in_place_separate_tag(lc_nonce(), aws_lc_rs::aead::Aad::empty(), &mut lc_sealed)
        .unwrap();
    lc_sealed.extend_from_slice(lc_tag.as_ref());
    let mut lc_buf = lc_sealed.clone();
    g.bench_function("aws_lc_rs_decrypt_in_place", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                lc_buf.copy_from_slice(&lc_sealed);
                let start = Instant::now();
                lc.open_in_place(
                    lc_nonce(),
                    aws_lc_rs::aead::Aad::empty(),
                    black_box(lc_buf.as_mut_slice()),
                )
                .unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    g.bench_function("unseal", |b| {
        b.iter_custom(|iters| {
            timed_apart_from_drop(iters, || unseal(&e, black_box(&blob)).unwrap())
        })
    });
    g.bench_function("unseal_and_drop", |b| {
        b.iter(|| unseal(&e, black_box(&blob)).unwrap())
    });
    g.finish();
}

fn wipe(c: &mut Criterion) {
    use zeroize::Zeroize;
    let mut buf = vec![0xa5u8; SIZE];
    let mut g = c.benchmark_group("wipe_1MiB");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.bench_function("memset", |b| {
        b.iter(|| {
            buf.fill(0);
            black_box(buf[SIZE / 2])
        })
    });
    g.bench_function("coffer_seal_wipe", |b| {
        b.iter(|| coffer_seal::wipe(black_box(buf.as_mut_slice())))
    });
    g.bench_function("zeroize_slice", |b| {
        b.iter(|| black_box(buf.as_mut_slice()).zeroize())
    });
    // What dropping a `Zeroizing<Vec<u8>>` does: `Vec::zeroize` goes element by element.
    // (`zeroize` clears the vector, so each run zeroizes a fresh one, filled outside the clock.)
    g.bench_function("zeroize_vec", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut v = std::mem::take(&mut buf);
                v.resize(SIZE, 0xa5);
                let start = Instant::now();
                black_box(&mut v).zeroize();
                total += start.elapsed();
                buf = v;
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench, wipe);
criterion_main!(benches);
