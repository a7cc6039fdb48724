//! `coffer attest serve`: the real binary serves Azure Attestation's API on a free port; a quote
//! of a test deployment earns a token whose claims name the enclave and its TCB status, and a
//! quote of another deployment is refused with its code.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coffer_ca::test_support::{CollateralParams, Deployment, DeploymentParams, QuoteParams, at};
use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn quote(d: &Deployment, runtime: &[u8]) -> Vec<u8> {
    let mut q = QuoteParams::default();
    q.report_body.reportdata = [0; 64];
    q.report_body.reportdata[..32].copy_from_slice(&Sha256::digest(runtime));
    d.quote(&q)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_tokens_and_refusals_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let d = Deployment::new(DeploymentParams::default());
    let roots = dir.path().join("roots");
    let coll = dir.path().join("collateral");
    std::fs::create_dir_all(&roots).unwrap();
    std::fs::create_dir_all(&coll).unwrap();
    std::fs::write(roots.join("root.pem"), Deployment::pem(&[&d.root])).unwrap();
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let c = CollateralParams {
        issue_date: at(t - 86_400),
        next_update: at(t + 30 * 86_400),
        crl_this_update: at(t - 86_400),
        crl_next_update: at(t + 30 * 86_400),
        ..CollateralParams::default()
    };
    std::fs::write(coll.join("c.json"), d.collateral(&c).to_json()).unwrap();
    let token_file = dir.path().join("admin");
    std::fs::write(&token_file, "s3cret").unwrap();

    let mut child = coffer()
        .args(["attest", "serve", "--listen", "127.0.0.1:0", "--roots"])
        .arg(&roots)
        .arg("--collateral")
        .arg(&coll)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--admin-token-file")
        .arg(&token_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _serving = Serving(child);
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_owned();
    let key_mode = std::fs::metadata(dir.path().join("data/signing-key.pem"))
        .unwrap()
        .permissions();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key_mode.mode() & 0o777, 0o600);

    // reqwest is built with rustls in this workspace, which needs a crypto provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = reqwest::Client::new();
    let runtime = br#"{"pub":"k"}"#;
    let body = json!({
        "quote": URL_SAFE_NO_PAD.encode(quote(&d, runtime)),
        "runtimeData": {"data": URL_SAFE_NO_PAD.encode(runtime), "dataType": "JSON"},
    });
    let r = client
        .post(format!("{base}/attest/SgxEnclave?api-version=2022-08-01"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let a: Value = r.json().await.unwrap();
    let token = a["token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], base);
    assert_eq!(claims["x-ms-sgx-mrenclave"], "e1".repeat(32));
    assert_eq!(claims["x-ms-sgx-mrsigner"], "51".repeat(32));
    assert_eq!(claims["x-ms-sgx-is-debuggable"], false);
    assert_eq!(claims["x-coffer-tcb-status"], "SWHardeningNeeded");
    assert_eq!(claims["x-ms-runtime"]["pub"], "k");

    let other = Deployment::new(DeploymentParams::default());
    let body = json!({
        "quote": URL_SAFE_NO_PAD.encode(quote(&other, runtime)),
        "runtimeData": {"data": URL_SAFE_NO_PAD.encode(runtime), "dataType": "JSON"},
    });
    let r = client
        .post(format!("{base}/attest/SgxEnclave?api-version=2022-08-01"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-ms-error-code"], "UntrustedRoot");

    let jwks: Value = client
        .get(format!("{base}/certs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
}
