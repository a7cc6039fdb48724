//! The service's token-signing identity: an RSA-2048 key and a self-signed certificate, made at
//! first start in the data directory (key file mode 0600) and loaded afterwards.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::EncodingKey;
use rcgen::{CertificateParams, DnType, KeyPair, PKCS_RSA_SHA256, RsaKeySize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use thiserror::Error;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

const KEY_FILE: &str = "signing-key.pem";
const CERT_FILE: &str = "signing-cert.pem";

/// The signing identity could not be made or loaded.
#[derive(Debug, Error)]
pub enum SigningKeyError {
    #[error("signing key: cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("signing key: {path} is readable by others (mode {mode:o}); it must be 0600")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("signing key: key generation or certificate issuance failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("signing key: {path} is not a usable RSA private key: {source}")]
    Key {
        path: PathBuf,
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    #[error("signing key: {path} is not a PEM certificate with an RSA key: {reason}")]
    Certificate { path: PathBuf, reason: &'static str },
}

/// The key tokens are signed with, its certificate and its JWK.
pub struct SigningIdentity {
    pub(crate) encoding_key: EncodingKey,
    /// DER of the certificate (`x5c`).
    pub cert_der: Vec<u8>,
    /// `kid`: BASE64URL(SHA-256(certificate DER)).
    pub kid: String,
    /// The public key's modulus and exponent, base64url.
    n: String,
    e: String,
}

impl std::fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SigningKeyError + '_ {
    move |source| SigningKeyError::Io {
        path: path.to_owned(),
        source,
    }
}

impl SigningIdentity {
    /// Loads the identity from `data_dir`, or makes it there if the directory has none.
    /// `subject` names the certificate (the service's issuer URL).
    pub fn load_or_create(data_dir: &Path, subject: &str) -> Result<Self, SigningKeyError> {
        let key_path = data_dir.join(KEY_FILE);
        let cert_path = data_dir.join(CERT_FILE);
        if !key_path.exists() {
            fs::create_dir_all(data_dir).map_err(io(data_dir))?;
            let key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name = rcgen::DistinguishedName::new();
            params.distinguished_name.push(
                DnType::CommonName,
                format!("Coffer attestation service {subject}"),
            );
            let cert = params.self_signed(&key)?;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&key_path)
                .map_err(io(&key_path))?;
            f.write_all(key.serialize_pem().as_bytes())
                .map_err(io(&key_path))?;
            fs::write(&cert_path, cert.pem()).map_err(io(&cert_path))?;
            tracing::info!(key = %key_path.display(), "made a new token-signing key");
        }
        let mode = fs::metadata(&key_path)
            .map_err(io(&key_path))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(SigningKeyError::Permissions {
                path: key_path,
                mode: mode & 0o777,
            });
        }
        let key_pem = fs::read(&key_path).map_err(io(&key_path))?;
        let encoding_key =
            EncodingKey::from_rsa_pem(&key_pem).map_err(|source| SigningKeyError::Key {
                path: key_path.clone(),
                source,
            })?;
        let cert_pem = fs::read(&cert_path).map_err(io(&cert_path))?;
        let bad = |reason| SigningKeyError::Certificate {
            path: cert_path.clone(),
            reason,
        };
        let block = pem::parse(&cert_pem).map_err(|_| bad("malformed PEM"))?;
        if block.tag() != "CERTIFICATE" {
            return Err(bad("the PEM block is not a CERTIFICATE"));
        }
        let cert_der = block.into_contents();
        let (_, cert) = X509Certificate::from_der(&cert_der).map_err(|_| bad("not X.509"))?;
        let Ok(PublicKey::RSA(rsa)) = cert.public_key().parsed() else {
            return Err(bad("the key is not RSA"));
        };
        let strip = |b: &[u8]| -> Vec<u8> {
            let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
            b[start..].to_vec()
        };
        let n = URL_SAFE_NO_PAD.encode(strip(rsa.modulus));
        let e = URL_SAFE_NO_PAD.encode(strip(rsa.exponent));
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(&cert_der));
        Ok(SigningIdentity {
            encoding_key,
            cert_der,
            kid,
            n,
            e,
        })
    }

    /// The JWK of the signing key (`GET /certs` lists it).
    pub fn jwk(&self) -> Value {
        json!({
            "alg": "RS256",
            "kid": self.kid,
            "kty": "RSA",
            "use": "sig",
            "n": self.n,
            "e": self.e,
            "x5c": [STANDARD.encode(&self.cert_der)],
        })
    }
}
