//! Key material at rest: AES-256-GCM under the master key, a fresh random 96-bit nonce per
//! sealing, and associated data binding the ciphertext to its key name and version, so that a
//! ciphertext copied to another row does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use crate::master_key::MasterKey;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Domain of the associated data of key material.
const MATERIAL_DOMAIN: &[u8] = b"coffer-store key material v1\0";
/// Domain and plaintext of the value that tells whether the master key is the database's.
const CHECK_DOMAIN: &[u8] = b"coffer-store master key check v1\0";

/// Why sealed material did not open.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("sealed value of {len} bytes is shorter than a nonce and a tag ({} bytes)", NONCE_LEN + TAG_LEN)]
    Short { len: usize },
    #[error(
        "authentication failed: the value was altered, moved, or sealed under another master key"
    )]
    Authentication,
    #[error("encryption failed")]
    Encrypt,
    #[error("the system's random number generator failed")]
    Random(#[source] getrandom::Error),
}

/// The associated data of key material: domain, name length, name, version.
fn material_aad(name: &str, version: i64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(MATERIAL_DOMAIN.len() + 12 + name.len());
    aad.extend_from_slice(MATERIAL_DOMAIN);
    aad.extend_from_slice(&u32::try_from(name.len()).unwrap_or(u32::MAX).to_be_bytes());
    aad.extend_from_slice(name.as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

fn seal_with(master: &MasterKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let cipher = Aes256Gcm::new(master.bytes().into());
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(SealError::Random)?;
    let ciphertext = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| SealError::Encrypt)?;
    let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

fn open_with(
    master: &MasterKey,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(SealError::Short { len: sealed.len() });
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(nonce);
    let cipher = Aes256Gcm::new(master.bytes().into());
    cipher
        .decrypt(
            &Nonce::from(n),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| SealError::Authentication)
}

pub(crate) fn seal_material(
    master: &MasterKey,
    name: &str,
    version: i64,
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    seal_with(master, &material_aad(name, version), plaintext)
}

pub(crate) fn open_material(
    master: &MasterKey,
    name: &str,
    version: i64,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    open_with(master, &material_aad(name, version), sealed)
}

/// A value the database keeps so that a wrong master key is refused when the store opens,
/// rather than at the first key read.
pub(crate) fn master_check(master: &MasterKey) -> Result<Vec<u8>, SealError> {
    seal_with(master, CHECK_DOMAIN, CHECK_DOMAIN)
}

pub(crate) fn verify_master_check(master: &MasterKey, sealed: &[u8]) -> Result<(), SealError> {
    let plain = open_with(master, CHECK_DOMAIN, sealed)?;
    if plain.as_slice() == CHECK_DOMAIN {
        Ok(())
    } else {
        Err(SealError::Authentication)
    }
}
