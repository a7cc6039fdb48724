//! `coffer ca init|collateral|revoke` and `coffer platform provision` end to end with the real
//! binary: a node provisioned on this host, beside a running platform daemon, quotes (made
//! with its provisioned PCK key) verify with `coffer quote verify` to the deployment root at
//! the TCB status `coffer platform status --json` reports; revocation and the refusals.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coffer_abi::{Attributes, AttributesFlags};
use coffer_ca::QeIdentity;
use coffer_ca::test_support::{QuoteParams, quote_signed_by};
use common::*;
use p256::ecdsa::SigningKey;
use p256::pkcs8::DecodePrivateKey;

/// A `coffer platform serve` child, killed (by its own handle) when dropped.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(socket: &Path, state: &Path) -> Serving {
    let child = coffer()
        .args([
            "platform",
            "serve",
            "--vm-size",
            "Standard_DC2s_v2",
            "--socket",
        ])
        .arg(socket)
        .arg("--state-dir")
        .arg(state)
        .arg("--uid-base")
        .arg("3900000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let s = Serving(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "the daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    s
}

/// A quote as the node's quoting identity would make it, from its state directory's files.
fn node_quote(state: &Path, cpusvn: [u8; 16]) -> Vec<u8> {
    let key_pem = std::fs::read_to_string(state.join("pck.key")).unwrap();
    let key = SigningKey::from_pkcs8_der(pem::parse(&key_pem).unwrap().contents()).unwrap();
    let chain = std::fs::read(state.join("pck_chain.pem")).unwrap();
    let qe: QeIdentity =
        serde_json::from_slice(&std::fs::read(state.join("qe_identity.json")).unwrap()).unwrap();
    let q = QuoteParams {
        qe_mrsigner: qe.mrsigner,
        qe_isvprodid: qe.isvprodid,
        qe_isvsvn: qe.isvsvn,
        qe_attributes: Attributes {
            flags: AttributesFlags::from_bits_retain(u64::from_le_bytes(
                qe.attributes[..8].try_into().unwrap(),
            )),
            xfrm: 0xe7,
        },
        qe_miscselect: qe.miscselect,
        qe_vendor_id: qe.qe_vendor_id,
        ..QuoteParams::default()
    };
    quote_signed_by(&key, chain, cpusvn, coffer_ca::tcb::PCESVN, &q)
}

fn verify_json(dir: &Path, ca: &Path, coll: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["quote", "verify"])
        .arg(dir.join("quote.bin"))
        .arg("--root")
        .arg(ca.join("root.pem"))
        .arg("--collateral")
        .arg(coll.join("collateral.json"))
        .arg("--json")
        .output()
        .unwrap()
}

#[test]
fn a_provisioned_node_s_quotes_verify_at_the_status_the_platform_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = dir.join("ca");
    let state = dir.join("state");
    let coll = dir.join("collateral");

    let out = ok(&run(&[
        "ca".as_ref(),
        "init".as_ref(),
        "--out".as_ref(),
        ca.as_os_str(),
    ]));
    assert!(out.contains("root.pem"), "{out}");
    let err = fails_cleanly(
        &run(&[
            "ca".as_ref(),
            "init".as_ref(),
            "--out".as_ref(),
            ca.as_os_str(),
        ]),
        "init twice",
    );
    assert!(err.contains("already holds a CA"), "{err}");

    // The daemon's own view of this host.
    let daemon = serve(&dir.join("platform.sock"), &state);
    let status = json(&run(&[
        "platform".as_ref(),
        "status".as_ref(),
        "--socket".as_ref(),
        dir.join("platform.sock").as_os_str(),
        "--json".as_ref(),
    ]));
    drop(daemon);
    let level = status["tcb"]["level"].as_str().unwrap().to_owned();
    let ids: Vec<String> = status["tcb"]["advisories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();

    let provision = |state: &Path| {
        run(&[
            "platform".as_ref(),
            "provision".as_ref(),
            "--ca".as_ref(),
            ca.as_os_str(),
            "--state-dir".as_ref(),
            state.as_os_str(),
            "--json".as_ref(),
        ])
    };
    let p = json(&provision(&state));
    assert_eq!(p["tcb"]["level"], level.as_str());
    assert_eq!(p["tcb"]["advisories"], serde_json::json!(ids));
    let serial = p["serial"].as_str().unwrap().to_owned();
    let mut components = [0u8; 16];
    hex::decode_to_slice(p["tcb"]["components"].as_str().unwrap(), &mut components).unwrap();

    let err = fails_cleanly(&provision(&state), "provisioning twice");
    assert!(err.contains("already provisioned"), "{err}");
    let err = fails_cleanly(
        &run(&[
            "platform".as_ref(),
            "provision".as_ref(),
            "--ca".as_ref(),
            dir.join("no-ca").as_os_str(),
            "--state-dir".as_ref(),
            dir.join("other").as_os_str(),
        ]),
        "a missing CA",
    );
    assert!(err.contains("not a Coffer CA directory"), "{err}");
    assert!(err.contains("coffer ca init"), "{err}");
    assert!(!dir.join("other").exists());

    let collateral = |days: &str| {
        run(&[
            "ca".as_ref(),
            "collateral".as_ref(),
            "--ca".as_ref(),
            ca.as_os_str(),
            "--out".as_ref(),
            coll.as_os_str(),
            "--next-update".as_ref(),
            days.as_ref(),
        ])
    };
    ok(&collateral("30"));
    std::fs::write(dir.join("quote.bin"), node_quote(&state, components)).unwrap();
    let v = json(&verify_json(dir, &ca, &coll));
    assert_eq!(v["tcb"]["status"], level.as_str(), "{v}");
    assert_eq!(v["tcb"]["advisory_ids"], serde_json::json!(ids), "{v}");

    // Stale collateral (a day's validity, checked a week on) is refused.
    ok(&collateral("1"));
    let o = Command::new(env!("CARGO_BIN_EXE_coffer"))
        .args(["quote", "verify"])
        .arg(dir.join("quote.bin"))
        .arg("--root")
        .arg(ca.join("root.pem"))
        .arg("--collateral")
        .arg(coll.join("collateral.json"))
        .args(["--at", &rfc3339_in_days(7)])
        .output()
        .unwrap();
    let err = fails_cleanly(&o, "stale collateral");
    assert!(err.contains("stale"), "{err}");

    // Revoked: the next collateral refuses the node's quotes.
    let revoke = || {
        run(&[
            "ca".as_ref(),
            "revoke".as_ref(),
            "--ca".as_ref(),
            ca.as_os_str(),
            "--serial".as_ref(),
            serial.as_ref(),
        ])
    };
    ok(&revoke());
    ok(&collateral("30"));
    let err = fails_cleanly(&verify_json(dir, &ca, &coll), "a revoked PCK");
    assert!(err.contains("revoked"), "{err}");
    let err = fails_cleanly(&revoke(), "revoking twice");
    assert!(err.contains("already revoked"), "{err}");
    let err = fails_cleanly(
        &run(&[
            "ca".as_ref(),
            "collateral".as_ref(),
            "--ca".as_ref(),
            dir.join("no-ca").as_os_str(),
            "--out".as_ref(),
            coll.as_os_str(),
        ]),
        "collateral of a missing CA",
    );
    assert!(err.contains("not a Coffer CA directory"), "{err}");
}

/// Now plus `days`, as RFC 3339.
fn rfc3339_in_days(days: u64) -> String {
    let t = std::time::SystemTime::now() + Duration::from_secs(days * 86_400);
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    coffer_ca::rfc3339(time::OffsetDateTime::from_unix_timestamp(secs as i64).unwrap())
}
