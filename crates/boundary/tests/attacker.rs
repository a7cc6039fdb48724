//! The boundary tested as an attacker would: a root process scanning the enclave's memory, and
//! processes trying to `ptrace` it. Each test has a control that shows the attack works where
//! the boundary is absent, so an insecure build fails it.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use coffer_boundary::Credentials;
use coffer_testkit::{SecretScan, scan_for_secret};
use common::{Launch, NOBODY, Probe, require_root};

fn random32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    let mut urandom = std::fs::File::open("/dev/urandom").unwrap();
    std::io::Read::read_exact(&mut urandom, &mut bytes).unwrap();
    bytes
}

/// Starts `enclave-hold` (DEBUG or not) as `nobody` with `CAP_IPC_LOCK`, gives it a marker and a
/// secret, and scans its memory while it holds them.
///
/// How the secret stays out of ordinary memory, so that only the boundary decides the result:
/// the test (the parent) draws it at random and writes it into a pipe; the enclave `read(2)`s
/// it straight into a buffer on its worker thread's stack, which is secret memory, and copies it
/// from there 1000 times into its heap, also secret memory; it never formats, prints nor
/// returns it. The parent's own copy is in the parent's memory, which the scan does not read
/// (it reads `/proc/CHILD/mem`), and the child was exec'ed, not forked, so it carries no copy
/// of the parent's memory. The pipe's buffer is kernel memory, outside every mapping. The
/// marker takes the same path but the enclave reads it into a static, ordinary memory: finding
/// it proves the scan reads the enclave's ordinary memory in the very same run. The DEBUG run
/// differs only in the memory kind, and must find the secret: that shows the scan would find
/// it if the boundary failed.
fn scan_enclave(debug: bool) -> SecretScan {
    let secret = random32();
    let marker = random32();
    let (input_r, input_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let args: &[&str] = if debug {
        &["enclave-hold", "debug"]
    } else {
        &["enclave-hold"]
    };
    let mut launch = Launch::new(args).enclave_identity();
    launch.fds.push((input_r, 3));
    let mut enclave = launch.start();
    let mut payload = marker.to_vec();
    payload.extend_from_slice(&secret);
    rustix::io::write(&input_w, &payload).unwrap();
    drop(input_w);
    assert_eq!(enclave.line(), "ready");

    let result = scan_for_secret(enclave.pid(), &secret, &marker);
    let status = enclave.wait();
    assert!(status.success(), "the enclave failed: {status:?}");
    result
}

#[test]
fn root_scan_of_proc_mem_does_not_find_enclave_secrets() {
    if !require_root("root_scan_of_proc_mem_does_not_find_enclave_secrets") {
        return;
    }
    // The heap arena and the worker's stack are refused.
    scan_enclave(false).assert_secret_hidden(2);
}

#[test]
fn root_scan_of_proc_mem_finds_debug_enclave_secrets() {
    if !require_root("root_scan_of_proc_mem_finds_debug_enclave_secrets") {
        return;
    }
    // 1000 copies in the heap and one on the worker's stack.
    scan_enclave(true).assert_secret_found(1001);
}

/// Starts `tracer-watch` and reads its start-up lines; returns it and its worker's tid.
fn watched_enclave(credentials: Credentials, debug: bool) -> (Probe, u32) {
    let args: &[&str] = if debug {
        &["tracer-watch", "debug"]
    } else {
        &["tracer-watch"]
    };
    let mut launch = Launch::new(args).enclave_identity();
    launch.credentials = Some(credentials);
    let mut enclave = launch.start();
    let worker = enclave.line();
    let worker_tid = worker
        .strip_prefix("worker-tid ")
        .unwrap_or_else(|| panic!("unexpected {worker:?}"))
        .parse()
        .unwrap();
    let locked = enclave.line();
    assert!(locked.starts_with("locked "), "{locked}");
    (enclave, worker_tid)
}

/// Asks a `tracer-watch` enclave who traces its main thread and its worker.
fn tracers(enclave: &mut Probe) -> String {
    enclave.send(b"\n");
    enclave.line()
}

/// An attacker process with the given identity (as an enclave process would have:
/// `CAP_IPC_LOCK` only), trying to `PTRACE_SEIZE` `tid`.
fn unprivileged_attacker(credentials: Credentials, tid: u32) -> (Probe, String) {
    let tid = tid.to_string();
    let args = ["attach", tid.as_str()];
    let mut launch = Launch::new(&args).enclave_identity();
    launch.credentials = Some(credentials);
    let mut attacker = launch.start();
    let verdict = attacker.line();
    (attacker, verdict)
}

/// A root attacker (all of root's capabilities, `CAP_SYS_PTRACE` included).
fn root_attacker(tid: u32) -> (Child, String) {
    let mut child = Command::new(common::probe_path())
        .args(["attach", &tid.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim_end().to_owned())
}

#[test]
fn unprivileged_process_cannot_ptrace_the_enclave() {
    if !require_root("unprivileged_process_cannot_ptrace_the_enclave") {
        return;
    }
    let eperm = format!("denied {}", libc::EPERM);

    // Same uid as the attacker: only the enclave's non-dumpable flag stands in the way.
    let (mut enclave, worker) = watched_enclave(NOBODY, false);
    for tid in [enclave.pid(), worker] {
        let (attacker, verdict) = unprivileged_attacker(NOBODY, tid);
        assert_eq!(verdict, eperm, "same-uid attach to {tid}");
        drop(attacker);
    }
    assert_eq!(tracers(&mut enclave), "main=0 worker=0");
    drop(enclave);

    // Another uid.
    let other = Credentials {
        uid: 65533,
        gid: 65533,
    };
    let (enclave, _) = watched_enclave(other, false);
    let (_attacker, verdict) = unprivileged_attacker(NOBODY, enclave.pid());
    assert_eq!(verdict, eperm, "other-uid attach");

    // Control: the same attack on a DEBUG (dumpable) enclave of the same uid succeeds, and the
    // enclave sees its tracer.
    let (mut enclave, _) = watched_enclave(NOBODY, true);
    let (attacker, verdict) = unprivileged_attacker(NOBODY, enclave.pid());
    assert_eq!(
        verdict, "attached",
        "control: DEBUG enclaves can be debugged"
    );
    assert_eq!(
        tracers(&mut enclave),
        format!("main={} worker=0", attacker.pid())
    );
}

#[test]
fn root_tracer_is_reported_by_the_tracer_probes() {
    if !require_root("root_tracer_is_reported_by_the_tracer_probes") {
        return;
    }
    let (mut enclave, worker) = watched_enclave(NOBODY, false);
    assert_eq!(tracers(&mut enclave), "main=0 worker=0");

    // Root attaches to the main thread: the main thread's probe sees it.
    let (mut attacker, verdict) = root_attacker(enclave.pid());
    assert_eq!(verdict, "attached");
    assert_eq!(
        tracers(&mut enclave),
        format!("main={} worker=0", attacker.id())
    );
    // When the tracer goes, pread at offset 0 shows it gone (the content is regenerated).
    drop(attacker.stdin.take());
    attacker.wait().unwrap();
    assert_eq!(tracers(&mut enclave), "main=0 worker=0");

    // Root attaches to the worker thread only: the worker's own probe sees it.
    let (mut attacker, verdict) = root_attacker(worker);
    assert_eq!(verdict, "attached");
    assert_eq!(
        tracers(&mut enclave),
        format!("main=0 worker={}", attacker.id())
    );
    drop(attacker.stdin.take());
    attacker.wait().unwrap();
    assert!(enclave.wait().success());
}
