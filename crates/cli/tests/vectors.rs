//! The `coffer` binary against the public SGX and DCAP vectors (issue 2's CLI contract).

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;

const TEST_ENCLAVE_MRENCLAVE: &str =
    "784acfd7d5096a8f0fbd3265760bff21b120f62407a9a9e5ba31aa3c8ed198fc";

#[test]
fn measure_prints_the_test_enclave_mrenclave() {
    let out = ok(&run(&[
        "measure".as_ref(),
        "--sgxs".as_ref(),
        vector("sgx/test_enclave.sgxs").as_os_str(),
    ]));
    assert_eq!(last_line(&out), TEST_ENCLAVE_MRENCLAVE);
}

#[test]
fn sigstruct_inspect_shows_the_test_enclave_signature() {
    let v = json(&run(&[
        "sigstruct".as_ref(),
        "inspect".as_ref(),
        "--json".as_ref(),
        vector("sgx/test_enclave.sig").as_os_str(),
    ]));
    assert_eq!(v["mrenclave"], TEST_ENCLAVE_MRENCLAVE);
    assert_eq!(
        v["mrsigner"],
        "fb4bab3d6036ac1d730fa83d7366df1dd2dfeac194ef335d6854d8a6c6475542"
    );
    assert_eq!(v["signature_valid"], true);
    assert_eq!(v["isv_prod_id"], 0xffff);
    assert_eq!(v["date"], "2016-12-14");
}

#[test]
fn sigstruct_sign_reproduces_sig1_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sig1.bin");
    ok(&run(&[
        "sigstruct".as_ref(),
        "sign".as_ref(),
        "--key".as_ref(),
        vector("sgx/sig1.key.pem").as_os_str(),
        "--enclave-hash".as_ref(),
        "c50673624a6cb17c1c6c2a4e6906f47a170c4629b8723781d1017ef376f1a75d".as_ref(),
        "--date".as_ref(),
        "20160109".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(vector("sgx/sig1.sigstruct.bin")).unwrap()
    );
}

fn quote_json(name: &str) -> serde_json::Value {
    json(&run(&[
        "quote".as_ref(),
        "inspect".as_ref(),
        "--json".as_ref(),
        vector(name).as_os_str(),
    ]))
}

#[test]
fn quote_inspect_shows_the_readme_values() {
    let a = quote_json("dcap/quote_v3_pck_chain_a.bin");
    let b = quote_json("dcap/quote_v3_pck_chain_b.bin");
    for (v, qe_svn, pce_svn, mrenclave, mrsigner, debug) in [
        (
            &a,
            2,
            7,
            "04d285fd1b0f11a7e29392d7481f2d94dcdb298ba7619b04e7fc320d81f2970e",
            "9affcfae47b848ec2caf1c49b4b283531e1cc425f93582b36806e52a43d78d1a",
            true,
        ),
        (
            &b,
            10,
            15,
            "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb",
            "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6",
            false,
        ),
    ] {
        assert_eq!(v["version"], 3);
        assert_eq!(v["att_key_type"], 2);
        assert_eq!(v["qe_svn"], qe_svn);
        assert_eq!(v["pce_svn"], pce_svn);
        assert_eq!(v["qe_vendor_id"], "939a7233f79c4ca9940a0db3957f0607");
        assert_eq!(v["mrenclave"], mrenclave);
        assert_eq!(v["mrsigner"], mrsigner);
        assert_eq!(v["isv_prod_id"], 0);
        assert_eq!(v["isv_svn"], 0);
        assert_eq!(v["debug"], debug);
        assert_eq!(v["cert_data_type"], 5);
        assert_eq!(v["qe_auth_data_size"], 32);
        assert_eq!(
            v["qe_report"]["mrsigner"],
            "8c4f5775d796503e96137f77c68a829a0056ac8ded70140b081b094490c57bff"
        );
        assert_eq!(v["report_data"].as_str().unwrap().len(), 128);
    }
    assert_eq!(a["size"], 4578);
    assert_eq!(b["size"], 4600);
    assert_eq!(a["cert_data_size"], 3526);
    assert_eq!(b["cert_data_size"], 3548);
    assert_eq!(a["signature_data_size"], 4142);
    assert_eq!(a["attributes"]["flags"], "0x0000000000000007");
    // The PCK leaf's SGX extension, to fetch collateral with.
    assert_eq!(a["pck"]["fmspc"], "00906ea10000");
    assert_eq!(b["pck"]["fmspc"], "00a067110000");
    assert_eq!(b["pck"]["ca"], "processor");
    assert_eq!(
        b["pck"]["tcb_components"],
        "0b0b0202ff0100000000000000000000"
    );
    assert_eq!(b["pck"]["pcesvn"], 13);
    assert_eq!(b["attributes"]["xfrm"], "0x00000000000000e7");
    let hello = hex::encode("Hello, world!");
    assert!(b["report_data"].as_str().unwrap().starts_with(&hello));
    // Text form too.
    let text = ok(&run(&[
        "quote".as_ref(),
        "inspect".as_ref(),
        vector("dcap/quote_v3_pck_chain_b.bin").as_os_str(),
    ]));
    assert!(text.contains("33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"));
}

/// The self-signed root of the quote's own PCK chain, as PEM.
fn own_root_pem(quote: &[u8]) -> String {
    let q = <coffer_abi::quote::Quote as coffer_abi::Codec>::from_bytes(quote).unwrap();
    let chain = q.pck_certificate_chain_pem().unwrap();
    let blocks = pem::parse_many(chain).unwrap();
    let root = blocks
        .iter()
        .find(|b| {
            let (_, cert) = x509_parser::parse_x509_certificate(b.contents()).unwrap();
            cert.subject() == cert.issuer()
        })
        .expect("a self-signed root in the chain");
    pem::encode(root)
}

#[test]
fn quote_verify_passes_both_good_quotes_to_intel_s_root_key_and_to_a_pinned_root() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "dcap/quote_v3_pck_chain_a.bin",
        "dcap/quote_v3_pck_chain_b.bin",
    ] {
        let path = vector(name);
        // No --root: Intel's SGX Root CA key, built in, whichever of Intel's two root
        // certificates the chain carries.
        let o = run(&[
            "quote".as_ref(),
            "verify".as_ref(),
            path.as_os_str(),
            "--at".as_ref(),
            "2026-01-01T00:00:00Z".as_ref(),
        ]);
        let out = ok(&o);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains("Intel's SGX Root CA key"), "{out}");
        assert!(!out.contains("NOT pinned"), "{out}");
        assert!(stderr(&o).contains("no --collateral"), "{}", stderr(&o));

        let root = dir.path().join("root.pem");
        std::fs::write(&root, own_root_pem(&std::fs::read(&path).unwrap())).unwrap();
        let o = run(&[
            "quote".as_ref(),
            "verify".as_ref(),
            path.as_os_str(),
            "--root".as_ref(),
            root.as_os_str(),
            "--at".as_ref(),
            "1767225600".as_ref(),
        ]);
        let out = ok(&o);
        assert!(out.contains("pinned root"), "{out}");
        assert!(!out.contains("NOT pinned"), "{out}");

        let v = json(&run(&[
            "quote".as_ref(),
            "verify".as_ref(),
            path.as_os_str(),
            "--json".as_ref(),
            "--at".as_ref(),
            "2026-01-01T00:00:00Z".as_ref(),
        ]));
        assert_eq!(v["verified"], true);
        assert_eq!(v["root"], "intel-sgx-root-key");
        assert!(v["tcb"].is_null());
    }
}

#[test]
fn quote_verify_rejects_the_corrupted_quote_naming_the_quote_signature() {
    let o = run(&[
        "quote".as_ref(),
        "verify".as_ref(),
        vector("dcap/quote_v3_pck_chain_a_corrupted.bin").as_os_str(),
        "--at".as_ref(),
        "2026-01-01T00:00:00Z".as_ref(),
    ]);
    let line = fails_cleanly(&o, "corrupted quote");
    assert!(line.contains("quote signature"), "{line}");
}

#[test]
fn quote_verify_rejects_a_root_that_is_not_the_chain_s() {
    // Pinning the other quote's root: both chains end at Intel's root, so pin a leaf instead.
    let dir = tempfile::tempdir().unwrap();
    let path = vector("dcap/quote_v3_pck_chain_a.bin");
    let q =
        <coffer_abi::quote::Quote as coffer_abi::Codec>::from_bytes(&std::fs::read(&path).unwrap())
            .unwrap();
    let blocks = pem::parse_many(q.pck_certificate_chain_pem().unwrap()).unwrap();
    let leaf = dir.path().join("leaf.pem");
    std::fs::write(&leaf, pem::encode(&blocks[0])).unwrap();
    let o = run(&[
        "quote".as_ref(),
        "verify".as_ref(),
        path.as_os_str(),
        "--root".as_ref(),
        leaf.as_os_str(),
        "--at".as_ref(),
        "2026-01-01T00:00:00Z".as_ref(),
    ]);
    let line = fails_cleanly(&o, "wrong root");
    assert!(line.contains("certificate chain"), "{line}");
}

#[test]
fn quote_verify_checks_certificates_at_the_given_time() {
    let path = vector("dcap/quote_v3_pck_chain_b.bin");
    let o = run(&[
        "quote".as_ref(),
        "verify".as_ref(),
        path.as_os_str(),
        "--at".as_ref(),
        "2100-01-01T00:00:00Z".as_ref(),
    ]);
    let line = fails_cleanly(&o, "expired");
    assert!(line.contains("expired"), "{line}");
    for bad in [
        "yesterday",
        "2026-13-01T00:00:00Z",
        "-5",
        "99999999999999999999999",
    ] {
        let o = run(&[
            "quote".as_ref(),
            "verify".as_ref(),
            path.as_os_str(),
            "--at".as_ref(),
            bad.as_ref(),
        ]);
        assert!(!o.status.success(), "--at {bad}");
        assert!(!stderr(&o).contains("panicked"));
    }
}

#[test]
fn keygen_writes_a_private_key_that_sigstruct_sign_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    ok(&run(&["keygen".as_ref(), "-o".as_ref(), key.as_os_str()]));
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let out = dir.path().join("s.bin");
    ok(&run(&[
        "sigstruct".as_ref(),
        "sign".as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
        "--enclave-hash".as_ref(),
        TEST_ENCLAVE_MRENCLAVE.as_ref(),
        "--date".as_ref(),
        "20260101".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ]));
    let v = json(&run(&[
        "sigstruct".as_ref(),
        "inspect".as_ref(),
        "--json".as_ref(),
        out.as_os_str(),
    ]));
    assert_eq!(v["signature_valid"], true);
    assert_eq!(v["mrenclave"], TEST_ENCLAVE_MRENCLAVE);
    // keygen never overwrites.
    fails_cleanly(
        &run(&["keygen".as_ref(), "-o".as_ref(), key.as_os_str()]),
        "keygen over an existing file",
    );
}
