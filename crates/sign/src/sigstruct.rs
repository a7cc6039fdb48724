//! Signing and verifying SIGSTRUCT: RSASSA-PKCS1-v1_5 with SHA-256 over bytes `[0..128) ‖ [900..1028)`,
//! with the modulus, signature, Q1 and Q2 stored little-endian.

use coffer_abi::sigstruct::SIGSTRUCT_HEADER;
use coffer_abi::{Attributes, Miscselect, Sigstruct, SigstructDate};
use num_bigint::BigUint;

use crate::key::{KeyError, MODULUS_LEN, SigningKey, VerifyingKey};

/// The fields an enclave author chooses; everything SIGSTRUCT signs except the fixed headers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SigstructBody {
    pub vendor: u32,
    pub date: SigstructDate,
    pub swdefined: u32,
    pub miscselect: Miscselect,
    pub miscmask: u32,
    pub isvfamilyid: [u8; 16],
    pub attributes: Attributes,
    pub attributemask: Attributes,
    pub enclavehash: [u8; 32],
    pub isvextprodid: [u8; 16],
    pub isvprodid: u16,
    pub isvsvn: u16,
}

impl SigstructBody {
    /// An unsigned SIGSTRUCT carrying these fields (modulus, signature, Q1 and Q2 zero).
    fn unsigned(&self) -> Sigstruct {
        Sigstruct {
            header: SIGSTRUCT_HEADER,
            vendor: self.vendor,
            date: self.date,
            swdefined: self.swdefined,
            miscselect: self.miscselect,
            miscmask: self.miscmask,
            isvfamilyid: self.isvfamilyid,
            attributes: self.attributes,
            attributemask: self.attributemask,
            enclavehash: self.enclavehash,
            isvextprodid: self.isvextprodid,
            isvprodid: self.isvprodid,
            isvsvn: self.isvsvn,
            ..Sigstruct::default()
        }
    }

    /// The body of an existing SIGSTRUCT.
    pub fn of(s: &Sigstruct) -> Self {
        SigstructBody {
            vendor: s.vendor,
            date: s.date,
            swdefined: s.swdefined,
            miscselect: s.miscselect,
            miscmask: s.miscmask,
            isvfamilyid: s.isvfamilyid,
            attributes: s.attributes,
            attributemask: s.attributemask,
            enclavehash: s.enclavehash,
            isvextprodid: s.isvextprodid,
            isvprodid: s.isvprodid,
            isvsvn: s.isvsvn,
        }
    }
}

/// Why a SIGSTRUCT could not be signed or assembled.
#[derive(Debug, thiserror::Error)]
pub enum SigstructSignError {
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The signature given to [`assemble`] is not 384 bytes.
    #[error("signature is {len} bytes; an RSA-3072 signature is 384 bytes")]
    SignatureLength { len: usize },
    /// The signature given to [`assemble`] does not verify with the public key.
    #[error(
        "the signature does not verify with the given public key over this SIGSTRUCT's signed bytes"
    )]
    SignatureInvalid,
}

/// Why a SIGSTRUCT does not verify. Each check has its own variant.
#[derive(Debug, thiserror::Error)]
pub enum SigstructVerifyError {
    /// EXPONENT is not 3.
    #[error("SIGSTRUCT exponent is {0}; SGX requires 3")]
    Exponent(u32),
    /// The modulus is not a valid RSA-3072 modulus.
    #[error("SIGSTRUCT modulus is not a usable RSA-3072 key: {0}")]
    Modulus(KeyError),
    /// The RSA signature does not verify over the signed bytes.
    #[error("SIGSTRUCT signature does not verify")]
    Signature,
    /// Q1 is not floor(signature² / modulus).
    #[error("SIGSTRUCT Q1 is inconsistent with the signature and modulus")]
    Q1,
    /// Q2 is not floor((signature³ − Q1·signature·modulus) / modulus).
    #[error("SIGSTRUCT Q2 is inconsistent with the signature and modulus")]
    Q2,
}

/// A SIGSTRUCT whose signature, exponent, Q1 and Q2 all checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSigstruct {
    sigstruct: Sigstruct,
    mrsigner: [u8; 32],
}

impl VerifiedSigstruct {
    pub fn sigstruct(&self) -> &Sigstruct {
        &self.sigstruct
    }

    /// SHA-256 of the signer's little-endian modulus.
    pub fn mrsigner(&self) -> [u8; 32] {
        self.mrsigner
    }
}

/// The 256 bytes the author signs for `body` (the two-step flow's "gendata").
pub fn signing_data(body: &SigstructBody) -> Vec<u8> {
    body.unsigned().signed_data()
}

/// Signs `body` with `key`.
pub fn sign(key: &SigningKey, body: &SigstructBody) -> Result<Sigstruct, SigstructSignError> {
    let sig_be = key.sign_pkcs1v15_sha256(&signing_data(body))?;
    assemble(body, &key.verifying_key(), &sig_be)
}

/// Assembles a SIGSTRUCT from a big-endian PKCS#1 signature made elsewhere (an HSM, `openssl dgst
/// -sha256 -sign`) over [`signing_data`], and checks that it verifies before returning it.
pub fn assemble(
    body: &SigstructBody,
    key: &VerifyingKey,
    signature_be: &[u8],
) -> Result<Sigstruct, SigstructSignError> {
    if signature_be.len() != MODULUS_LEN {
        return Err(SigstructSignError::SignatureLength {
            len: signature_be.len(),
        });
    }
    let mut s = body.unsigned();
    if !key.verify_pkcs1v15_sha256(&s.signed_data(), signature_be) {
        return Err(SigstructSignError::SignatureInvalid);
    }
    s.modulus = key.modulus_le();
    s.exponent = 3;
    let sig = BigUint::from_bytes_be(signature_be);
    let n = BigUint::from_bytes_le(&s.modulus);
    let (q1, q2) = q1_q2(&sig, &n);
    s.signature = to_le(&sig);
    s.q1 = to_le(&q1);
    s.q2 = to_le(&q2);
    Ok(s)
}

/// Checks exponent, signature, Q1 and Q2.
pub fn verify(s: &Sigstruct) -> Result<VerifiedSigstruct, SigstructVerifyError> {
    if s.exponent != 3 {
        return Err(SigstructVerifyError::Exponent(s.exponent));
    }
    let key = VerifyingKey::from_modulus_le(&s.modulus, s.exponent)
        .map_err(SigstructVerifyError::Modulus)?;
    let mut sig_be = s.signature;
    sig_be.reverse();
    if !key.verify_pkcs1v15_sha256(&s.signed_data(), &sig_be) {
        return Err(SigstructVerifyError::Signature);
    }
    let (q1, q2) = q1_q2(
        &BigUint::from_bytes_le(&s.signature),
        &BigUint::from_bytes_le(&s.modulus),
    );
    if BigUint::from_bytes_le(&s.q1) != q1 {
        return Err(SigstructVerifyError::Q1);
    }
    if BigUint::from_bytes_le(&s.q2) != q2 {
        return Err(SigstructVerifyError::Q2);
    }
    Ok(VerifiedSigstruct {
        sigstruct: s.clone(),
        mrsigner: key.mrsigner(),
    })
}

/// Q1 = ⌊S² / M⌋ and Q2 = ⌊(S³ − Q1·S·M) / M⌋ = ⌊S·(S² mod M) / M⌋.
fn q1_q2(sig: &BigUint, n: &BigUint) -> (BigUint, BigUint) {
    let s2 = sig * sig;
    let q1 = &s2 / n;
    let q2 = (sig * (&s2 % n)) / n;
    (q1, q2)
}

/// Little-endian, zero-padded to 384 bytes. A valid signature is below the modulus, and Q1, Q2 are
/// below it as well, so they always fit.
fn to_le(v: &BigUint) -> [u8; MODULUS_LEN] {
    let mut out = [0u8; MODULUS_LEN];
    for (o, b) in out.iter_mut().zip(v.to_bytes_le()) {
        *o = b;
    }
    out
}
