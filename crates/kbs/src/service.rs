//! The key broker's HTTP service: Key Vault's key API and secure key release.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use coffer_store::{
    KeyMaterial, KeyVersion, MasterKey, NewVersion, Store, StoreError, StoredPolicy, VersionPatch,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::{DecodeRsaPublicKey, EncodeRsaPublicKey};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::auth::{AuthTable, Caller, Role};
use crate::policy::{Decision, ReleasePolicy};
use crate::trust::{TrustedIssuer, Verifier};
use crate::wrap::{self, Enc};
use crate::{b64url, b64url_decode};

/// How long a deleted key can be recovered.
pub const RECOVERY_PERIOD: Duration = Duration::from_secs(90 * 86400);
/// The largest request body, in bytes.
const MAX_BODY: usize = 256 * 1024;

/// The service's configuration.
#[derive(Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    /// `None`: an SQLite file in the data directory.
    pub database: Option<String>,
    /// `None`: `master.key` in the data directory.
    pub master_key_file: Option<PathBuf>,
    pub auth: AuthTable,
    pub trust: Vec<TrustedIssuer>,
    /// HTTPS: the certificate chain and private key (PEM files); plain HTTP when `None`.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Why the service did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot create the data directory {path}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    MasterKey(#[from] coffer_store::MasterKeyError),
    #[error("cannot open the database")]
    Store(#[from] coffer_store::OpenError),
    #[error("cannot make the signing key")]
    SigningKey(#[source] rsa::Error),
    #[error("cannot encode the signing key")]
    SigningKeyEncoding,
    #[error("cannot make the signing certificate")]
    Certificate(#[source] rcgen::Error),
    #[error("cannot use the signing key")]
    Jwt(#[source] jsonwebtoken::errors::Error),
    #[error("cannot load the TLS certificate {cert} or key {key}")]
    Tls {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The signer of release answers: an RSA-2048 key made at start and its self-signed
/// certificate, sent as `x5c`.
struct Signer {
    key: EncodingKey,
    x5c: String,
    x5t_s256: String,
    kid: String,
}

/// The running service's state.
pub struct Service {
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    store: Arc<Store>,
    audit: AuditQueue,
    auth: AuthTable,
    verifier: Verifier,
    signer: Signer,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

fn make_signer() -> Result<Signer, StartError> {
    let key = rsa::PrivateKey::new(&mut rand::rng(), 2048).map_err(StartError::SigningKey)?;
    let pkcs8 = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| StartError::SigningKeyEncoding)?;
    let pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)
        .map_err(StartError::Certificate)?;
    let params = rcgen::CertificateParams::new(vec!["coffer-kbs".to_owned()])
        .map_err(StartError::Certificate)?;
    let cert = params.self_signed(&pair).map_err(StartError::Certificate)?;
    let der = cert.der().to_vec();
    let encoding = EncodingKey::from_rsa_pem(pkcs8.as_bytes()).map_err(StartError::Jwt)?;
    let thumb = Sha256::digest(&der);
    Ok(Signer {
        key: encoding,
        x5c: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der),
        x5t_s256: b64url(&thumb),
        kid: hex::encode(&thumb[..16]),
    })
}

impl Service {
    /// Opens the store and makes the signer.
    pub async fn start(config: Config) -> Result<Arc<Service>, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let master_path = config
            .master_key_file
            .clone()
            .unwrap_or_else(|| config.data_dir.join("master.key"));
        let master = MasterKey::load_or_create(&master_path)?;
        crate::install_crypto_provider();
        let tls = match &config.tls {
            None => None,
            Some((cert, key)) => Some(
                axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                    .await
                    .map_err(|source| StartError::Tls {
                        cert: cert.clone(),
                        key: key.clone(),
                        source,
                    })?,
            ),
        };
        let url = config
            .database
            .clone()
            .unwrap_or_else(|| coffer_store::sqlite_url(&config.data_dir.join("kbs.db")));
        let store = Store::open(&url, master).await?;
        let signer = tokio::task::spawn_blocking(make_signer)
            .await
            .map_err(|_| StartError::SigningKeyEncoding)??;
        let store = Arc::new(store);
        let (audit, queue) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(audit_writer(store.clone(), queue));
        Ok(Arc::new(Service {
            tls,
            audit,
            store,
            auth: config.auth,
            verifier: Verifier::new(config.trust),
            signer,
        }))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The HTTP routes.
    pub fn router(self: &Arc<Service>) -> Router {
        Router::new()
            .route("/keys", get(list_keys))
            .route(
                "/keys/{name}",
                get(get_latest).put(import_key).delete(delete_key),
            )
            .route("/keys/{name}/", get(get_latest))
            .route("/keys/{name}/create", post(create_key).put(create_key))
            .route("/keys/{name}/release", post(release_latest))
            .route(
                "/keys/{name}/{version}",
                get(get_version).patch(patch_version),
            )
            .route("/keys/{name}/{version}/release", post(release_version))
            .route("/deletedkeys", get(list_deleted))
            .route("/deletedkeys/{name}", get(get_deleted).delete(purge_key))
            .route("/deletedkeys/{name}/recover", post(recover_key))
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
            .with_state(self.clone())
    }

    /// Serves on `listener` until the task is dropped.
    pub async fn serve(
        self: Arc<Service>,
        listener: tokio::net::TcpListener,
    ) -> std::io::Result<()> {
        // Deleted keys past their recovery period are purged once an hour.
        let purger = {
            let service = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(3600));
                loop {
                    tick.tick().await;
                    match service.store.purge_expired().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(
                            purged = n,
                            "purged deleted keys past their recovery period"
                        ),
                        Err(e) => tracing::warn!(error = ?e, "cannot purge expired deleted keys"),
                    }
                }
            })
        };
        let _purger = AbortOnDrop(purger);
        let router = self.router();
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        match self.tls.clone() {
            None => axum::serve(listener, app).await,
            Some(tls) => {
                let listener = listener.into_std()?;
                axum_server::from_tcp_rustls(listener, tls).serve(app).await
            }
        }
    }
}

type AuditQueue =
    tokio::sync::mpsc::Sender<(coffer_store::AuditRecord, tokio::sync::oneshot::Sender<()>)>;

/// The most audit records committed in one transaction.
const AUDIT_BATCH: usize = 256;

/// Appends queued audit records, as many as are waiting (up to [`AUDIT_BATCH`]) in one
/// transaction, and tells each request when its record is committed. Ends when the service is
/// dropped.
async fn audit_writer(
    store: Arc<Store>,
    mut queue: tokio::sync::mpsc::Receiver<(
        coffer_store::AuditRecord,
        tokio::sync::oneshot::Sender<()>,
    )>,
) {
    let mut batch = Vec::with_capacity(AUDIT_BATCH);
    while queue.recv_many(&mut batch, AUDIT_BATCH).await > 0 {
        let (records, waiting): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        if let Err(e) = store.append_audit_batch(&records).await {
            tracing::error!(error = ?e, ?records, "cannot append to the audit log");
        }
        for done in waiting {
            let _ = done.send(());
        }
    }
}

/// Aborts a background task when the server future ends or is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A Key Vault error answer.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    challenge: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            challenge: None,
        }
    }

    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BadParameter", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        let mut response = (self.status, body).into_response();
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match &e {
            StoreError::InvalidName { .. } => ApiError::bad(e.to_string()),
            StoreError::KeyNotFound { .. } | StoreError::VersionNotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "KeyNotFound", e.to_string())
            }
            StoreError::NotDeleted { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "DeletedKeyNotFound", e.to_string())
            }
            StoreError::Deleted { .. } | StoreError::KtyMismatch { .. } => {
                ApiError::new(StatusCode::CONFLICT, "Conflict", e.to_string())
            }
            StoreError::PolicyImmutable { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "Forbidden", e.to_string())
            }
            _ => {
                tracing::error!(error = ?e, "store failure");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "storage failure",
                )
            }
        }
    }
}

type ApiResult = Result<Response, ApiError>;

/// The service's base URL as the caller sees it, for `kid`s.
fn base_url_with(scheme: &str, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".:-[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

impl Service {
    /// The service's base URL as the caller sees it, for `kid`s.
    fn base_url(&self, headers: &HeaderMap) -> String {
        base_url_with(if self.tls.is_some() { "https" } else { "http" }, headers)
    }

    /// The caller of a request; 401 with Key Vault's challenge when it has no known token.
    /// The caller of a request; 401 with Key Vault's challenge when it has no known token, 403
    /// when its role does not allow `operation`. Refusals are audited too (as `anonymous` when
    /// the token is unknown).
    async fn caller(
        &self,
        headers: &HeaderMap,
        want: Role,
        operation: &str,
        name: Option<&str>,
    ) -> Result<Caller, ApiError> {
        let result = self.authenticate(headers, want);
        if let Err((caller, e)) = &result {
            self.audit(caller, operation, name, None, Some(e)).await;
        }
        result.map_err(|(_, e)| e)
    }

    fn authenticate(&self, headers: &HeaderMap, want: Role) -> Result<Caller, (Caller, ApiError)> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(caller) = token.and_then(|t| self.auth.caller(t)) else {
            let base = self.base_url(headers);
            let anonymous = Caller {
                role: Role::Releaser,
                principal: "anonymous".to_owned(),
            };
            return Err((
                anonymous,
                ApiError {
                    challenge: Some(format!(
                        "Bearer authorization=\"{base}\", resource=\"{base}\""
                    )),
                    ..ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "Unauthorized",
                        "a bearer token is required",
                    )
                },
            ));
        };
        if want == Role::Administrator && caller.role != Role::Administrator {
            return Err((
                caller,
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    "this operation needs the administrator role",
                ),
            ));
        }
        Ok(caller)
    }

    async fn audit(
        &self,
        caller: &Caller,
        operation: &str,
        name: Option<&str>,
        version: Option<i64>,
        error: Option<&ApiError>,
    ) {
        let (outcome, detail) = match error {
            None => ("ok".to_owned(), None),
            Some(e) => (e.code.to_owned(), Some(e.message.clone())),
        };
        let record = coffer_store::AuditRecord {
            principal: caller.principal.clone(),
            operation: operation.to_owned(),
            key_name: name.map(str::to_owned),
            version,
            outcome,
            detail,
        };
        // Group commit: the writer task appends the records of concurrent requests in one
        // transaction; the request goes on once its record is committed.
        let (done, committed) = tokio::sync::oneshot::channel();
        if self.audit.send((record, done)).await.is_ok() {
            let _ = committed.await;
        }
    }
}

fn kid(base: &str, name: &str, version: i64) -> String {
    format!("{base}/keys/{name}/{version}")
}

fn release_policy_json(policy: &StoredPolicy) -> Value {
    json!({
        "contentType": "application/json; charset=utf-8",
        "data": b64url(policy.document.as_bytes()),
        "immutable": policy.immutable,
    })
}

fn attributes_json(v: &KeyVersion) -> Value {
    json!({
        "enabled": v.enabled,
        "exportable": v.exportable,
        "created": v.created_at,
        "updated": v.updated_at,
        "recoveryLevel": "Recoverable",
        "recoverableDays": RECOVERY_PERIOD.as_secs() / 86400,
    })
}

/// The public JWK of a version.
fn key_json(base: &str, v: &KeyVersion) -> Value {
    let mut key = json!({"kid": kid(base, &v.name, v.version), "kty": v.kty, "key_ops": v.key_ops});
    if let Some(public) = v
        .public_key
        .as_deref()
        .and_then(|der| rsa::PublicKey::from_pkcs1_der(der).ok())
    {
        key["n"] = Value::String(b64url(&public.n().to_be_bytes_trimmed_vartime()));
        key["e"] = Value::String(b64url(&public.e().to_be_bytes_trimmed_vartime()));
    }
    key
}

fn bundle(base: &str, v: &KeyVersion) -> Value {
    let mut b = json!({"key": key_json(base, v), "attributes": attributes_json(v)});
    if let Some(p) = &v.release_policy {
        b["release_policy"] = release_policy_json(p);
    }
    b
}

#[derive(Debug, Deserialize, Default)]
struct Attributes {
    enabled: Option<bool>,
    exportable: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct PolicyIn {
    #[serde(rename = "contentType")]
    content_type: Option<String>,
    data: String,
    #[serde(default)]
    immutable: bool,
}

#[derive(Debug, Deserialize)]
struct CreateBody {
    kty: String,
    key_size: Option<u32>,
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    attributes: Attributes,
    release_policy: Option<PolicyIn>,
}

#[derive(Debug, Deserialize)]
struct ImportBody {
    key: Value,
    #[serde(default)]
    attributes: Attributes,
    release_policy: Option<PolicyIn>,
}

#[derive(Debug, Deserialize)]
struct PatchBody {
    attributes: Option<Attributes>,
    release_policy: Option<PolicyIn>,
}

#[derive(Debug, Deserialize)]
struct ReleaseBody {
    target: String,
    nonce: Option<String>,
    enc: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApiVersion {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
}

/// Validates a release policy given over the API.
fn policy_in(p: PolicyIn) -> Result<StoredPolicy, ApiError> {
    if let Some(ct) = &p.content_type
        && !ct.to_ascii_lowercase().starts_with("application/json")
    {
        return Err(ApiError::bad(format!(
            "release policy content type {ct:?} is not application/json"
        )));
    }
    let bytes = b64url_decode(&p.data)
        .ok_or_else(|| ApiError::bad("release_policy.data is not base64url"))?;
    ReleasePolicy::parse(&bytes)
        .map_err(|e| ApiError::bad(format!("release policy refused: {e}")))?;
    let document =
        String::from_utf8(bytes).map_err(|_| ApiError::bad("release policy is not UTF-8"))?;
    Ok(StoredPolicy {
        document,
        immutable: p.immutable,
    })
}

fn kty_base(kty: &str) -> Option<&'static str> {
    match kty {
        "oct" | "oct-HSM" => Some("oct"),
        "RSA" | "RSA-HSM" => Some("RSA"),
        _ => None,
    }
}

fn check_exportable(exportable: bool, policy: &Option<StoredPolicy>) -> Result<(), ApiError> {
    if exportable && policy.is_none() {
        return Err(ApiError::bad("an exportable key needs a release policy"));
    }
    if !exportable && policy.is_some() {
        return Err(ApiError::bad("a release policy needs an exportable key"));
    }
    Ok(())
}

/// Generates key material: (material, public part, size in bits).
fn generate(kty: &str, size: Option<u32>) -> Result<(KeyMaterial, Option<Vec<u8>>, u32), ApiError> {
    match kty_base(kty) {
        Some("oct") => {
            let bits = size.unwrap_or(256);
            if ![128, 192, 256].contains(&bits) {
                return Err(ApiError::bad("oct key_size must be 128, 192 or 256"));
            }
            let mut bytes = vec![0u8; (bits / 8) as usize];
            rand::fill(&mut bytes[..]);
            Ok((KeyMaterial::new(bytes), None, bits))
        }
        Some(_) => {
            let bits = size.unwrap_or(2048);
            if ![2048, 3072, 4096].contains(&bits) {
                return Err(ApiError::bad("RSA key_size must be 2048, 3072 or 4096"));
            }
            let key = rsa::PrivateKey::new(&mut rand::rng(), bits as usize).map_err(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "RSA key generation failed",
                )
            })?;
            rsa_parts(&key, bits)
        }
        None => Err(ApiError::bad(format!("unsupported kty {kty:?}"))),
    }
}

fn rsa_parts(
    key: &rsa::PrivateKey,
    bits: u32,
) -> Result<(KeyMaterial, Option<Vec<u8>>, u32), ApiError> {
    let internal = || {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "RSA key encoding failed",
        )
    };
    let der = key.to_pkcs8_der().map_err(|_| internal())?;
    let public = key.to_public_key().to_pkcs1_der().map_err(|_| internal())?;
    Ok((
        KeyMaterial::new(der.as_bytes().to_vec()),
        Some(public.as_bytes().to_vec()),
        bits,
    ))
}

fn default_ops(kty: &str) -> Vec<String> {
    let ops: &[&str] = match kty_base(kty) {
        Some("oct") => &["encrypt", "decrypt", "wrapKey", "unwrapKey"],
        _ => &[
            "encrypt",
            "decrypt",
            "sign",
            "verify",
            "wrapKey",
            "unwrapKey",
        ],
    };
    ops.iter().map(|s| (*s).to_owned()).collect()
}

async fn create_key(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(_): Query<ApiVersion>,
    body: Result<Json<CreateBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let caller = s
        .caller(&headers, Role::Administrator, "create", Some(&name))
        .await?;
    let result = async {
        let Json(body) = body.map_err(|e| ApiError::bad(e.body_text()))?;
        let policy = body.release_policy.map(policy_in).transpose()?;
        let exportable = body.attributes.exportable.unwrap_or(false);
        check_exportable(exportable, &policy)?;
        let kty = body.kty.clone();
        let size = body.key_size;
        let (material, public, bits) = tokio::task::spawn_blocking(move || generate(&kty, size))
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "key generation failed",
                )
            })??;
        let v = s
            .store
            .create_version(
                &name,
                NewVersion {
                    key_ops: body.key_ops.unwrap_or_else(|| default_ops(&body.kty)),
                    kty: body.kty,
                    key_size: bits,
                    enabled: body.attributes.enabled.unwrap_or(true),
                    exportable,
                    material,
                    public_key: public,
                    release_policy: policy,
                },
            )
            .await?;
        Ok::<_, ApiError>((
            v.version,
            Json(bundle(&s.base_url(&headers), &v)).into_response(),
        ))
    }
    .await;
    let version = result.as_ref().ok().map(|(v, _)| *v);
    let result = result.map(|(_, r)| r);
    s.audit(
        &caller,
        "create",
        Some(&name),
        version,
        result.as_ref().err(),
    )
    .await;
    result
}

async fn import_key(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(_): Query<ApiVersion>,
    body: Result<Json<ImportBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let caller = s
        .caller(&headers, Role::Administrator, "import", Some(&name))
        .await?;
    let result = async {
        let Json(body) = body.map_err(|e| ApiError::bad(e.body_text()))?;
        let policy = body.release_policy.map(policy_in).transpose()?;
        let exportable = body.attributes.exportable.unwrap_or(false);
        check_exportable(exportable, &policy)?;
        let kty = body
            .key
            .get("kty")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let (material, public, bits) = match kty_base(&kty) {
            Some("oct") => {
                let k = body
                    .key
                    .get("k")
                    .and_then(Value::as_str)
                    .and_then(b64url_decode)
                    .ok_or_else(|| ApiError::bad("key.k is missing or not base64url"))?;
                if ![16, 24, 32].contains(&k.len()) {
                    return Err(ApiError::bad("an oct key is 16, 24 or 32 bytes"));
                }
                let bits = u32::try_from(k.len() * 8).unwrap_or(0);
                (KeyMaterial::new(k), None, bits)
            }
            Some(_) => {
                let part = |n: &str| {
                    body.key
                        .get(n)
                        .and_then(Value::as_str)
                        .and_then(b64url_decode)
                        .map(|b| rsa::BoxedUint::from_be_slice_vartime(&b))
                        .ok_or_else(|| {
                            ApiError::bad(format!("key.{n} is missing or not base64url"))
                        })
                };
                let key = rsa::PrivateKey::from_components(
                    part("n")?,
                    part("e")?,
                    part("d")?,
                    vec![part("p")?, part("q")?],
                )
                .map_err(|e| ApiError::bad(format!("not a valid RSA key: {e}")))?;
                let bits = u32::try_from(key.size() * 8).unwrap_or(0);
                if ![2048, 3072, 4096].contains(&bits) {
                    return Err(ApiError::bad(
                        "RSA keys of 2048, 3072 or 4096 bits are accepted",
                    ));
                }
                rsa_parts(&key, bits)?
            }
            None => return Err(ApiError::bad(format!("unsupported kty {kty:?}"))),
        };
        let key_ops = match body.key.get("key_ops") {
            Some(ops) => serde_json::from_value(ops.clone())
                .map_err(|_| ApiError::bad("key.key_ops is not a list of strings"))?,
            None => default_ops(&kty),
        };
        let v = s
            .store
            .create_version(
                &name,
                NewVersion {
                    kty,
                    key_size: bits,
                    key_ops,
                    enabled: body.attributes.enabled.unwrap_or(true),
                    exportable,
                    material,
                    public_key: public,
                    release_policy: policy,
                },
            )
            .await?;
        Ok::<_, ApiError>((
            v.version,
            Json(bundle(&s.base_url(&headers), &v)).into_response(),
        ))
    }
    .await;
    let version = result.as_ref().ok().map(|(v, _)| *v);
    let result = result.map(|(_, r)| r);
    s.audit(
        &caller,
        "import",
        Some(&name),
        version,
        result.as_ref().err(),
    )
    .await;
    result
}

fn parse_version(version: &str) -> Result<Option<i64>, ApiError> {
    if version.is_empty() {
        return Ok(None);
    }
    version
        .parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "KeyNotFound",
                format!("no version {version:?}"),
            )
        })
}

async fn show(s: &Service, headers: &HeaderMap, name: &str, version: Option<i64>) -> ApiResult {
    let caller = s
        .caller(headers, Role::Administrator, "get", Some(name))
        .await?;
    let result = async {
        let v = s.store.get_version(name, version).await?;
        Ok(Json(bundle(&s.base_url(headers), &v)).into_response())
    }
    .await;
    s.audit(&caller, "get", Some(name), version, result.as_ref().err())
        .await;
    result
}

async fn get_latest(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(_): Query<ApiVersion>,
) -> ApiResult {
    show(&s, &headers, &name, None).await
}

async fn get_version(
    State(s): State<Arc<Service>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    Query(_): Query<ApiVersion>,
) -> ApiResult {
    let version = parse_version(&version)?;
    show(&s, &headers, &name, version).await
}

async fn list_keys(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    Query(_): Query<ApiVersion>,
) -> ApiResult {
    let caller = s
        .caller(&headers, Role::Administrator, "list", None)
        .await?;
    let result = async {
        let base = s.base_url(&headers);
        let keys: Vec<Value> = s
            .store
            .list_keys()
            .await?
            .iter()
            .map(|v| json!({"kid": format!("{base}/keys/{}", v.name), "attributes": attributes_json(v)}))
            .collect();
        Ok(Json(json!({"value": keys, "nextLink": null})).into_response())
    }
    .await;
    s.audit(&caller, "list", None, None, result.as_ref().err())
        .await;
    result
}

async fn patch_version(
    State(s): State<Arc<Service>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    Query(_): Query<ApiVersion>,
    body: Result<Json<PatchBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let caller = s
        .caller(&headers, Role::Administrator, "update", Some(&name))
        .await?;
    let mut number = None;
    let result = async {
        let Json(body) = body.map_err(|e| ApiError::bad(e.body_text()))?;
        let version = match parse_version(&version)? {
            Some(v) => v,
            None => s.store.get_version(&name, None).await?.version,
        };
        number = Some(version);
        let current = s.store.get_version(&name, Some(version)).await?;
        let attributes = body.attributes.unwrap_or_default();
        if attributes
            .exportable
            .is_some_and(|e| e != current.exportable)
        {
            return Err(ApiError::bad("exportable cannot change"));
        }
        let release_policy = body.release_policy.map(policy_in).transpose()?;
        if release_policy.is_some() && !current.exportable {
            return Err(ApiError::bad("a release policy needs an exportable key"));
        }
        let v = s
            .store
            .update_version(
                &name,
                version,
                VersionPatch {
                    enabled: attributes.enabled,
                    release_policy,
                },
            )
            .await?;
        Ok(Json(bundle(&s.base_url(&headers), &v)).into_response())
    }
    .await;
    s.audit(
        &caller,
        "update",
        Some(&name),
        number,
        result.as_ref().err(),
    )
    .await;
    result
}

fn deleted_json(base: &str, d: &coffer_store::DeletedKey) -> Value {
    json!({
        "recoveryId": format!("{base}/deletedkeys/{}", d.name),
        "deletedDate": d.deleted_at,
        "scheduledPurgeDate": d.scheduled_purge_at,
        "key": {"kid": kid(base, &d.name, d.last_version)},
    })
}

async fn delete_key(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(_): Query<ApiVersion>,
) -> ApiResult {
    let caller = s
        .caller(&headers, Role::Administrator, "delete", Some(&name))
        .await?;
    let result = async {
        let d = s.store.delete_key(&name, RECOVERY_PERIOD).await?;
        Ok(Json(deleted_json(&s.base_url(&headers), &d)).into_response())
    }
    .await;
    s.audit(&caller, "delete", Some(&name), None, result.as_ref().err())
        .await;
    result
}

async fn list_deleted(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    Query(_): Query<ApiVersion>,
) -> ApiResult {
    let caller = s
        .caller(&headers, Role::Administrator, "list-deleted", None)
        .await?;
    let result = async {
        let base = s.base_url(&headers);
        let list: Vec<Value> = s
            .store
            .list_deleted()
            .await?
            .iter()
            .map(|d| deleted_json(&base, d))
            .collect();
        Ok(Json(json!({"value": list, "nextLink": null})).into_response())
    }
    .await;
    s.audit(&caller, "list-deleted", None, None, result.as_ref().err())
        .await;
    result
}

async fn get_deleted(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(_): Query<ApiVersion>,
) -> ApiResult {
    let caller = s
        .caller(&headers, Role::Administrator, "get-deleted", Some(&name))
        .await?;
    let result = async {
        let base = s.base_url(&headers);
        let d = s
            .store
            .list_deleted()
            .await?
            .into_iter()
            .find(|d| d.name == name)
            .ok_or(StoreError::NotDeleted { name: name.clone() })?;
        Ok(Json(deleted_json(&base, &d)).into_response())
    }
    .await;
    s.audit(
        &caller,
        "get-deleted",
        Some(&name),
        None,
        result.as_ref().err(),
    )
    .await;
    result
}

async fn recover_key(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(_): Query<ApiVersion>,
) -> ApiResult {
    let caller = s
        .caller(&headers, Role::Administrator, "recover", Some(&name))
        .await?;
    let result = async {
        s.store.recover_key(&name).await?;
        let v = s.store.get_version(&name, None).await?;
        Ok(Json(bundle(&s.base_url(&headers), &v)).into_response())
    }
    .await;
    s.audit(&caller, "recover", Some(&name), None, result.as_ref().err())
        .await;
    result
}

async fn purge_key(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(_): Query<ApiVersion>,
) -> ApiResult {
    let caller = s
        .caller(&headers, Role::Administrator, "purge", Some(&name))
        .await?;
    let result = async {
        s.store.purge_key(&name).await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    s.audit(&caller, "purge", Some(&name), None, result.as_ref().err())
        .await;
    result
}

async fn release_latest(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(q): Query<ApiVersion>,
    body: Result<Json<ReleaseBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    release(&s, &headers, &name, None, q, body).await
}

async fn release_version(
    State(s): State<Arc<Service>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<ApiVersion>,
    body: Result<Json<ReleaseBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let version = parse_version(&version)?;
    release(&s, &headers, &name, version, q, body).await
}

async fn release(
    s: &Service,
    headers: &HeaderMap,
    name: &str,
    version: Option<i64>,
    q: ApiVersion,
    body: Result<Json<ReleaseBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let caller = s
        .caller(headers, Role::Releaser, "release", Some(name))
        .await?;
    let mut number = version;
    let result = async {
        let Json(body) = body.map_err(|e| ApiError::bad(e.body_text()))?;
        let enc = match body.enc.as_deref() {
            None => Enc::RsaAesKeyWrap256,
            Some(e) => Enc::from_name(e).ok_or_else(|| ApiError::bad(format!("unsupported enc {e:?}")))?,
        };
        // The caller holds a releaser token: they may know the key exists.
        let v = s.store.get_version(name, version).await?;
        number = Some(v.version);
        let (issuer, claims) = s.verifier.verify(&body.target).await.map_err(|e| {
            tracing::info!(error = ?e, name, "release refused: token");
            ApiError::new(StatusCode::UNAUTHORIZED, "InvalidToken", format!("attestation token refused: {e}"))
        })?;
        let forbidden = |m: String| ApiError::new(StatusCode::FORBIDDEN, "Forbidden", m);
        if !v.exportable {
            return Err(forbidden("the key is not exportable".to_owned()));
        }
        if !v.enabled {
            return Err(forbidden("the key is disabled".to_owned()));
        }
        let Some(stored) = &v.release_policy else {
            return Err(forbidden("the key has no release policy".to_owned()));
        };
        let policy = ReleasePolicy::parse(stored.document.as_bytes())
            .map_err(|e| forbidden(format!("the stored release policy does not parse: {e}")))?;
        match policy.evaluate(&issuer, &claims) {
            Decision::Release => {}
            Decision::UnknownAuthority => {
                return Err(forbidden(format!("the token's issuer {issuer} is not an authority of the release policy")));
            }
            Decision::NotMet { reason } => return Err(forbidden(format!("release policy not met: {reason}"))),
        }
        let (wrapping_kid, wrapping) = wrap::wrapping_key(&claims).map_err(|e| ApiError::bad(e.to_string()))?;
        let material = s.store.material(name, v.version).await?;
        let ciphertext = tokio::task::spawn_blocking(move || wrap::wrap(&wrapping, enc, material.as_bytes()))
            .await
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "wrapping failed"))?
            .map_err(|e| ApiError::bad(e.to_string()))?;
        let base = s.base_url(headers);
        let key_kid = kid(&base, name, v.version);
        let key_hsm = json!({
            "schema_version": "1.0",
            "header": {"kid": wrapping_kid, "alg": "dir", "enc": enc.name()},
            "ciphertext": b64url(&ciphertext),
        });
        let mut request = json!({
            "api-version": q.api_version.unwrap_or_else(|| "7.4".to_owned()),
            "enc": enc.name(),
            "kid": key_kid,
        });
        if let Some(nonce) = body.nonce {
            request["nonce"] = Value::String(nonce);
        }
        let payload = json!({
            "request": request,
            "response": {"key": {
                "key": {"kid": key_kid, "kty": v.kty, "key_ops": v.key_ops, "key_hsm": b64url(key_hsm.to_string().as_bytes())},
                "attributes": attributes_json(&v),
                "release_policy": release_policy_json(stored),
            }},
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(s.signer.kid.clone());
        header.x5c = Some(vec![s.signer.x5c.clone()]);
        header.x5t_s256 = Some(s.signer.x5t_s256.clone());
        let jws = jsonwebtoken::encode(&header, &payload, &s.signer.key)
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "signing failed"))?;
        Ok(Json(json!({"value": jws})).into_response())
    }
    .await;
    s.audit(
        &caller,
        "release",
        Some(name),
        number,
        result.as_ref().err(),
    )
    .await;
    result
}
