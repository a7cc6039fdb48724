//! RSA-3072, e = 3 keys in SGX's little-endian form.

use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPrivateKey, LineEnding};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, PrivateKey, PublicKey};
use zeroize::Zeroizing;

/// Size of the SIGSTRUCT modulus and signature in bytes (RSA-3072).
pub const MODULUS_LEN: usize = 384;
/// The only public exponent SGX accepts.
pub const EXPONENT: u64 = 3;

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The PEM text is neither a PKCS#1 nor a PKCS#8 RSA key.
    #[error("not an RSA key in PEM (PKCS#1 or PKCS#8): {0}")]
    Pem(String),
    /// The key is not 3072 bits.
    #[error("RSA key has a {bits}-bit modulus; SGX requires 3072 bits")]
    WrongSize { bits: usize },
    /// The key's public exponent is not 3.
    #[error("RSA key has public exponent {exponent}; SGX requires exponent 3")]
    WrongExponent { exponent: String },
    /// Key generation or an RSA operation failed.
    #[error("RSA operation failed: {0}")]
    Rsa(#[from] rsa::Error),
}

fn check_shape(key: &PublicKey) -> Result<(), KeyError> {
    let bits = key.size() * 8;
    if bits != MODULUS_LEN * 8 {
        return Err(KeyError::WrongSize { bits });
    }
    if *key.e() != BoxedUint::from(EXPONENT) {
        let e = key.e_bytes();
        return Err(KeyError::WrongExponent {
            exponent: format!("0x{}", hex::encode(e)),
        });
    }
    Ok(())
}

/// An enclave signing key: RSA-3072 with public exponent 3.
#[derive(Debug, Clone)]
pub struct SigningKey(PrivateKey);

impl SigningKey {
    /// Generates a new key from the operating system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        let key =
            PrivateKey::new_with_exp(&mut rand::rng(), MODULUS_LEN * 8, BoxedUint::from(EXPONENT))?;
        Ok(SigningKey(key))
    }

    /// Reads a PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`) PEM key and checks its shape.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let key = PrivateKey::from_pkcs1_pem(pem)
            .or_else(|_| PrivateKey::from_pkcs8_pem(pem))
            .map_err(|e| KeyError::Pem(e.to_string()))?;
        check_shape(key.as_public_key())?;
        Ok(SigningKey(key))
    }

    /// The key as PKCS#1 PEM, in memory that is wiped when dropped.
    pub fn to_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        self.0
            .to_pkcs1_pem(LineEnding::LF)
            .map_err(|e| KeyError::Pem(e.to_string()))
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.0.to_public_key())
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `msg`; the signature is big-endian, as PKCS#1 writes it.
    pub(crate) fn sign_pkcs1v15_sha256(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        Ok(self.0.pkcs1v15_sign::<rsa::sha2::Sha256>(msg)?)
    }
}

/// The public half of a signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey(PublicKey);

impl VerifyingKey {
    /// Reads a public key from PEM (`PUBLIC KEY` SPKI or `RSA PUBLIC KEY` PKCS#1), or the public
    /// half of a private key PEM, and checks its shape.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let key = PublicKey::from_public_key_pem(pem)
            .or_else(|_| PublicKey::from_pkcs1_pem(pem))
            .or_else(|_| SigningKey::from_pem(pem).map(|k| k.verifying_key().0))
            .map_err(|e| KeyError::Pem(e.to_string()))?;
        check_shape(&key)?;
        Ok(VerifyingKey(key))
    }

    /// The key from SIGSTRUCT's little-endian modulus and its exponent.
    pub fn from_modulus_le(
        modulus_le: &[u8; MODULUS_LEN],
        exponent: u32,
    ) -> Result<Self, KeyError> {
        let mut be = *modulus_le;
        be.reverse();
        let n = BoxedUint::from_be_slice_vartime(&be);
        let key = PublicKey::new(n, BoxedUint::from(u64::from(exponent)))?;
        check_shape(&key)?;
        Ok(VerifyingKey(key))
    }

    /// The public key as SPKI PEM.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::Pem(e.to_string()))
    }

    /// The modulus in SIGSTRUCT's little-endian form.
    pub fn modulus_le(&self) -> [u8; MODULUS_LEN] {
        let be = self.0.n_bytes();
        let mut out = [0u8; MODULUS_LEN];
        // check_shape guarantees a 3072-bit modulus, so `be` has exactly MODULUS_LEN bytes.
        for (o, b) in out.iter_mut().zip(be.iter().rev()) {
            *o = *b;
        }
        out
    }

    /// MRSIGNER: SHA-256 of the little-endian modulus.
    pub fn mrsigner(&self) -> [u8; 32] {
        use rsa::sha2::{Digest, Sha256};
        Sha256::digest(self.modulus_le()).into()
    }

    pub(crate) fn verify_pkcs1v15_sha256(&self, msg: &[u8], sig_be: &[u8]) -> bool {
        self.0
            .pkcs1v15_verify::<rsa::sha2::Sha256>(msg, sig_be)
            .is_ok()
    }
}
