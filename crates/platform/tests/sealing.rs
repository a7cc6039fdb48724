//! Sealing end to end: real enclaves (`seal-attest-enclave`, signed with chosen identities)
//! seal and unseal through `Ctx::seal`/`Ctx::unseal`, with keys from this daemon's EGETKEY.
//! The SVN, signer and product rules, MRENCLAVE binding, tamper detection, keys surviving a
//! daemon restart and differing between platforms, and the state directory's protection.

#![allow(clippy::unwrap_used)]

mod seal_attest;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use coffer_host::{Enclave, Platform};
use coffer_platform::{PlatformConfig, ServeError, VmSize};
use seal_attest::{
    TIMEOUT, VM_SIZE, bundle, call, config, create, daemon, identity, other_key, vector_key,
};

/// How `UnsealError`'s messages start.
const TAMPERED: &str = "tampered sealed blob: ";
const UNAVAILABLE: &str = "the seal key is not available to this enclave: ";
const MALFORMED: &str = "not a sealed blob: ";

fn seal(e: &Enclave, mrsigner: bool, aad: &[u8], data: &[u8]) -> Vec<u8> {
    let args = postcard::to_stdvec(&(mrsigner, aad, data)).unwrap();
    seal_attest::raw(e, call::SEAL, &args).unwrap()
}

fn unseal(e: &Enclave, blob: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let out = seal_attest::raw(e, call::UNSEAL, blob)?;
    Ok(postcard::from_bytes(&out).unwrap())
}

fn assert_refused(r: Result<(Vec<u8>, Vec<u8>), String>, prefix: &str, what: &str) {
    match r {
        Err(msg) => assert!(msg.starts_with(prefix), "{what}: {msg}"),
        Ok(_) => panic!("{what}: unsealed"),
    }
}

#[test]
fn mrsigner_seals_move_up_to_a_later_svn_but_not_down() {
    let d = daemon();
    let dir = d.dir.path();
    let platform = Platform::connect(&d.socket).unwrap();
    let v1 = create(
        &platform,
        &bundle(dir, "v1", &vector_key(), &config(1, 1, 4)),
    );
    let v2 = create(
        &platform,
        &bundle(dir, "v2", &vector_key(), &config(1, 2, 4)),
    );
    assert_eq!((identity(&v1).isvsvn, identity(&v2).isvsvn), (1, 2));
    assert_eq!(v1.mrsigner(), v2.mrsigner());

    let by_v1 = seal(&v1, true, b"header", b"secret of v1");
    assert_eq!(
        unseal(&v2, &by_v1).unwrap(),
        (b"secret of v1".to_vec(), b"header".to_vec())
    );
    assert_eq!(unseal(&v1, &by_v1).unwrap().0, b"secret of v1");

    let by_v2 = seal(&v2, true, b"", b"secret of v2");
    assert_eq!(unseal(&v2, &by_v2).unwrap().0, b"secret of v2");
    assert_refused(unseal(&v1, &by_v2), UNAVAILABLE, "v1 reading v2's seal");
}

#[test]
fn another_signer_or_product_unseals_nothing() {
    let d = daemon();
    let dir = d.dir.path();
    let platform = Platform::connect(&d.socket).unwrap();
    let sealer = create(
        &platform,
        &bundle(dir, "a", &vector_key(), &config(1, 1, 4)),
    );
    // The same code and layout (so the same MRENCLAVE) under another signer, and under the same
    // signer as another product; both at a later ISVSVN, which would otherwise be enough.
    let signer = create(&platform, &bundle(dir, "b", other_key(), &config(1, 2, 4)));
    let product = create(
        &platform,
        &bundle(dir, "c", &vector_key(), &config(2, 2, 4)),
    );
    assert_eq!(signer.mrenclave(), sealer.mrenclave());
    assert_ne!(signer.mrsigner(), sealer.mrsigner());
    assert_eq!(identity(&product).isvprodid, 2);

    let by_signer = seal(&sealer, true, b"aad", b"for my product only");
    assert_refused(unseal(&signer, &by_signer), TAMPERED, "another signer");
    assert_refused(unseal(&product, &by_signer), TAMPERED, "another product");
    // ISVPRODID enters every seal key, MRENCLAVE policy too.
    let by_enclave = seal(&sealer, false, b"aad", b"for this enclave only");
    assert_refused(unseal(&product, &by_enclave), TAMPERED, "another product");
    assert!(unseal(&sealer, &by_signer).is_ok() && unseal(&sealer, &by_enclave).is_ok());
}

#[test]
fn mrenclave_seals_open_only_in_the_same_enclave() {
    let d = daemon();
    let dir = d.dir.path();
    let platform = Platform::connect(&d.socket).unwrap();
    let path = bundle(dir, "a", &vector_key(), &config(1, 1, 4));
    let a = create(&platform, &path);
    let a_again = create(&platform, &path);
    // Another heap size is another layout, so another MRENCLAVE; signer, product and SVN agree.
    let b = create(
        &platform,
        &bundle(dir, "b", &vector_key(), &config(1, 1, 5)),
    );
    assert_ne!(a.mrenclave(), b.mrenclave());

    let blob = seal(&a, false, b"", b"only for enclave a");
    assert_eq!(unseal(&a_again, &blob).unwrap().0, b"only for enclave a");
    assert_refused(unseal(&b, &blob), TAMPERED, "another enclave");
    // The same signer's MRSIGNER seal is b's to read.
    let shared = seal(&a, true, b"", b"for the product");
    assert_eq!(unseal(&b, &shared).unwrap().0, b"for the product");
}

#[test]
fn rejects_a_blob_with_a_changed_byte_in_any_region() {
    let d = daemon();
    let platform = Platform::connect(&d.socket).unwrap();
    let e = create(
        &platform,
        &bundle(d.dir.path(), "a", &vector_key(), &config(1, 1, 4)),
    );
    for mrsigner in [false, true] {
        let blob = seal(&e, mrsigner, b"additional text", b"encrypted text");
        assert!(unseal(&e, &blob).is_ok());
        let aad_at = blob.len() - b"additional text".len();
        // One byte per region of sgx_sealed_data_t, each changed in a bit that keeps the blob
        // well-formed and asks for no key above the enclave's: the MAC must catch it.
        let regions = [
            (0, 0x01, "KEYREQUEST.KEYNAME"),
            (2, 0x02, "KEYREQUEST.KEYPOLICY"),
            (4, 0x01, "KEYREQUEST.ISVSVN (lowered)"),
            (8, 0x01, "KEYREQUEST.CPUSVN (lowered)"),
            (24, 0x01, "KEYREQUEST.ATTRIBUTEMASK"),
            (40, 0x80, "KEYREQUEST.KEYID"),
            (72, 0x01, "KEYREQUEST.MISCMASK"),
            (200, 0x01, "KEYREQUEST reserved"),
            (512, 0x01, "plain_text_offset"),
            (516, 0x01, "reserved"),
            (532, 0x01, "aes_data.reserved"),
            (544, 0x01, "payload_tag"),
            (560, 0x01, "encrypted text"),
            (aad_at, 0x01, "additional MAC text"),
        ];
        for (at, bit, region) in regions {
            let mut x = blob.clone();
            x[at] ^= bit;
            assert_refused(unseal(&e, &x), TAMPERED, region);
        }
        // A changed payload_size no longer matches the blob's length: not a blob at all.
        let mut x = blob.clone();
        x[528] ^= 0x01;
        assert_refused(unseal(&e, &x), MALFORMED, "aes_data.payload_size");
        assert_refused(
            unseal(&e, &blob[..blob.len() - 1]),
            MALFORMED,
            "a truncated blob",
        );
    }
}

#[test]
fn seal_keys_differ_between_two_platforms() {
    let one = daemon();
    let two = daemon();
    let path = bundle(one.dir.path(), "a", &vector_key(), &config(1, 1, 4));
    let here = create(&Platform::connect(&one.socket).unwrap(), &path);
    let there = create(&Platform::connect(&two.socket).unwrap(), &path);
    assert_eq!(here.mrenclave(), there.mrenclave());
    for mrsigner in [false, true] {
        let blob = seal(&here, mrsigner, b"", b"platform one's secret");
        assert!(unseal(&here, &blob).is_ok());
        assert_refused(unseal(&there, &blob), TAMPERED, "the other platform");
    }
}

/// Run by `seal_keys_survive_a_daemon_restart` as a daemon process of its own (so that the
/// restart is a real one); does nothing when run directly.
#[test]
#[ignore = "a helper process of another test"]
fn helper_serve_a_platform() {
    let Ok(dir) = std::env::var("COFFER_TEST_SEAL_SERVE") else {
        return;
    };
    let dir = Path::new(&dir);
    let config = PlatformConfig::new(
        VmSize::from_name(VM_SIZE).unwrap(),
        dir.join("platform.sock"),
        dir.join("state"),
    );
    coffer_platform::PlatformDaemon::bind(config)
        .unwrap()
        .serve()
        .unwrap();
}

/// A daemon process on `dir`, killed when dropped.
struct DaemonProcess(std::process::Child);

impl DaemonProcess {
    fn start(dir: &Path) -> (DaemonProcess, Platform) {
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "helper_serve_a_platform", "--ignored"])
            .env("COFFER_TEST_SEAL_SERVE", dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let daemon = DaemonProcess(child);
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok(p) = Platform::connect(dir.join("platform.sock")) {
                return (daemon, p);
            }
            assert!(Instant::now() < deadline, "the daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn seal_keys_survive_a_daemon_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = bundle(dir.path(), "a", &vector_key(), &config(1, 1, 4));

    let (daemon, platform) = DaemonProcess::start(dir.path());
    let e = create(&platform, &path);
    let by_enclave = seal(&e, false, b"aad", b"kept across a restart");
    let by_signer = seal(&e, true, b"aad", b"kept across a restart too");
    e.destroy().unwrap();
    drop(platform);
    drop(daemon);

    let (_daemon, platform) = DaemonProcess::start(dir.path());
    let e = create(&platform, &path);
    assert_eq!(unseal(&e, &by_enclave).unwrap().0, b"kept across a restart");
    assert_eq!(
        unseal(&e, &by_signer).unwrap().0,
        b"kept across a restart too"
    );
}

#[test]
fn the_root_key_is_private_to_the_daemon_and_an_exposed_one_is_refused() {
    let d = daemon();
    let state = d.dir.path().join("state");
    let key = state.join("root.key");
    let euid = rustix::process::geteuid().as_raw();
    let dir_meta = std::fs::metadata(&state).unwrap();
    let key_meta = std::fs::metadata(&key).unwrap();
    assert_eq!(dir_meta.mode() & 0o777, 0o700, "state directory mode");
    assert_eq!(key_meta.mode() & 0o777, 0o600, "root key mode");
    assert_eq!((dir_meta.uid(), key_meta.uid()), (euid, euid));
    assert_eq!(key_meta.len(), 16);

    // A daemon (re)started on a state directory whose key others could read refuses to run.
    let bind = |name: &str| {
        let config = PlatformConfig::new(
            VmSize::from_name(VM_SIZE).unwrap(),
            d.dir.path().join(name),
            state.clone(),
        );
        coffer_platform::PlatformDaemon::bind(config)
    };
    assert!(bind("ok.sock").is_ok());
    for mode in [0o640, 0o604, 0o620] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        match bind("refused.sock") {
            Err(ServeError::State(e)) => {
                assert!(
                    e.to_string()
                        .contains("other users could read or change it"),
                    "{e}"
                )
            }
            other => panic!("mode {mode:o}: {other:?}"),
        }
    }
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o750)).unwrap();
    assert!(matches!(bind("refused.sock"), Err(ServeError::State(_))));
}
