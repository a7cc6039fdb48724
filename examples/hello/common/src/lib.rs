//! # hello-common: what the `hello` host and the `hello-enclave` agree on
//!
//! The hello example's typed interface — the ECALLs of [`Hello`] and the OCALLs of
//! [`HelloHost`] — and the probe digest both sides can compute (the host only to look for it,
//! in tests that scan the enclave's memory).
//!
//! The attributes generate, for each trait, its id and call table (`HELLO_INTERFACE`,
//! `HELLO_HOST_INTERFACE`), the caller's proxy (`HelloProxy`, `HelloHostProxy`) and the callee's
//! dispatcher (`hello_dispatch`, `hello_host_dispatch`). The call ids follow the declaration
//! order: `probe` 1, `try_open` 2, `echo` 3; the OCALL `echo` 1.
//!
//! This crate must never depend on the enclave runtime: the host links it too.

#![forbid(unsafe_code)]

use sha2::{Digest, Sha256};

/// The ECALLs `hello-enclave` serves.
#[coffer_interface::ecalls]
pub trait Hello {
    /// The enclave computes [`probe_digest`] of `nonce` and keeps [`PROBE_HEAP_COPIES`] copies
    /// in its heap and one on its worker's stack, until it ends. It never sends the digest out.
    fn probe(&self, nonce: Vec<u8>);
    /// The enclave tries to open `path` itself, which its sandbox forbids: the process is
    /// killed with `SIGSYS` and the enclave is lost. Should the open ever return, the result
    /// says how it went.
    fn try_open(&self, path: String) -> Result<(), String>;
    /// The enclave sends `text` to the host's [`HelloHost::echo`] OCALL and returns the host's
    /// answer, or why the OCALL failed.
    fn echo(&self, text: String) -> Result<String, String>;
}

/// The OCALLs the `hello` host serves.
#[coffer_interface::ocalls]
pub trait HelloHost {
    /// The text of a [`Hello::echo`]; the host answers with the text to return.
    fn echo(&self, text: String) -> String;
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
    fn call_ids_follow_the_declaration_order() {
        let ids = |calls: &[coffer_interface::CallInfo]| -> Vec<(u32, &str)> {
            calls.iter().map(|c| (c.id, c.name)).collect()
        };
        assert_eq!(
            ids(HELLO_INTERFACE.calls),
            [(1, "probe"), (2, "try_open"), (3, "echo")]
        );
        assert_eq!(ids(HELLO_HOST_INTERFACE.calls), [(1, "echo")]);
        assert_ne!(HELLO_INTERFACE.id, HELLO_HOST_INTERFACE.id);
    }

    #[test]
    fn probe_digest_is_sha256_of_domain_and_nonce() {
        // printf 'coffer-probe\x01\x02' | sha256sum
        let expected = "bd4f6e98eab812f04fb078dd8e3604521012d936e6d7660fbdcaf7aef013de87";
        assert_eq!(hex::encode(probe_digest(&[1, 2])), expected);
        assert_ne!(probe_digest(b"a"), probe_digest(b"b"));
    }
}
