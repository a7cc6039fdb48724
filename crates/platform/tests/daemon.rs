//! The daemon end to end on real processes: hand-made static enclave programs, signed bundles,
//! the client protocol over the daemon's socket.

mod common;

use std::os::fd::AsFd;
use std::time::Duration;

use coffer_channel::{Channel, ChannelLayout, EnclaveState};
use coffer_platform::{LaunchPolicy, SignerAllowlist};
use coffer_proto::client::{PlatformError, Request, RequestError, Response};
use coffer_testkit::{is_root, require_root};
use common::*;

const TIMEOUT: Duration = Duration::from_secs(10);

fn created(resp: Response) -> coffer_proto::client::Created {
    match resp {
        Response::Created(c) => c,
        other => panic!("expected Created, got {other:?}"),
    }
}

#[test]
fn creates_lists_and_destroys_an_enclave_returning_its_epc() {
    let d = start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    let key = vector_key();
    let cfg = config(4 * MIB, false);
    let b = bundle(&key, &cfg, &ready_then_wait());
    let path = write(d.dir.path(), "app.coffer", &b.to_bytes());
    let verified = b.verify().unwrap();

    let c = Client::connect(&d);
    let before = c.status();
    assert_eq!(before.vm_size, "Standard_DC2s_v2");
    assert_eq!(before.epc_total, 56 * MIB);
    assert_eq!(before.epc_used, 0);
    // Root key in a file at least: never UpToDate on the soft backend today.
    assert!(before.tcb.advisory_ids().any(|id| id == "COFFER-SA-0009"));

    let (resp, fd) = c.create(&path);
    let info = created(resp);
    assert_eq!(info.mrenclave, verified.mrenclave());
    assert_eq!(info.mrsigner, verified.mrsigner());
    assert_eq!(info.epc_bytes, verified.epc_size());
    assert_eq!((info.slot_count, info.slot_size), (2, 8192));
    assert!(!info.debug);
    let fd = fd.expect("the channel descriptor comes with Created");
    let channel = Channel::open(fd.as_fd(), ChannelLayout::new(2, 8192).unwrap()).unwrap();
    assert_eq!(channel.enclave_state(), Some(EnclaveState::Running));

    let s = c.status();
    assert_eq!(s.epc_used, info.epc_bytes);
    let e = &s.enclaves[0];
    assert_eq!(
        (e.id, e.pid, e.state.as_str()),
        (info.id, info.pid, "running")
    );
    assert_eq!(e.mrenclave, info.mrenclave);
    assert_eq!(e.owner_uid, rustix::process::getuid().as_raw());
    // The enclave runs under its own uid, not the daemon's.
    let proc_status = std::fs::read_to_string(format!("/proc/{}/status", info.pid)).unwrap();
    let uid_line = proc_status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    if is_root() {
        assert!(
            !uid_line.split_whitespace().skip(1).any(|u| u == "0"),
            "{uid_line}"
        );
    }

    // It runs from a sealed memfd: no one can change its code after measurement.
    let exe = std::fs::File::open(format!("/proc/{}/exe", info.pid)).unwrap();
    let seals = rustix::fs::fcntl_get_seals(&exe).unwrap();
    use rustix::fs::SealFlags;
    assert!(
        seals.contains(SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL),
        "{seals:?}"
    );
    drop(exe);

    assert_eq!(c.destroy(info.id), Response::Destroyed { id: info.id });
    assert_eq!(channel.enclave_state(), Some(EnclaveState::Destroyed));
    let s = c.status();
    assert_eq!((s.epc_used, s.enclaves.len()), (0, 0));
    assert!(
        !std::path::Path::new(&format!("/proc/{}", info.pid)).exists()
            || std::fs::read_to_string(format!("/proc/{}/stat", info.pid))
                .is_ok_and(|st| st.contains(") Z ")),
        "the enclave process must be gone"
    );
    assert_eq!(
        c.destroy(info.id),
        Response::Error(PlatformError::NoSuchEnclave(info.id))
    );
}

#[test]
fn serves_egetkey_and_ereport_with_the_identity_the_daemon_holds() {
    use coffer_abi::keyrequest::{KeyName, KeyPolicy, Keyrequest};
    use coffer_abi::report::Report;
    use coffer_abi::targetinfo::Targetinfo;
    use coffer_abi::{Codec, ReportBody};
    use coffer_proto::enclave::{DaemonReply, EnclaveMessage};

    let d = start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    let keyrequest = Keyrequest {
        keyname: KeyName::SEAL_KEY,
        keypolicy: KeyPolicy::MRENCLAVE,
        ..Keyrequest::default()
    };
    let target = ReportBody {
        mrenclave: [0x77; 32],
        ..ReportBody::default()
    };
    let egetkey = postcard::to_stdvec(&EnclaveMessage::Egetkey {
        keyrequest: keyrequest.to_bytes(),
    })
    .unwrap();
    let ereport = postcard::to_stdvec(&EnclaveMessage::Ereport {
        targetinfo: Targetinfo::from_report_body(&target).to_bytes(),
        reportdata: vec![0x42; 64],
    })
    .unwrap();
    let code = program(
        &[
            Step::Receive,
            Step::Send(READY),
            Step::Send(&egetkey),
            Step::Receive,
            Step::Forward,
            Step::Send(&ereport),
            Step::Receive,
            Step::Forward,
        ],
        PAUSE_LOOP,
    );
    let b = bundle(&vector_key(), &config(MIB, false), &code);
    let verified = b.verify().unwrap();
    let path = write(d.dir.path(), "cpu.coffer", &b.to_bytes());
    let c = Client::connect(&d);
    let (resp, fd) = c.create(&path);
    created(resp);
    let fd = fd.unwrap();

    // The enclave copies both replies to the start of the channel memfd.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let (key, report) = loop {
        let mut buf = vec![0u8; 1024];
        let n = rustix::io::pread(&fd, &mut buf, 0).unwrap();
        let replies = postcard::take_from_bytes::<DaemonReply>(&buf[..n]).and_then(|(a, rest)| {
            postcard::take_from_bytes::<DaemonReply>(rest).map(|(b, _)| (a, b))
        });
        if let Ok((DaemonReply::Key(k), DaemonReply::Report(r))) = replies {
            break (k, r);
        }
        assert!(std::time::Instant::now() < deadline, "no replies yet");
        std::thread::sleep(Duration::from_millis(20));
    };

    // What the CPU computes from the platform's root key (in the state directory) and the
    // identity the daemon derived from the verified bundle.
    let state = d.dir.path().join("state");
    let root: [u8; 16] = std::fs::read(state.join("root.key"))
        .unwrap()
        .try_into()
        .unwrap();
    let hex16 = |name: &str| -> [u8; 16] {
        let text = std::fs::read_to_string(state.join(name)).unwrap();
        hex::decode(text.trim()).unwrap().try_into().unwrap()
    };
    let cpusvn = hex16("cpusvn");
    let platform = coffer_cpu::PlatformRoot::new(root, hex16("owner-epoch"), cpusvn);
    let identity = coffer_platform::admit::identity(&verified, cpusvn);
    assert_eq!(identity.mrenclave, verified.mrenclave());
    let expected = platform.egetkey(&identity, &keyrequest).unwrap();
    assert_eq!(key, expected.to_vec());

    let report = Report::from_bytes(&report).unwrap();
    assert_eq!(report.body.mrenclave, verified.mrenclave());
    assert_eq!(report.body.mrsigner, verified.mrsigner());
    assert_eq!(report.body.reportdata, [0x42; 64]);
    assert_eq!(report.body.cpusvn, cpusvn);
    assert!(
        report
            .body
            .attributes
            .flags
            .contains(coffer_abi::AttributesFlags::INIT)
    );
    coffer_cpu::verify_report(&platform, &target, &report).unwrap();
}

#[test]
fn refuses_an_enclave_that_does_not_fit_and_admits_it_after_a_destroy() {
    let d = start("Standard_DC1s_v2", LaunchPolicy::default(), TIMEOUT);
    let key = vector_key();
    let b = bundle(&key, &config(20 * MIB, false), &ready_then_wait());
    let path = write(d.dir.path(), "big.coffer", &b.to_bytes());
    let asked = b.verify().unwrap().epc_size();

    let c = Client::connect(&d);
    let first = created(c.create(&path).0);
    match c.create_err(&path) {
        PlatformError::EpcExhausted {
            asked: a,
            free,
            total,
            vm_size,
        } => {
            assert_eq!(a, asked);
            assert_eq!(free, 28 * MIB - asked);
            assert_eq!(total, 28 * MIB);
            assert_eq!(vm_size, "Standard_DC1s_v2");
        }
        other => panic!("{other:?}"),
    }
    let s = c.status();
    assert_eq!(
        (s.enclaves.len(), s.epc_used),
        (1, asked),
        "no partial enclave"
    );
    assert_eq!(c.destroy(first.id), Response::Destroyed { id: first.id });
    let second = created(c.create(&path).0);
    assert_ne!(second.id, first.id);
    assert_eq!(c.status().epc_used, asked);
}

#[test]
fn rejects_a_bundle_with_one_code_byte_changed_naming_both_measurements() {
    let d = start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    let key = vector_key();
    let cfg = config(MIB, false);
    let b = bundle(&key, &cfg, &ready_then_wait());
    let mut bytes = b.to_bytes();
    let code_at = bytes.len() - b.image().len() + 64 + 2 * 56;
    bytes[code_at + 1] ^= 0x01; // mov edi, 3 becomes mov edi, 2
    let mut image = b.image().to_vec();
    image[64 + 2 * 56 + 1] ^= 0x01;
    let actual = coffer_sign::measure_enclave(&image, &cfg)
        .unwrap()
        .mrenclave;
    let path = write(d.dir.path(), "changed.coffer", &bytes);

    let err = Client::connect(&d).create_err(&path);
    assert_eq!(
        err,
        PlatformError::MeasurementMismatch {
            expected: b.sigstruct().enclavehash,
            actual,
        }
    );
    let msg = err.to_string();
    assert!(msg.contains("measurement mismatch"), "{msg}");
}

#[test]
fn rejects_a_bundle_with_a_broken_signature() {
    let d = start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    let b = bundle(&vector_key(), &config(MIB, false), &ready_then_wait());
    let mut bytes = b.to_bytes();
    bytes[32 + 128 + 10] ^= 0xff; // inside the SIGSTRUCT's modulus
    let path = write(d.dir.path(), "forged.coffer", &bytes);
    let err = Client::connect(&d).create_err(&path);
    assert!(matches!(err, PlatformError::BadSignature(_)), "{err:?}");
}

#[test]
fn rejects_a_debug_enclave_without_allow_debug_and_accepts_it_with() {
    let key = vector_key();
    let b = bundle(&key, &config(MIB, true), &ready_then_wait());

    let strict = start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    let path = write(strict.dir.path(), "debug.coffer", &b.to_bytes());
    assert_eq!(
        Client::connect(&strict).create_err(&path),
        PlatformError::DebugNotAllowed
    );
    assert_eq!(Client::connect(&strict).status().epc_used, 0);

    let dev = start(
        "Standard_DC2s_v2",
        LaunchPolicy {
            allow_debug: true,
            signer_allowlist: None,
        },
        TIMEOUT,
    );
    let c = Client::connect(&dev);
    let info = created(c.create(&path).0);
    assert!(info.debug);
    assert!(c.status().enclaves[0].debug);
}

#[test]
fn rejects_a_signer_not_on_the_allowlist_and_accepts_one_on_it() {
    let key = vector_key();
    let mrsigner_bytes = key.verifying_key().mrsigner();
    let mrsigner = hex::encode(mrsigner_bytes);
    let b = bundle(&key, &config(MIB, false), &ready_then_wait());

    let other = SignerAllowlist::parse(&format!("{}\n", "ab".repeat(32))).unwrap();
    let d = start(
        "Standard_DC2s_v2",
        LaunchPolicy {
            allow_debug: false,
            signer_allowlist: Some(other),
        },
        TIMEOUT,
    );
    let path = write(d.dir.path(), "app.coffer", &b.to_bytes());
    assert_eq!(
        Client::connect(&d).create_err(&path),
        PlatformError::SignerNotAllowed {
            mrsigner: mrsigner_bytes
        }
    );

    let listed = SignerAllowlist::parse(&format!("# ours\n{mrsigner}\n")).unwrap();
    let d = start(
        "Standard_DC2s_v2",
        LaunchPolicy {
            allow_debug: false,
            signer_allowlist: Some(listed),
        },
        TIMEOUT,
    );
    let path = write(d.dir.path(), "app.coffer", &b.to_bytes());
    created(Client::connect(&d).create(&path).0);
}

#[test]
fn reports_an_enclave_that_exits_before_it_is_ready() {
    let d = start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    let b = bundle(&vector_key(), &config(MIB, false), EXIT_3);
    let path = write(d.dir.path(), "exit.coffer", &b.to_bytes());
    let c = Client::connect(&d);
    match c.create_err(&path) {
        PlatformError::LaunchFailed(m) => assert!(m.contains("exited with status 3"), "{m}"),
        other => panic!("{other:?}"),
    }
    let s = c.status();
    assert_eq!((s.epc_used, s.enclaves.len()), (0, 0));
}

#[test]
fn reports_an_enclave_that_refuses_to_start() {
    let d = start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    let b = bundle(&vector_key(), &config(MIB, false), &refuses());
    let path = write(d.dir.path(), "refuses.coffer", &b.to_bytes());
    let c = Client::connect(&d);
    assert_eq!(
        c.create_err(&path),
        PlatformError::LaunchFailed("the enclave refused to start: no".into())
    );
    assert_eq!(c.status().epc_used, 0);
}

#[test]
fn gives_up_on_an_enclave_that_never_reports_ready() {
    let d = start(
        "Standard_DC2s_v2",
        LaunchPolicy::default(),
        Duration::from_millis(300),
    );
    let b = bundle(&vector_key(), &config(MIB, false), SPIN);
    let path = write(d.dir.path(), "spin.coffer", &b.to_bytes());
    let c = Client::connect(&d);
    match c.create_err(&path) {
        PlatformError::LaunchFailed(m) => assert!(m.contains("did not report ready"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.status().epc_used, 0);
}

#[test]
fn marks_an_enclave_killed_by_sigsys_lost_as_a_sandbox_violation_and_keeps_serving() {
    let d = start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    let key = vector_key();
    let bad = bundle(&key, &config(MIB, false), &ready_then_sigsys());
    let good = bundle(&key, &config(MIB, false), &ready_then_wait());
    let bad_path = write(d.dir.path(), "bad.coffer", &bad.to_bytes());
    let good_path = write(d.dir.path(), "good.coffer", &good.to_bytes());
    let c = Client::connect(&d);

    let (resp, fd) = c.create(&bad_path);
    let info = created(resp);
    let fd = fd.unwrap();
    let channel = Channel::open(fd.as_fd(), ChannelLayout::new(2, 8192).unwrap()).unwrap();
    let s = c.wait_for("the enclave to be lost", |s| {
        s.enclaves.first().is_some_and(|e| e.state == "lost")
    });
    assert_eq!(
        s.enclaves[0].lost_reason.as_deref(),
        Some("sandbox violation: the enclave made a forbidden system call (killed by seccomp)")
    );
    assert_eq!(s.epc_used, 0, "a lost enclave's EPC is free again");
    assert_eq!(channel.enclave_state(), Some(EnclaveState::Lost));
    match channel.claim(false) {
        Err(coffer_channel::CallError::EnclaveLost { reason, .. }) => {
            assert!(reason.starts_with("sandbox violation"), "{reason}")
        }
        other => panic!("{other:?}"),
    }

    // The daemon keeps serving: another enclave starts, and the lost one can be destroyed.
    created(c.create(&good_path).0);
    assert_eq!(c.destroy(info.id), Response::Destroyed { id: info.id });
    assert_eq!(c.status().enclaves.len(), 1);
}

#[test]
fn destroys_a_tracer_attached_enclave() {
    let d = start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    let b = bundle(&vector_key(), &config(MIB, false), &ready_then_wait());
    let path = write(d.dir.path(), "app.coffer", &b.to_bytes());
    let c = Client::connect(&d);
    let info = created(c.create(&path).0);
    let tracer = std::process::Command::new("strace")
        .args(["-o", "/dev/null", "-p", &info.pid.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut tracer) = tracer else {
        eprintln!("strace is not installed; skipping the tracer test");
        return;
    };
    let s = c.wait_for("the traced enclave to be lost", |s| {
        s.enclaves.first().is_some_and(|e| e.state == "lost") && s.epc_used == 0
    });
    let reason = s.enclaves[0].lost_reason.clone().unwrap();
    assert_eq!(reason, format!("tracer attached (pid {})", tracer.id()));
    let _ = tracer.kill();
    let _ = tracer.wait();
}

#[test]
fn destroys_the_enclaves_of_a_closed_connection() {
    let d = start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    let b = bundle(&vector_key(), &config(MIB, false), &ready_then_wait());
    let path = write(d.dir.path(), "app.coffer", &b.to_bytes());
    let owner = Client::connect(&d);
    let info = created(owner.create(&path).0);
    let observer = Client::connect(&d);
    assert_eq!(observer.status().enclaves.len(), 1);
    drop(owner);
    observer.wait_for("the enclave to go with its connection", |s| {
        s.enclaves.is_empty() && s.epc_used == 0
    });
    let _ = info;
}

#[test]
fn refuses_malformed_create_requests() {
    let d = start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    let c = Client::connect(&d);
    let create = Request::Create(Default::default());
    match c.call(&create, &[]).0 {
        Response::Error(e @ PlatformError::Invalid(RequestError::Descriptors { .. })) => {
            assert!(e.to_string().contains("exactly 1"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let (r, _w) = rustix::pipe::pipe().unwrap();
    match c.call(&create, &[r.as_fd()]).0 {
        Response::Error(PlatformError::BadBundle(m)) => assert!(m.contains("regular file"), "{m}"),
        other => panic!("{other:?}"),
    }
    let junk = write(d.dir.path(), "junk.coffer", b"not a bundle");
    assert!(matches!(c.create_err(&junk), PlatformError::BadBundle(_)));
    rustix::net::send(&c.sock, &[0xff; 9], rustix::net::SendFlags::empty()).unwrap();
    match coffer_proto::recv::<Response>(c.sock.as_fd()).unwrap().0 {
        Response::Error(PlatformError::BadRequest(_)) => {}
        other => panic!("{other:?}"),
    }
    // The connection still works.
    assert_eq!(c.status().epc_used, 0);
}

#[test]
fn refuses_a_frame_with_one_trailing_byte() {
    let d = start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    let c = Client::connect(&d);
    let mut frame = postcard::to_stdvec(&Request::Status).unwrap();
    // The well-formed frame is served...
    rustix::net::send(&c.sock, &frame, rustix::net::SendFlags::empty()).unwrap();
    assert!(matches!(
        coffer_proto::recv::<Response>(c.sock.as_fd()).unwrap().0,
        Response::Status(_)
    ));
    // ...the same frame with one byte more is refused, naming the byte.
    frame.push(0);
    rustix::net::send(&c.sock, &frame, rustix::net::SendFlags::empty()).unwrap();
    match coffer_proto::recv::<Response>(c.sock.as_fd()).unwrap().0 {
        Response::Error(e @ PlatformError::BadRequest(_)) => assert_eq!(
            e.to_string(),
            "malformed request: malformed message: 1 trailing bytes after the message"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A descriptor on a request that takes none is refused as well.
    let (r, _w) = rustix::pipe::pipe().unwrap();
    match c.call(&Request::Status, &[r.as_fd()]).0 {
        Response::Error(PlatformError::Invalid(RequestError::Descriptors { got: 1, .. })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(c.status().epc_used, 0);
}

/// Run as another user by `rejects_a_destroy_from_another_users_connection`; does nothing
/// when run directly.
#[test]
#[ignore = "a helper process of another test"]
fn helper_destroy_as_another_user() {
    let (Ok(socket), Ok(id)) = (
        std::env::var("COFFER_TEST_SOCKET"),
        std::env::var("COFFER_TEST_ID"),
    ) else {
        return;
    };
    let id: u64 = id.parse().unwrap();
    let c = Client::at(socket.as_ref());
    let (resp, _) = c.call(&Request::Destroy { id }, &[]);
    match resp {
        Response::Error(PlatformError::PermissionDenied(m)) => println!("denied: {m}"),
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    let (resp, _) = c.call(&Request::Status, &[]);
    assert!(matches!(resp, Response::Status(_)), "{resp:?}");
}

#[test]
fn rejects_a_destroy_from_another_users_connection() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    if !require_root("rejects_a_destroy_from_another_users_connection") {
        return;
    }
    let d = start("Standard_DC2s_v2", LaunchPolicy::default(), TIMEOUT);
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let b = bundle(&vector_key(), &config(MIB, false), &ready_then_wait());
    let path = write(d.dir.path(), "app.coffer", &b.to_bytes());
    let c = Client::connect(&d);
    let info = created(c.create(&path).0);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_destroy_as_another_user",
            "--ignored",
            "--nocapture",
        ])
        .env("COFFER_TEST_SOCKET", &d.socket)
        .env("COFFER_TEST_ID", info.id.to_string())
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("denied: enclave"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = c.status();
    assert_eq!(s.enclaves[0].state, "running");
    assert_eq!(c.destroy(info.id), Response::Destroyed { id: info.id });
}

/// Run as another user by `keeps_enclaves_under_its_own_uid_when_not_root`: a daemon on
/// `COFFER_TEST_SERVE`; does nothing when run directly.
#[test]
#[ignore = "a helper process of another test"]
fn helper_serve_as_another_user() {
    let Ok(dir) = std::env::var("COFFER_TEST_SERVE") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let config = coffer_platform::PlatformConfig::new(
        coffer_platform::VmSize::from_name("Standard_DC2s_v2").unwrap(),
        dir.join("platform.sock"),
        dir.join("state"),
    );
    coffer_platform::PlatformDaemon::bind(config)
        .unwrap()
        .serve()
        .unwrap();
}

#[test]
fn keeps_enclaves_under_its_own_uid_when_not_root() {
    use std::os::unix::process::CommandExt;
    if !require_root("keeps_enclaves_under_its_own_uid_when_not_root") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
    let mut daemon = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_serve_as_another_user", "--ignored"])
        .env("COFFER_TEST_SERVE", dir.path())
        .uid(65534)
        .gid(65534)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let socket = dir.path().join("platform.sock");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let c = loop {
        if let Ok(sock) = coffer_proto::connect(&socket) {
            break Client { sock };
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let s = c.status();
    assert!(
        s.tcb.level == coffer_platform::TcbLevel::ConfigurationNeeded
            && s.tcb
                .advisories
                .iter()
                .any(|a| a.id == "COFFER-SA-0011" && a.text.contains("without root")),
        "{}",
        s.tcb
    );
    let b = bundle(&vector_key(), &config(MIB, false), &ready_then_wait());
    let path = write(dir.path(), "app.coffer", &b.to_bytes());
    let info = created(c.create(&path).0);
    let proc_status = std::fs::read_to_string(format!("/proc/{}/status", info.pid)).unwrap();
    let uids = proc_status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uids.split_whitespace().skip(1).collect::<Vec<_>>(),
        ["65534"; 4],
        "{uids}"
    );
    assert_eq!(c.destroy(info.id), Response::Destroyed { id: info.id });
    let _ = daemon.kill();
    let _ = daemon.wait();
}
