//! # bench-enclave: the enclave the benchmarks of `coffer-bench` run
//!
//! It implements `bench-common`'s `Bench` interface: empty calls (one switchless), echoes of a
//! byte vector, one OCALL timed from inside, and sealing timed inside the enclave process next to
//! plain AES-GCM of the same crate, the baseline the issue names.
//!
//! `coffer-bench` builds it statically and signs it with the vectors' key for each configuration
//! it needs (4 MiB and 64 MiB heaps for creation times, 16 MiB and a 2 MiB call buffer for the
//! rest).

#![forbid(unsafe_code)]

use std::time::Instant;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use bench_common::{
    BENCH_HOST_INTERFACE, BENCH_INTERFACE, Bench, BenchHostProxy, Bytes, SealTimes, bench_dispatch,
};
use coffer_enclave::{Ocalls, SealPolicy};

/// The enclave's state: only the way back to its host.
struct BenchEnclave {
    host: BenchHostProxy<Ocalls>,
}

/// Nanoseconds since `t`, saturated.
fn ns_since(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

impl Bench for BenchEnclave {
    fn noop(&self) {}

    fn noop_switchless(&self) {}

    fn echo(&self, data: Vec<u8>) -> Vec<u8> {
        data
    }

    fn echo_bytes(&self, data: Bytes) -> Bytes {
        data
    }

    fn ocall_once(&self) -> Result<u64, String> {
        let t = Instant::now();
        self.host.noop().map_err(|e| e.to_string())?;
        Ok(ns_since(t))
    }

    fn seal_bench(&self, size: u32, iters: u32) -> Result<SealTimes, String> {
        let size = usize::try_from(size).map_err(|e| e.to_string())?;
        let data: Vec<u8> = (0u8..251).cycle().take(size).collect();
        let mut times = SealTimes::default();
        coffer_enclave::with_ctx(|ctx| -> Result<(), String> {
            for _ in 0..iters {
                let t = Instant::now();
                let blob = ctx
                    .seal(SealPolicy::MrEnclave, &[], &data)
                    .map_err(|e| e.to_string())?;
                times.seal_ns.push(ns_since(t));
                times.blob_len = blob.len() as u64;
                let t = Instant::now();
                let unsealed = ctx.unseal(&blob).map_err(|e| e.to_string())?;
                times.unseal_ns.push(ns_since(t));
                if unsealed.plaintext.as_slice() != data.as_slice() {
                    return Err("unsealing gave other bytes".into());
                }
            }
            Ok(())
        })
        .ok_or("no call context")??;

        // The baseline: the same cipher and crate, in place over a copy of the same bytes, with
        // a fixed key (nothing here is secret).
        let gcm = Aes128Gcm::new(&[7u8; 16].into());
        let nonce = Nonce::default();
        let mut buf = data.clone();
        for _ in 0..iters {
            let t = Instant::now();
            let tag = gcm
                .encrypt_inout_detached(&nonce, &[], buf.as_mut_slice().into())
                .map_err(|e| e.to_string())?;
            times.gcm_encrypt_ns.push(ns_since(t));
            let t = Instant::now();
            gcm.decrypt_inout_detached(&nonce, &[], buf.as_mut_slice().into(), &tag)
                .map_err(|e| e.to_string())?;
            times.gcm_decrypt_ns.push(ns_since(t));
            if buf != data {
                return Err("AES-GCM gave other bytes".into());
            }
            let t = Instant::now();
            let copy = std::hint::black_box(data.clone());
            times.copy_ns.push(ns_since(t));
            drop(copy);
        }
        Ok(times)
    }
}

coffer_enclave::entry_interface!(
    BENCH_INTERFACE,
    bench_dispatch,
    BenchEnclave {
        host: BenchHostProxy::new(coffer_enclave::ocalls()),
    },
    ocalls: BENCH_HOST_INTERFACE,
);
