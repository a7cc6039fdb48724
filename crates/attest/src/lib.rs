//! # coffer-attest: the attestation service
//!
//! DCAP quotes in, signed tokens out, with Azure Attestation's (MAA's) API and claim names so that
//! existing MAA clients and relying parties work unchanged:
//!
//! - `POST /attest/SgxEnclave?api-version=V` verifies a quote with `coffer-dcap` against the
//!   configured roots (and collateral, for the TCB status), checks that SHA-256 of the runtime
//!   data is REPORTDATA[0..32], evaluates the attestation policy (`coffer-attest-policy`) and
//!   answers `{"token": JWT}` (RS256);
//! - `GET /certs`, `GET /.well-known/openid-configuration`;
//! - `GET|PUT /policies/SgxEnclave`, `POST /policies/SgxEnclave:reset` for administrators.
//!
//! What it owns: the HTTP API, the token format, the signing key (in the data directory) and
//! the policies (in a [`PolicyStore`]). What it must never do: sign a token for a quote that did
//! not verify or a policy that did not permit it, sign a token under a caller's draft policy
//! (those come back unsigned), block its event loop on cryptography, or keep any state other
//! than policies (so that several instances serve behind one load balancer).

#![forbid(unsafe_code)]

mod attest;
mod error;
mod keys;
mod server;
mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use coffer_dcap::{Collateral, parse_root_certificate};
use rustls_pki_types::CertificateDer;
use thiserror::Error;
use x509_parser::prelude::{FromDer, X509Certificate};
use zeroize::Zeroizing;

pub use attest::{
    API_VERSIONS, AttestSgxRequest, DataField, DataType, TokenConfig, TrustConfig, attest_sgx,
    decode_b64,
};
pub use error::ServiceError;
pub use keys::{SigningIdentity, SigningKeyError};
pub use server::{
    MAX_BODY, SGX_ENCLAVE, ServiceState, TlsConfigError, router, serve, serve_tls, tls_config,
};
pub use store::{PolicyStore, PolicyStoreError, SqlitePolicyStore};

/// Largest file read from `--roots`, `--collateral` or `--admin-token-file`.
const MAX_CONFIG_FILE: u64 = 1024 * 1024;

/// How to start a service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Every token's `iss` and the base of its `jku`.
    pub issuer: String,
    /// A directory of root CA certificates (PEM or DER; `coffer ca init` makes one). Every
    /// self-signed certificate in it is a pinned root; other files are skipped.
    pub roots_dir: PathBuf,
    /// Also trust Intel's SGX Root CA key.
    pub intel_root: bool,
    /// A directory of collateral files (dcap-qvl `QuoteCollateralV3` JSON), one per FMSPC.
    pub collateral_dir: Option<PathBuf>,
    /// Where the signing key and the SQLite policy database live.
    pub data_dir: PathBuf,
    /// A file holding the administrators' bearer token.
    pub admin_token_file: Option<PathBuf>,
    pub token_lifetime: Duration,
}

/// The service could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_CONFIG_FILE} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: {source}")]
    Collateral {
        path: PathBuf,
        #[source]
        source: coffer_dcap::CollateralError,
    },
    #[error("{path}: {source}")]
    CollateralFmspc {
        path: PathBuf,
        #[source]
        source: ServiceError,
    },
    #[error("{dir} holds no self-signed root certificate")]
    NoRoots { dir: PathBuf },
    #[error("the admin token file {path} is empty")]
    EmptyAdminToken { path: PathBuf },
    #[error(transparent)]
    SigningKey(#[from] SigningKeyError),
    #[error(transparent)]
    Store(#[from] PolicyStoreError),
}

fn read_capped(path: &Path) -> Result<Vec<u8>, StartError> {
    let io = |source| StartError::Io {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_CONFIG_FILE {
        return Err(StartError::TooLarge {
            path: path.to_owned(),
        });
    }
    std::fs::read(path).map_err(io)
}

fn sorted_files(dir: &Path) -> Result<Vec<PathBuf>, StartError> {
    let io = |source| StartError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io)? {
        let p = e.map_err(io)?.path();
        if p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// The self-signed certificates among the files of `dir`.
pub fn load_roots(dir: &Path) -> Result<Vec<CertificateDer<'static>>, StartError> {
    let mut roots = Vec::new();
    for p in sorted_files(dir)? {
        // The directory `coffer ca init` makes may hold private keys too: read everything into
        // memory that is wiped on drop, and keep only certificates.
        let bytes = Zeroizing::new(read_capped(&p)?);
        let Ok(der) = parse_root_certificate(&bytes) else {
            continue;
        };
        let self_signed = X509Certificate::from_der(&der)
            .map(|(_, c)| c.subject() == c.issuer() && c.is_ca())
            .unwrap_or(false);
        if self_signed {
            tracing::info!(root = %p.display(), "pinned root");
            roots.push(der);
        }
    }
    if roots.is_empty() {
        return Err(StartError::NoRoots {
            dir: dir.to_owned(),
        });
    }
    Ok(roots)
}

/// Every `*.json` file of `dir` as collateral.
pub fn load_collateral(dir: &Path, trust: &mut TrustConfig) -> Result<(), StartError> {
    for p in sorted_files(dir)? {
        if p.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let c =
            Collateral::from_json(&read_capped(&p)?).map_err(|source| StartError::Collateral {
                path: p.clone(),
                source,
            })?;
        trust
            .add_collateral(c)
            .map_err(|source| StartError::CollateralFmspc {
                path: p.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Loads roots, collateral, the signing identity (made at first start), the admin token and
/// opens the policy database (`DATA_DIR/policies.sqlite3`).
pub async fn start(
    cfg: &ServiceConfig,
) -> Result<Arc<ServiceState<SqlitePolicyStore>>, StartError> {
    let mut trust = TrustConfig {
        roots: load_roots(&cfg.roots_dir)?,
        intel_root: cfg.intel_root,
        collateral: Vec::new(),
    };
    if let Some(dir) = &cfg.collateral_dir {
        load_collateral(dir, &mut trust)?;
    }
    let identity = SigningIdentity::load_or_create(&cfg.data_dir, &cfg.issuer)?;
    let store = SqlitePolicyStore::open(&cfg.data_dir.join("policies.sqlite3")).await?;
    let admin_token = match &cfg.admin_token_file {
        Some(p) => {
            let raw = Zeroizing::new(read_capped(p)?);
            let token = Zeroizing::new(String::from_utf8_lossy(&raw).trim().to_owned());
            if token.is_empty() {
                return Err(StartError::EmptyAdminToken { path: p.clone() });
            }
            Some(token)
        }
        None => None,
    };
    Ok(Arc::new(ServiceState {
        trust,
        tokens: TokenConfig {
            issuer: cfg.issuer.clone(),
            lifetime: cfg.token_lifetime,
        },
        identity,
        store,
        admin_token,
        clock: SystemTime::now,
    }))
}
