//! Trusted token issuers and verification of their attestation tokens.
//!
//! Each issuer is pinned on the command line: `--trust ISSUER_URL` (its keys come from
//! `ISSUER_URL/.well-known/openid-configuration` → `jwks_uri`, cached, refetched when a token
//! names an unknown `kid`) or `--trust ISSUER=JWKS_FILE`. A token's own `jku`, `x5u` or `jwk`
//! header is never used: the key that verifies a token is the pinned issuer's key with the
//! token's `kid`, and the token's `iss` must be that issuer.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::RwLock;

use crate::policy::normalize_authority;

/// The clock skew allowed on `exp` and `nbf`.
pub const MAX_SKEW: Duration = Duration::from_secs(60);
/// The largest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// The largest JWKS or OpenID metadata document fetched, in bytes.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// A refetch on an unknown `kid` happens at most this often per issuer (so that tokens with
/// made-up kids cannot make the broker hammer the issuer).
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(1);

/// Where an issuer's keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `ISSUER/.well-known/openid-configuration` → `jwks_uri`.
    OpenId,
    /// A JWKS file.
    File(PathBuf),
}

/// A `--trust` argument.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    /// The issuer URL, without trailing slashes.
    pub issuer: String,
    pub source: KeySource,
}

impl std::str::FromStr for TrustedIssuer {
    type Err = String;

    /// `ISSUER_URL` or `ISSUER_URL=JWKS_FILE`.
    fn from_str(s: &str) -> Result<TrustedIssuer, String> {
        let (issuer, source) = match s.split_once('=') {
            Some((issuer, file)) => (issuer, KeySource::File(PathBuf::from(file))),
            None => (s, KeySource::OpenId),
        };
        let issuer = normalize_authority(issuer);
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(format!("issuer {issuer:?} is not an http(s) URL"));
        }
        Ok(TrustedIssuer {
            issuer: issuer.to_owned(),
            source,
        })
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("the token's header does not parse")]
    Header(#[source] jsonwebtoken::errors::Error),
    #[error("the token is signed with {0:?}; RS256 is required")]
    Algorithm(Algorithm),
    #[error("the token's header has no kid")]
    NoKid,
    #[error("no trusted issuer has a key with kid {kid:?}")]
    UnknownKey { kid: String },
    #[error(
        "the token does not verify under the trusted issuer's key, or its iss, exp or nbf is wrong"
    )]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("cannot load the keys of issuer {issuer}")]
    Keys {
        issuer: String,
        #[source]
        source: KeysError,
    },
}

/// Why an issuer's keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot fetch {url}")]
    Fetch {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what} is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { what: String },
    #[error("{what} is not valid")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the OpenID metadata of {issuer} names issuer {named:?} or has no jwks_uri")]
    Metadata {
        issuer: String,
        named: Option<String>,
    },
    #[error("key {kid:?} of the JWKS is not usable")]
    Key {
        kid: String,
        #[source]
        source: jsonwebtoken::errors::Error,
    },
}

struct IssuerKeys {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

/// The trusted issuers and their cached keys.
pub struct Verifier {
    issuers: Vec<TrustedIssuer>,
    cache: RwLock<HashMap<String, IssuerKeys>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuers", &self.issuers)
            .finish_non_exhaustive()
    }
}

fn parse_jwks(bytes: &[u8], what: &str) -> Result<HashMap<String, DecodingKey>, KeysError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(KeysError::TooLarge {
            what: what.to_owned(),
        });
    }
    let set: JwkSet = serde_json::from_slice(bytes).map_err(|source| KeysError::Json {
        what: what.to_owned(),
        source,
    })?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|source| KeysError::Key {
            kid: kid.clone(),
            source,
        })?;
        keys.insert(kid, key);
    }
    Ok(keys)
}

impl Verifier {
    pub fn new(issuers: Vec<TrustedIssuer>) -> Verifier {
        crate::install_crypto_provider();
        Verifier {
            issuers,
            cache: RwLock::new(HashMap::new()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }

    pub fn issuers(&self) -> &[TrustedIssuer] {
        &self.issuers
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, KeysError> {
        let fetch = |source| KeysError::Fetch {
            url: url.to_owned(),
            source,
        };
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(fetch)?
            .error_for_status()
            .map_err(fetch)?;
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(KeysError::TooLarge {
                what: url.to_owned(),
            });
        }
        let bytes = response.bytes().await.map_err(fetch)?;
        Ok(bytes.to_vec())
    }

    async fn load(
        &self,
        issuer: &TrustedIssuer,
    ) -> Result<HashMap<String, DecodingKey>, KeysError> {
        match &issuer.source {
            KeySource::File(path) => {
                let bytes = tokio::fs::read(path)
                    .await
                    .map_err(|source| KeysError::Read {
                        path: path.clone(),
                        source,
                    })?;
                parse_jwks(&bytes, &path.display().to_string())
            }
            KeySource::OpenId => {
                let url = format!("{}/.well-known/openid-configuration", issuer.issuer);
                let bytes = self.fetch(&url).await?;
                if bytes.len() > MAX_DOCUMENT_BYTES {
                    return Err(KeysError::TooLarge { what: url });
                }
                let meta: Value =
                    serde_json::from_slice(&bytes).map_err(|source| KeysError::Json {
                        what: url.clone(),
                        source,
                    })?;
                let named = meta.get("issuer").and_then(Value::as_str);
                let jwks_uri = meta.get("jwks_uri").and_then(Value::as_str);
                let (Some(jwks_uri), true) = (
                    jwks_uri,
                    named.is_none_or(|n| normalize_authority(n) == issuer.issuer),
                ) else {
                    return Err(KeysError::Metadata {
                        issuer: issuer.issuer.clone(),
                        named: named.map(str::to_owned),
                    });
                };
                let bytes = self.fetch(jwks_uri).await?;
                parse_jwks(&bytes, jwks_uri)
            }
        }
    }

    /// The pinned issuer holding key `kid`, loading (or, at most every [`REFETCH_INTERVAL`], reloading) key
    /// sets that lack it.
    async fn key_for(&self, kid: &str) -> Result<(String, DecodingKey), TokenError> {
        {
            let cache = self.cache.read().await;
            for issuer in &self.issuers {
                if let Some(key) = cache.get(&issuer.issuer).and_then(|k| k.keys.get(kid)) {
                    return Ok((issuer.issuer.clone(), key.clone()));
                }
            }
        }
        let mut cache = self.cache.write().await;
        let mut failure = None;
        for issuer in &self.issuers {
            if let Some(entry) = cache.get(&issuer.issuer) {
                if let Some(key) = entry.keys.get(kid) {
                    return Ok((issuer.issuer.clone(), key.clone()));
                }
                if entry
                    .fetched
                    .is_some_and(|at| at.elapsed() < REFETCH_INTERVAL)
                {
                    continue;
                }
            }
            // A failed load keeps the keys cached so far and still counts as a fetch, so that
            // an unreachable issuer is not asked again for every token.
            let loaded = self.load(issuer).await;
            let entry = cache
                .entry(issuer.issuer.clone())
                .or_insert_with(|| IssuerKeys {
                    keys: HashMap::new(),
                    fetched: None,
                });
            entry.fetched = Some(Instant::now());
            match loaded {
                Ok(keys) => {
                    entry.keys = keys;
                    if let Some(key) = entry.keys.get(kid) {
                        return Ok((issuer.issuer.clone(), key.clone()));
                    }
                }
                Err(source) => {
                    tracing::warn!(issuer = %issuer.issuer, error = ?source, "cannot load the issuer's keys");
                    failure.get_or_insert(TokenError::Keys {
                        issuer: issuer.issuer.clone(),
                        source,
                    });
                }
            }
        }
        Err(failure.unwrap_or_else(|| TokenError::UnknownKey {
            kid: kid.chars().take(128).collect(),
        }))
    }

    /// Verifies `token`: RS256 under the pinned issuer's key with its `kid`, `iss` that issuer
    /// (with or without a trailing slash), `exp` required and `nbf` checked with [`MAX_SKEW`].
    /// Returns the issuer and the claims.
    pub async fn verify(&self, token: &str) -> Result<(String, Value), TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        let header = jsonwebtoken::decode_header(token).map_err(TokenError::Header)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Algorithm(header.alg));
        }
        let kid = header.kid.ok_or(TokenError::NoKid)?;
        let (issuer, key) = self.key_for(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = MAX_SKEW.as_secs();
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.set_issuer(&[issuer.clone(), format!("{issuer}/")]);
        let data =
            jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(TokenError::Invalid)?;
        Ok((issuer, data.claims))
    }
}
