//! # seal-upgrade-enclave: the enclave of the `seal-upgrade` example
//!
//! Serves the [`Vault`] interface: makes a secret, seals it with the MRSIGNER policy, opens and
//! re-seals blobs. The one crate is built once and signed twice, with `v1.toml` (ISVSVN 1) and
//! `v2.toml` (ISVSVN 2):
//!
//! ```text
//! coffer build -p seal-upgrade-enclave --key KEY.pem --config examples/seal-upgrade/v1.toml -o v1.coffer
//! coffer build -p seal-upgrade-enclave --key KEY.pem --config examples/seal-upgrade/v2.toml -o v2.coffer
//! ```
//!
//! The two bundles have the same MRENCLAVE (the same code and layout; the SVN is in the
//! SIGSTRUCT, not in the measurement), so an MRENCLAVE seal could not tell them apart. The
//! MRSIGNER policy binds the key to the signer, the product and the SVN instead: a blob sealed at
//! ISVSVN 1 opens at ISVSVN 2, not the other way round.

#![forbid(unsafe_code)]

use coffer_enclave::zeroize::Zeroizing;
use coffer_enclave::{Ctx, SealPolicy, SecretBytes, error_message, with_ctx};
use seal_upgrade_common::{
    Opened, Sealed, VAULT_INTERFACE, Vault, aad, aad_version, fingerprint, vault_dispatch,
};

/// The enclave's side of [`Vault`]. It keeps nothing between calls: the secret lives in sealed
/// blobs, and in the heap and the worker's stack (secret memory) only while a call runs.
struct VaultEnclave;

/// The context of the ECALL being served (typed methods get none as an argument).
fn ctx<R>(f: impl FnOnce(&Ctx<'_>) -> Result<R, String>) -> Result<R, String> {
    with_ctx(f).unwrap_or_else(|| Err("not inside an ECALL".into()))
}

fn seal(ctx: &Ctx<'_>, secret: &[u8]) -> Result<Sealed, String> {
    let version = ctx.identity().isvsvn;
    let blob = ctx
        .seal(SealPolicy::MrSigner, &aad(version), secret)
        .map_err(|e| error_message(&e))?;
    Ok(Sealed {
        blob,
        sealed_by: version,
        fingerprint: fingerprint(secret),
    })
}

/// Unseals one of this example's blobs: the secret, and the version that sealed it.
fn unseal(ctx: &Ctx<'_>, blob: &[u8]) -> Result<(SecretBytes, u16), String> {
    let unsealed = ctx.unseal(blob).map_err(|e| error_message(&e))?;
    let sealed_by = aad_version(&unsealed.aad)
        .ok_or("the blob is sealed data of another application (its additional data differs)")?;
    Ok((unsealed.plaintext, sealed_by))
}

impl Vault for VaultEnclave {
    fn version(&self) -> u16 {
        with_ctx(|ctx| ctx.identity().isvsvn).unwrap_or(0)
    }

    fn create_secret(&self) -> Result<Sealed, String> {
        ctx(|ctx| {
            let mut secret = Zeroizing::new([0u8; 32]);
            getrandom::fill(&mut secret[..]).map_err(|e| e.to_string())?;
            seal(ctx, &secret[..])
        })
    }

    fn open_secret(&self, blob: Vec<u8>) -> Result<Opened, String> {
        ctx(|ctx| {
            let (secret, sealed_by) = unseal(ctx, &blob)?;
            Ok(Opened {
                sealed_by,
                fingerprint: fingerprint(&secret),
            })
        })
    }

    fn reseal(&self, blob: Vec<u8>) -> Result<Sealed, String> {
        ctx(|ctx| {
            let (secret, _) = unseal(ctx, &blob)?;
            seal(ctx, &secret)
        })
    }
}

coffer_enclave::entry_interface!(VAULT_INTERFACE, vault_dispatch, VaultEnclave);
