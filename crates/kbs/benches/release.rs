//! Secure key release throughput: releases per second with 64 concurrent HTTP clients on
//! loopback and their p99 latency, next to the same run's rates of what each release must do
//! (token verification, RSA-OAEP wrap, the RS256 signature of the answer, on one core and on all).
//!
//! `cargo bench -p coffer-kbs --bench release`; figures go in docs/benchmarks.md.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use coffer_kbs::auth::AuthTable;
use coffer_kbs::b64url;
use coffer_kbs::service::{Config, Service};
use coffer_kbs::trust::Verifier;
use coffer_kbs::wrap::{self, Enc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::LineEnding;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

const ISS: &str = "http://issuer.bench";
const CLIENTS: usize = 64;
const RELEASE_SECONDS: u64 = 10;

fn jwk(key: &rsa::PrivateKey, kid: &str) -> Value {
    json!({"kty": "RSA", "kid": kid, "n": b64url(&key.n().to_be_bytes_trimmed_vartime()), "e": b64url(&key.e().to_be_bytes_trimmed_vartime())})
}

fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir().unwrap();
    let issuer_key = rsa::PrivateKey::new(&mut rand::rng(), 2048).unwrap();
    let signing =
        EncodingKey::from_rsa_pem(issuer_key.to_pkcs1_pem(LineEnding::LF).unwrap().as_bytes())
            .unwrap();
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(
        &jwks_file,
        json!({"keys": [jwk(&issuer_key, "bench")]}).to_string(),
    )
    .unwrap();
    let mut auth = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.path().join("auth"))
        .unwrap();
    writeln!(
        auth,
        "administrator admin-token-0123456789\nreleaser releaser-token-0123456789"
    )
    .unwrap();
    drop(auth);

    let wrapping = rsa::PrivateKey::new(&mut rand::rng(), 2048).unwrap();
    let mut wrap_jwk = jwk(&wrapping, "w");
    wrap_jwk["key_ops"] = json!(["encrypt"]);
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let claims = json!({"iss": ISS, "exp": now + 3600, "x-ms-sgx-mrenclave": "ab", "x-ms-runtime": {"keys": [wrap_jwk]}});
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("bench".to_owned());
    let token = jsonwebtoken::encode(&header, &claims, &signing).unwrap();

    // Baselines, same run.
    let verifier = Verifier::new(vec![
        format!("{ISS}={}", jwks_file.display()).parse().unwrap(),
    ]);
    verifier.verify(&token).await.unwrap();
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        verifier.verify(&token).await.unwrap();
    }
    let verify_rate = rate(n, t.elapsed());
    let (_, wrap_key) = wrap::wrapping_key(&claims).unwrap();
    let t = Instant::now();
    for _ in 0..n {
        wrap::wrap(&wrap_key, Enc::RsaAesKeyWrap256, &[7u8; 32]).unwrap();
    }
    let wrap_rate = rate(n, t.elapsed());
    let payload = json!({"bench": "x".repeat(1500)});
    let sign_n = 500;
    let t = Instant::now();
    for _ in 0..sign_n {
        jsonwebtoken::encode(&header, &payload, &signing).unwrap();
    }
    let sign_rate = rate(sign_n, t.elapsed());
    let t = Instant::now();
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            let (header, payload, signing) = (header.clone(), payload.clone(), signing.clone());
            std::thread::spawn(move || {
                for _ in 0..sign_n {
                    jsonwebtoken::encode(&header, &payload, &signing).unwrap();
                }
            })
        })
        .collect();
    for th in threads {
        th.join().unwrap();
    }
    let sign_all_rate = rate(sign_n * cores, t.elapsed());

    // The broker, and 64 clients releasing for RELEASE_SECONDS.
    let service = Service::start(Config {
        data_dir: dir.path().join("data"),
        database: None,
        master_key_file: None,
        auth: AuthTable::load(&dir.path().join("auth")).unwrap(),
        trust: vec![format!("{ISS}={}", jwks_file.display()).parse().unwrap()],
        tls: None,
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(service.clone().serve(listener));
    let policy = json!({"anyOf": [{"authority": ISS, "allOf": [{"claim": "x-ms-sgx-mrenclave", "equals": "ab"}]}]});
    let http = reqwest::Client::new();
    let status = http
        .put(format!("{url}/keys/bench"))
        .bearer_auth("admin-token-0123456789")
        .json(&json!({"key": {"kty": "oct", "k": b64url(&[1u8; 32])}, "attributes": {"exportable": true},
            "release_policy": {"data": b64url(policy.to_string().as_bytes())}}))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());
    let token = Arc::new(token);
    let deadline = Instant::now() + Duration::from_secs(RELEASE_SECONDS);
    let start = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let resp = http
                        .post(format!("{url}/keys/bench/release?api-version=7.4"))
                        .bearer_auth("releaser-token-0123456789")
                        .json(&json!({"target": *token}))
                        .send()
                        .await
                        .unwrap();
                    assert!(resp.status().is_success());
                    resp.bytes().await.unwrap();
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    server.abort();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    let p50 = latencies[latencies.len() / 2];
    let release_rate = rate(latencies.len(), elapsed);
    println!("cores: {cores}");
    println!("token verification (1 task): {verify_rate:.0}/s");
    println!("RSA-OAEP-256 wrap + AES-KWP (1 task): {wrap_rate:.0}/s");
    println!("RS256 sign, RSA-2048 (1 core): {sign_rate:.0}/s");
    println!("RS256 sign, RSA-2048 (all {cores} cores): {sign_all_rate:.0}/s");
    println!(
        "releases, {CLIENTS} clients, {RELEASE_SECONDS} s: {release_rate:.0}/s ({:.2}x all-core signing), p50 {:.1} ms, p99 {:.1} ms ({} releases)",
        release_rate / sign_all_rate,
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        latencies.len()
    );
}
