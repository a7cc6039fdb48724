//! Signing tools (issue 3): sign, the two-step flow with the real openssl, inspect, measure with
//! --emit-sgxs, and build.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use sha2::{Digest, Sha256};

fn keygen(dir: &Path) -> PathBuf {
    let key = dir.join("k.pem");
    ok(&run(&["keygen".as_ref(), "-o".as_ref(), key.as_os_str()]));
    key
}

fn sign(key: &Path, config: &Path, elf: &str, out: &Path, date: Option<&str>) -> String {
    let mut args: Vec<std::ffi::OsString> = vec![
        "sign".into(),
        "--key".into(),
        key.into(),
        "--config".into(),
        config.into(),
        elf.into(),
        "-o".into(),
        out.into(),
    ];
    if let Some(d) = date {
        args.extend(["--date".into(), d.into()]);
    }
    ok(&run(&args))
}

fn inspect(bundle: &Path) -> serde_json::Value {
    json(&run(&[
        "inspect".as_ref(),
        "--json".as_ref(),
        bundle.as_os_str(),
    ]))
}

#[test]
fn accepts_a_static_elf_and_inspects_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path());
    let config = write_config(dir.path(), false);
    let bundle = dir.path().join("app.coffer");
    let out = sign(&key, &config, STATIC_ELF, &bundle, None);
    let mrenclave = last_line(&out).to_owned();
    assert_eq!(mrenclave.len(), 64);
    let v = inspect(&bundle);
    assert_eq!(v["mrenclave"], mrenclave.as_str());
    assert_eq!(v["isv_prod_id"], 5);
    assert_eq!(v["isv_svn"], 1);
    assert_eq!(v["debug"], false);
    assert_eq!(v["heap_size"], 0x100000);
    assert_eq!(v["stack_size"], 0x40000);
    assert_eq!(v["tcs_count"], 2);
    assert_eq!(v["signature_valid"], true);
    assert_eq!(v["measurement_valid"], true);
    assert_eq!(v["valid"], true);
    let image = std::fs::metadata(STATIC_ELF).unwrap().len();
    assert_eq!(v["image_size"], image);
    let epc = v["epc_size"].as_u64().unwrap();
    assert_eq!(epc % 4096, 0);
    // Heap + 2 × (stack + TCS + SSA) + at least the image's file bytes.
    assert!(
        epc >= 0x100000 + 2 * (0x10000 + 0x2000) + image / 4096 * 4096,
        "{epc}"
    );
    // The signer is the key's: sign prints its MRSIGNER, and so does the SIGSTRUCT.
    assert!(out.contains(v["mrsigner"].as_str().unwrap()), "{out}");
    // Date defaults to today (UTC).
    assert_eq!(v["date"].as_str().unwrap().len(), 10);

    let debug = dir.path().join("debug.coffer");
    sign(
        &key,
        &write_config(dir.path(), true),
        STATIC_ELF,
        &debug,
        None,
    );
    let d = inspect(&debug);
    assert_eq!(d["debug"], true);
    assert_eq!(d["mrenclave"], v["mrenclave"], "debug is not measured");
    assert_ne!(d["attributes"], v["attributes"]);
}

#[test]
fn rejects_a_dynamically_linked_elf_saying_how_to_link_statically() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&[
        "sign".as_ref(),
        "--key".as_ref(),
        vector("sgx/sig1.key.pem").as_os_str(),
        "--config".as_ref(),
        write_config(dir.path(), false).as_os_str(),
        DYNAMIC_ELF.as_ref(),
        "-o".as_ref(),
        dir.path().join("x.coffer").as_os_str(),
    ]);
    let line = fails_cleanly(&o, "dynamic ELF");
    assert!(line.contains("dynamically linked"), "{line}");
    assert!(line.contains("-C target-feature=+crt-static"), "{line}");
    assert!(line.contains("--target x86_64-unknown-linux-gnu"), "{line}");
}

#[test]
fn emitted_sgxs_measures_to_the_bundle_mrenclave() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("app.coffer");
    let signed = sign(
        &vector("sgx/sig1.key.pem"),
        &write_config(dir.path(), false),
        STATIC_ELF,
        &bundle,
        Some("20260101"),
    );
    let sgxs = dir.path().join("out.sgxs");
    let o = run(&[
        "measure".as_ref(),
        bundle.as_os_str(),
        "--emit-sgxs".as_ref(),
        sgxs.as_os_str(),
    ]);
    let emitted = last_line(&ok(&o)).to_owned();
    assert_eq!(emitted, last_line(&signed));
    let again = last_line(&ok(&run(&[
        "measure".as_ref(),
        "--sgxs".as_ref(),
        sgxs.as_os_str(),
    ])))
    .to_owned();
    assert_eq!(again, emitted);
    let digest = hex::encode(Sha256::digest(std::fs::read(&sgxs).unwrap()));
    assert_eq!(digest, emitted);
    assert_eq!(
        last_line(&ok(&run(&["measure".as_ref(), bundle.as_os_str()]))),
        emitted
    );
    // --emit-sgxs does not overwrite.
    fails_cleanly(
        &run(&[
            "measure".as_ref(),
            bundle.as_os_str(),
            "--emit-sgxs".as_ref(),
            sgxs.as_os_str(),
        ]),
        "overwrite sgxs",
    );
}

#[test]
fn rejects_a_bundle_with_one_code_byte_changed() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("app.coffer");
    sign(
        &vector("sgx/sig1.key.pem"),
        &write_config(dir.path(), false),
        STATIC_ELF,
        &bundle,
        Some("20260101"),
    );
    let mut bytes = std::fs::read(&bundle).unwrap();
    let image_len = std::fs::metadata(STATIC_ELF).unwrap().len() as usize;
    let at = bytes.len() - image_len + 0x2000; // inside the R|X segment of ldconfig
    bytes[at] ^= 0x40;
    let tampered = dir.path().join("tampered.coffer");
    std::fs::write(&tampered, &bytes).unwrap();
    let v = inspect(&tampered);
    assert_eq!(v["signature_valid"], true);
    assert_eq!(v["measurement_valid"], false);
    assert_eq!(v["valid"], false);
    let err = v["error"].as_str().unwrap();
    assert!(err.starts_with("measurement mismatch"), "{err}");
    assert!(err.contains(v["mrenclave"].as_str().unwrap()), "{err}");
    assert!(
        err.contains(v["measured_mrenclave"].as_str().unwrap()),
        "{err}"
    );
}

#[test]
fn two_step_signing_with_openssl_gives_the_same_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = keygen(d);
    let config = write_config(d, false);
    let data = d.join("data.bin");
    let o = run(&[
        "sign".as_ref(),
        "gendata".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        STATIC_ELF.as_ref(),
        "--date".as_ref(),
        "20260315".as_ref(),
        "-o".as_ref(),
        data.as_os_str(),
    ]);
    let out = ok(&o);
    assert!(out.contains("2026-03-15"), "{out}");
    assert_eq!(std::fs::read(&data).unwrap().len(), 256);

    let openssl = |args: &[&std::ffi::OsStr]| {
        let o = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl is installed");
        assert!(
            o.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let sig = d.join("sig.bin");
    let public = d.join("pub.pem");
    openssl(&[
        "dgst".as_ref(),
        "-sha256".as_ref(),
        "-sign".as_ref(),
        key.as_os_str(),
        "-out".as_ref(),
        sig.as_os_str(),
        data.as_os_str(),
    ]);
    openssl(&[
        "rsa".as_ref(),
        "-in".as_ref(),
        key.as_os_str(),
        "-pubout".as_ref(),
        "-out".as_ref(),
        public.as_os_str(),
    ]);

    let two = d.join("two.coffer");
    let catsig = |sig: &Path, date: &str, out: &Path| {
        run(&[
            "sign".as_ref(),
            "catsig".as_ref(),
            "--signature".as_ref(),
            sig.as_os_str(),
            "--public-key".as_ref(),
            public.as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
            STATIC_ELF.as_ref(),
            "--date".as_ref(),
            date.as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
        ])
    };
    ok(&catsig(&sig, "20260315", &two));
    let one = d.join("one.coffer");
    sign(&key, &config, STATIC_ELF, &one, Some("20260315"));
    // PKCS#1 v1.5 is deterministic: both flows give the same file.
    assert_eq!(std::fs::read(&two).unwrap(), std::fs::read(&one).unwrap());
    assert_eq!(inspect(&two)["valid"], true);

    // Another date means other signed bytes: the signature is refused.
    let bad = d.join("bad.coffer");
    let line = fails_cleanly(&catsig(&sig, "20260316", &bad), "wrong date");
    assert!(line.contains("does not verify"), "{line}");
    // A corrupted signature is refused.
    let mut s = std::fs::read(&sig).unwrap();
    s[10] ^= 1;
    let bad_sig = d.join("bad.sig");
    std::fs::write(&bad_sig, &s).unwrap();
    fails_cleanly(&catsig(&bad_sig, "20260315", &bad), "corrupted signature");
    // A signature of the wrong size is refused.
    std::fs::write(&bad_sig, &s[..100]).unwrap();
    let line = fails_cleanly(&catsig(&bad_sig, "20260315", &bad), "short signature");
    assert!(line.contains("384"), "{line}");
    assert!(!bad.exists());
}

#[test]
fn build_makes_a_static_enclave_and_signs_it() {
    // Copy the fixture to a stable place (so cargo's cache works across runs) outside any
    // workspace, and build it with its own target directory.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-enclave");
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tiny-enclave");
    std::fs::create_dir_all(work.join("src")).unwrap();
    for f in ["Cargo.toml", "src/main.rs"] {
        let want = std::fs::read(fixture.join(f)).unwrap();
        if std::fs::read(work.join(f)).ok().as_deref() != Some(&want[..]) {
            std::fs::write(work.join(f), want).unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path());
    let config = write_config(dir.path(), false);
    let bundle = dir.path().join("tiny.coffer");
    let o = coffer()
        .args(["build", "-p", "tiny-enclave", "--key"])
        .arg(&key)
        .arg("--config")
        .arg(&config)
        .arg("-o")
        .arg(&bundle)
        .arg("--target-dir")
        .arg(work.join("target"))
        .arg("--manifest-path")
        .arg(work.join("Cargo.toml"))
        .env("RUSTFLAGS", "-C debuginfo=0")
        .output()
        .unwrap();
    let out = ok(&o);
    let err = stderr(&o);
    assert!(err.contains("crt-static"), "{err}");
    let v = inspect(&bundle);
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(last_line(&out), v["mrenclave"].as_str().unwrap());
    let exe = work.join("target/x86_64-unknown-linux-gnu/release/tiny-enclave");
    assert_eq!(v["image_size"], std::fs::metadata(&exe).unwrap().len());
    // The executable runs, statically linked.
    let status = Command::new(&exe).status().unwrap();
    assert_eq!(status.code(), Some(1));

    // A package that does not exist: cargo's error, then ours.
    let o = coffer()
        .args(["build", "-p", "no-such-package", "--key"])
        .arg(&key)
        .arg("--config")
        .arg(&config)
        .arg("-o")
        .arg(dir.path().join("none.coffer"))
        .arg("--target-dir")
        .arg(work.join("target"))
        .arg("--manifest-path")
        .arg(work.join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("error: cargo build failed"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"));
}
