//! Wrapping released keys as Key Vault does (`key_hsm`): RSA-OAEP of a fresh AES-256 key
//! under the enclave's wrapping key, followed by AES key wrap with padding (RFC 5649) of the key
//! material under that AES key.

use aes_kw::KwpAes256;
use aes_kw::cipher::KeyInit;
use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, Oaep, PublicKey};
use serde_json::Value;
use zeroize::Zeroizing;

/// The smallest wrapping key accepted, in bits.
pub const MIN_WRAPPING_BITS: usize = 2048;
/// The largest, in bits.
pub const MAX_WRAPPING_BITS: usize = 8192;

/// The `enc` values of a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enc {
    /// RSA-OAEP with SHA-1 (and MGF1 SHA-1).
    CkmRsaAesKeyWrap,
    /// RSA-OAEP with SHA-256: the default.
    RsaAesKeyWrap256,
    /// RSA-OAEP with SHA-384.
    RsaAesKeyWrap384,
}

impl Enc {
    pub fn name(self) -> &'static str {
        match self {
            Enc::CkmRsaAesKeyWrap => "CKM_RSA_AES_KEY_WRAP",
            Enc::RsaAesKeyWrap256 => "RSA_AES_KEY_WRAP_256",
            Enc::RsaAesKeyWrap384 => "RSA_AES_KEY_WRAP_384",
        }
    }

    pub fn from_name(s: &str) -> Option<Enc> {
        [
            Enc::CkmRsaAesKeyWrap,
            Enc::RsaAesKeyWrap256,
            Enc::RsaAesKeyWrap384,
        ]
        .into_iter()
        .find(|e| e.name() == s)
    }
}

/// Why a key could not be wrapped.
#[derive(Debug, thiserror::Error)]
pub enum WrapError {
    #[error("the token's x-ms-runtime.keys has no RSA key with a kid for encryption")]
    NoWrappingKey,
    #[error("the wrapping key's {0} is not valid base64url")]
    Base64(&'static str),
    #[error("the wrapping key is not a valid RSA public key")]
    Key(#[source] rsa::Error),
    #[error(
        "the wrapping key has {bits} bits; {MIN_WRAPPING_BITS} to {MAX_WRAPPING_BITS} are accepted"
    )]
    Size { bits: usize },
    #[error("RSA-OAEP encryption failed")]
    Oaep(#[source] rsa::Error),
    #[error("AES key wrap failed")]
    KeyWrap,
}

/// The enclave's wrapping key from a token's claims: the first key of `x-ms-runtime.keys` with
/// a `kid`, `kty` RSA, and `key_use` "enc" or `key_ops` containing "encrypt".
pub fn wrapping_key(claims: &Value) -> Result<(String, PublicKey), WrapError> {
    let keys = claims
        .get("x-ms-runtime")
        .and_then(|r| r.get("keys"))
        .and_then(Value::as_array)
        .ok_or(WrapError::NoWrappingKey)?;
    let usable = |k: &&Value| {
        k.get("kid").and_then(Value::as_str).is_some()
            && k.get("kty").and_then(Value::as_str) == Some("RSA")
            && (k.get("key_use").and_then(Value::as_str) == Some("enc")
                || k.get("use").and_then(Value::as_str) == Some("enc")
                || k.get("key_ops")
                    .and_then(Value::as_array)
                    .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some("encrypt"))))
    };
    let jwk = keys.iter().find(usable).ok_or(WrapError::NoWrappingKey)?;
    let kid = jwk
        .get("kid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let part = |name: &'static str| -> Result<Vec<u8>, WrapError> {
        let s = jwk
            .get(name)
            .and_then(Value::as_str)
            .ok_or(WrapError::Base64(name))?;
        crate::b64url_decode(s).ok_or(WrapError::Base64(name))
    };
    let n = part("n")?;
    let e = part("e")?;
    let bits = n
        .iter()
        .position(|&b| b != 0)
        .map_or(0, |i| (n.len() - i) * 8);
    if !(MIN_WRAPPING_BITS..=MAX_WRAPPING_BITS).contains(&bits) {
        return Err(WrapError::Size { bits });
    }
    let n = BoxedUint::from_be_slice_vartime(&n);
    let e = BoxedUint::from_be_slice_vartime(&e);
    let key = PublicKey::new(n, e).map_err(WrapError::Key)?;
    Ok((kid, key))
}

/// RSA-OAEP(fresh AES-256 key) ‖ AES-KWP(key material).
pub fn wrap(key: &PublicKey, enc: Enc, material: &[u8]) -> Result<Vec<u8>, WrapError> {
    let mut aes_key = Zeroizing::new([0u8; 32]);
    rand::fill(&mut aes_key[..]);
    let mut rng = rand::rng();
    let head = match enc {
        Enc::CkmRsaAesKeyWrap => key.encrypt(&mut rng, Oaep::<sha1::Sha1>::new(), &aes_key[..]),
        Enc::RsaAesKeyWrap256 => key.encrypt(&mut rng, Oaep::<sha2::Sha256>::new(), &aes_key[..]),
        Enc::RsaAesKeyWrap384 => key.encrypt(&mut rng, Oaep::<sha2::Sha384>::new(), &aes_key[..]),
    }
    .map_err(WrapError::Oaep)?;
    debug_assert_eq!(head.len(), key.size());
    let kwp = KwpAes256::new(&(*aes_key).into());
    let mut buf = vec![0u8; material.len().div_ceil(8) * 8 + 8];
    let tail = kwp
        .wrap_key(material, &mut buf)
        .map_err(|_| WrapError::KeyWrap)?;
    let mut out = head;
    out.extend_from_slice(tail);
    Ok(out)
}
