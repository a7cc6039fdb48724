//! The hello enclave attacked as issue 3 describes: a root process scanning its memory for the
//! probe secret, and a root debugger attaching to it. Each attack has a DEBUG control where it
//! must succeed, so an enclave that leaked its secret or ignored its tracer fails these tests.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::FileExt;
use std::time::Duration;

use coffer_channel::{CallError, Status};
use coffer_enclave::exit_code;
use coffer_enclave::interface::{decode, encode};
use coffer_proto::enclave::EnclaveMessage;
use coffer_testkit::{SecretScan, scan_for_secret};
use common::{Enclave, Options, binaries, launch, require_root};
use hello_common::{HELLO_INTERFACE, probe_digest};

/// hello's call ids (declaration order in `hello_common::Hello`).
const PROBE: u32 = 1;
const ECHO: u32 = 3;

fn random32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact_at(&mut bytes, 0)
        .unwrap();
    bytes
}

/// Launches the hello enclave, asks it to PROBE a fresh nonce, and scans it while it holds the
/// digest.
///
/// Where the bytes are, so that only the boundary decides the result: the digest is computed
/// inside the enclave from the nonce and never leaves it (the ECALL's result is empty); the
/// test's own copy is in the test process, which the scan does not read. The enclave was
/// exec'ed from a sealed image, not forked from the test, so it holds no copy of the test's
/// memory. The nonce is the marker: it stays in the call buffer of the channel, which the
/// enclave maps as ordinary shared memory, so finding it proves that the scan reads the
/// enclave's ordinary memory in this very run.
fn probe_and_scan(debug: bool) -> SecretScan {
    let options = if debug {
        Options::hello().debug()
    } else {
        Options::hello()
    };
    let enclave = launch(&binaries().hello, &options);
    let nonce = random32();
    assert_eq!(HELLO_INTERFACE.calls[0].name, "probe");
    let result = enclave
        .ecall(PROBE, &encode(&(nonce.to_vec(),)).unwrap())
        .unwrap();
    assert_eq!(result.status, Status::Ok);
    assert!(
        result.output.is_empty(),
        "the probe must not send anything out"
    );
    scan_for_secret(enclave.pid(), &probe_digest(&nonce), &nonce)
}

#[test]
fn root_scan_of_proc_mem_does_not_find_the_probe_in_a_production_enclave() {
    if !require_root("root_scan_of_proc_mem_does_not_find_the_probe_in_a_production_enclave") {
        return;
    }
    // At least the heap and the worker stacks are refused.
    probe_and_scan(false).assert_secret_hidden(3);
}

#[test]
fn root_scan_of_proc_mem_finds_the_probe_in_a_debug_enclave() {
    if !require_root("root_scan_of_proc_mem_finds_the_probe_in_a_debug_enclave") {
        return;
    }
    // 1000 copies in the heap and one in the worker's thread-local storage, on its stack.
    probe_and_scan(true).assert_secret_found(1001);
}

/// `PTRACE_SEIZE`s thread `tid` of the enclave from this (root) process: the debugger attaching.
fn seize(tid: u32) {
    coffer_testkit::ptrace::seize(tid).unwrap();
}

/// The worker threads of `enclave` (every thread but the main one).
fn workers(enclave: &Enclave) -> Vec<u32> {
    let pid = enclave.pid();
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .filter(|tid| *tid != pid)
        .collect()
}

/// Reaps a traced worker thread of an ending enclave: its exit goes to the tracer, not to the
/// parent, and the process is not gone (its pidfd not readable, the parent's wait not done)
/// before it is reaped.
fn reap_traced_thread(tid: u32) {
    coffer_testkit::ptrace::reap_traced_thread(tid, Duration::from_secs(30));
}

/// Attaches to the main thread (or to every worker) as root, makes an ECALL, and checks that a
/// production enclave reports itself lost instead of running it, and a DEBUG one runs it.
fn ecall_under_a_tracer(debug: bool, attach_workers: bool) {
    let options = if debug {
        Options::hello().debug()
    } else {
        Options::hello()
    };
    let mut enclave = launch(&binaries().hello, &options);
    let traced = if attach_workers {
        workers(&enclave)
    } else {
        vec![enclave.pid()]
    };
    assert_eq!(traced.len(), if attach_workers { 2 } else { 1 });
    for tid in &traced {
        seize(*tid);
    }
    // The kernel shows the tracing thread's id as the tracer.
    let tracer = rustix::thread::gettid().as_raw_nonzero();
    // The typed echo, by hand: the OCALL's argument (a 1-tuple of the text) encodes as its
    // answer (the text) does, so the host hands the bytes back.
    let echo = |enclave: &Enclave| {
        assert_eq!(HELLO_INTERFACE.calls[2].name, "echo");
        let input = encode(&("anyone there?".to_string(),)).unwrap();
        enclave.ecall_with(ECHO, &input, &mut |_, i| (Status::Ok, i.to_vec()))
    };

    if debug {
        // Control: a DEBUG enclave may be debugged, and serves on.
        let answer: Result<String, String> = decode(&echo(&enclave).unwrap().output).unwrap();
        assert_eq!(answer.as_deref(), Ok("anyone there?"));
        enclave.child.kill().unwrap();
        for tid in traced.iter().filter(|t| **t != enclave.pid()) {
            reap_traced_thread(*tid);
        }
        enclave.wait();
        return;
    }

    let result = enclave.with_call(echo, |e| {
        match e.recv() {
            EnclaveMessage::Lost { reason } => {
                assert_eq!(reason, format!("tracer attached (pid {tracer})"));
            }
            other => panic!("expected Lost, got {other:?}"),
        }
        for tid in traced.iter().filter(|t| **t != e.pid()) {
            reap_traced_thread(*tid);
        }
        assert!(e.ends_within(Duration::from_secs(30)), "still running");
        e.mark_lost("tracer attached");
    });
    let err = result.unwrap_err();
    assert!(matches!(err, CallError::EnclaveLost { .. }), "{err}");
    assert_eq!(enclave.wait().code(), Some(exit_code::LOST));
}

#[test]
fn root_tracer_on_the_main_thread_makes_the_enclave_lost_at_the_next_ecall() {
    if !require_root("root_tracer_on_the_main_thread_makes_the_enclave_lost_at_the_next_ecall") {
        return;
    }
    ecall_under_a_tracer(false, false);
}

#[test]
fn root_tracer_on_the_workers_makes_the_enclave_lost_at_the_next_ecall() {
    if !require_root("root_tracer_on_the_workers_makes_the_enclave_lost_at_the_next_ecall") {
        return;
    }
    ecall_under_a_tracer(false, true);
}

#[test]
fn debug_enclave_serves_with_a_tracer_attached() {
    if !require_root("debug_enclave_serves_with_a_tracer_attached") {
        return;
    }
    ecall_under_a_tracer(true, false);
    ecall_under_a_tracer(true, true);
}
