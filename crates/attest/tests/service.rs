//! The attestation service end to end over real HTTP on 127.0.0.1: quotes made under test
//! deployments (coffer-dcap's test support), tokens verified with RustCrypto's `rsa` (a different
//! implementation from the service's aws-lc signer) knowing only the JWKS from `/certs`, every
//! refusal with its own code, and the policy API with persistence across a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use coffer_abi::AttributesFlags;
use coffer_attest::ServiceConfig;
use coffer_ca::test_support::{CollateralParams, Deployment, DeploymentParams, QuoteParams, at};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ADMIN: &str = "admin-secret-token";
const API: &str = "api-version=2022-08-01";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Collateral fresh now (the default test collateral is dated for 2026-01-01).
fn fresh() -> CollateralParams {
    let t = now();
    CollateralParams {
        issue_date: at(t - 86_400),
        next_update: at(t + 30 * 86_400),
        crl_this_update: at(t - 86_400),
        crl_next_update: at(t + 30 * 86_400),
        ..CollateralParams::default()
    }
}

struct Server {
    base: String,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A running service trusting `d`'s root, with `collateral` (if any), keeping its key and
/// policies in `data`.
async fn start(root: &Deployment, collateral: Option<&CollateralParams>, data: &Path) -> Server {
    let roots = data.join("roots");
    std::fs::create_dir_all(&roots).unwrap();
    std::fs::write(roots.join("root.pem"), Deployment::pem(&[&root.root])).unwrap();
    let coll_dir = collateral.map(|c| {
        let dir = data.join("collateral");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("fmspc.json"), root.collateral(c).to_json()).unwrap();
        dir
    });
    let token_file = data.join("admin-token");
    std::fs::write(&token_file, format!("{ADMIN}\n")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let cfg = ServiceConfig {
        issuer: base.clone(),
        roots_dir: roots,
        intel_root: true,
        collateral_dir: coll_dir,
        data_dir: data.join("state"),
        admin_token_file: Some(token_file),
        token_lifetime: Duration::from_secs(8 * 3600),
    };
    let state = coffer_attest::start(&cfg).await.unwrap();
    let task = tokio::spawn(coffer_attest::serve(listener, state));
    Server {
        base,
        task,
        client: client(),
    }
}

impl Server {
    async fn post(&self, path: &str, body: &Value) -> (u16, Option<String>, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            // Azure's SDKs always send one; the attest call ignores it.
            .bearer_auth("anything")
            .json(body)
            .send()
            .await
            .unwrap();
        answer(r).await
    }

    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (u16, Option<String>, Value) {
        let mut r = self
            .client
            .request(method, format!("{}{path}?{API}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.header("content-type", "text/plain").body(b);
        }
        answer(r.send().await.unwrap()).await
    }

    async fn put_policy(&self, text: &str) -> (u16, Option<String>, Value) {
        self.admin(
            reqwest::Method::PUT,
            "/policies/SgxEnclave",
            Some(ADMIN),
            Some(unsecured(
                &json!({"AttestationPolicy": URL_SAFE_NO_PAD.encode(text)}),
            )),
        )
        .await
    }

    async fn jwks(&self) -> Value {
        self.client
            .get(format!("{}/certs", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// A plain-HTTP client (reqwest is built with rustls here, which needs a crypto provider).
fn client() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::new()
}

async fn answer(r: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = r.status().as_u16();
    let code = r
        .headers()
        .get("x-ms-error-code")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = r.json().await.unwrap_or(Value::Null);
    (status, code, body)
}

fn unsecured(claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// A quote whose REPORTDATA[0..32] is SHA-256(`runtime`).
fn quote_over(d: &Deployment, runtime: &[u8], debug: bool) -> Vec<u8> {
    let mut q = QuoteParams::default();
    q.report_body.reportdata = [0; 64];
    q.report_body.reportdata[..32].copy_from_slice(&Sha256::digest(runtime));
    q.report_body.isvprodid = 7;
    q.report_body.isvsvn = 3;
    q.report_body.configsvn = 2;
    if debug {
        q.report_body.attributes.flags |= AttributesFlags::DEBUG;
    }
    d.quote(&q)
}

fn body(quote: &[u8], runtime: &[u8], data_type: &str) -> Value {
    json!({
        "quote": URL_SAFE_NO_PAD.encode(quote),
        "runtimeData": {"data": URL_SAFE_NO_PAD.encode(runtime), "dataType": data_type},
        "nonce": "n-123",
    })
}

/// Verifies an RS256 JWT with only the JWKS, independently of the service's JWT library and
/// crypto: RustCrypto's RSA PKCS#1 v1.5 over SHA-256. Returns (header, claims).
fn verify_with_jwks(token: &str, jwks: &Value) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("the token's kid is in the JWKS");
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let key = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(&n),
        rsa::BoxedUint::from_be_slice_vartime(&e),
    )
    .unwrap();
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let signed = format!("{}.{}", parts[0], parts[1]);
    key.pkcs1v15_verify::<rsa::sha2::Sha256>(signed.as_bytes(), &sig)
        .expect("the token's RS256 signature verifies with the JWKS key");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    (header, claims)
}

fn policy_hash(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(URL_SAFE_NO_PAD.encode(text).as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_a_token_an_independent_verifier_accepts_with_the_jwks_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = Deployment::new(DeploymentParams::default());
    let s = start(&d, Some(&fresh()), dir.path()).await;
    let runtime = br#"{"keys":[{"kty":"RSA","kid":"k1"}],"purpose":"demo"}"#;
    let quote = quote_over(&d, runtime, false);
    let (status, code, b) = s
        .post(
            &format!("/attest/SgxEnclave?{API}"),
            &body(&quote, runtime, "JSON"),
        )
        .await;
    assert_eq!((status, code), (200, None), "{b}");
    let token = b["token"].as_str().unwrap();
    let (header, c) = verify_with_jwks(token, &s.jwks().await);

    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["jku"], format!("{}/certs", s.base));
    assert_eq!(c["iss"], s.base);
    let iat = c["iat"].as_u64().unwrap();
    assert!(iat.abs_diff(now()) < 60);
    assert_eq!(c["nbf"].as_u64(), Some(iat));
    assert_eq!(c["exp"].as_u64(), Some(iat + 8 * 3600));
    assert_eq!(c["jti"].as_str().unwrap().len(), 64);
    assert_eq!(c["nonce"], "n-123");
    assert_eq!(c["x-ms-ver"], "1.0");
    assert_eq!(c["x-ms-attestation-type"], "sgx");
    assert_eq!(
        c["x-ms-policy-hash"],
        policy_hash(coffer_attest_policy::DEFAULT_SGX_POLICY)
    );
    assert_eq!(c["x-ms-sgx-is-debuggable"], false);
    assert_eq!(c["x-ms-sgx-mrenclave"], "e1".repeat(32));
    assert_eq!(c["x-ms-sgx-mrsigner"], "51".repeat(32));
    assert_eq!(c["x-ms-sgx-product-id"], 7);
    assert_eq!(c["x-ms-sgx-svn"], 3);
    assert_eq!(c["x-ms-sgx-config-svn"], 2);
    let rd = c["x-ms-sgx-report-data"].as_str().unwrap();
    assert_eq!(rd.len(), 128);
    assert_eq!(&rd[..64], hex::encode(Sha256::digest(runtime)));
    assert_eq!(c["x-ms-sgx-ehd"], URL_SAFE_NO_PAD.encode(runtime));
    assert_eq!(c["x-ms-runtime"]["purpose"], "demo");
    assert_eq!(c["x-ms-runtime"]["keys"][0]["kid"], "k1");
    assert_eq!(
        c["x-ms-sgx-collateral"]["quotehash"],
        hex::encode(Sha256::digest(&quote))
    );
    assert!(c["x-ms-sgx-collateral"]["tcbinfohash"].is_string());
    // The default test collateral puts this platform at SWHardeningNeeded, INTEL-SA-00615.
    assert_eq!(c["x-coffer-tcb-status"], "SWHardeningNeeded");
    assert_eq!(c["x-coffer-advisory-ids"], json!(["INTEL-SA-00615"]));
    // The default policy's deprecated names.
    assert_eq!(c["sgx-mrsigner"], "51".repeat(32));
    assert_eq!(c["tee"], "sgx");

    // The JWKS carries the certificate, whose key is the JWK's.
    let jwks = s.jwks().await;
    let k = &jwks["keys"][0];
    assert_eq!(
        (k["kty"].as_str(), k["use"].as_str(), k["alg"].as_str()),
        (Some("RSA"), Some("sig"), Some("RS256"))
    );
    let der = STANDARD.decode(k["x5c"][0].as_str().unwrap()).unwrap();
    assert_eq!(k["kid"], URL_SAFE_NO_PAD.encode(Sha256::digest(&der)));

    // Standard base64 and Binary runtime data are accepted too; every api-version.
    for v in coffer_attest::API_VERSIONS {
        let b = json!({
            "quote": STANDARD.encode(&quote),
            "runtimeData": {"data": STANDARD.encode(runtime), "dataType": "Binary"},
        });
        let (status, _, b) = s
            .post(&format!("/attest/SgxEnclave?api-version={v}"), &b)
            .await;
        assert_eq!(status, 200, "{v}: {b}");
        let (_, c) = verify_with_jwks(b["token"].as_str().unwrap(), &jwks);
        assert!(c.get("x-ms-runtime").is_none());
    }

    let oidc: Value = s
        .client
        .get(format!("{}/.well-known/openid-configuration", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(oidc["issuer"], s.base);
    assert_eq!(oidc["jwks_uri"], format!("{}/certs", s.base));
    assert_eq!(
        oidc["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert!(
        oidc["claims_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("x-ms-sgx-mrenclave"))
    );
}

async fn refusal(s: &Server, b: &Value) -> (u16, String, String) {
    let (status, code, body) = s.post(&format!("/attest/SgxEnclave?{API}"), b).await;
    let code = code.expect("an x-ms-error-code header");
    assert_eq!(body["error"]["code"], code.as_str());
    let message = body["error"]["message"].as_str().unwrap().to_owned();
    (status, code, message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_each_bad_request_with_its_own_code() {
    let dir = tempfile::tempdir().unwrap();
    let d = Deployment::new(DeploymentParams::default());
    let s = start(&d, Some(&fresh()), dir.path()).await;
    let runtime = b"runtime";
    let good = quote_over(&d, runtime, false);

    // One changed byte in the quote (in MRENCLAVE, under the attestation key's signature).
    let mut tampered = good.clone();
    tampered[48 + 64] ^= 1;
    let (st, code, msg) = refusal(&s, &body(&tampered, runtime, "Binary")).await;
    assert_eq!((st, code.as_str()), (400, "QuoteSignatureInvalid"), "{msg}");

    // A platform provisioned by another root.
    let other = Deployment::new(DeploymentParams {
        root_cn: "Another Root CA".into(),
        ..DeploymentParams::default()
    });
    let (st, code, msg) = refusal(
        &s,
        &body(&quote_over(&other, runtime, false), runtime, "Binary"),
    )
    .await;
    assert_eq!((st, code.as_str()), (400, "UntrustedRoot"), "{msg}");

    // Runtime data that does not match REPORTDATA.
    let (st, code, msg) = refusal(&s, &body(&good, b"other runtime", "Binary")).await;
    assert_eq!((st, code.as_str()), (400, "RuntimeDataMismatch"), "{msg}");

    // A TDX quote and an unknown quote version (refused from the header).
    let mut tdx = good.clone();
    tdx[4..8].copy_from_slice(&0x81u32.to_le_bytes());
    let (_, code, _) = refusal(&s, &body(&tdx, runtime, "Binary")).await;
    assert_eq!(code, "QuoteTeeUnsupported");
    let mut v9 = good.clone();
    v9[0..2].copy_from_slice(&9u16.to_le_bytes());
    let (_, code, msg) = refusal(&s, &body(&v9, runtime, "Binary")).await;
    assert_eq!(code, "QuoteVersionUnsupported", "{msg}");

    // A truncated quote.
    let (_, code, _) = refusal(&s, &body(&good[..300], runtime, "Binary")).await;
    assert_eq!(code, "QuoteMalformed");

    // Not base64; not a request; JSON runtime data that is not JSON.
    let (_, code, _) = refusal(&s, &json!({"quote": "!!!"})).await;
    assert_eq!(code, "InvalidBase64");
    let (_, code, _) = refusal(&s, &json!({"quot": "AAAA"})).await;
    assert_eq!(code, "InvalidRequest");
    let (_, code, _) = refusal(&s, &body(&good, runtime, "JSON")).await;
    assert_eq!(code, "RuntimeDataNotJson");

    // Unsupported api-version, unknown attestation type, oversized body.
    let (st, code, _) = s
        .post(
            "/attest/SgxEnclave?api-version=2018-09-01-preview",
            &body(&good, runtime, "Binary"),
        )
        .await;
    assert_eq!((st, code.as_deref()), (400, Some("UnsupportedApiVersion")));
    let (st, code, _) = s
        .post(
            &format!("/attest/TdxVm?{API}"),
            &body(&good, runtime, "Binary"),
        )
        .await;
    assert_eq!((st, code.as_deref()), (404, Some("UnknownAttestationType")));
    let big = json!({"quote": "A".repeat(coffer_attest::MAX_BODY + 1)});
    let (st, code, _) = s.post(&format!("/attest/SgxEnclave?{API}"), &big).await;
    assert_eq!((st, code.as_deref()), (413, Some("RequestTooLarge")));

    // A DEBUG enclave under a policy that denies it.
    let deny_debug = "version=1.0;\nauthorizationrules {\n  [type==\"x-ms-sgx-is-debuggable\", value==true] => deny();\n  => permit();\n};";
    assert_eq!(s.put_policy(deny_debug).await.0, 200);
    let debug_quote = quote_over(&d, runtime, true);
    let (st, code, msg) = refusal(&s, &body(&debug_quote, runtime, "Binary")).await;
    assert_eq!((st, code.as_str()), (400, "PolicyDenied"));
    assert!(msg.contains("line 3, column 52"), "{msg}");
    // The same enclave without DEBUG passes.
    assert_eq!(
        s.post(
            &format!("/attest/SgxEnclave?{API}"),
            &body(&good, runtime, "Binary")
        )
        .await
        .0,
        200
    );

    // Runtime claims cannot pass for the service's: a debuggable enclave claiming
    // "x-ms-sgx-is-debuggable": false in its JSON runtime data is still refused.
    let only_release = "version=1.0; authorizationrules { [type==\"x-ms-sgx-is-debuggable\", value==false] => permit(); };";
    assert_eq!(s.put_policy(only_release).await.0, 200);
    let lying = br#"{"x-ms-sgx-is-debuggable": false}"#;
    let (_, code, _) = refusal(&s, &body(&quote_over(&d, lying, true), lying, "JSON")).await;
    assert_eq!(code, "PolicyDenied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_revoked_expired_and_stale_evidence() {
    let runtime = b"rt";
    // A revoked PCK certificate (listed in the PCK CA's CRL).
    let dir = tempfile::tempdir().unwrap();
    let d = Deployment::new(DeploymentParams::default());
    let revoked = CollateralParams {
        revoke_pck_leaf: true,
        ..fresh()
    };
    let s = start(&d, Some(&revoked), dir.path()).await;
    let (_, code, msg) = refusal(
        &s,
        &body(&quote_over(&d, runtime, false), runtime, "Binary"),
    )
    .await;
    assert_eq!(code, "CertificateRevoked", "{msg}");
    drop(s);

    // Stale collateral: its next update was due yesterday.
    let dir = tempfile::tempdir().unwrap();
    let t = now();
    let stale = CollateralParams {
        issue_date: at(t - 40 * 86_400),
        next_update: at(t - 86_400),
        ..fresh()
    };
    let s = start(&d, Some(&stale), dir.path()).await;
    let (_, code, msg) = refusal(
        &s,
        &body(&quote_over(&d, runtime, false), runtime, "Binary"),
    )
    .await;
    assert_eq!(code, "CollateralStale", "{msg}");
    drop(s);

    // An expired PCK certificate.
    let dir = tempfile::tempdir().unwrap();
    let expired = Deployment::new(DeploymentParams {
        leaf_not_after: at(t - 86_400),
        ..DeploymentParams::default()
    });
    let s = start(&expired, Some(&fresh()), dir.path()).await;
    let (_, code, msg) = refusal(
        &s,
        &body(&quote_over(&expired, runtime, false), runtime, "Binary"),
    )
    .await;
    assert_eq!(code, "CertificateExpired", "{msg}");
    drop(s);

    // Collateral for another FMSPC only.
    let dir = tempfile::tempdir().unwrap();
    let other_fmspc = CollateralParams {
        fmspc: Some([1, 2, 3, 4, 5, 6]),
        ..fresh()
    };
    let s = start(&d, Some(&other_fmspc), dir.path()).await;
    let (_, code, _) = refusal(
        &s,
        &body(&quote_over(&d, runtime, false), runtime, "Binary"),
    )
    .await;
    assert_eq!(code, "CollateralUnavailable");
}

fn policy_of(answer: &Value, jwks: &Value) -> (String, Value) {
    let (_, c) = verify_with_jwks(answer["token"].as_str().unwrap(), jwks);
    let doc = c["x-ms-policy"].as_str().unwrap();
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(doc.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let text = URL_SAFE_NO_PAD
        .decode(payload["AttestationPolicy"].as_str().unwrap())
        .unwrap();
    (String::from_utf8(text).unwrap(), c)
}

fn rs256_policy_jwt(text: &str) -> String {
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .unwrap();
    let cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.x5c = Some(vec![STANDARD.encode(cert.der())]);
    let enc = jsonwebtoken::EncodingKey::from_rsa_pem(key.serialize_pem().as_bytes()).unwrap();
    jsonwebtoken::encode(
        &header,
        &json!({"AttestationPolicy": URL_SAFE_NO_PAD.encode(text)}),
        &enc,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_round_trip_need_the_admin_token_and_persist_across_restarts() {
    use reqwest::Method;
    let dir = tempfile::tempdir().unwrap();
    let d = Deployment::new(DeploymentParams::default());
    let s = start(&d, None, dir.path()).await;
    let jwks = s.jwks().await;

    // Without the token, or with a wrong one: 401.
    for t in [None, Some("wrong")] {
        let (st, code, _) = s.admin(Method::GET, "/policies/SgxEnclave", t, None).await;
        assert_eq!((st, code.as_deref()), (401, Some("Unauthorized")));
        let (st, _, _) = s
            .admin(
                Method::PUT,
                "/policies/SgxEnclave",
                t,
                Some(unsecured(&json!({"AttestationPolicy": "eA"}))),
            )
            .await;
        assert_eq!(st, 401);
        let (st, _, _) = s
            .admin(Method::POST, "/policies/SgxEnclave:reset", t, None)
            .await;
        assert_eq!(st, 401);
    }

    // The default first.
    let (st, _, b) = s
        .admin(Method::GET, "/policies/SgxEnclave", Some(ADMIN), None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        policy_of(&b, &jwks).0,
        coffer_attest_policy::DEFAULT_SGX_POLICY
    );

    // PUT (alg none), GET gives it back, attest tokens carry its hash.
    let custom = format!(
        "version=1.0; authorizationrules {{ [type==\"x-ms-sgx-mrsigner\", value==\"{}\"] => permit(); }}; issuancerules {{ c:[type==\"x-ms-sgx-svn\"] => issue(type=\"app-svn\", value=c.value); }};",
        "51".repeat(32)
    );
    let (st, _, b) = s.put_policy(&custom).await;
    assert_eq!(st, 200, "{b}");
    let (_, c) = verify_with_jwks(b["token"].as_str().unwrap(), &jwks);
    assert_eq!(c["x-ms-policy-result"], "Updated");
    assert_eq!(c["x-ms-policy-hash"], policy_hash(&custom));
    let (_, _, b) = s
        .admin(Method::GET, "/policies/SgxEnclave", Some(ADMIN), None)
        .await;
    assert_eq!(policy_of(&b, &jwks).0, custom);
    let runtime = b"r";
    let (st, _, b) = s
        .post(
            &format!("/attest/SgxEnclave?{API}"),
            &body(&quote_over(&d, runtime, false), runtime, "Binary"),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (_, c) = verify_with_jwks(b["token"].as_str().unwrap(), &jwks);
    assert_eq!(c["x-ms-policy-hash"], policy_hash(&custom));
    assert_eq!(c["app-svn"], 3);

    // A malformed policy is refused with its line and column, and the stored one stays.
    let (st, code, b) = s
        .put_policy("version=1.0;\nauthorizationrules { => allow(); };")
        .await;
    assert_eq!((st, code.as_deref()), (400, Some("PolicyInvalid")));
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 2, column 25"),
        "{b}"
    );
    // A bad policy token.
    let (_, code, _) = s
        .admin(
            Method::PUT,
            "/policies/SgxEnclave",
            Some(ADMIN),
            Some("not-a-jwt".into()),
        )
        .await;
    assert_eq!(code.as_deref(), Some("PolicyTokenInvalid"));

    // An RS256 policy token signed with its x5c key; a tampered one is refused.
    let signed_text = "version=1.0; authorizationrules { => permit(); };";
    let jwt = rs256_policy_jwt(signed_text);
    let (st, _, b) = s
        .admin(
            Method::PUT,
            "/policies/SgxEnclave",
            Some(ADMIN),
            Some(jwt.clone()),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD
        .encode(json!({"AttestationPolicy": URL_SAFE_NO_PAD.encode(&custom)}).to_string());
    let (_, code, _) = s
        .admin(
            Method::PUT,
            "/policies/SgxEnclave",
            Some(ADMIN),
            Some(parts.join(".")),
        )
        .await;
    assert_eq!(code.as_deref(), Some("PolicyTokenInvalid"));

    // Back to the custom policy, then restart on the same data directory: it persists, and so
    // does the signing key.
    assert_eq!(s.put_policy(&custom).await.0, 200);
    drop(s);
    let s = start(&d, None, dir.path()).await;
    assert_eq!(s.jwks().await["keys"][0]["kid"], jwks["keys"][0]["kid"]);
    let (_, _, b) = s
        .admin(Method::GET, "/policies/SgxEnclave", Some(ADMIN), None)
        .await;
    assert_eq!(policy_of(&b, &jwks).0, custom);

    // Reset: the default again.
    let (st, _, b) = s
        .admin(
            Method::POST,
            "/policies/SgxEnclave:reset",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(st, 200);
    let (_, c) = verify_with_jwks(b["token"].as_str().unwrap(), &jwks);
    assert_eq!(c["x-ms-policy-result"], "Removed");
    let (_, _, b) = s
        .admin(Method::GET, "/policies/SgxEnclave", Some(ADMIN), None)
        .await;
    assert_eq!(
        policy_of(&b, &jwks).0,
        coffer_attest_policy::DEFAULT_SGX_POLICY
    );
}

/// A draft policy's token comes back unsigned (alg none): a caller's own policy must never get
/// a token a relying party would accept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft_policy_tokens_are_unsigned() {
    let dir = tempfile::tempdir().unwrap();
    let d = Deployment::new(DeploymentParams::default());
    let s = start(&d, None, dir.path()).await;
    let runtime = b"r";
    let draft = "version=1.0; authorizationrules { => permit(); }; issuancerules { => issue(type=\"draft\", value=true); => issue(type=\"x-coffer-tcb-status\", value=\"UpToDate\"); => issue(type=\"exp\", value=1); };";
    let mut b = body(&quote_over(&d, runtime, true), runtime, "Binary");
    b["draftPolicyForAttestation"] = draft.into();
    let (st, _, a) = s.post(&format!("/attest/SgxEnclave?{API}"), &b).await;
    assert_eq!(st, 200, "{a}");
    let token = a["token"].as_str().unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts[2], "");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "none");
    let c: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(c["draft"], true);
    assert_eq!(c["x-ms-policy-hash"], policy_hash(draft));
    assert_eq!(c["x-ms-sgx-is-debuggable"], true);
    // A policy cannot set the service's claims: no collateral here, so no TCB status at all.
    assert!(c.get("x-coffer-tcb-status").is_none(), "{c}");
    assert!(c["exp"].as_u64().unwrap() > 1);
    // A malformed draft is refused like a stored one.
    b["draftPolicyForAttestation"] = "version=1.0;".into();
    let (_, code, _) = refusal(&s, &b).await;
    assert_eq!(code, "PolicyInvalid");
}

/// `--tls-cert`/`--tls-key`: the same API over HTTPS (rustls), checked by a client that trusts
/// only the server's certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_over_https() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let d = Deployment::new(DeploymentParams::default());
    let roots = dir.path().join("roots");
    std::fs::create_dir_all(&roots).unwrap();
    std::fs::write(roots.join("root.pem"), Deployment::pem(&[&d.root])).unwrap();

    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (dir.path().join("tls.pem"), dir.path().join("tls.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let cfg = ServiceConfig {
        issuer: base.clone(),
        roots_dir: roots,
        intel_root: false,
        collateral_dir: None,
        data_dir: dir.path().join("state"),
        admin_token_file: None,
        token_lifetime: Duration::from_secs(3600),
    };
    let state = coffer_attest::start(&cfg).await.unwrap();
    let tls = coffer_attest::tls_config(&cert_path, &key_path).unwrap();
    let task = tokio::spawn(coffer_attest::serve_tls(listener, tls, state));

    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let runtime = b"tls";
    let r = client
        .post(format!("{base}/attest/SgxEnclave?{API}"))
        .json(&body(&quote_over(&d, runtime, false), runtime, "Binary"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let a: Value = r.json().await.unwrap();
    let jwks: Value = client
        .get(format!("{base}/certs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (header, c) = verify_with_jwks(a["token"].as_str().unwrap(), &jwks);
    assert_eq!(header["jku"], format!("{base}/certs"));
    assert_eq!(c["x-ms-sgx-mrenclave"], "e1".repeat(32));
    // Without policy administrators configured, every policy call is refused.
    let r = client
        .get(format!("{base}/policies/SgxEnclave?{API}"))
        .bearer_auth("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    task.abort();
}
