//! # seal-upgrade-common: what the `seal-upgrade` host and `seal-upgrade-enclave` agree on
//!
//! The example shows sealed data surviving an enclave upgrade. Version 1 of the enclave makes
//! a secret and seals it with the MRSIGNER policy; version 2 (the same signer and product, a
//! higher ISVSVN) unseals it, and re-seals it at its own version, after which version 1 can no
//! longer read it — the SVN rule that lets a fixed enclave lock out the vulnerable one.
//!
//! The secret never leaves the enclave: the host sees sealed blobs and the secret's
//! [`fingerprint`], which names the secret without revealing it.
//!
//! This crate must never depend on the enclave runtime: the host links it too.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The ECALLs of `seal-upgrade-enclave`. Errors are the enclave's messages.
#[coffer_interface::ecalls]
pub trait Vault {
    /// The enclave's ISVSVN: its version, from its SIGSTRUCT.
    fn version(&self) -> u16;
    /// Makes a new random 32-byte secret inside the enclave and seals it with the MRSIGNER
    /// policy at this version.
    fn create_secret(&self) -> Result<Sealed, String>;
    /// Unseals `blob` inside the enclave; the secret stays there.
    fn open_secret(&self, blob: Vec<u8>) -> Result<Opened, String>;
    /// Unseals `blob` and seals the secret again at this version: older versions can no longer
    /// read the new blob.
    fn reseal(&self, blob: Vec<u8>) -> Result<Sealed, String>;
}

/// A sealed secret, for the host to store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The SGX sealed-data blob.
    pub blob: Vec<u8>,
    /// The version (ISVSVN) that sealed it.
    pub sealed_by: u16,
    /// The secret's [`fingerprint`].
    pub fingerprint: [u8; 32],
}

/// What the enclave found in a sealed blob it opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opened {
    /// The version that sealed it (authenticated: it is the blob's additional data).
    pub sealed_by: u16,
    /// The secret's [`fingerprint`].
    pub fingerprint: [u8; 32],
}

/// The label at the start of every blob's additional authenticated data, followed by the
/// sealing version (2 bytes, little-endian).
pub const AAD_LABEL: &[u8] = b"coffer seal-upgrade secret\0";

/// The additional authenticated data a secret is sealed with at version `isvsvn`.
pub fn aad(isvsvn: u16) -> Vec<u8> {
    [AAD_LABEL, &isvsvn.to_le_bytes()].concat()
}

/// The sealing version in `aad`, if it is this example's.
pub fn aad_version(aad: &[u8]) -> Option<u16> {
    let svn = aad.strip_prefix(AAD_LABEL)?;
    Some(u16::from_le_bytes(svn.try_into().ok()?))
}

/// `SHA-256("seal-upgrade fingerprint" ‖ secret)`: equal fingerprints, equal secrets.
pub fn fingerprint(secret: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"seal-upgrade fingerprint");
    h.update(secret);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aad_carries_the_sealing_version() {
        assert_eq!(aad_version(&aad(2)), Some(2));
        assert_eq!(aad_version(b"coffer seal-upgrade secret\0\x01"), None);
        assert_eq!(aad_version(b"another label\0\x01\x00"), None);
    }

    #[test]
    fn call_ids_follow_the_declaration_order() {
        let ids: Vec<(u32, &str)> = VAULT_INTERFACE
            .calls
            .iter()
            .map(|c| (c.id, c.name))
            .collect();
        assert_eq!(
            ids,
            [
                (1, "version"),
                (2, "create_secret"),
                (3, "open_secret"),
                (4, "reseal")
            ]
        );
    }
}
