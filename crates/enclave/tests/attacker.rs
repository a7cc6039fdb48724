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
use common::{Enclave, Options, binaries, launch, require_root};
use hello_common::{HELLO_INTERFACE, probe_digest};

/// hello's call ids (declaration order in `hello_common::Hello`).
const PROBE: u32 = 1;
const ECHO: u32 = 3;

/// What a scan of another process's memory found.
#[derive(Debug, Default)]
struct Scan {
    secret_hits: usize,
    marker_hits: usize,
    bytes_read: u64,
    ranges_read: usize,
    ranges_refused: usize,
}

/// Reads every readable mapping of `pid` through `/proc/PID/mem`, as root, counting where
/// `secret` and `marker` occur. A range the kernel refuses (EIO for secret memory, and for
/// special mappings such as `[vvar]`) is counted and skipped.
fn scan(pid: u32, secret: &[u8; 32], marker: &[u8; 32]) -> Scan {
    const CHUNK: usize = 1 << 20;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut result = Scan::default();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !perms.starts_with('r') {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        // Chunks overlap by 31 bytes so that a needle across a boundary is still seen.
        let mut buf = vec![0u8; CHUNK + 31];
        let (mut at, mut carried, mut refused) = (start, 0usize, false);
        while at < end {
            let want = usize::try_from(end - at).unwrap_or(CHUNK).min(CHUNK);
            match mem.read_at(&mut buf[carried..carried + want], at) {
                Ok(0) => break,
                Ok(n) => {
                    result.bytes_read += n as u64;
                    let window = &buf[..carried + n];
                    result.secret_hits += count(window, secret);
                    result.marker_hits += count(window, marker);
                    let keep = window.len().min(31);
                    let tail = window.len() - keep;
                    buf.copy_within(tail..tail + keep, 0);
                    carried = keep;
                    at += n as u64;
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EIO | libc::EFAULT)) => {
                    refused = true;
                    break;
                }
                Err(e) => panic!("reading {range} of {pid}: {e}"),
            }
        }
        if refused {
            result.ranges_refused += 1;
        } else {
            result.ranges_read += 1;
        }
    }
    result
}

fn count(haystack: &[u8], needle: &[u8; 32]) -> usize {
    haystack.windows(32).filter(|w| w == needle).count()
}

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
fn probe_and_scan(debug: bool) -> Scan {
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
    scan(enclave.pid(), &probe_digest(&nonce), &nonce)
}

#[test]
fn root_scan_of_proc_mem_does_not_find_the_probe_in_a_production_enclave() {
    if !require_root("root_scan_of_proc_mem_does_not_find_the_probe_in_a_production_enclave") {
        return;
    }
    let scan = probe_and_scan(false);
    assert!(scan.bytes_read > 0 && scan.ranges_read > 0, "{scan:?}");
    assert!(
        scan.marker_hits >= 1,
        "the scan must see the enclave's ordinary memory: {scan:?}"
    );
    // At least the heap and the worker stacks are refused.
    assert!(scan.ranges_refused >= 3, "{scan:?}");
    assert_eq!(
        scan.secret_hits, 0,
        "the probe secret was found in enclave memory: {scan:?}"
    );
}

#[test]
fn root_scan_of_proc_mem_finds_the_probe_in_a_debug_enclave() {
    if !require_root("root_scan_of_proc_mem_finds_the_probe_in_a_debug_enclave") {
        return;
    }
    let scan = probe_and_scan(true);
    assert!(scan.marker_hits >= 1, "{scan:?}");
    // 1000 copies in the heap and one in the worker's thread-local storage, on its stack.
    assert!(scan.secret_hits >= 1001, "{scan:?}");
}

/// `PTRACE_SEIZE`s thread `tid` of the enclave from this (root) process: the debugger attaching.
fn seize(tid: u32) {
    let tid = libc::pid_t::try_from(tid).unwrap();
    // SAFETY: PTRACE_SEIZE takes no pointers (addr and data are 0); it only makes this thread
    // the tracer of `tid`, an enclave process this test started and reaps.
    let rc = unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, 0usize, 0usize) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
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
    let tid = libc::pid_t::try_from(tid).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer for the call's duration.
        let rc = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
        if rc != 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "thread {tid} still runs"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
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
    // SAFETY: gettid has no arguments and cannot fail.
    let tracer = unsafe { libc::gettid() };
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
