//! Coffer's key broker: keys shaped like Azure Key Vault's, released only to attested enclaves
//! whose attestation tokens satisfy the key's release policy ([`policy`]).
#![forbid(unsafe_code)]

pub mod policy;

#[cfg(feature = "server")]
pub mod auth;
#[cfg(feature = "server")]
pub mod service;
#[cfg(feature = "server")]
pub mod trust;
#[cfg(feature = "server")]
pub mod wrap;

/// base64url without padding.
#[cfg(feature = "server")]
pub fn b64url(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

/// Decodes base64url, with or without padding.
#[cfg(feature = "server")]
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        s.trim_end_matches('='),
    )
    .ok()
}
#[cfg(feature = "server")]
pub mod client;

/// Installs aws-lc-rs as the process's rustls crypto provider (once; later calls do nothing).
#[cfg(feature = "server")]
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
