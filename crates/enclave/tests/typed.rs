//! A typed enclave (hello) as the runtime serves it: the interface check before `Ready`, and
//! switchless workers. The test plays the daemon and the host, as in `calls.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use coffer_channel::{ChannelLayout, Status};
use coffer_enclave::exit_code;
use coffer_proto::enclave::EnclaveMessage;
use common::{Options, binaries, boot, dispatched, launch, spawn};
use hello_common::{
    HELLO_HOST_INTERFACE, HELLO_INTERFACE, HelloHost, HelloProxy, hello_host_dispatch,
};

struct SawIt;

impl HelloHost for SawIt {
    fn echo(&self, text: String) -> String {
        format!("host saw: {text}")
    }
}

/// Boots hello with `interface_id` and `names` and returns the reason it refused to start.
fn refusal(interface_id: Vec<u8>, names: &[&str]) -> String {
    let mut options = Options::hello();
    options.interface_id = interface_id;
    options.interface_names = names.iter().map(|n| n.to_string()).collect();
    let mut enclave = spawn(
        &binaries().hello,
        ChannelLayout::new(options.tcs, options.slot_size).unwrap(),
    );
    enclave.send(&boot(&options));
    let reason = match enclave.recv() {
        EnclaveMessage::Failed { reason } => reason,
        other => panic!("expected Failed, got {other:?}"),
    };
    assert_eq!(enclave.wait().code(), Some(exit_code::SETUP_FAILED));
    reason
}

#[test]
fn rejects_a_host_built_from_another_version_of_the_ecall_trait() {
    let theirs = [0x11; 32];
    assert_eq!(
        refusal(theirs.to_vec(), &["Hello"]),
        format!(
            "interface mismatch: the host expects Hello {}, this enclave implements Hello {}",
            hex::encode(theirs),
            HELLO_INTERFACE.id_hex()
        )
    );
    // Without a name the id still says which.
    assert!(
        refusal(theirs.to_vec(), &[])
            .contains(&format!("expects interface {}", hex::encode(theirs)))
    );
}

#[test]
fn rejects_a_host_serving_another_version_of_the_ocall_trait() {
    let theirs = [0x22; 32];
    let ids = [HELLO_INTERFACE.id.as_slice(), &theirs].concat();
    assert_eq!(
        refusal(ids, &["Hello", "HelloHost"]),
        format!(
            "interface mismatch: the host serves OCALLs HelloHost {}, this enclave calls \
             HelloHost {}",
            hex::encode(theirs),
            HELLO_HOST_INTERFACE.id_hex()
        )
    );
}

#[test]
fn accepts_the_same_interfaces_and_a_raw_host() {
    let ids = [HELLO_INTERFACE.id, HELLO_HOST_INTERFACE.id].concat();
    for interface_id in [HELLO_INTERFACE.id.to_vec(), ids, Vec::new()] {
        let mut options = Options::hello();
        options.interface_id = interface_id;
        let enclave = launch(&binaries().hello, &options);
        let hello = HelloProxy::new(
            enclave.typed(|id, input| dispatched(hello_host_dispatch(&SawIt, id, input))),
        );
        assert_eq!(hello.echo("hi".into()).unwrap(), Ok("host saw: hi".into()));
    }
}

#[test]
fn answers_malformed_arguments_with_a_failed_call_and_serves_on() {
    let enclave = launch(&binaries().hello, &Options::hello());
    // `echo` takes a string: 0xff is no length prefix of one.
    let result = enclave.ecall(3, &[0xff; 4]).unwrap();
    assert_eq!(result.status, Status::Failed);
    let reason = String::from_utf8(result.output).unwrap();
    assert!(reason.starts_with("malformed arguments: "), "{reason}");
    let result = enclave.ecall(99, &[]).unwrap();
    assert_eq!(result.status, Status::UnknownCall);
    let hello = HelloProxy::new(
        enclave.typed(|id, input| dispatched(hello_host_dispatch(&SawIt, id, input))),
    );
    assert_eq!(hello.echo("ok".into()).unwrap(), Ok("host saw: ok".into()));
}

#[test]
fn switchless_workers_give_the_same_answers() {
    for spin_ns in [0, 200_000] {
        let mut options = Options::hello();
        options.switchless_spin_ns = spin_ns;
        let enclave = launch(&binaries().hello, &options);
        let hello = HelloProxy::new(
            enclave.typed(|id, input| dispatched(hello_host_dispatch(&SawIt, id, input))),
        );
        for i in 0..200 {
            let text = format!("call {i}");
            assert_eq!(
                hello.echo(text.clone()).unwrap(),
                Ok(format!("host saw: {text}")),
                "spin {spin_ns} ns"
            );
            if i % 50 == 0 {
                // Past the spin: the worker sleeps and must be woken.
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
    }
}

/// The CPU time all of `pid`'s threads have used, from the scheduler's statistics.
fn cpu_time(pid: u32) -> std::time::Duration {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let path = task.unwrap().path().join("schedstat");
        // A thread that ended meanwhile has no statistics any more.
        if let Ok(text) = std::fs::read_to_string(path) {
            ns += text
                .split_whitespace()
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap();
        }
    }
    std::time::Duration::from_nanos(ns)
}

#[test]
fn switchless_workers_poll_after_a_call_and_others_sleep() {
    // After a call a switchless worker polls its slot for the boot's spin (here the longest, 10
    // ms), burning CPU; a normal worker goes to sleep after a few microseconds.
    let mut used = Vec::new();
    for spin_ns in [0, 10_000_000] {
        let mut options = Options::hello();
        options.switchless_spin_ns = spin_ns;
        let enclave = launch(&binaries().hello, &options);
        let hello = HelloProxy::new(
            enclave.typed(|id, input| dispatched(hello_host_dispatch(&SawIt, id, input))),
        );
        // Let start-up settle, then measure one call and the 30 ms after it (from before the
        // call, so that a test thread descheduled after it does not miss the spin).
        std::thread::sleep(std::time::Duration::from_millis(50));
        let before = cpu_time(enclave.pid());
        hello.echo("x".into()).unwrap().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
        used.push(cpu_time(enclave.pid()) - before);
    }
    let (normal, switchless) = (used[0], used[1]);
    // A normal worker uses a few hundred microseconds at most (the call, the first tracer
    // check); a switchless one polls for 10 ms of wall time, of which it gets several even on a
    // loaded machine.
    assert!(
        normal < std::time::Duration::from_micros(1500),
        "a normal worker used {normal:?} of CPU for one call"
    );
    assert!(
        switchless > std::time::Duration::from_millis(2),
        "a switchless worker used only {switchless:?} of CPU for one call and its spin"
    );
}
