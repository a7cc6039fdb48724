//! One attestation: request in, verified quote, policy evaluation, token out. Everything here is
//! synchronous (ECDSA verification, RSA signing); the server runs it on the blocking pool.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coffer_attest_policy::{Policy, SERVICE_ISSUER, Value as PolicyValue, policy_hash};
use coffer_dcap::{
    Collateral, QuoteVerificationError, TrustRoot, UnverifiedQuote, VerifiedQuote, VerifyOptions,
    unverified_pck_info,
};
use jsonwebtoken::{Algorithm, Header};
use rustls_pki_types::CertificateDer;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::ServiceError;
use crate::keys::SigningIdentity;

/// The api-version values the attest call accepts.
pub const API_VERSIONS: &[&str] = &["2020-10-01", "2022-08-01", "2025-06-01"];

/// The body of `POST /attest/SgxEnclave`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttestSgxRequest {
    pub quote: String,
    #[serde(default)]
    pub runtime_data: Option<DataField>,
    #[serde(default)]
    pub init_time_data: Option<DataField>,
    #[serde(default)]
    pub draft_policy_for_attestation: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
}

/// `{data, dataType}`: bytes (base64url) and how to read them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataField {
    pub data: String,
    #[serde(default)]
    pub data_type: Option<DataType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum DataType {
    Binary,
    #[serde(rename = "JSON")]
    Json,
}

/// Decodes base64url, padded or not; standard base64 (`+`, `/`) is accepted too.
pub fn decode_b64(field: &'static str, text: &str) -> Result<Vec<u8>, ServiceError> {
    let normalized: String = text
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    URL_SAFE_NO_PAD
        .decode(normalized.as_bytes())
        .map_err(|source| ServiceError::BadBase64 { field, source })
}

/// What quotes are verified against.
#[derive(Debug, Clone)]
pub struct TrustConfig {
    /// Pinned root certificates (deployment roots), tried in order.
    pub roots: Vec<CertificateDer<'static>>,
    /// Also trust Intel's SGX Root CA key (built into coffer-dcap).
    pub intel_root: bool,
    /// Collateral by FMSPC. When non-empty, a quote whose FMSPC has none is refused.
    pub collateral: Vec<([u8; 6], Collateral)>,
}

impl TrustConfig {
    /// Reads each collateral's FMSPC from its TCB Info (unverified: verification checks it
    /// against the quote's PCK certificate again).
    pub fn add_collateral(&mut self, c: Collateral) -> Result<(), ServiceError> {
        #[derive(Deserialize)]
        struct Outer {
            #[serde(rename = "tcbInfo")]
            tcb_info: Inner,
        }
        #[derive(Deserialize)]
        struct Inner {
            fmspc: String,
        }
        let outer: Outer = serde_json::from_str(&format!("{{\"tcbInfo\":{}}}", c.tcb_info))
            .map_err(|e| {
                ServiceError::Quote(QuoteVerificationError::CollateralMalformed {
                    item: "TCB Info",
                    reason: e.to_string(),
                })
            })?;
        let mut fmspc = [0u8; 6];
        hex::decode_to_slice(&outer.tcb_info.fmspc, &mut fmspc).map_err(|_| {
            ServiceError::Quote(QuoteVerificationError::CollateralMalformed {
                item: "TCB Info",
                reason: "fmspc is not 6 bytes of hex".into(),
            })
        })?;
        self.collateral.push((fmspc, c));
        Ok(())
    }

    fn anchors(&self) -> Vec<TrustRoot> {
        let mut v: Vec<TrustRoot> = self
            .roots
            .iter()
            .map(|r| TrustRoot::Certificate(r.clone()))
            .collect();
        if self.intel_root {
            v.push(TrustRoot::IntelSgxRootKey);
        }
        v
    }

    /// Verifies `quote` at `now` against each root in turn. A failure other than "does not
    /// chain to this root" is final: the checks before the chain (signatures, QE binding) do
    /// not depend on the root, and those after it only run once a root matched.
    pub fn verify(&self, quote: &[u8], now: SystemTime) -> Result<VerifiedQuote, ServiceError> {
        precheck_header(quote)?;
        let parsed = UnverifiedQuote::parse(quote).map_err(ServiceError::Quote)?;
        let collateral = if self.collateral.is_empty() {
            None
        } else {
            let info = unverified_pck_info(parsed.unverified()).map_err(ServiceError::Quote)?;
            let found = self
                .collateral
                .iter()
                .find(|(f, _)| *f == info.extension.fmspc)
                .map(|(_, c)| c.clone());
            Some(found.ok_or(ServiceError::CollateralUnavailable {
                fmspc: hex::encode(info.extension.fmspc),
            })?)
        };
        let anchors = self.anchors();
        let tried = anchors.len();
        let mut last = None;
        for root in anchors {
            let opts = VerifyOptions {
                root,
                ..VerifyOptions::new(now)
            };
            let opts = match &collateral {
                Some(c) => opts.with_collateral(c.clone()),
                None => opts,
            };
            match parsed.verify(&opts) {
                Ok(v) => return Ok(v),
                Err(e @ QuoteVerificationError::ChainUntrusted { .. }) => last = Some(e),
                Err(e) => return Err(ServiceError::Quote(e)),
            }
        }
        Err(ServiceError::UntrustedRoot {
            roots: tried,
            last: last.unwrap_or(QuoteVerificationError::RootInvalid("no root configured")),
        })
    }
}

/// Refuses TDX and unknown quote versions by their header, before parsing, with their own
/// codes (a v4 SGX quote would parse, but Coffer's verifier handles version 3).
fn precheck_header(quote: &[u8]) -> Result<(), ServiceError> {
    let (Some(v), Some(t)) = (quote.get(0..2), quote.get(4..8)) else {
        return Ok(()); // too short: the parser says so
    };
    let version = u16::from_le_bytes([v[0], v[1]]);
    let tee = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
    match tee {
        0 => {}
        0x81 => return Err(ServiceError::QuoteTeeUnsupported("TDX")),
        _ => return Err(ServiceError::QuoteTeeUnsupported("unknown TEE type")),
    }
    if version != 3 {
        return Err(ServiceError::QuoteVersionUnsupported(version));
    }
    Ok(())
}

/// The service's settings for tokens.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// Every token's `iss`, and the base of `jku`.
    pub issuer: String,
    /// `exp - iat` (8 hours by default, as MAA).
    pub lifetime: Duration,
}

/// The claims of the enclave a verified quote attests, as policy incoming claims.
fn service_claims(v: &VerifiedQuote) -> Vec<(String, PolicyValue)> {
    let r = v.report_body();
    let mut c = vec![
        (
            "x-ms-sgx-is-debuggable".to_owned(),
            PolicyValue::Bool(r.attributes.debug()),
        ),
        (
            "x-ms-sgx-mrenclave".to_owned(),
            PolicyValue::Str(hex::encode(r.mrenclave)),
        ),
        (
            "x-ms-sgx-mrsigner".to_owned(),
            PolicyValue::Str(hex::encode(r.mrsigner)),
        ),
        (
            "x-ms-sgx-product-id".to_owned(),
            PolicyValue::Int(i64::from(r.isvprodid)),
        ),
        (
            "x-ms-sgx-svn".to_owned(),
            PolicyValue::Int(i64::from(r.isvsvn)),
        ),
        (
            "x-ms-sgx-config-svn".to_owned(),
            PolicyValue::Int(i64::from(r.configsvn)),
        ),
        (
            "x-ms-sgx-report-data".to_owned(),
            PolicyValue::Str(hex::encode(r.reportdata)),
        ),
        (
            "x-ms-attestation-type".to_owned(),
            PolicyValue::Str("sgx".to_owned()),
        ),
    ];
    if let Some(tcb) = v.tcb() {
        c.push((
            "x-coffer-tcb-status".to_owned(),
            PolicyValue::Str(tcb.status.as_str().to_owned()),
        ));
    }
    c
}

/// The caller's claims: the top-level scalar members of JSON runtime data.
fn client_claims(runtime: Option<&Value>) -> Vec<(String, PolicyValue)> {
    let Some(Value::Object(m)) = runtime else {
        return Vec::new();
    };
    m.iter()
        .filter_map(|(k, v)| {
            let v = match v {
                Value::String(s) => PolicyValue::Str(s.clone()),
                Value::Bool(b) => PolicyValue::Bool(*b),
                Value::Number(n) => PolicyValue::Int(n.as_i64()?),
                _ => return None,
            };
            Some((k.clone(), v))
        })
        .collect()
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn collateral_claim(quote: &[u8], c: Option<&Collateral>) -> Value {
    let mut m = Map::new();
    m.insert("quotehash".into(), sha256_hex(quote).into());
    if let Some(c) = c {
        m.insert(
            "tcbinfohash".into(),
            sha256_hex(c.tcb_info.as_bytes()).into(),
        );
        m.insert(
            "tcbinfocertshash".into(),
            sha256_hex(c.tcb_info_issuer_chain.as_bytes()).into(),
        );
        m.insert("tcbinfocrlhash".into(), sha256_hex(&c.root_ca_crl).into());
        m.insert(
            "qeidhash".into(),
            sha256_hex(c.qe_identity.as_bytes()).into(),
        );
        m.insert(
            "qeidcertshash".into(),
            sha256_hex(c.qe_identity_issuer_chain.as_bytes()).into(),
        );
        m.insert("qeidcrlhash".into(), sha256_hex(&c.root_ca_crl).into());
        m.insert("pckcrlhash".into(), sha256_hex(&c.pck_crl).into());
        m.insert(
            "pckcrlcertshash".into(),
            sha256_hex(c.pck_crl_issuer_chain.as_bytes()).into(),
        );
    }
    Value::Object(m)
}

fn unix(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A fresh `jti`: 32 random bytes, hex.
fn jti() -> Result<String, ServiceError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(ServiceError::Random)?;
    Ok(hex::encode(b))
}

/// Signs `claims` as an RS256 JWT with MAA's header (`jku`, `kid`, `typ`).
pub fn sign_token(
    identity: &SigningIdentity,
    tokens: &TokenConfig,
    claims: &Map<String, Value>,
) -> Result<String, ServiceError> {
    let mut header = Header::new(Algorithm::RS256);
    header.jku = Some(format!("{}/certs", tokens.issuer.trim_end_matches('/')));
    header.kid = Some(identity.kid.clone());
    header.typ = Some("JWT".to_owned());
    jsonwebtoken::encode(&header, claims, &identity.encoding_key).map_err(ServiceError::Signing)
}

/// An unsecured JWS (`alg` none): what MAA answers for a draft policy, whose tokens must not be
/// accepted by a relying party, and the shape of a policy document.
pub fn unsecured_jws(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes());
    format!("{header}.{body}.")
}

/// The standard time and identity claims.
pub fn base_claims(
    tokens: &TokenConfig,
    now: SystemTime,
) -> Result<Map<String, Value>, ServiceError> {
    let iat = unix(now);
    let mut m = Map::new();
    m.insert("iss".into(), tokens.issuer.clone().into());
    m.insert("iat".into(), iat.into());
    m.insert("nbf".into(), iat.into());
    m.insert(
        "exp".into(),
        iat.saturating_add(tokens.lifetime.as_secs()).into(),
    );
    m.insert("jti".into(), jti()?.into());
    Ok(m)
}

/// Runs one attestation: `policy_text` is the current policy (stored or default).
pub fn attest_sgx(
    req: &AttestSgxRequest,
    policy_text: &str,
    trust: &TrustConfig,
    tokens: &TokenConfig,
    identity: &SigningIdentity,
    now: SystemTime,
) -> Result<String, ServiceError> {
    let quote = decode_b64("quote", &req.quote)?;
    let verified = trust.verify(&quote, now)?;
    let report = verified.report_body();

    let runtime = match &req.runtime_data {
        Some(d) => Some((decode_b64("runtimeData.data", &d.data)?, d.data_type)),
        None => None,
    };
    let init = match &req.init_time_data {
        Some(d) => Some((decode_b64("initTimeData.data", &d.data)?, d.data_type)),
        None => None,
    };
    if let Some((data, _)) = &runtime {
        let digest = Sha256::digest(data);
        if digest.as_slice() != &report.reportdata[..32] {
            return Err(ServiceError::RuntimeDataMismatch {
                computed: hex::encode(digest),
                reportdata: hex::encode(&report.reportdata[..32]),
            });
        }
    }
    let as_json = |d: &Option<(Vec<u8>, Option<DataType>)>| -> Result<Option<Value>, ServiceError> {
        match d {
            Some((bytes, Some(DataType::Json))) => serde_json::from_slice(bytes)
                .map(Some)
                .map_err(ServiceError::RuntimeDataNotJson),
            _ => Ok(None),
        }
    };
    let runtime_json = as_json(&runtime)?;
    let init_json = as_json(&init)?;

    let (policy_text, draft) = match &req.draft_policy_for_attestation {
        Some(p) => (p.as_str(), true),
        None => (policy_text, false),
    };
    let policy: Policy =
        coffer_attest_policy::parse(policy_text).map_err(ServiceError::PolicyInvalid)?;
    let service = service_claims(&verified);
    let evaluation = policy
        .evaluate(&service, &client_claims(runtime_json.as_ref()))
        .map_err(ServiceError::PolicyEvaluation)?;

    let mut claims = Map::new();
    // Policy-issued claims first, and never under a name the service reserves: a policy cannot
    // forge `x-coffer-tcb-status` for a quote verified without collateral, nor `exp`.
    for c in &evaluation.issued {
        if is_reserved_claim(&c.ty) {
            tracing::warn!(claim = %c.ty, "policy tried to issue a reserved claim; left out");
            continue;
        }
        claims.insert(c.ty.clone(), c.value.to_json());
    }
    claims.extend(base_claims(tokens, now)?);
    if let Some(n) = &req.nonce {
        claims.insert("nonce".into(), n.clone().into());
    }
    claims.insert("x-ms-ver".into(), "1.0".into());
    claims.insert("x-ms-policy-hash".into(), policy_hash(policy_text).into());
    for (ty, v) in &service {
        claims.insert(ty.clone(), v.to_json());
    }
    if let Some((data, _)) = &runtime {
        claims.insert("x-ms-sgx-ehd".into(), URL_SAFE_NO_PAD.encode(data).into());
    }
    claims.insert(
        "x-ms-sgx-collateral".into(),
        collateral_claim(&quote, trust_collateral(trust, &verified)),
    );
    if let Some(j) = runtime_json {
        claims.insert("x-ms-runtime".into(), j);
    }
    if let Some(j) = init_json {
        claims.insert("x-ms-inittime".into(), j);
    }
    if let Some(tcb) = verified.tcb() {
        claims.insert("x-coffer-advisory-ids".into(), json!(tcb.advisory_ids));
    }
    tracing::debug!(issuer = SERVICE_ISSUER, draft, "attestation succeeded");
    if draft {
        claims.insert("x-ms-attestation-draft-policy".into(), true.into());
        return Ok(unsecured_jws(&Value::Object(claims)));
    }
    sign_token(identity, tokens, &claims)
}

/// Claim names only the service sets: the registered JWT claims and the `x-ms-`/`x-coffer-`
/// namespaces.
pub fn is_reserved_claim(name: &str) -> bool {
    name.starts_with("x-ms-")
        || name.starts_with("x-coffer-")
        || matches!(
            name,
            "iss" | "sub" | "aud" | "exp" | "nbf" | "iat" | "jti" | "nonce" | "cnf"
        )
}

/// The collateral the verification used (the one for the quote's FMSPC).
fn trust_collateral<'a>(trust: &'a TrustConfig, v: &VerifiedQuote) -> Option<&'a Collateral> {
    let fmspc = v.tcb()?.pck.fmspc;
    trust
        .collateral
        .iter()
        .find(|(f, _)| *f == fmspc)
        .map(|(_, c)| c)
}
