//! The runtime in a real enclave process: the test plays the platform daemon (channel, socket
//! pair, Boot, the CPU's services) and the host (ECALLs, OCALLs), and launches the enclaves the
//! way the daemon does, from a sealed static-pie image.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use coffer_abi::keyrequest::{KeyName, KeyPolicy};
use coffer_abi::{Codec, Keyrequest, Report, Targetinfo};
use coffer_channel::{CallError, ChannelLayout, Status};
use coffer_cpu::PlatformRoot;
use coffer_enclave::exit_code;
use coffer_enclave::interface::TransportError;
use coffer_proto::enclave::{DaemonReply, EnclaveMessage};
use common::{Options, binaries, boot, dispatched, identity, launch, spawn};
use hello_common::{HelloHost, HelloProxy, hello_host_dispatch};

/// The host's side of hello's OCALL: says what it saw.
struct SawIt;

impl HelloHost for SawIt {
    fn echo(&self, text: String) -> String {
        format!("host saw: {text}")
    }
}

/// The `test-enclave` example's call ids.
mod test_enclave {
    pub const ECHO: u32 = 1;
    pub const EGETKEY: u32 = 2;
    pub const EREPORT: u32 = 3;
    pub const IDENTITY: u32 = 4;
    pub const FAIL: u32 = 5;
    pub const PANIC: u32 = 6;
    pub const QUOTE: u32 = 7;
    pub const INFO: u32 = 8;
    pub const SEAL: u32 = 9;
    pub const UNSEAL: u32 = 10;
}

fn platform() -> PlatformRoot {
    PlatformRoot::new([0x11; 16], [0x22; 16], [0x01; 16])
}

#[test]
fn accepts_an_echo_through_an_ocall() {
    let enclave = launch(&binaries().hello, &Options::hello());
    let ocalls = std::cell::RefCell::new(Vec::new());
    let hello = HelloProxy::new(enclave.typed(|id, input| {
        let (text,): (String,) = coffer_enclave::interface::decode(input).unwrap();
        ocalls.borrow_mut().push((id, text));
        dispatched(hello_host_dispatch(&SawIt, id, input))
    }));
    assert_eq!(
        hello.echo("hello, enclave".into()).unwrap(),
        Ok("host saw: hello, enclave".into())
    );
    assert_eq!(*ocalls.borrow(), [(1, "hello, enclave".to_string())]);

    // A host that refuses the OCALL: the enclave's typed proxy reports the reason, which the
    // enclave returns as its method's error.
    let hello = HelloProxy::new(enclave.typed(|_, _| (Status::Failed, b"no echo today".to_vec())));
    assert_eq!(
        hello.echo("x".into()).unwrap(),
        Err("the callee refused the call's message: no echo today".into())
    );
}

#[test]
fn serves_one_call_per_thread_at_once() {
    let enclave = launch(&binaries().hello, &Options::hello());
    // Two host threads inside ECALLs at the same time: each OCALL waits until both are in.
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        for text in ["one", "two"] {
            let (enclave, barrier) = (&enclave, &barrier);
            s.spawn(move || {
                let hello = HelloProxy::new(enclave.typed(|id, input| {
                    barrier.wait();
                    dispatched(hello_host_dispatch(&SawIt, id, input))
                }));
                assert_eq!(
                    hello.echo(text.into()).unwrap(),
                    Ok(format!("host saw: {text}"))
                );
            });
        }
    });
}

#[test]
fn answers_an_unknown_call_id_with_unknown_call() {
    let enclave = launch(&binaries().hello, &Options::hello());
    let result = enclave.ecall(99, b"").unwrap();
    assert_eq!(result.status, Status::UnknownCall);
    assert!(result.output.is_empty());
    // The enclave serves on.
    let hello =
        HelloProxy::new(enclave.typed(|id, i| dispatched(hello_host_dispatch(&SawIt, id, i))));
    assert_eq!(
        hello.echo("still here".into()).unwrap(),
        Ok("host saw: still here".into())
    );
}

#[test]
fn kills_an_enclave_that_opens_a_file_with_sigsys() {
    let mut enclave = launch(&binaries().hello, &Options::hello());
    let result = enclave.with_call(
        |e| {
            HelloProxy::new(e.typed(|_, _| (Status::UnknownCall, Vec::new())))
                .try_open("/etc/passwd".into())
        },
        |e| {
            assert!(
                e.ends_within(Duration::from_secs(30)),
                "the enclave opened a file and lives on"
            );
            // The daemon's part: the process ended, so the enclave is lost and its host woken.
            e.mark_lost("sandbox violation (SIGSYS)");
        },
    );
    let err = result.unwrap_err();
    assert!(
        matches!(&err, TransportError::EnclaveLost(reason) if reason.contains("SIGSYS")),
        "{err}"
    );
    let status = enclave.wait();
    assert_eq!(
        common::signal(status),
        Some(libc::SIGSYS),
        "expected a seccomp kill, got {status:?}"
    );
}

#[test]
fn serves_egetkey_and_ereport_through_the_daemon() {
    let enclave = launch(&binaries().test_enclave, &Options::hello());
    let root = platform();
    let me = identity(false);

    let request = Keyrequest {
        keyname: KeyName::SEAL_KEY,
        keypolicy: KeyPolicy::MRSIGNER,
        isvsvn: 1,
        keyid: [0x77; 32],
        ..Keyrequest::default()
    };
    let expected_key = root.egetkey(&me, &request).unwrap();
    let target = Targetinfo {
        measurement: [0x42; 32],
        ..Targetinfo::default()
    };
    let reportdata = [0xd0; 64];
    let keyid = [0x0c; 32];

    std::thread::scope(|s| {
        let daemon = s.spawn(|| {
            match enclave.recv() {
                EnclaveMessage::Egetkey { keyrequest } => {
                    assert_eq!(keyrequest, request.to_bytes(), "KEYREQUEST bytes");
                    let req = Keyrequest::from_bytes(&keyrequest).unwrap();
                    let key = root.egetkey(&me, &req).unwrap();
                    enclave.reply(&DaemonReply::Key(key.to_vec()));
                }
                other => panic!("expected Egetkey, got {other:?}"),
            }
            match enclave.recv() {
                EnclaveMessage::Ereport {
                    targetinfo,
                    reportdata: data,
                } => {
                    assert_eq!(targetinfo, target.to_bytes(), "TARGETINFO bytes");
                    assert_eq!(data, reportdata, "REPORTDATA bytes");
                    let ti = Targetinfo::from_bytes(&targetinfo).unwrap();
                    let report = coffer_cpu::ereport(&root, &me, &ti, &reportdata, &keyid);
                    enclave.reply(&DaemonReply::Report(report.to_bytes()));
                }
                other => panic!("expected Ereport, got {other:?}"),
            }
        });

        let key = enclave
            .ecall(test_enclave::EGETKEY, &request.to_bytes())
            .unwrap();
        assert_eq!(
            key.status,
            Status::Ok,
            "{:?}",
            String::from_utf8_lossy(&key.output)
        );
        assert_eq!(key.output, expected_key.to_vec());

        let input = [target.to_bytes(), reportdata.to_vec()].concat();
        let report = enclave.ecall(test_enclave::EREPORT, &input).unwrap();
        assert_eq!(
            report.status,
            Status::Ok,
            "{:?}",
            String::from_utf8_lossy(&report.output)
        );
        let report = Report::from_bytes(&report.output).unwrap();
        assert_eq!(report.body.reportdata, reportdata);
        assert_eq!(report.body.mrenclave, me.mrenclave);
        assert_eq!(report.keyid, keyid);
        // The target enclave can check it with its own report key.
        let target_identity = coffer_abi::ReportBody {
            mrenclave: target.measurement,
            ..coffer_abi::ReportBody::default()
        };
        coffer_cpu::verify_report(&root, &target_identity, &report).unwrap();
        daemon.join().unwrap();
    });
}

#[test]
fn rejects_a_refused_key_request_with_the_platform_reason() {
    let enclave = launch(&binaries().test_enclave, &Options::hello());
    let request = Keyrequest {
        keyname: KeyName::SEAL_KEY,
        isvsvn: 9,
        ..Keyrequest::default()
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            let EnclaveMessage::Egetkey { keyrequest } = enclave.recv() else {
                panic!("expected Egetkey");
            };
            let req = Keyrequest::from_bytes(&keyrequest).unwrap();
            let err = platform().egetkey(&identity(false), &req).unwrap_err();
            enclave.reply(&DaemonReply::Error(err.to_string()));
        });
        let result = enclave
            .ecall(test_enclave::EGETKEY, &request.to_bytes())
            .unwrap();
        assert_eq!(result.status, Status::Failed);
        assert_eq!(
            String::from_utf8(result.output).unwrap(),
            "the platform refused EGETKEY: key request ISVSVN 9 is above the enclave's ISVSVN 1"
        );
    });
}

#[test]
fn serves_egetkey_through_the_key_mailbox_with_typed_refusals() {
    use coffer_channel::mailbox::KeyAnswer;
    use std::sync::atomic::{AtomicBool, Ordering};

    let (enclave, server) =
        common::launch_with_mailbox(&binaries().test_enclave, &Options::hello());
    let stop = AtomicBool::new(false);
    let served = std::sync::atomic::AtomicU32::new(0);
    /// Stops the stand-in daemon's thread however the test ends, so a failure is not a hang.
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    std::thread::scope(|s| {
        let _stop = StopOnDrop(&stop);
        s.spawn(|| {
            server.serve(&stop, |bytes| {
                served.fetch_add(1, Ordering::SeqCst);
                let Ok(req) = Keyrequest::from_bytes(bytes) else {
                    return KeyAnswer::MalformedRequest;
                };
                match platform().egetkey(&identity(false), &req) {
                    Ok(key) => KeyAnswer::Key(*key),
                    Err(coffer_cpu::EgetkeyError::InvalidIsvsvn { requested, current }) => {
                        KeyAnswer::InvalidIsvsvn { requested, current }
                    }
                    Err(e) => panic!("{e}"),
                }
            });
        });
        let request = Keyrequest {
            keyname: KeyName::SEAL_KEY,
            keyid: [4; 32],
            ..Keyrequest::default()
        };
        for _ in 0..3 {
            let result = enclave
                .ecall(test_enclave::EGETKEY, &request.to_bytes())
                .unwrap();
            assert_eq!(result.status, Status::Ok);
            let expected = platform().egetkey(&identity(false), &request).unwrap();
            assert_eq!(result.output, expected.to_vec());
        }
        let newer = Keyrequest {
            isvsvn: 9,
            ..request
        };
        let result = enclave
            .ecall(test_enclave::EGETKEY, &newer.to_bytes())
            .unwrap();
        assert_eq!(result.status, Status::Failed);
        assert_eq!(
            String::from_utf8(result.output).unwrap(),
            "the platform refused EGETKEY: key request ISVSVN 9 is above the enclave's ISVSVN 1"
        );
    });
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 4);
}

#[test]
fn a_sealed_blob_opened_while_the_daemon_is_down_reports_the_daemon_unreachable() {
    let enclave = launch(&binaries().test_enclave, &Options::hello());
    // The daemon derives the seal key for the blob.
    let blob = enclave.with_call(
        |e| e.ecall(test_enclave::SEAL, b"kept for later").unwrap(),
        |e| {
            let EnclaveMessage::Egetkey { keyrequest } = e.recv() else {
                panic!("expected Egetkey");
            };
            let req = Keyrequest::from_bytes(&keyrequest).unwrap();
            let key = platform().egetkey(&identity(false), &req).unwrap();
            e.reply(&DaemonReply::Key(key.to_vec()));
        },
    );
    assert_eq!(blob.status, Status::Ok);
    // The daemon goes away: its end of the socket closes.
    rustix::net::shutdown(&enclave.daemon, rustix::net::Shutdown::Both).unwrap();
    let result = enclave.ecall(test_enclave::UNSEAL, &blob.output).unwrap();
    assert_eq!(result.status, Status::Failed);
    let message = String::from_utf8(result.output).unwrap();
    assert!(
        message.starts_with(
            "the platform did not answer the seal key request: the platform daemon is unreachable"
        ),
        "{message}"
    );
    assert!(
        !message.contains("not available"),
        "an unreachable daemon is not a key sealed by a newer version: {message}"
    );
}

#[test]
fn serves_a_quote_for_a_report_targeted_at_the_quoting_enclave() {
    let enclave = launch(&binaries().test_enclave, &Options::hello());
    let root = platform();
    let me = identity(false);
    let qe = Targetinfo {
        measurement: [0x9e; 32],
        ..Targetinfo::default()
    };
    let reportdata = [0x5c; 64];
    std::thread::scope(|s| {
        s.spawn(|| {
            assert_eq!(enclave.recv(), EnclaveMessage::QeTargetinfo);
            enclave.reply(&DaemonReply::Targetinfo(qe.to_bytes()));
            let report = match enclave.recv() {
                EnclaveMessage::Ereport {
                    targetinfo,
                    reportdata: data,
                } => {
                    assert_eq!(targetinfo, qe.to_bytes());
                    assert_eq!(data, reportdata);
                    coffer_cpu::ereport(&root, &me, &qe, &reportdata, &[0; 32])
                }
                other => panic!("expected Ereport, got {other:?}"),
            };
            enclave.reply(&DaemonReply::Report(report.to_bytes()));
            match enclave.recv() {
                EnclaveMessage::Quote { report: bytes } => {
                    assert_eq!(bytes, report.to_bytes(), "the report to quote");
                }
                other => panic!("expected Quote, got {other:?}"),
            }
            enclave.reply(&DaemonReply::Quote(b"a quote".to_vec()));
        });
        let result = enclave.ecall(test_enclave::QUOTE, &reportdata).unwrap();
        assert_eq!(
            result.status,
            Status::Ok,
            "{:?}",
            String::from_utf8_lossy(&result.output)
        );
        assert_eq!(result.output, b"a quote");
    });
}

#[test]
fn identity_and_interface_id_come_from_the_boot() {
    let mut options = Options::hello();
    options.interface_id = vec![0xab; 32];
    let enclave = launch(&binaries().test_enclave, &options);
    let result = enclave.ecall(test_enclave::IDENTITY, b"").unwrap();
    assert_eq!(result.output, identity(false).to_bytes());
    let result = enclave.ecall(test_enclave::INFO, b"").unwrap();
    assert_eq!(result.output, [vec![0xab; 32], vec![0]].concat());

    let debug = launch(&binaries().test_enclave, &Options::hello().debug());
    let result = debug.ecall(test_enclave::INFO, b"").unwrap();
    assert_eq!(result.output, [1]);
    let result = debug.ecall(test_enclave::IDENTITY, b"").unwrap();
    assert_eq!(result.output, identity(true).to_bytes());
}

#[test]
fn a_handler_error_reaches_the_host_as_failed_with_its_bytes() {
    let enclave = launch(&binaries().test_enclave, &Options::hello());
    let result = enclave.ecall(test_enclave::FAIL, b"\x00why\xff").unwrap();
    assert_eq!(result.status, Status::Failed);
    assert_eq!(result.output, b"\x00why\xff");
    let result = enclave
        .ecall_with(test_enclave::ECHO, b"after", &mut |id, i| {
            assert_eq!(id, 7);
            (Status::Ok, i.to_vec())
        })
        .unwrap();
    assert_eq!(result.output, b"after");
}

#[test]
fn a_panic_aborts_the_whole_enclave() {
    let mut enclave = launch(&binaries().test_enclave, &Options::hello());
    let result = enclave.with_call(
        |e| e.ecall(test_enclave::PANIC, b""),
        |e| {
            assert!(e.ends_within(Duration::from_secs(30)), "still running");
            e.mark_lost("crashed (SIGABRT)");
        },
    );
    assert!(matches!(result, Err(CallError::EnclaveLost { .. })));
    let status = enclave.wait();
    assert_eq!(common::signal(status), Some(libc::SIGABRT), "{status:?}");
}

#[test]
fn stops_when_the_daemon_destroys_the_enclave() {
    let mut enclave = launch(&binaries().hello, &Options::hello());
    enclave
        .channel
        .mark_lost(coffer_channel::EnclaveState::Destroyed, 0, "destroyed");
    assert!(
        enclave.ends_within(Duration::from_secs(30)),
        "still running"
    );
    assert_eq!(enclave.wait().code(), Some(exit_code::STOPPED));
}

#[test]
fn rejects_a_boot_whose_channel_does_not_match() {
    // The Boot's slot size differs from the memfd's: mapping it would read past the end.
    let options = Options::hello();
    let mut enclave = spawn(
        &binaries().hello,
        ChannelLayout::new(options.tcs, 2 * options.slot_size).unwrap(),
    );
    enclave.send(&boot(&options));
    match enclave.recv() {
        EnclaveMessage::Failed { reason } => {
            assert!(reason.starts_with("opening the channel failed"), "{reason}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(enclave.wait().code(), Some(exit_code::SETUP_FAILED));

    // One slot per thread, or the host could call a slot no worker serves.
    let mut bad = boot(&options);
    bad.slot_count = 1;
    let mut enclave = spawn(
        &binaries().hello,
        ChannelLayout::new(1, options.slot_size).unwrap(),
    );
    enclave.send(&bad);
    match enclave.recv() {
        EnclaveMessage::Failed { reason } => {
            assert_eq!(
                reason,
                "boot gives 1 channel slots for 2 enclave threads (TCS); there must be one slot \
                 per thread"
            );
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(enclave.wait().code(), Some(exit_code::SETUP_FAILED));
}

#[test]
fn exits_when_the_daemon_sends_no_boot() {
    let options = Options::hello();
    let mut enclave = spawn(
        &binaries().hello,
        ChannelLayout::new(options.tcs, options.slot_size).unwrap(),
    );
    enclave.send(&"not a boot message");
    assert!(
        enclave.ends_within(Duration::from_secs(30)),
        "still running"
    );
    assert_eq!(enclave.wait().code(), Some(exit_code::NO_BOOT));
}
