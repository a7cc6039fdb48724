//! `coffer quote verify --collateral`: a test deployment's quote, root and collateral files
//! (coffer-ca's test-support builders), and what the command prints or refuses.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use coffer_ca::test_support::{
    CollateralParams, Deployment, DeploymentParams, QuoteParams, TEST_NOW,
};
use coffer_dcap::Collateral;
use common::*;

const AT: &str = "2026-01-01T00:00:00Z";

struct Files {
    _dir: tempfile::TempDir,
    quote: PathBuf,
    root: PathBuf,
    dir: PathBuf,
}

fn files(d: &Deployment) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let quote = dir.path().join("quote.bin");
    std::fs::write(&quote, d.quote(&QuoteParams::default())).unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, Deployment::pem(&[&d.root])).unwrap();
    Files {
        dir: dir.path().to_owned(),
        _dir: dir,
        quote,
        root,
    }
}

fn write_collateral(dir: &Path, name: &str, c: &Collateral) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, c.to_json()).unwrap();
    p
}

fn verify_cmd(f: &Files, collateral: &Path, at: &str, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "quote".as_ref(),
        "verify".as_ref(),
        f.quote.as_os_str(),
        "--root".as_ref(),
        f.root.as_os_str(),
        "--collateral".as_ref(),
        collateral.as_os_str(),
        "--at".as_ref(),
        at.as_ref(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    run(&args)
}

#[test]
fn quote_verify_with_collateral_prints_the_tcb_status_and_advisory_ids() {
    let d = Deployment::new(DeploymentParams::default());
    let f = files(&d);
    let c = write_collateral(
        &f.dir,
        "c.json",
        &d.collateral(&CollateralParams::default()),
    );

    let o = verify_cmd(&f, &c, AT, &[]);
    let out = ok(&o);
    assert!(out.contains("pinned root"), "{out}");
    assert!(out.contains("TCB status: SWHardeningNeeded"), "{out}");
    assert!(out.contains("advisory ids: INTEL-SA-00615"), "{out}");
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));

    let v = json(&verify_cmd(&f, &c, AT, &["--json"]));
    assert_eq!(v["verified"], true);
    assert_eq!(v["root"], "pinned");
    assert_eq!(v["tcb"]["status"], "SWHardeningNeeded");
    assert_eq!(v["tcb"]["advisory_ids"][0], "INTEL-SA-00615");
    assert_eq!(v["tcb"]["qe_status"], "UpToDate");
    assert_eq!(v["tcb"]["fmspc"], "00906ea10000");
    assert_eq!(v["mrenclave"], hex::encode([0xe1u8; 32]));

    // The deployment's quote does not chain to Intel's key: without --root it is refused.
    let o = run(&[
        "quote".as_ref(),
        "verify".as_ref(),
        f.quote.as_os_str(),
        "--collateral".as_ref(),
        c.as_os_str(),
        "--at".as_ref(),
        AT.as_ref(),
    ]);
    let line = fails_cleanly(&o, "deployment quote to Intel's key");
    assert!(line.contains("Intel SGX Root CA"), "{line}");
}

#[test]
fn quote_verify_refuses_revoked_stale_tampered_and_malformed_collateral_naming_the_step() {
    let d = Deployment::new(DeploymentParams::default());
    let f = files(&d);

    let revoked = d.collateral(&CollateralParams {
        revoke_pck_leaf: true,
        ..CollateralParams::default()
    });
    let p = write_collateral(&f.dir, "revoked.json", &revoked);
    let line = fails_cleanly(&verify_cmd(&f, &p, AT, &[]), "revoked PCK");
    assert!(line.contains("is revoked by the PCK CRL"), "{line}");

    let good = d.collateral(&CollateralParams::default());
    let p = write_collateral(&f.dir, "good.json", &good);
    let later = (TEST_NOW + 40 * 86_400).to_string();
    let line = fails_cleanly(&verify_cmd(&f, &p, &later, &[]), "stale collateral");
    assert!(line.contains("stale"), "{line}");

    let mut tampered = good.clone();
    tampered.tcb_info = tampered
        .tcb_info
        .replacen("SWHardeningNeeded", "UpToDate", 1);
    let p = write_collateral(&f.dir, "tampered.json", &tampered);
    let line = fails_cleanly(&verify_cmd(&f, &p, AT, &[]), "tampered TCB Info");
    assert!(line.contains("collateral TCB Info"), "{line}");
    assert!(line.contains("signature"), "{line}");

    let p = f.dir.join("garbage.json");
    std::fs::write(&p, b"{\"pck_crl\": 5}").unwrap();
    let line = fails_cleanly(&verify_cmd(&f, &p, AT, &[]), "garbage collateral");
    assert!(line.contains("QuoteCollateralV3"), "{line}");

    let p = f.dir.join("missing.json");
    fails_cleanly(&verify_cmd(&f, &p, AT, &[]), "missing collateral file");
}
