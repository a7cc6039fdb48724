//! The key broker over HTTP: a real server on loopback, a test attestation issuer whose JWKS is
//! pinned with `--trust ISSUER=JWKS_FILE`, Key Vault's key API, and secure key release checked
//! by an independent unwrapper (Python `cryptography`).

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use coffer_kbs::auth::AuthTable;
use coffer_kbs::service::{Config, Service};
use coffer_kbs::{b64url, b64url_decode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ISS: &str = "http://issuer.test";
const ADMIN: &str = "admin-token-0123456789";
const RELEASER: &str = "releaser-token-0123456789";
const MRENCLAVE: &str = "8f2b1a09c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e";

struct Issuer {
    key: EncodingKey,
    kid: String,
    iss: String,
}

fn rsa_key() -> rsa::PrivateKey {
    rsa::PrivateKey::new(&mut rand::rng(), 2048).unwrap()
}

fn public_jwk(key: &rsa::PrivateKey, kid: &str) -> Value {
    json!({
        "kty": "RSA",
        "kid": kid,
        "n": b64url(&key.n().to_be_bytes_trimmed_vartime()),
        "e": b64url(&key.e().to_be_bytes_trimmed_vartime()),
    })
}

impl Issuer {
    fn new(iss: &str, kid: &str) -> (Issuer, Value) {
        let key = rsa_key();
        let pem = key.to_pkcs1_pem(LineEnding::LF).unwrap();
        let mut jwk = public_jwk(&key, kid);
        jwk["alg"] = json!("RS256");
        jwk["use"] = json!("sig");
        (
            Issuer {
                key: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
                kid: kid.to_owned(),
                iss: iss.to_owned(),
            },
            json!({"keys": [jwk]}),
        )
    }

    fn token(&self, claims: &Value, tweak: impl FnOnce(&mut Header)) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        tweak(&mut header);
        let mut claims = claims.clone();
        claims["iss"] = json!(self.iss);
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// An SGX enclave's claims, with its wrapping key in x-ms-runtime.keys.
fn claims(mrenclave: &str, debuggable: bool, wrapping: &rsa::PrivateKey) -> Value {
    let mut wrap = public_jwk(wrapping, "enclave-wrap");
    wrap["key_ops"] = json!(["encrypt"]);
    json!({
        "exp": now() + 600,
        "iat": now(),
        "nbf": now() - 5,
        "x-ms-attestation-type": "sgx",
        "x-ms-sgx-mrenclave": mrenclave,
        "x-ms-sgx-is-debuggable": debuggable,
        "x-ms-sgx-svn": 2,
        "x-ms-runtime": {"keys": [{"kid": "sig-only", "kty": "RSA", "key_ops": ["verify"]}, wrap]},
    })
}

fn policy_doc() -> Value {
    json!({"version": "1.0.0", "anyOf": [{"authority": format!("{ISS}/"), "allOf": [
        {"claim": "x-ms-sgx-mrenclave", "equals": MRENCLAVE},
        {"claim": "x-ms-sgx-is-debuggable", "condition": "equals", "value": "false"},
    ]}]})
}

fn release_policy(doc: &Value, immutable: bool) -> Value {
    json!({"contentType": "application/json; charset=utf-8", "data": b64url(doc.to_string().as_bytes()), "immutable": immutable})
}

fn write_private(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

struct Broker {
    url: String,
    service: Arc<Service>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start_broker(
    dir: &Path,
    jwks: &Value,
    database: Option<String>,
    master: Option<&Path>,
) -> Broker {
    let jwks_file = dir.join("issuer-jwks.json");
    if !jwks_file.exists() {
        std::fs::write(&jwks_file, jwks.to_string()).unwrap();
    }
    let auth_file = dir.join("auth");
    if !auth_file.exists() {
        write_private(
            &auth_file,
            &format!("# roles\nadministrator {ADMIN}\nreleaser {RELEASER}\n"),
        );
    }
    let config = Config {
        data_dir: dir.join("data"),
        database,
        master_key_file: master.map(Path::to_owned),
        auth: AuthTable::load(&auth_file).unwrap(),
        trust: vec![format!("{ISS}={}", jwks_file.display()).parse().unwrap()],
        tls: None,
    };
    let service = Service::start(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(service.clone().serve(listener));
    Broker { url, service, task }
}

struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value, headers)
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (s, v, _) = self.call(method, path, Some(ADMIN), body).await;
        (s, v)
    }

    async fn release(&self, name: &str, target: &str, enc: Option<&str>) -> (u16, Value) {
        let mut body = json!({"target": target, "nonce": "n-123"});
        if let Some(e) = enc {
            body["enc"] = json!(e);
        }
        let (s, v, _) = self
            .call(
                reqwest::Method::POST,
                &format!("/keys/{name}/release?api-version=7.4"),
                Some(RELEASER),
                Some(body),
            )
            .await;
        (s, v)
    }
}

fn client(url: &str) -> Client {
    Client {
        http: reqwest::Client::new(),
        url: url.to_owned(),
    }
}

/// Checks the release answer's JWS (RS256 under its x5c certificate) and returns its payload.
fn check_jws(jws: &str) -> Value {
    let header = jsonwebtoken::decode_header(jws).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let x5c = header.x5c.as_ref().unwrap();
    let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &x5c[0]).unwrap();
    assert_eq!(
        header.x5t_s256.as_deref().unwrap(),
        b64url(&Sha256::digest(&der))
    );
    assert!(header.kid.is_some());
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let spki = cert.public_key().subject_public_key.data.to_vec();
    let key = jsonwebtoken::DecodingKey::from_rsa_der(&spki);
    let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(jws, &key, &validation)
        .unwrap()
        .claims
}

/// The released key's ciphertext unwrapped by Python `cryptography` with the enclave's private
/// key: hex of the key material.
fn python_unwrap(private_pem: &Path, enc: &str, ciphertext: &[u8]) -> String {
    let script = r#"
import sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding
key = serialization.load_pem_private_key(open(sys.argv[1], 'rb').read(), password=None)
h = {'CKM_RSA_AES_KEY_WRAP': hashes.SHA1(), 'RSA_AES_KEY_WRAP_256': hashes.SHA256(), 'RSA_AES_KEY_WRAP_384': hashes.SHA384()}[sys.argv[2]]
ct = bytes.fromhex(sys.argv[3])
k = key.key_size // 8
aes = key.decrypt(ct[:k], padding.OAEP(mgf=padding.MGF1(algorithm=h), algorithm=h, label=None))
assert len(aes) == 32
print(aes_key_unwrap_with_padding(aes, ct[k:]).hex())
"#;
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            script,
            private_pem.to_str().unwrap(),
            enc,
            &hex::encode(ciphertext),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python unwrap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn released_ciphertext(payload: &Value, enc: &str) -> Vec<u8> {
    let key = &payload["response"]["key"]["key"];
    let hsm: Value =
        serde_json::from_slice(&b64url_decode(key["key_hsm"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(hsm["header"]["alg"], "dir");
    assert_eq!(hsm["header"]["enc"], enc);
    assert_eq!(hsm["header"]["kid"], "enclave-wrap");
    b64url_decode(hsm["ciphertext"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_api_and_release() {
    let dir = tempfile::tempdir().unwrap();
    let (issuer, jwks) = Issuer::new(ISS, "issuer-key-1");
    let broker = start_broker(dir.path(), &jwks, None, None).await;
    let c = client(&broker.url);
    use reqwest::Method as M;

    // No token: Key Vault's challenge.
    let (status, _, headers) = c.call(M::GET, "/keys?api-version=7.4", None, None).await;
    assert_eq!(status, 401);
    let challenge = headers.get("www-authenticate").unwrap().to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer authorization=\"") && challenge.contains("resource=\""),
        "{challenge}"
    );
    let (status, _, _) = c
        .call(M::GET, "/keys", Some("wrong-token-0123456789"), None)
        .await;
    assert_eq!(status, 401);

    // Import an oct key with a release policy.
    let material: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(7).wrapping_add(3))
        .collect();
    let (status, body) = c
        .admin(M::PUT, "/keys/data-key?api-version=7.5", Some(json!({
            "key": {"kty": "oct-HSM", "k": b64url(&material), "key_ops": ["wrapKey", "unwrapKey"]},
            "attributes": {"exportable": true, "enabled": true},
            "release_policy": release_policy(&policy_doc(), false),
        })))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["key"]["kid"],
        format!("{}/keys/data-key/1", broker.url)
    );
    assert!(
        body["key"].get("k").is_none(),
        "key material in a GET-shaped answer"
    );
    // The releaser role cannot manage keys.
    let (status, _, _) = c.call(M::GET, "/keys/data-key", Some(RELEASER), None).await;
    assert_eq!(status, 403);
    // An exportable key without a policy, a bad policy, arrays as values: refused.
    let (status, _) = c
        .admin(
            M::POST,
            "/keys/nopolicy/create",
            Some(json!({"kty": "oct", "attributes": {"exportable": true}})),
        )
        .await;
    assert_eq!(status, 400);
    let bad = json!({"anyOf": [{"authority": ISS, "allOf": [{"claim": "a", "equals": ["x"]}]}]});
    let (status, body) = c
        .admin(M::POST, "/keys/badpolicy/create", Some(json!({"kty": "oct", "attributes": {"exportable": true}, "release_policy": release_policy(&bad, false)})))
        .await;
    assert_eq!(status, 400, "{body}");

    // Create (PUT and Key Vault's POST), versions, GET with an empty version, list, patch.
    let (status, v1) = c
        .admin(
            M::PUT,
            "/keys/gen/create",
            Some(json!({"kty": "RSA", "key_size": 2048})),
        )
        .await;
    assert_eq!(status, 200, "{v1}");
    assert!(v1["key"]["n"].as_str().unwrap().len() > 300);
    let (status, v2) = c
        .admin(
            M::POST,
            "/keys/gen/create?api-version=2025-07-01",
            Some(json!({"kty": "RSA"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v2["key"]["kid"], format!("{}/keys/gen/2", broker.url));
    let (_, latest) = c.admin(M::GET, "/keys/gen/?api-version=7.3", None).await;
    assert_eq!(latest["key"]["kid"], v2["key"]["kid"]);
    let (_, first) = c.admin(M::GET, "/keys/gen/1", None).await;
    assert_eq!(first["key"]["n"], v1["key"]["n"]);
    let (_, list) = c.admin(M::GET, "/keys", None).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 2);
    let (status, patched) = c
        .admin(
            M::PATCH,
            "/keys/gen/1",
            Some(json!({"attributes": {"enabled": false}})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(patched["attributes"]["enabled"], false);
    // Delete, deletedkeys, recover, delete, purge.
    let (status, deleted) = c.admin(M::DELETE, "/keys/gen", None).await;
    assert_eq!(status, 200);
    assert!(
        deleted["scheduledPurgeDate"].as_i64().unwrap() > deleted["deletedDate"].as_i64().unwrap()
    );
    assert_eq!(c.admin(M::GET, "/keys/gen", None).await.0, 404);
    let (_, dl) = c.admin(M::GET, "/deletedkeys", None).await;
    assert_eq!(
        dl["value"][0]["recoveryId"],
        format!("{}/deletedkeys/gen", broker.url)
    );
    assert_eq!(
        c.admin(M::POST, "/deletedkeys/gen/recover", None).await.0,
        200
    );
    assert_eq!(c.admin(M::GET, "/keys/gen/2", None).await.0, 200);
    assert_eq!(c.admin(M::DELETE, "/keys/gen", None).await.0, 200);
    assert_eq!(c.admin(M::DELETE, "/deletedkeys/gen", None).await.0, 204);
    assert_eq!(c.admin(M::GET, "/deletedkeys/gen", None).await.0, 404);

    // Release, for each enc, unwrapped by Python.
    let wrapping = rsa_key();
    let pem_path = dir.path().join("enclave-wrap.pem");
    write_private(&pem_path, &wrapping.to_pkcs8_pem(LineEnding::LF).unwrap());
    let good = issuer.token(&claims(MRENCLAVE, false, &wrapping), |_| {});
    for enc in [
        "CKM_RSA_AES_KEY_WRAP",
        "RSA_AES_KEY_WRAP_256",
        "RSA_AES_KEY_WRAP_384",
    ] {
        let (status, body) = c.release("data-key", &good, Some(enc)).await;
        assert_eq!(status, 200, "{enc}: {body}");
        let payload = check_jws(body["value"].as_str().unwrap());
        assert_eq!(payload["request"]["enc"], enc);
        assert_eq!(payload["request"]["nonce"], "n-123");
        assert_eq!(payload["request"]["api-version"], "7.4");
        assert_eq!(
            payload["response"]["key"]["key"]["kid"],
            format!("{}/keys/data-key/1", broker.url)
        );
        assert_eq!(
            payload["response"]["key"]["release_policy"]["data"],
            b64url(policy_doc().to_string().as_bytes())
        );
        let ct = released_ciphertext(&payload, enc);
        assert_eq!(
            python_unwrap(&pem_path, enc, &ct),
            hex::encode(&material),
            "{enc}"
        );
    }
    // The default enc is RSA_AES_KEY_WRAP_256; the version path works too.
    let (status, body, _) = c
        .call(
            M::POST,
            "/keys/data-key/1/release",
            Some(RELEASER),
            Some(json!({"target": good})),
        )
        .await;
    assert_eq!(status, 200);
    let payload = check_jws(body["value"].as_str().unwrap());
    assert_eq!(payload["request"]["enc"], "RSA_AES_KEY_WRAP_256");

    // Refusals.
    let refused = |status: u16, body: &Value, what: &str, expect_status: u16, needle: &str| {
        assert_eq!(status, expect_status, "{what}: {body}");
        let msg = body["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{what}: {msg}");
    };
    let mut expired = claims(MRENCLAVE, false, &wrapping);
    expired["exp"] = json!(now() - 3600);
    expired["nbf"] = json!(now() - 7200);
    let (s, b) = c
        .release("data-key", &issuer.token(&expired, |_| {}), None)
        .await;
    refused(s, &b, "expired", 401, "attestation token refused");
    let mut future = claims(MRENCLAVE, false, &wrapping);
    future["nbf"] = json!(now() + 3600);
    let (s, b) = c
        .release("data-key", &issuer.token(&future, |_| {}), None)
        .await;
    refused(s, &b, "not yet valid", 401, "attestation token refused");

    let (evil, evil_jwks) = Issuer::new("http://evil.test", "evil-key");
    let (s, b) = c
        .release(
            "data-key",
            &evil.token(&claims(MRENCLAVE, false, &wrapping), |_| {}),
            None,
        )
        .await;
    refused(
        s,
        &b,
        "untrusted issuer",
        401,
        "no trusted issuer has a key",
    );
    // An attacker's key served at jku; the kid the trusted issuer uses, or the attacker's.
    let jku_server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jku_url = format!("http://{}/jwks", jku_server.local_addr().unwrap());
    let served = evil_jwks.clone();
    let jku_task = tokio::spawn(
        axum::serve(
            jku_server,
            axum::Router::new().route(
                "/jwks",
                axum::routing::get(move || async move { axum::Json(served) }),
            ),
        )
        .into_future(),
    );
    let forged = Issuer {
        key: evil.key.clone(),
        kid: "issuer-key-1".to_owned(),
        iss: ISS.to_owned(),
    };
    let (s, b) = c
        .release(
            "data-key",
            &forged.token(&claims(MRENCLAVE, false, &wrapping), |h| {
                h.jku = Some(jku_url.clone())
            }),
            None,
        )
        .await;
    refused(
        s,
        &b,
        "jku with the trusted kid",
        401,
        "attestation token refused",
    );
    let forged = Issuer {
        key: evil.key.clone(),
        kid: "evil-key".to_owned(),
        iss: ISS.to_owned(),
    };
    let (s, b) = c
        .release(
            "data-key",
            &forged.token(&claims(MRENCLAVE, false, &wrapping), |h| {
                h.jku = Some(jku_url.clone())
            }),
            None,
        )
        .await;
    refused(
        s,
        &b,
        "jku with the attacker's kid",
        401,
        "no trusted issuer has a key",
    );
    jku_task.abort();
    // One changed byte, in the payload and in the signature.
    for at in [good.find('.').unwrap() + 10, good.len() - 5] {
        let mut bytes = good.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let (s, b) = c
            .release("data-key", &String::from_utf8(bytes).unwrap(), None)
            .await;
        refused(s, &b, "changed byte", 401, "attestation token refused");
    }
    // Policy not met: another MRENCLAVE, a debug enclave.
    let other = MRENCLAVE.replace('8', "9");
    let (s, b) = c
        .release(
            "data-key",
            &issuer.token(&claims(&other, false, &wrapping), |_| {}),
            None,
        )
        .await;
    refused(s, &b, "other MRENCLAVE", 403, "x-ms-sgx-mrenclave");
    let (s, b) = c
        .release(
            "data-key",
            &issuer.token(&claims(MRENCLAVE, true, &wrapping), |_| {}),
            None,
        )
        .await;
    refused(s, &b, "debug enclave", 403, "x-ms-sgx-is-debuggable");
    // A token without a wrapping key.
    let mut nowrap = claims(MRENCLAVE, false, &wrapping);
    nowrap["x-ms-runtime"]["keys"] =
        json!([{"kid": "sig-only", "kty": "RSA", "key_ops": ["verify"]}]);
    let (s, b) = c
        .release("data-key", &issuer.token(&nowrap, |_| {}), None)
        .await;
    refused(s, &b, "no wrapping key", 400, "x-ms-runtime.keys");
    // A non-exportable key.
    let (status, _) = c
        .admin(
            M::POST,
            "/keys/fixed/create",
            Some(json!({"kty": "oct-HSM"})),
        )
        .await;
    assert_eq!(status, 200);
    let (s, b) = c.release("fixed", &good, None).await;
    refused(s, &b, "non-exportable", 403, "not exportable");
    // A disabled key.
    assert_eq!(
        c.admin(
            M::PATCH,
            "/keys/data-key/1",
            Some(json!({"attributes": {"enabled": false}}))
        )
        .await
        .0,
        200
    );
    let (s, b) = c.release("data-key", &good, None).await;
    refused(s, &b, "disabled", 403, "disabled");
    // No token at all for the release call: 401 and the challenge; an admin token may release.
    let (status, _, headers) = c
        .call(
            M::POST,
            "/keys/data-key/release",
            None,
            Some(json!({"target": good})),
        )
        .await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));

    // The audit log saw it all.
    let log = broker.service.store().audit_log(0, 10_000).await.unwrap();
    let releases: Vec<_> = log
        .iter()
        .filter(|e| e.record.operation == "release")
        .collect();
    assert!(releases.iter().filter(|e| e.record.outcome == "ok").count() >= 4);
    assert!(releases.iter().any(|e| {
        e.record.outcome == "Forbidden"
            && e.record
                .detail
                .as_deref()
                .unwrap_or("")
                .contains("mrenclave")
    }));
    assert!(
        log.iter()
            .all(|e| !e.record.principal.contains(ADMIN) && !e.record.principal.contains(RELEASER))
    );
    assert!(
        log.iter()
            .any(|e| e.record.operation == "purge" && e.record.key_name.as_deref() == Some("gen"))
    );
    // Refusals for the token or the role are audited too.
    assert!(log.iter().any(|e| e.record.principal == "anonymous"
        && e.record.operation == "release"
        && e.record.outcome == "Unauthorized"));
    assert!(
        log.iter()
            .any(|e| e.record.principal.starts_with("releaser:")
                && e.record.operation == "get"
                && e.record.outcome == "Forbidden")
    );
}

/// Two broker replicas on one PostgreSQL database: a key created through one is released
/// through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres() {
    let Some(url) = coffer_testkit::postgres_url("two_replicas_on_postgres") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let master = dir.path().join("pg-master.key");
    write_private_bytes(&master, &coffer_testkit::postgres::POSTGRES_TEST_MASTER_KEY);
    let (issuer, jwks) = Issuer::new(ISS, "issuer-key-1");
    let a = start_broker(dir.path(), &jwks, Some(url.clone()), Some(&master)).await;
    let b = start_broker(dir.path(), &jwks, Some(url), Some(&master)).await;
    let name = format!("replica-{}-{}", std::process::id(), now());
    let material = [0x5au8; 32];
    let (status, body) = client(&a.url)
        .admin(
            reqwest::Method::PUT,
            &format!("/keys/{name}"),
            Some(json!({
                "key": {"kty": "oct", "k": b64url(&material)},
                "attributes": {"exportable": true},
                "release_policy": release_policy(&policy_doc(), true),
            })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let wrapping = rsa_key();
    let pem_path = dir.path().join("wrap.pem");
    write_private(&pem_path, &wrapping.to_pkcs8_pem(LineEnding::LF).unwrap());
    let token = issuer.token(&claims(MRENCLAVE, false, &wrapping), |_| {});
    let (status, body) = client(&b.url)
        .release(&name, &token, Some("RSA_AES_KEY_WRAP_384"))
        .await;
    assert_eq!(status, 200, "{body}");
    let payload = check_jws(body["value"].as_str().unwrap());
    let ct = released_ciphertext(&payload, "RSA_AES_KEY_WRAP_384");
    assert_eq!(
        python_unwrap(&pem_path, "RSA_AES_KEY_WRAP_384", &ct),
        hex::encode(material)
    );
    // The immutable policy cannot change, through either replica.
    let (status, _) = client(&b.url)
        .admin(
            reqwest::Method::PATCH,
            &format!("/keys/{name}/1"),
            Some(json!({"release_policy": release_policy(&policy_doc(), false)})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        client(&a.url)
            .admin(reqwest::Method::DELETE, &format!("/keys/{name}"), None)
            .await
            .0,
        200
    );
    assert_eq!(
        client(&b.url)
            .admin(
                reqwest::Method::DELETE,
                &format!("/deletedkeys/{name}"),
                None
            )
            .await
            .0,
        204
    );
}

fn write_private_bytes(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// `--trust ISSUER_URL`: the keys come from the issuer's OpenID metadata → `jwks_uri`, are
/// cached, and are fetched again when a token names a kid the cache lacks (key rotation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_by_openid_metadata() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let iss = format!("http://{}", listener.local_addr().unwrap());
    let (first, first_jwks) = Issuer::new(&iss, "rotating-1");
    let (second, second_jwks) = Issuer::new(&iss, "rotating-2");
    let jwks = Arc::new(std::sync::Mutex::new(first_jwks.clone()));
    let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = {
        let jwks = jwks.clone();
        let fetches = fetches.clone();
        let meta = json!({"issuer": iss, "jwks_uri": format!("{iss}/certs")});
        axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || async move { axum::Json(meta) }),
            )
            .route(
                "/certs",
                axum::routing::get(move || async move {
                    fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    axum::Json(jwks.lock().unwrap().clone())
                }),
            )
    };
    let server = tokio::spawn(axum::serve(listener, app).into_future());

    let dir = tempfile::tempdir().unwrap();
    write_private(
        &dir.path().join("auth"),
        &format!("administrator {ADMIN}\nreleaser {RELEASER}\n"),
    );
    let service = Service::start(Config {
        data_dir: dir.path().join("data"),
        database: None,
        master_key_file: None,
        auth: AuthTable::load(&dir.path().join("auth")).unwrap(),
        trust: vec![iss.parse().unwrap()],
        tls: None,
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(service.clone().serve(listener));
    let c = client(&url);
    let policy = json!({"anyOf": [{"authority": iss, "allOf": [{"claim": "x-ms-sgx-mrenclave", "equals": MRENCLAVE}]}]});
    let (status, body) = c
        .admin(
            reqwest::Method::PUT,
            "/keys/k",
            Some(json!({
                "key": {"kty": "oct", "k": b64url(&[1u8; 32])},
                "attributes": {"exportable": true},
                "release_policy": release_policy(&policy, false),
            })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let wrapping = rsa_key();
    let claims = claims(MRENCLAVE, false, &wrapping);
    let (status, body) = c.release("k", &first.token(&claims, |_| {}), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = c.release("k", &first.token(&claims, |_| {}), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        fetches.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the JWKS was not cached"
    );
    // The issuer rotates its key: a token with the new kid makes the broker fetch again.
    *jwks.lock().unwrap() = second_jwks;
    tokio::time::sleep(coffer_kbs::trust::REFETCH_INTERVAL + std::time::Duration::from_millis(100))
        .await;
    let (status, body) = c.release("k", &second.token(&claims, |_| {}), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2);
    // A token from the same issuer name signed by a key it never published: refused.
    let (rogue, _) = Issuer::new(&iss, "rogue");
    let (status, _) = c.release("k", &rogue.token(&claims, |_| {}), None).await;
    assert_eq!(status, 401);
    task.abort();
    server.abort();
}

/// An unreachable issuer does not stop tokens of the other trusted issuers, and its own tokens
/// are refused with the reason.
#[tokio::test]
async fn unreachable_issuer_does_not_block_others() {
    let dir = tempfile::tempdir().unwrap();
    let (issuer, jwks) = Issuer::new(ISS, "issuer-key-1");
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks.to_string()).unwrap();
    let verifier = coffer_kbs::trust::Verifier::new(vec![
        "http://127.0.0.1:1".parse().unwrap(),
        format!("{ISS}={}", jwks_file.display()).parse().unwrap(),
    ]);
    let wrapping = rsa_key();
    let claims = claims(MRENCLAVE, false, &wrapping);
    // A kid nobody has: the unreachable issuer's failure is the reason given.
    let (other, _) = Issuer::new("http://127.0.0.1:1", "k");
    let err = verifier
        .verify(&other.token(&claims, |_| {}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, coffer_kbs::trust::TokenError::Keys { .. }),
        "{err:?}"
    );
    // The other issuer's tokens verify all the same.
    let (iss, verified) = verifier
        .verify(&issuer.token(&claims, |_| {}))
        .await
        .unwrap();
    assert_eq!(iss, ISS);
    assert_eq!(verified["x-ms-sgx-mrenclave"], MRENCLAVE);
    // Within the refetch interval the unreachable issuer is not asked again.
    let err = verifier
        .verify(&other.token(&claims, |_| {}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, coffer_kbs::trust::TokenError::UnknownKey { .. }),
        "{err:?}"
    );
}
