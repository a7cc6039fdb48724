//! # coffer-seal: sealing as the SGX SDK does it
//!
//! `seal` encrypts data so that only the same enclave (policy [`SealPolicy::MrEnclave`]) or any
//! enclave of the same signer and product (policy [`SealPolicy::MrSigner`]) on the same platform can
//! decrypt it again, with optional additional authenticated data stored in clear. The blob is the
//! SDK's `sgx_sealed_data_t`: the KEYREQUEST that derives the key (with a fresh random KEYID per
//! blob, and the sealer's ISVSVN and CPUSVN), then AES-128-GCM ciphertext and tag; a zero IV is
//! safe because every blob has its own key.
//!
//! The key comes from the platform's EGETKEY through a [`KeySource`]; the enclave never sees the
//! platform's root key. SVN rules follow from EGETKEY: a blob sealed at ISVSVN 1 is readable at
//! ISVSVN 2 (which may derive its predecessors' keys), one sealed at ISVSVN 2 is not readable at
//! ISVSVN 1. Any changed byte makes unsealing fail.
//!
//! Each direction makes one pass over the data besides AES-GCM's own: `seal` writes the header,
//! the plaintext and the additional data into the blob it returns and encrypts there; `unseal`
//! reads the blob in place and decrypts straight into the plaintext it returns, and only after
//! the tag has verified. Buffers that hold plaintext are wiped on every path.

#![forbid(unsafe_code)]

mod secret;

pub use secret::{SecretBytes, wipe};

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce, Tag};
use coffer_abi::keyrequest::{KeyName, KeyPolicy, Keyrequest};
use coffer_abi::sealed::{
    SEALED_DATA_HEADER_SIZE, SEALED_DATA_TAG_OFFSET, SealedData, SealedDataRef,
};
use coffer_abi::{Attributes, AttributesFlags, DecodeError, ReportBody};
use zeroize::Zeroizing;

pub use coffer_cpu::EgetkeyError;

/// Attribute bits bound into seal keys by default, as the SDK's `TSEAL_DEFAULT_FLAGSMASK`:
/// INIT, DEBUG and the reserved upper byte. MODE64BIT and the provisioning bits are left out.
pub const SEAL_FLAGS_MASK: u64 = 0xFF00_0000_0000_000B;
/// MISCSELECT bits bound into seal keys by default (`TSEAL_DEFAULT_MISCMASK`).
pub const SEAL_MISC_MASK: u32 = 0xF000_0000;

/// Which enclaves may unseal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealPolicy {
    /// Only an enclave with the same MRENCLAVE.
    MrEnclave,
    /// Any enclave with the same MRSIGNER and ISVPRODID (at the same or a higher ISVSVN).
    MrSigner,
}

/// The enclave's access to EGETKEY and its own identity.
pub trait KeySource {
    /// The enclave's own identity (ISVSVN, CPUSVN) as EREPORT reports it.
    fn identity(&self) -> &ReportBody;
    /// EGETKEY.
    fn egetkey(&self, request: &Keyrequest) -> Result<Zeroizing<[u8; 16]>, KeyError>;
}

/// The cause a platform service gives for a failure of its own (the enclave runtime's error:
/// a closed socket, a malformed frame), kept whole as the error's source.
pub type ServiceCause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why EGETKEY did not give a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// EGETKEY refused the request, for one of the SDM's reasons (a newer ISVSVN or CPUSVN, a
    /// key the enclave's attributes do not allow, an invalid policy).
    #[error("EGETKEY refused the key request")]
    Refused(#[source] EgetkeyError),
    /// The platform refused the request and said why in words (the daemon socket's refusal).
    #[error("the platform refused the key request: {reason}")]
    RefusedWithReason { reason: String },
    /// The platform daemon cannot be reached: its socket or key mailbox is closed (the daemon
    /// stopped, or restarted without this enclave).
    #[error("the platform daemon is unreachable")]
    DaemonUnreachable(#[source] ServiceCause),
    /// The platform answered with something that is not a key.
    #[error("the platform's answer to EGETKEY is malformed")]
    Malformed(#[source] ServiceCause),
}

impl KeyError {
    /// Whether the platform itself refused (as opposed to not being reachable or not answering
    /// properly): a refusal is final, the other failures may pass.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            KeyError::Refused(_) | KeyError::RefusedWithReason { .. }
        )
    }
}

/// Why sealing failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the data is too large to seal")]
    TooLarge(#[source] DecodeError),
    #[error("the platform gave no seal key")]
    Key(#[source] KeyError),
    #[error("no randomness for the key id")]
    Random(#[source] getrandom::Error),
}

/// Why unsealing failed.
#[derive(Debug, thiserror::Error)]
pub enum UnsealError {
    /// The bytes are not a sealed-data blob (truncated, padded, inconsistent lengths).
    #[error("not a sealed blob")]
    Malformed(#[source] DecodeError),
    /// The blob was changed, or was sealed for another enclave, signer or platform.
    #[error("tampered sealed blob: {0}")]
    Tampered(&'static str),
    /// The platform will not derive the key the blob names: it was sealed by a newer enclave
    /// version (ISVSVN) or on a newer platform (CPUSVN), or its key policy is not allowed here.
    #[error("the seal key is not available to this enclave")]
    KeyUnavailable(#[source] KeyError),
    /// The platform could not be asked for the key (its daemon is unreachable) or answered
    /// wrongly: the blob may be fine, and unsealing may succeed once the platform is back.
    #[error("the platform did not answer the seal key request")]
    Platform(#[source] KeyError),
}

/// What unsealing gives back.
#[derive(Debug)]
pub struct Unsealed {
    /// The decrypted data, wiped when dropped (at memset speed: [`SecretBytes`]).
    pub plaintext: SecretBytes,
    /// The additional authenticated data, which was stored in clear.
    pub aad: Vec<u8>,
}

fn gcm(key: &[u8; 16]) -> Aes128Gcm {
    Aes128Gcm::new(key.into())
}

/// Seals `plaintext` (and authenticates `aad`) under `policy`.
pub fn seal(
    src: &dyn KeySource,
    policy: SealPolicy,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    let me = src.identity();
    let mut keyid = [0u8; 32];
    getrandom::fill(&mut keyid).map_err(SealError::Random)?;
    let request = Keyrequest {
        keyname: KeyName::SEAL_KEY,
        keypolicy: match policy {
            SealPolicy::MrEnclave => KeyPolicy::MRENCLAVE,
            SealPolicy::MrSigner => KeyPolicy::MRSIGNER,
        },
        isvsvn: me.isvsvn,
        cpusvn: me.cpusvn,
        attributemask: Attributes {
            flags: AttributesFlags::from_bits_retain(SEAL_FLAGS_MASK),
            xfrm: 0,
        },
        keyid,
        miscmask: SEAL_MISC_MASK,
        ..Keyrequest::default()
    };
    // The blob is built in place: header, plaintext, additional data. It holds plaintext until
    // the encryption below, so it is wiped if anything fails before; its room is reserved up
    // front, so no reallocation leaves a copy behind.
    let mut blob = SecretBytes::default();
    SealedData::encode_header(
        &request,
        &[0; 16],
        plaintext.len(),
        aad.len(),
        blob.vec_mut(),
    )
    .map_err(SealError::TooLarge)?;
    let key = src.egetkey(&request).map_err(SealError::Key)?;
    blob.vec_mut().extend_from_slice(plaintext);
    blob.vec_mut().extend_from_slice(aad);
    let (header, payload) = blob.split_at_mut(SEALED_DATA_HEADER_SIZE);
    let text = payload.split_at_mut(plaintext.len()).0;
    let tag = gcm(&key)
        .encrypt_inout_detached(&Nonce::default(), aad, text.into())
        .map_err(|_| {
            SealError::TooLarge(DecodeError::Invalid {
                what: "sealed data",
                reason: "AES-GCM refused the input length".into(),
            })
        })?;
    header[SEALED_DATA_TAG_OFFSET..].copy_from_slice(&tag);
    // Encrypted now: hand the bytes over (what is left behind is empty).
    Ok(blob.into_public())
}

/// Unseals a blob made by [`seal`] (or by the SGX SDK's `sgx_seal_data` with the same keys).
pub fn unseal(src: &dyn KeySource, bytes: &[u8]) -> Result<Unsealed, UnsealError> {
    let blob = SealedDataRef::parse(bytes).map_err(UnsealError::Malformed)?;
    let r = &blob.key_request;
    if r.keyname != KeyName::SEAL_KEY {
        return Err(UnsealError::Tampered(
            "the key request does not name the seal key",
        ));
    }
    if blob._reserved1 != [0; 12]
        || blob._reserved2 != [0; 12]
        || r._reserved1 != [0; 2]
        || r._reserved2.iter().any(|b| *b != 0)
    {
        return Err(UnsealError::Tampered("reserved bytes are not zero"));
    }
    if !r.keypolicy.contains(KeyPolicy::CONFIGID) && r.configsvn != 0 {
        // CONFIGSVN does not enter the key without the CONFIGID policy, so a change to it would
        // otherwise go unnoticed.
        return Err(UnsealError::Tampered(
            "CONFIGSVN is set but the key policy does not use it",
        ));
    }
    let key = src.egetkey(r).map_err(|e| {
        if e.is_refusal() {
            UnsealError::KeyUnavailable(e)
        } else {
            UnsealError::Platform(e)
        }
    })?;
    // Decrypted from the blob straight into the plaintext's buffer, once the tag has verified
    // (aes-gcm checks the tag before it decrypts: on a bad tag the buffer stays zero).
    let ciphertext = blob.encrypted_text();
    let mut plaintext = SecretBytes::zeroed(ciphertext.len());
    let buffer = InOutBuf::new(ciphertext, &mut plaintext)
        .map_err(|_| UnsealError::Tampered("the ciphertext does not fit its buffer"))?;
    let tag = Tag::from(blob.payload_tag);
    gcm(&key)
        .decrypt_inout_detached(&Nonce::default(), blob.additional_mac_text(), buffer, &tag)
        .map_err(|_| {
            UnsealError::Tampered(
                "the MAC does not verify: the blob was changed, or it was sealed for another enclave, signer or platform",
            )
        })?;
    Ok(Unsealed {
        plaintext,
        aad: blob.additional_mac_text().to_vec(),
    })
}
