//! Every command given garbage exits non-zero with one error line and no panic.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use common::*;

/// Inputs no command accepts: empty, random bytes, truncated and padded vectors, a directory,
/// a missing file.
fn garbage(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut add = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        out.push((name.to_owned(), p));
    };
    add("empty", b"");
    let random = coffer_testkit::rng::bytes(0x0123_4567_89ab_cdef, 5000);
    add("random", &random);
    for v in [
        "sgx/test_enclave.sgxs",
        "sgx/test_enclave.sig",
        "dcap/quote_v3_pck_chain_a.bin",
    ] {
        let bytes = std::fs::read(vector(v)).unwrap();
        let base = v.rsplit('/').next().unwrap();
        add(&format!("{base}.truncated"), &bytes[..bytes.len() - 1]);
        add(&format!("{base}.half"), &bytes[..bytes.len() / 2]);
        let mut padded = bytes.clone();
        padded.push(0);
        add(&format!("{base}.padded"), &padded);
    }
    let elf = std::fs::read(STATIC_ELF).unwrap();
    add("elf.truncated", &elf[..elf.len() / 3]);
    let sub = dir.join("a-directory");
    std::fs::create_dir(&sub).unwrap();
    out.push(("directory".into(), sub));
    out.push(("missing".into(), dir.join("does-not-exist")));
    out
}

#[test]
fn rejects_garbage_everywhere_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = garbage(dir.path());
    let config = write_config(dir.path(), false);
    let key = dir.path().join("k.pem");
    ok(&run(&["keygen".as_ref(), "-o".as_ref(), key.as_os_str()]));
    let pubkey = vector("sgx/sig1.key.pem");
    let out = dir.path().join("out");
    let mut checked = 0;
    for (name, g) in &inputs {
        let g = g.as_os_str().to_owned();
        let s = |v: &str| OsString::from(v);
        let o = out.clone().into_os_string();
        let mut cases: Vec<Vec<OsString>> = vec![
            vec![s("measure"), s("--sgxs"), g.clone()],
            vec![s("measure"), g.clone()],
            vec![s("measure"), g.clone(), s("--emit-sgxs"), o.clone()],
            vec![s("sigstruct"), s("inspect"), g.clone()],
            vec![s("sigstruct"), s("inspect"), s("--json"), g.clone()],
            vec![s("quote"), s("inspect"), g.clone()],
            vec![s("quote"), s("inspect"), s("--json"), g.clone()],
            vec![s("quote"), s("verify"), g.clone()],
            vec![s("inspect"), g.clone()],
            vec![s("inspect"), s("--json"), g.clone()],
            // The ELF, the configuration, the key and the signature in turn.
            vec![
                s("sign"),
                s("--key"),
                key.clone().into(),
                s("--config"),
                config.clone().into(),
                g.clone(),
                s("-o"),
                o.clone(),
            ],
            vec![
                s("sign"),
                s("--key"),
                key.clone().into(),
                s("--config"),
                g.clone(),
                s(STATIC_ELF),
                s("-o"),
                o.clone(),
            ],
            vec![
                s("sign"),
                s("--key"),
                g.clone(),
                s("--config"),
                config.clone().into(),
                s(STATIC_ELF),
                s("-o"),
                o.clone(),
            ],
            vec![
                s("sign"),
                s("gendata"),
                s("--config"),
                config.clone().into(),
                g.clone(),
                s("-o"),
                o.clone(),
            ],
            vec![
                s("sign"),
                s("catsig"),
                s("--signature"),
                g.clone(),
                s("--public-key"),
                pubkey.clone().into(),
                s("--config"),
                config.clone().into(),
                s(STATIC_ELF),
                s("-o"),
                o.clone(),
            ],
            vec![
                s("sign"),
                s("catsig"),
                s("--signature"),
                vector("sgx/test_enclave.sig").into(),
                s("--public-key"),
                g.clone(),
                s("--config"),
                config.clone().into(),
                s(STATIC_ELF),
                s("-o"),
                o.clone(),
            ],
            vec![
                s("sigstruct"),
                s("sign"),
                s("--key"),
                g.clone(),
                s("--enclave-hash"),
                s(&"00".repeat(32)),
                s("--date"),
                s("20260101"),
                s("-o"),
                o.clone(),
            ],
        ];
        // A valid quote with garbage as the pinned root.
        cases.push(vec![
            s("quote"),
            s("verify"),
            vector("dcap/quote_v3_pck_chain_b.bin").into(),
            s("--root"),
            g.clone(),
        ]);
        for args in cases {
            let what = format!(
                "{name}: coffer {}",
                args.iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            fails_cleanly(&run(&args), &what);
            assert!(!out.exists(), "{what}: wrote an output");
            checked += 1;
        }
    }
    assert!(checked > 100);
}

#[test]
fn rejects_a_padded_sgxs_and_a_bad_config_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let mut sgxs = std::fs::read(vector("sgx/test_enclave.sgxs")).unwrap();
    sgxs.extend_from_slice(&[0; 64]);
    let p = dir.path().join("padded.sgxs");
    std::fs::write(&p, &sgxs).unwrap();
    let line = fails_cleanly(
        &run(&["measure".as_ref(), "--sgxs".as_ref(), p.as_os_str()]),
        "padded sgxs",
    );
    assert!(line.contains("unknown tag"), "{line}");

    let c = dir.path().join("bad.toml");
    std::fs::write(&c, "isv_prod_id = 1\nisv_svn = 1\nheap_size = 4097\nstack_size = 4096\ntcs_count = 1\ndebug = false\n").unwrap();
    let key = vector("sgx/sig1.key.pem");
    let o = dir.path().join("o.coffer");
    let line = fails_cleanly(
        &run(&[
            "sign".as_ref(),
            "--key".as_ref(),
            key.as_os_str(),
            "--config".as_ref(),
            c.as_os_str(),
            STATIC_ELF.as_ref(),
            "-o".as_ref(),
            o.as_os_str(),
        ]),
        "bad config",
    );
    assert!(line.contains("heap_size = 4097"), "{line}");
}
