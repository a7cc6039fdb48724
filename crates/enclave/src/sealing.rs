//! Sealing inside an enclave: [`Ctx::seal`] and [`Ctx::unseal`], in the SGX SDK's sealed-data
//! format (`coffer-seal`), with the seal key from the platform's EGETKEY.
//!
//! The enclave asks the daemon for the key its KEYREQUEST names; the daemon derives it from the
//! platform's root key and the identity it holds for this enclave (never one the enclave claims).
//! The root key never enters the enclave; the derived key lives in the heap (secret memory) for
//! the length of one call and is wiped when dropped.

use coffer_abi::{Keyrequest, ReportBody};
use coffer_seal::KeySource;
use zeroize::Zeroizing;

pub use coffer_seal::{KeyError, SealError, SealPolicy, SecretBytes, UnsealError, Unsealed};

use crate::Ctx;

impl KeySource for Ctx<'_> {
    fn identity(&self) -> &ReportBody {
        Ctx::identity(self)
    }

    fn egetkey(&self, request: &Keyrequest) -> Result<Zeroizing<[u8; 16]>, KeyError> {
        Ctx::egetkey(self, request).map_err(KeyError::from)
    }
}

impl Ctx<'_> {
    /// Seals `data` so that only this enclave ([`SealPolicy::MrEnclave`]) or any enclave of the
    /// same signer and product at this or a later ISVSVN ([`SealPolicy::MrSigner`]), on this
    /// platform, can unseal it. `aad` is authenticated but stored in clear in the blob.
    ///
    /// The blob is safe to hand to the host: it is encrypted and authenticated.
    pub fn seal(&self, policy: SealPolicy, aad: &[u8], data: &[u8]) -> Result<Vec<u8>, SealError> {
        coffer_seal::seal(self, policy, aad, data)
    }

    /// Unseals a blob made by [`Ctx::seal`] (here or in an earlier version of this enclave).
    ///
    /// A blob sealed by a later ISVSVN, or on a platform with a later CPUSVN, fails with
    /// [`UnsealError::KeyUnavailable`]; while the platform daemon is unreachable, with
    /// [`UnsealError::Platform`] whose source says so; one that was changed, or sealed for another enclave,
    /// signer, product or platform, fails with [`UnsealError::Tampered`]. The plaintext is wiped
    /// when the [`Unsealed`] is dropped.
    pub fn unseal(&self, blob: &[u8]) -> Result<Unsealed, UnsealError> {
        coffer_seal::unseal(self, blob)
    }
}
