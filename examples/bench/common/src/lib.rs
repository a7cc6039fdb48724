//! # bench-common: what `coffer-bench` and `bench-enclave` agree on
//!
//! The benchmarks' typed interface: the ECALLs of [`Bench`] and the OCALL of [`BenchHost`].
//! Call ids follow the declaration order (`noop` 1, `noop_switchless` 2, `echo` 3, `echo_bytes`
//! 4, `ocall_once` 5, `seal_bench` 6; the OCALL `noop` 1), so a raw ECALL of id
//! [`NOOP_CALL_ID`] with empty input is the empty call without any typed encoding on the host.
//!
//! This crate must never depend on the enclave runtime: the host links it too.

#![forbid(unsafe_code)]

pub use coffer_interface::Bytes;
use serde::{Deserialize, Serialize};

/// The ECALLs `bench-enclave` serves.
#[coffer_interface::ecalls]
pub trait Bench {
    /// Does nothing: the round trip of a call.
    fn noop(&self);
    /// Does nothing, as a switchless call.
    #[switchless]
    fn noop_switchless(&self);
    /// Returns `data`. A `Vec<u8>` travels as serde's sequence of bytes (postcard writes and
    /// reads it one byte at a time).
    fn echo(&self, data: Vec<u8>) -> Vec<u8>;
    /// Returns `data`, which travels as one byte string ([`Bytes`]).
    fn echo_bytes(&self, data: Bytes) -> Bytes;
    /// Makes one OCALL ([`BenchHost::noop`]) and returns how long it took in nanoseconds, as
    /// the enclave measured it around the call of its proxy.
    fn ocall_once(&self) -> Result<u64, String>;
    /// Seals and unseals `size` bytes `iters` times (policy MRENCLAVE, no additional data), and
    /// encrypts and decrypts the same bytes as often with plain AES-128-GCM of the crate the
    /// sealing uses, and copies them, timing each operation inside the enclave.
    fn seal_bench(&self, size: u32, iters: u32) -> Result<SealTimes, String>;
}

/// The OCALLs the benchmark host serves.
#[coffer_interface::ocalls]
pub trait BenchHost {
    /// Does nothing.
    fn noop(&self);
}

/// The raw call id of [`Bench::noop`]: its arguments and result encode as no bytes.
pub const NOOP_CALL_ID: u32 = 1;

/// What [`Bench::seal_bench`] measured, one entry per iteration, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealTimes {
    /// The sealed blob's length.
    pub blob_len: u64,
    /// `Ctx::seal`: the EGETKEY request to the platform, the blob, AES-128-GCM.
    pub seal_ns: Vec<u64>,
    /// `Ctx::unseal` of that blob.
    pub unseal_ns: Vec<u64>,
    /// AES-128-GCM encryption of the same bytes in place (the baseline).
    pub gcm_encrypt_ns: Vec<u64>,
    /// AES-128-GCM decryption and tag check of them in place.
    pub gcm_decrypt_ns: Vec<u64>,
    /// A copy of the bytes into a new vector (allocation and memcpy in the enclave's heap), the
    /// step sealing and unsealing each take twice besides the cipher.
    pub copy_ns: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_follow_the_declaration_order() {
        let ids: Vec<(u32, &str, bool)> = BENCH_INTERFACE
            .calls
            .iter()
            .map(|c| (c.id, c.name, c.switchless))
            .collect();
        assert_eq!(
            ids,
            [
                (NOOP_CALL_ID, "noop", false),
                (2, "noop_switchless", true),
                (3, "echo", false),
                (4, "echo_bytes", false),
                (5, "ocall_once", false),
                (6, "seal_bench", false),
            ]
        );
    }

    #[test]
    fn bytes_travel_as_one_byte_string() {
        let data: Vec<u8> = (0..=255).collect();
        let encoded = coffer_interface::encode(&Bytes::from(data.clone())).unwrap();
        // postcard: varint length (256 = 0x80 0x02), then the bytes.
        assert_eq!(&encoded[..2], &[0x80, 0x02]);
        assert_eq!(&encoded[2..], &data[..]);
        let back: Bytes = coffer_interface::decode(&encoded).unwrap();
        assert_eq!(back.into_vec(), data);
        // The same wire bytes as a Vec<u8>, so either side may use either type.
        assert_eq!(coffer_interface::encode(&data).unwrap(), encoded);
    }

    #[test]
    fn rejects_truncated_bytes() {
        let encoded = coffer_interface::encode(&Bytes::from(vec![1, 2, 3])).unwrap();
        assert!(coffer_interface::decode::<Bytes>(&encoded[..3]).is_err());
    }
}
