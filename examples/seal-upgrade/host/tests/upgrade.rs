//! The whole seal-upgrade story through a real daemon: `seal-upgrade-enclave` signed as v1
//! (`v1.toml`) and v2 (`v2.toml`), driven by the `seal-upgrade` binary. v1 seals, v2 opens,
//! v2 re-seals, v1 cannot open v2's seal; a changed byte and another product are refused.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use coffer_platform::LaunchPolicy;
use coffer_sign::{Bundle, EnclaveConfig};
use coffer_testkit::process::{Finished, run};
use coffer_testkit::{Daemon, enclave, vector_key};

const TIMEOUT: Duration = Duration::from_secs(60);

fn config(file: &str) -> EnclaveConfig {
    enclave::workspace_config(&format!("examples/seal-upgrade/{file}"))
}

/// Signs the statically built enclave with `config`, as `coffer build` would, into `dir/name`.
fn sign(dir: &Path, name: &str, config: &EnclaveConfig) -> (PathBuf, Bundle) {
    let image = enclave::static_image("seal-upgrade-enclave");
    let bundle = enclave::sign(&vector_key(), config, image);
    (enclave::write_bundle(dir, name, &bundle), bundle)
}

/// Runs `seal-upgrade --socket … --bundle BUNDLE ARGS…`.
fn host(d: &Daemon, bundle: &Path, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Finished {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_seal-upgrade"));
    cmd.arg("--socket")
        .arg(&d.socket)
        .arg("--bundle")
        .arg(bundle);
    for a in args {
        cmd.arg(a);
    }
    run("seal-upgrade", &mut cmd, TIMEOUT)
}

fn fingerprint(stdout: &str) -> &str {
    stdout
        .trim_end()
        .rsplit_once("fingerprint ")
        .map(|(_, f)| f)
        .unwrap_or_else(|| panic!("no fingerprint in {stdout:?}"))
}

#[test]
fn v1_seals_v2_opens_and_reseals_and_v1_cannot_open_v2s_seal() {
    let d = Daemon::start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    let dir = d.dir.path();
    let (v1, b1) = sign(dir, "v1.coffer", &config("v1.toml"));
    let (v2, b2) = sign(dir, "v2.coffer", &config("v2.toml"));
    let (b1, b2) = (b1.verify().unwrap(), b2.verify().unwrap());
    // One crate, one layout: the same MRENCLAVE. The versions differ only in the SIGSTRUCT's
    // ISVSVN, which is why the example seals with the MRSIGNER policy.
    assert_eq!(b1.mrenclave(), b2.mrenclave());
    assert_eq!(
        (b1.sigstruct().isvsvn, b2.sigstruct().isvsvn),
        (1, 2),
        "v1.toml and v2.toml"
    );
    let (s1, s2) = (dir.join("secret.v1.sealed"), dir.join("secret.v2.sealed"));

    let out = host(&d, &v1, &[&"create", &"--out", &s1]);
    let created = out.expect_success("v1 create").to_owned();
    assert!(
        created.starts_with("enclave v1 sealed a new secret"),
        "{created}"
    );
    let secret = fingerprint(&created);

    let out = host(&d, &v2, &[&"open", &s1]);
    let opened = out.expect_success("v2 open of v1's seal");
    assert!(
        opened.starts_with("enclave v2 opened the secret sealed by v1"),
        "{opened}"
    );
    assert_eq!(fingerprint(opened), secret);
    assert_eq!(
        fingerprint(host(&d, &v1, &[&"open", &s1]).expect_success("v1 open")),
        secret
    );

    let out = host(&d, &v2, &[&"reseal", &s1, &"--out", &s2]);
    assert_eq!(fingerprint(out.expect_success("v2 reseal")), secret);
    let opened = host(&d, &v2, &[&"open", &s2]);
    assert!(
        opened
            .expect_success("v2 open of its own seal")
            .contains("sealed by v2")
    );

    let refused = host(&d, &v1, &[&"open", &s2]);
    refused.expect_code(2, "v1 open of v2's seal");
    assert!(
        refused
            .stderr
            .contains("enclave v1 refused it: the seal key is not available"),
        "{}",
        refused.stderr
    );
    let refused = host(&d, &v1, &[&"reseal", &s2, &"--out", &dir.join("x")]);
    refused.expect_code(2, "v1 reseal of v2's seal");

    // Any changed byte: the tag, the ciphertext, the additional data.
    let blob = std::fs::read(&s2).unwrap();
    for at in [550, 560, blob.len() - 1] {
        let mut changed = blob.clone();
        changed[at] ^= 1;
        let path = dir.join("changed.sealed");
        std::fs::write(&path, &changed).unwrap();
        let refused = host(&d, &v2, &[&"open", &path]);
        refused.expect_code(2, "a changed byte");
        assert!(
            refused.stderr.contains("tampered sealed blob"),
            "{}",
            refused.stderr
        );
    }
}

#[test]
fn another_product_of_the_same_signer_opens_nothing() {
    let d = Daemon::start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    let dir = d.dir.path();
    let (v1, _) = sign(dir, "v1.coffer", &config("v1.toml"));
    let mut other = config("v2.toml");
    other.isv_prod_id += 1;
    let (other, _) = sign(dir, "other.coffer", &other);
    let sealed = dir.join("secret.sealed");
    host(&d, &v1, &[&"create", &"--out", &sealed]).expect_success("v1 create");
    let refused = host(&d, &other, &[&"open", &sealed]);
    refused.expect_code(2, "another product");
    assert!(
        refused.stderr.contains("tampered sealed blob"),
        "{}",
        refused.stderr
    );
}
