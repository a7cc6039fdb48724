//! The daemon with the real enclave runtime: the `hello` example's enclave, built statically
//! (once per run, into `target/enclave-tests` so the outer cargo's lock is not needed), signed
//! with the vectors' key, and driven through `coffer-host`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use coffer_host::interface::TransportError;
use coffer_host::{Enclave, EnclaveOptions, HostError, Platform, PlatformError};
use coffer_platform::{LaunchPolicy, SignerAllowlist};
use coffer_sign::{Bundle, EnclaveConfig};
use coffer_testkit::enclave;
use common::*;
use hello_common::{
    HELLO_HOST_INTERFACE, HELLO_INTERFACE, HelloHost, HelloProxy, hello_host_dispatch,
};

const TIMEOUT: Duration = Duration::from_secs(10);

fn hello_config(file: &str) -> EnclaveConfig {
    enclave::workspace_config(&format!("examples/hello/{file}"))
}

fn hello_bundle(config: &EnclaveConfig) -> Bundle {
    enclave::sign(
        &vector_key(),
        config,
        enclave::static_image("hello-enclave"),
    )
}

fn write_bundle(d: &Daemon, name: &str, b: &Bundle) -> PathBuf {
    enclave::write_bundle(d.dir.path(), name, b)
}

fn refusal(r: Result<coffer_host::Enclave, HostError>) -> PlatformError {
    match r {
        Err(HostError::Refused(e)) => e,
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(e) => panic!("expected a refusal, got enclave {}", e.id()),
    }
}

/// The host's side of hello's OCALL: says what it saw.
struct SawIt;

impl HelloHost for SawIt {
    fn echo(&self, text: String) -> String {
        format!("host saw: {text}")
    }
}

/// Creates the hello enclave with its typed interface, serving its OCALL with [`SawIt`].
fn create(platform: &Platform, path: &std::path::Path) -> Result<Enclave, HostError> {
    let options = EnclaveOptions::typed(&HELLO_INTERFACE).serving(
        &HELLO_HOST_INTERFACE,
        SawIt,
        hello_host_dispatch,
    );
    platform.create_enclave_with(path, options)
}

fn echo(enclave: &Enclave, text: &str) -> Result<String, TransportError> {
    let answer = HelloProxy::new(enclave).echo(text.into())?;
    Ok(answer.unwrap_or_else(|e| panic!("the enclave's echo failed: {e}")))
}

#[test]
fn runs_hello_with_ecalls_and_ocalls_then_destroys_it() {
    let d = start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    let b = hello_bundle(&hello_config("enclave.toml"));
    let path = write_bundle(&d, "hello.coffer", &b);
    let verified = b.verify().unwrap();

    let platform = Platform::connect(&d.socket).unwrap();
    let enclave = create(&platform, &path).unwrap();
    assert_eq!(enclave.mrenclave(), verified.mrenclave());
    assert!(!enclave.debug());
    assert_eq!(echo(&enclave, "hi").unwrap(), "host saw: hi");
    HelloProxy::new(&enclave).probe(vec![1, 2, 3]).unwrap();

    let s = platform.status().unwrap();
    assert_eq!(s.epc_used, verified.epc_size());
    let e = &s.enclaves[0];
    assert_eq!(
        (e.id, e.pid, e.state.as_str()),
        (enclave.id(), enclave.pid(), "running")
    );

    let pid = enclave.pid();
    enclave.destroy().unwrap();
    let s = platform.status().unwrap();
    assert_eq!((s.epc_used, s.enclaves.len()), (0, 0));
    assert!(
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |st| st.contains(") Z ")),
        "the enclave process must be gone"
    );
}

#[test]
fn loses_hello_on_a_sandbox_violation_and_keeps_serving_the_others() {
    let d = start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    let path = write_bundle(
        &d,
        "hello.coffer",
        &hello_bundle(&hello_config("enclave.toml")),
    );
    let platform = Platform::connect(&d.socket).unwrap();
    let victim = create(&platform, &path).unwrap();
    let bystander = create(&platform, &path).unwrap();

    let err = HelloProxy::new(&victim)
        .try_open("/etc/hostname".into())
        .unwrap_err();
    match &err {
        TransportError::EnclaveLost(reason) => assert_eq!(
            reason,
            "sandbox violation: the enclave made a forbidden system call (killed by seccomp)"
        ),
        other => panic!("expected EnclaveLost, got {other:?}"),
    }
    // Every later call fails the same way.
    assert!(matches!(
        echo(&victim, "x"),
        Err(TransportError::EnclaveLost(_))
    ));

    let c = Client::connect(&d);
    let s = c.wait_for("the victim's EPC to be free", |s| {
        s.enclaves
            .iter()
            .any(|e| e.id == victim.id() && e.state == "lost")
            && s.epc_used
                == s.enclaves
                    .iter()
                    .find(|e| e.id == bystander.id())
                    .unwrap()
                    .epc_bytes
    });
    assert_eq!(s.enclaves.len(), 2);
    assert_eq!(
        echo(&bystander, "still here").unwrap(),
        "host saw: still here"
    );
    let again = create(&platform, &path).unwrap();
    assert_eq!(echo(&again, "new").unwrap(), "host saw: new");
}

#[test]
fn refuses_a_second_hello_that_does_not_fit_until_the_first_is_destroyed() {
    let d = start("Standard_DC1s_v2", LaunchPolicy::default(), TIMEOUT);
    let mut config = hello_config("enclave.toml");
    config.heap_size = 16 * MIB;
    let b = hello_bundle(&config);
    let asked = b.verify().unwrap().epc_size();
    let path = write_bundle(&d, "big.coffer", &b);
    let platform = Platform::connect(&d.socket).unwrap();

    let first = create(&platform, &path).unwrap();
    assert_eq!(echo(&first, "1").unwrap(), "host saw: 1");
    let err = refusal(create(&platform, &path));
    assert_eq!(
        err,
        PlatformError::EpcExhausted {
            asked,
            free: 28 * MIB - asked,
            total: 28 * MIB,
            vm_size: "Standard_DC1s_v2".into()
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("Standard_DC1s_v2") && msg.contains(&asked.to_string()),
        "{msg}"
    );
    first.destroy().unwrap();
    let second = create(&platform, &path).unwrap();
    assert_eq!(echo(&second, "2").unwrap(), "host saw: 2");
}

#[test]
fn rejects_hello_with_one_code_byte_changed() {
    let d = start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    let config = hello_config("enclave.toml");
    let b = hello_bundle(&config);
    let at = coffer_testkit::elf::executable_byte(b.image());
    let mut image = b.image().to_vec();
    image[at] ^= 0x01;
    let actual = coffer_sign::measure_enclave(&image, &config)
        .unwrap()
        .mrenclave;
    let mut bytes = b.to_bytes();
    let image_start = bytes.len() - image.len();
    bytes[image_start + at] ^= 0x01;
    let path = write(d.dir.path(), "changed.coffer", &bytes);

    let platform = Platform::connect(&d.socket).unwrap();
    let err = refusal(create(&platform, &path));
    assert_eq!(
        err,
        PlatformError::MeasurementMismatch {
            expected: b.sigstruct().enclavehash,
            actual,
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&hex::encode(b.sigstruct().enclavehash)) && msg.contains(&hex::encode(actual)),
        "{msg}"
    );
}

#[test]
fn rejects_debug_hello_without_allow_debug() {
    let b = hello_bundle(&hello_config("enclave-debug.toml"));
    let strict = start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    let path = write_bundle(&strict, "debug.coffer", &b);
    let platform = Platform::connect(&strict.socket).unwrap();
    assert_eq!(
        refusal(create(&platform, &path)),
        PlatformError::DebugNotAllowed
    );

    let dev = start(
        "Standard_DC2s_v2",
        LaunchPolicy {
            allow_debug: true,
            signer_allowlist: None,
        },
        TIMEOUT,
    );
    let platform = Platform::connect(&dev.socket).unwrap();
    let enclave = create(&platform, &path).unwrap();
    assert!(enclave.debug());
    assert_eq!(echo(&enclave, "dbg").unwrap(), "host saw: dbg");
}

#[test]
fn rejects_hello_from_a_signer_not_on_the_allowlist() {
    let b = hello_bundle(&hello_config("enclave.toml"));
    let d = start(
        "Standard_DC2s_v2",
        LaunchPolicy {
            allow_debug: false,
            signer_allowlist: Some(SignerAllowlist::parse(&"cd".repeat(32)).unwrap()),
        },
        TIMEOUT,
    );
    let path = write_bundle(&d, "hello.coffer", &b);
    let platform = Platform::connect(&d.socket).unwrap();
    assert_eq!(
        refusal(create(&platform, &path)),
        PlatformError::SignerNotAllowed {
            mrsigner: vector_key().verifying_key().mrsigner()
        }
    );
}

#[test]
fn loses_a_traced_hello_enclave() {
    let d = start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    let path = write_bundle(
        &d,
        "hello.coffer",
        &hello_bundle(&hello_config("enclave.toml")),
    );
    let platform = Platform::connect(&d.socket).unwrap();
    let enclave = create(&platform, &path).unwrap();
    let Ok(mut tracer) = std::process::Command::new("strace")
        .args(["-f", "-o", "/dev/null", "-p", &enclave.pid().to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    else {
        eprintln!("strace is not installed; skipped");
        return;
    };
    let c = Client::connect(&d);
    let s = c.wait_for("the traced enclave to be lost", |s| {
        s.enclaves.first().is_some_and(|e| e.state == "lost") && s.epc_used == 0
    });
    let reason = s.enclaves[0].lost_reason.clone().unwrap();
    assert!(reason.starts_with("tracer attached (pid "), "{reason}");
    assert!(matches!(
        echo(&enclave, "x"),
        Err(TransportError::EnclaveLost(_))
    ));
    let _ = tracer.kill();
    let _ = tracer.wait();
}
