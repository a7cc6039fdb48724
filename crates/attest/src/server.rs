//! The HTTP API (axum): Azure Attestation's routes, so that MAA clients work unchanged.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coffer_attest_policy::{DEFAULT_SGX_POLICY, policy_hash};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;
use zeroize::Zeroizing;

use crate::attest::{
    API_VERSIONS, AttestSgxRequest, TokenConfig, TrustConfig, attest_sgx, base_claims, decode_b64,
    sign_token, unsecured_jws,
};
use crate::error::ServiceError;
use crate::keys::SigningIdentity;
use crate::store::PolicyStore;

/// Largest request body: a quote with its PEM chain is a few kilobytes, runtime data and a
/// draft policy (64 KiB at most) fit well under this. Bounds the memory a request can take.
pub const MAX_BODY: usize = 512 * 1024;

/// The one attestation type this service attests.
pub const SGX_ENCLAVE: &str = "SgxEnclave";

/// Everything a request needs, shared by all.
pub struct ServiceState<S> {
    pub trust: TrustConfig,
    pub tokens: TokenConfig,
    pub identity: SigningIdentity,
    pub store: S,
    /// The administrators' bearer token; `None`: every administrative call is refused.
    pub admin_token: Option<Zeroizing<String>>,
    /// The time quotes, certificates and collateral are checked at (injectable for tests).
    pub clock: fn() -> SystemTime,
}

impl<S> std::fmt::Debug for ServiceState<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceState")
            .field("issuer", &self.tokens.issuer)
            .field("roots", &self.trust.roots.len())
            .field("collateral", &self.trust.collateral.len())
            .finish_non_exhaustive()
    }
}

type St<S> = State<Arc<ServiceState<S>>>;

/// The service's routes.
pub fn router<S: PolicyStore>(state: Arc<ServiceState<S>>) -> Router {
    Router::new()
        .route("/attest/{kind}", post(attest::<S>))
        .route("/certs", get(certs::<S>))
        .route("/.well-known/openid-configuration", get(openid::<S>))
        .route(
            "/policies/{kind}",
            get(get_policy::<S>)
                .put(put_policy::<S>)
                .post(reset_policy::<S>),
        )
        .with_state(state)
}

/// Serves `router` on `listener` until the future is dropped or fails.
pub async fn serve<S: PolicyStore>(
    listener: tokio::net::TcpListener,
    state: Arc<ServiceState<S>>,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

/// The TLS certificate chain and key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("TLS certificate {path}: {source}")]
    Certificate {
        path: std::path::PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("TLS private key {path}: {source}")]
    Key {
        path: std::path::PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A rustls server configuration (aws-lc-rs, TLS 1.2 and 1.3) from a PEM certificate chain and
/// a PEM private key.
pub fn tls_config(
    cert_chain: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, TlsConfigError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert_chain)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsConfigError::Certificate {
            path: cert_chain.to_owned(),
            source,
        })?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsConfigError::Key {
        path: key.to_owned(),
        source,
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Serves `router` over HTTPS on `listener` with `tls`.
pub async fn serve_tls<S: PolicyStore>(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<ServiceState<S>>,
) -> std::io::Result<()> {
    let listener = listener.into_std()?;
    let config = axum_server::tls_rustls::RustlsConfig::from_config(tls);
    axum_server::tls_rustls::from_tcp_rustls(listener, config)
        .serve(router(state).into_make_service())
        .await
}

#[derive(Debug, Deserialize)]
struct ApiVersion {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
}

fn check_api_version(q: &ApiVersion) -> Result<(), ServiceError> {
    match q.api_version.as_deref() {
        Some(v) if API_VERSIONS.contains(&v) => Ok(()),
        other => Err(ServiceError::UnsupportedApiVersion(
            other.unwrap_or("(missing)").to_owned(),
        )),
    }
}

fn check_kind(kind: &str) -> Result<(), ServiceError> {
    if kind == SGX_ENCLAVE {
        Ok(())
    } else {
        Err(ServiceError::UnknownAttestationType(kind.to_owned()))
    }
}

async fn read_body(body: Body) -> Result<Bytes, ServiceError> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
        // axum reports an over-long body as a length-limit error in its source chain.
        let too_long =
            std::error::Error::source(&e).is_some_and(|s| s.to_string().contains("length limit"));
        if too_long {
            ServiceError::RequestTooLarge { limit: MAX_BODY }
        } else {
            ServiceError::BodyUnreadable(e)
        }
    })
}

async fn current_policy<S: PolicyStore>(st: &ServiceState<S>) -> Result<String, ServiceError> {
    Ok(st
        .store
        .get(SGX_ENCLAVE)
        .await
        .map_err(ServiceError::Store)?
        .unwrap_or_else(|| DEFAULT_SGX_POLICY.to_owned()))
}

/// `POST /attest/SgxEnclave?api-version=V`. An `Authorization` header is ignored here.
async fn attest<S: PolicyStore>(
    State(st): St<S>,
    Path(kind): Path<String>,
    Query(q): Query<ApiVersion>,
    body: Body,
) -> Result<Json<Value>, ServiceError> {
    check_kind(&kind)?;
    check_api_version(&q)?;
    let body = read_body(body).await?;
    let req: AttestSgxRequest =
        serde_json::from_slice(&body).map_err(ServiceError::InvalidRequest)?;
    let policy = current_policy(&st).await?;
    let st2 = st.clone();
    // ECDSA verification and the RSA signature run on the blocking pool, never on the event loop.
    let token = tokio::task::spawn_blocking(move || {
        attest_sgx(
            &req,
            &policy,
            &st2.trust,
            &st2.tokens,
            &st2.identity,
            (st2.clock)(),
        )
    })
    .await
    .map_err(|_| ServiceError::Worker)??;
    Ok(Json(json!({ "token": token })))
}

/// `GET /certs`: the JWKS of the signing key.
async fn certs<S: PolicyStore>(State(st): St<S>) -> Json<Value> {
    Json(json!({ "keys": [st.identity.jwk()] }))
}

/// `GET /.well-known/openid-configuration`
async fn openid<S: PolicyStore>(State(st): St<S>) -> Json<Value> {
    let base = st.tokens.issuer.trim_end_matches('/');
    Json(json!({
        "issuer": st.tokens.issuer,
        "jwks_uri": format!("{base}/certs"),
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["token", "none"],
        "revocation_endpoint": format!("{base}/revoke"),
        "claims_supported": [
            "iss", "iat", "nbf", "exp", "jti", "nonce", "x-ms-ver", "x-ms-attestation-type",
            "x-ms-policy-hash", "x-ms-sgx-is-debuggable", "x-ms-sgx-mrenclave",
            "x-ms-sgx-mrsigner", "x-ms-sgx-product-id", "x-ms-sgx-svn", "x-ms-sgx-config-svn",
            "x-ms-sgx-report-data", "x-ms-sgx-ehd", "x-ms-sgx-collateral", "x-ms-runtime",
            "x-ms-inittime", "x-coffer-tcb-status", "x-coffer-advisory-ids",
        ],
    }))
}

fn require_admin<S>(st: &ServiceState<S>, headers: &HeaderMap) -> Result<(), ServiceError> {
    let Some(want) = &st.admin_token else {
        return Err(ServiceError::Unauthorized);
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ServiceError::Unauthorized)?;
    if bool::from(given.as_bytes().ct_eq(want.as_bytes())) {
        Ok(())
    } else {
        Err(ServiceError::Unauthorized)
    }
}

/// A policy document: an unsecured JWS of `{"AttestationPolicy": base64url(text)}`.
fn policy_document(text: &str) -> String {
    unsecured_jws(&json!({ "AttestationPolicy": URL_SAFE_NO_PAD.encode(text.as_bytes()) }))
}

fn policy_answer<S>(
    st: &ServiceState<S>,
    extra: &[(&str, Value)],
) -> Result<Response, ServiceError> {
    let mut claims = base_claims(&st.tokens, (st.clock)())?;
    for (k, v) in extra {
        claims.insert((*k).to_owned(), v.clone());
    }
    let token = sign_token(&st.identity, &st.tokens, &claims)?;
    Ok(Json(json!({ "token": token })).into_response())
}

/// `GET /policies/SgxEnclave`
async fn get_policy<S: PolicyStore>(
    State(st): St<S>,
    Path(kind): Path<String>,
    Query(q): Query<ApiVersion>,
    headers: HeaderMap,
) -> Result<Response, ServiceError> {
    require_admin(&st, &headers)?;
    check_kind(&kind)?;
    check_api_version(&q)?;
    let text = current_policy(&st).await?;
    let st2 = st.clone();
    tokio::task::spawn_blocking(move || {
        policy_answer(
            &st2,
            &[
                ("x-ms-policy", policy_document(&text).into()),
                ("x-ms-policy-hash", policy_hash(&text).into()),
            ],
        )
    })
    .await
    .map_err(|_| ServiceError::Worker)?
}

#[derive(Deserialize)]
struct PolicyPayload {
    #[serde(rename = "AttestationPolicy")]
    attestation_policy: String,
}

/// Reads the policy text out of a PUT body: a JWT with `alg` none, or RS256 signed by the key of
/// the certificate in its `x5c` (the bearer token authorizes the call; the signature binds the
/// text to its signer).
fn policy_from_jwt(jwt: &str) -> Result<String, ServiceError> {
    use ServiceError::PolicyTokenInvalid as Bad;
    let jwt = jwt.trim();
    let mut parts = jwt.split('.');
    let (Some(h), Some(p), Some(_s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Bad("not a JWS in compact form (three dot-separated parts)"));
    };
    let header: Value = serde_json::from_slice(&decode_b64("policy token header", h)?)
        .map_err(|_| Bad("the header is not JSON"))?;
    let payload: PolicyPayload = match header.get("alg").and_then(Value::as_str) {
        Some("none") => serde_json::from_slice(&decode_b64("policy token payload", p)?)
            .map_err(|_| Bad("the payload is not {\"AttestationPolicy\": …}"))?,
        Some("RS256") => {
            let x5c = header
                .get("x5c")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .ok_or(Bad("an RS256 policy token needs an x5c certificate"))?;
            let der = decode_b64("x5c", x5c)?;
            let (_, cert) =
                X509Certificate::from_der(&der).map_err(|_| Bad("x5c[0] is not X.509"))?;
            let Ok(PublicKey::RSA(rsa)) = cert.public_key().parsed() else {
                return Err(Bad("x5c[0] does not hold an RSA key"));
            };
            // DER integers carry a leading zero byte when the top bit is set; the raw
            // components must be the unsigned big-endian magnitudes.
            let strip = |b: &[u8]| -> Vec<u8> {
                let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
                b[start..].to_vec()
            };
            let key =
                DecodingKey::from_rsa_raw_components(&strip(rsa.modulus), &strip(rsa.exponent));
            let mut v = Validation::new(Algorithm::RS256);
            v.required_spec_claims.clear();
            v.validate_exp = false;
            jsonwebtoken::decode::<PolicyPayload>(jwt, &key, &v)
                .map_err(ServiceError::PolicyTokenSignature)?
                .claims
        }
        _ => return Err(Bad("alg must be none or RS256")),
    };
    let text = decode_b64("AttestationPolicy", &payload.attestation_policy)?;
    String::from_utf8(text).map_err(|_| Bad("the policy is not UTF-8"))
}

/// `PUT /policies/SgxEnclave`: the body is the policy JWT.
async fn put_policy<S: PolicyStore>(
    State(st): St<S>,
    Path(kind): Path<String>,
    Query(q): Query<ApiVersion>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ServiceError> {
    require_admin(&st, &headers)?;
    check_kind(&kind)?;
    check_api_version(&q)?;
    let body = read_body(body).await?;
    let jwt = std::str::from_utf8(&body)
        .map_err(|_| ServiceError::PolicyTokenInvalid("the body is not UTF-8"))?;
    // A JSON string body ("eyJ…") is accepted too, as some clients send it.
    let jwt = jwt.trim().trim_matches('"').to_owned();
    let st2 = st.clone();
    let text = tokio::task::spawn_blocking(move || policy_from_jwt(&jwt))
        .await
        .map_err(|_| ServiceError::Worker)??;
    coffer_attest_policy::parse(&text).map_err(ServiceError::PolicyInvalid)?;
    st.store
        .set(SGX_ENCLAVE, &text)
        .await
        .map_err(ServiceError::Store)?;
    tracing::info!(hash = %policy_hash(&text), "attestation policy set");
    tokio::task::spawn_blocking(move || {
        policy_answer(
            &st2,
            &[
                ("x-ms-policy-result", "Updated".into()),
                ("x-ms-policy-hash", policy_hash(&text).into()),
            ],
        )
    })
    .await
    .map_err(|_| ServiceError::Worker)?
}

/// `POST /policies/SgxEnclave:reset`
async fn reset_policy<S: PolicyStore>(
    State(st): St<S>,
    Path(kind): Path<String>,
    Query(q): Query<ApiVersion>,
    headers: HeaderMap,
) -> Result<Response, ServiceError> {
    require_admin(&st, &headers)?;
    let Some(kind) = kind.strip_suffix(":reset") else {
        return Err(ServiceError::UnknownAttestationType(kind));
    };
    check_kind(kind)?;
    check_api_version(&q)?;
    st.store
        .reset(SGX_ENCLAVE)
        .await
        .map_err(ServiceError::Store)?;
    tracing::info!("attestation policy reset to the default");
    let st2 = st.clone();
    tokio::task::spawn_blocking(move || {
        policy_answer(
            &st2,
            &[
                ("x-ms-policy-result", "Removed".into()),
                ("x-ms-policy-hash", policy_hash(DEFAULT_SGX_POLICY).into()),
            ],
        )
    })
    .await
    .map_err(|_| ServiceError::Worker)?
}
