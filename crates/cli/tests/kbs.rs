//! `coffer kbs`: the real broker binary and the key commands against it, and the broker killed
//! with SIGKILL in the middle of a stream of key creations.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_testkit::process::Spawned;
use common::{coffer, fails_cleanly, json, run};
use serde_json::json;

const ADMIN: &str = "admin-token-0123456789";

fn setup(dir: &Path) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join("auth"))
        .unwrap();
    writeln!(f, "administrator {ADMIN}").unwrap();
    std::fs::write(dir.join("jwks.json"), r#"{"keys": []}"#).unwrap();
    let policy = json!({"anyOf": [{"authority": "https://attest.example/", "allOf": [{"claim": "x-ms-sgx-mrenclave", "equals": "ab"}]}]});
    std::fs::write(dir.join("policy.json"), policy.to_string()).unwrap();
}

fn start(dir: &Path) -> (Spawned, String) {
    let mut broker = Spawned::start(
        "coffer kbs serve",
        coffer()
            .args(["kbs", "serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"))
            .arg("--auth-file")
            .arg(dir.join("auth"))
            .arg("--trust")
            .arg(format!(
                "https://attest.example={}",
                dir.join("jwks.json").display()
            )),
    );
    let line = broker.line(Duration::from_secs(60));
    let addr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    (broker, format!("http://{addr}"))
}

fn key(url: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["kbs", "key", args[0], "--url", url, "--token", ADMIN];
    all.extend_from_slice(&args[1..]);
    run(&all)
}

#[test]
fn key_commands() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let (_broker, url) = start(dir.path());
    let policy = dir.path().join("policy.json");
    let policy = policy.to_str().unwrap();
    let created = json(&key(
        &url,
        &["create", "--name", "k1", "--kty", "oct", "--policy", policy],
    ));
    assert_eq!(created["key"]["kid"], format!("{url}/keys/k1/1"));
    assert_eq!(created["attributes"]["exportable"], true);
    let raw = dir.path().join("raw");
    std::fs::write(&raw, [7u8; 32]).unwrap();
    let imported = json(&key(
        &url,
        &[
            "create",
            "--name",
            "k1",
            "--kty",
            "oct",
            "--policy",
            policy,
            "--import-file",
            raw.to_str().unwrap(),
            "--immutable",
        ],
    ));
    assert_eq!(imported["key"]["kid"], format!("{url}/keys/k1/2"));
    assert_eq!(imported["release_policy"]["immutable"], true);
    let rsa = json(&key(
        &url,
        &["create", "--name", "r1", "--kty", "RSA", "--size", "2048"],
    ));
    assert!(rsa["key"]["n"].is_string());
    let shown = json(&key(&url, &["show", "--name", "k1", "--version", "1"]));
    assert_eq!(shown["key"]["kid"], format!("{url}/keys/k1/1"));
    let list = json(&key(&url, &["list"]));
    assert_eq!(list["value"].as_array().unwrap().len(), 2);
    json(&key(
        &url,
        &[
            "set-policy",
            "--name",
            "k1",
            "--version",
            "1",
            "--policy",
            policy,
        ],
    ));
    let err = fails_cleanly(
        &key(&url, &["set-policy", "--name", "k1", "--policy", policy]),
        "immutable policy",
    );
    assert!(err.contains("immutable"), "{err}");
    json(&key(&url, &["delete", "--name", "k1"]));
    fails_cleanly(&key(&url, &["show", "--name", "k1"]), "deleted key");
    let deleted = json(&key(&url, &["list", "--deleted"]));
    assert_eq!(
        deleted["value"][0]["recoveryId"],
        format!("{url}/deletedkeys/k1")
    );
    json(&key(&url, &["recover", "--name", "k1"]));
    json(&key(&url, &["show", "--name", "k1"]));
    // A bad policy is refused before it is sent; a wrong token by the broker.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"anyOf": [{"authority": "x", "allOf": [{"claim": "a", "equals": [1]}]}]}"#,
    )
    .unwrap();
    fails_cleanly(
        &key(
            &url,
            &[
                "create",
                "--name",
                "k2",
                "--kty",
                "oct",
                "--policy",
                bad.to_str().unwrap(),
            ],
        ),
        "bad policy",
    );
    let out = run(&[
        "kbs",
        "key",
        "list",
        "--url",
        &url,
        "--token",
        "not-a-known-token-123",
    ]);
    let err = fails_cleanly(&out, "unknown token");
    assert!(err.contains("401"), "{err}");
}

/// The broker is SIGKILLed while a client creates keys one after another; after a restart,
/// every creation it acknowledged is there, its material intact, and SQLite's integrity check
/// passes.
#[test]
fn broker_killed_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let (broker, url) = start(dir.path());
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let writer = {
        let acknowledged = acknowledged.clone();
        let dir = dir.path().to_owned();
        std::thread::spawn(move || {
            for i in 0.. {
                let name = format!("d{i}");
                let raw = dir.join(format!("raw-{name}"));
                std::fs::write(&raw, [u8::try_from(i % 251).unwrap(); 32]).unwrap();
                let out = key(
                    &url,
                    &[
                        "create",
                        "--name",
                        &name,
                        "--kty",
                        "oct",
                        "--import-file",
                        raw.to_str().unwrap(),
                    ],
                );
                if !out.status.success() {
                    return;
                }
                acknowledged.lock().unwrap().push(name);
            }
        })
    };
    coffer_testkit::wait_until(
        "20 acknowledged creations",
        Duration::from_secs(120),
        Duration::from_millis(20),
        || {
            let n = acknowledged.lock().unwrap().len();
            if n >= 20 { Ok(()) } else { Err(n) }
        },
    );
    broker.kill();
    writer.join().unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();

    // The database opens cleanly and holds every acknowledged key, intact.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let master = coffer_store::MasterKey::load(&dir.path().join("data/master.key")).unwrap();
        let store = coffer_store::Store::open(
            &coffer_store::sqlite_url(&dir.path().join("data/kbs.db")),
            master,
        )
        .await
        .unwrap();
        let check: String = sqlx::Row::try_get(
            &sqlx::query("PRAGMA integrity_check")
                .fetch_one(store.pool())
                .await
                .unwrap(),
            0,
        )
        .unwrap();
        assert_eq!(check, "ok");
        for name in &acknowledged {
            let i: usize = name[1..].parse().unwrap();
            let material = store.material(name, 1).await.unwrap();
            assert_eq!(
                material.as_bytes(),
                [u8::try_from(i % 251).unwrap(); 32],
                "{name}"
            );
        }
        store.close().await;
    });
    // And the broker restarts on it.
    let (_broker, url) = start(dir.path());
    for name in &acknowledged {
        json(&key(&url, &["show", "--name", name]));
    }
}

/// HTTPS: the broker serves with `--tls-cert`/`--tls-key`; the key commands trust a private CA
/// given with `--ca-cert`, and refuse the broker without it.
#[test]
fn https_with_private_ca() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.path().join("cert.pem"), leaf.pem()).unwrap();
    let mut key = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.path().join("key.pem"))
        .unwrap();
    key.write_all(leaf_key.serialize_pem().as_bytes()).unwrap();
    drop(key);

    let mut broker = Spawned::start(
        "coffer kbs serve (TLS)",
        coffer()
            .args(["kbs", "serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--auth-file")
            .arg(dir.path().join("auth"))
            .arg("--trust")
            .arg(format!(
                "https://attest.example={}",
                dir.path().join("jwks.json").display()
            ))
            .arg("--tls-cert")
            .arg(dir.path().join("cert.pem"))
            .arg("--tls-key")
            .arg(dir.path().join("key.pem")),
    );
    let line = broker.line(Duration::from_secs(60));
    let url = format!("https://{}", line.strip_prefix("listening on ").unwrap());
    let ca = dir.path().join("ca.pem");
    let list = json(&run(&[
        "kbs",
        "key",
        "list",
        "--url",
        &url,
        "--token",
        ADMIN,
        "--ca-cert",
        ca.to_str().unwrap(),
    ]));
    assert_eq!(list["value"], json!([]));
    let created = json(&run(&[
        "kbs",
        "key",
        "create",
        "--url",
        &url,
        "--token",
        ADMIN,
        "--ca-cert",
        ca.to_str().unwrap(),
        "--name",
        "t",
        "--kty",
        "oct",
    ]));
    assert_eq!(created["key"]["kid"], format!("{url}/keys/t/1"));
    fails_cleanly(
        &run(&["kbs", "key", "list", "--url", &url, "--token", ADMIN]),
        "no private CA",
    );
    // Plain HTTP to the TLS port gets no answer a client accepts.
    let plain = url.replace("https://", "http://");
    fails_cleanly(
        &run(&["kbs", "key", "list", "--url", &plain, "--token", ADMIN]),
        "plain HTTP",
    );
}
