//! # hello-common: what the `hello` host and the `hello-enclave` agree on
//!
//! The raw call ids of the hello example, and the probe digest both sides can compute (the
//! host only to look for it, in tests that scan the enclave's memory).
//!
//! This crate must never depend on the enclave runtime: the host links it too.

#![forbid(unsafe_code)]

use sha2::{Digest, Sha256};

/// The ECALLs `hello-enclave` serves.
pub mod ecall {
    /// Input: a nonce. The enclave computes [`super::probe_digest`] of it and keeps
    /// [`super::PROBE_HEAP_COPIES`] copies in its heap and one on its worker's stack, until it
    /// ends. It never sends the digest out; the result is empty.
    pub const PROBE: u32 = 1;
    /// Input: a path (UTF-8). The enclave tries to open it itself, which its sandbox forbids:
    /// the process is killed with `SIGSYS` and the enclave is lost.
    pub const TRY_OPEN: u32 = 2;
    /// Input: text. The enclave sends it to the host with [`super::ocall::ECHO`] and returns
    /// the host's answer.
    pub const ECHO: u32 = 3;
}

/// The OCALLs the `hello` host serves.
pub mod ocall {
    /// Input: the text of an [`super::ecall::ECHO`]; the host answers with the text to return.
    pub const ECHO: u32 = 1;
}

/// How many copies of the probe digest the enclave keeps in its heap.
pub const PROBE_HEAP_COPIES: usize = 1000;

/// The domain separator of the probe digest.
pub const PROBE_DOMAIN: &[u8] = b"coffer-probe";

/// `SHA-256("coffer-probe" ‖ nonce)`: the secret the probe keeps inside the enclave.
pub fn probe_digest(nonce: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(PROBE_DOMAIN);
    hash.update(nonce);
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_digest_is_sha256_of_domain_and_nonce() {
        // printf 'coffer-probe\x01\x02' | sha256sum
        let expected = "bd4f6e98eab812f04fb078dd8e3604521012d936e6d7660fbdcaf7aef013de87";
        let hex: String = probe_digest(&[1, 2])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, expected);
        assert_ne!(probe_digest(b"a"), probe_digest(b"b"));
    }
}
