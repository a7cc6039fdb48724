//! The channel between two threads standing for the host and the enclave (the cross-process
//! path is exercised by the platform's tests and the benchmarks).
#![allow(clippy::unwrap_used)]

use std::os::fd::AsFd;
use std::sync::Arc;

use coffer_channel::{CallError, Channel, ChannelLayout, EnclaveState, Status};

fn pair(slots: u32, size: u32) -> (Arc<Channel>, Arc<Channel>, Channel) {
    let layout = ChannelLayout::new(slots, size).unwrap();
    let (fd, daemon) = Channel::create(layout).unwrap();
    let host = Channel::open(fd.as_fd(), layout).unwrap();
    let enclave = Channel::open(fd.as_fd(), layout).unwrap();
    (Arc::new(host), Arc::new(enclave), daemon)
}

/// An "enclave" worker on `slot`: call 1 echoes after an OCALL 7 that upper-cases the input.
fn serve(enclave: Arc<Channel>, slot: u32) -> std::thread::JoinHandle<Result<(), CallError>> {
    std::thread::spawn(move || {
        let s = enclave.enclave_slot(slot).unwrap();
        loop {
            let inc = s.wait_ecall()?;
            match inc.call_id {
                1 => {
                    let r = s.ocall(7, &inc.input)?;
                    assert_eq!(r.status, Status::Ok);
                    s.respond(Status::Ok, &r.output)?;
                }
                2 => s.respond(Status::Ok, &vec![0xab; inc.input.len()])?,
                3 => {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    s.respond(Status::Ok, b"slow")?;
                }
                _ => s.respond(Status::UnknownCall, &[])?,
            }
        }
    })
}

#[test]
fn accepts_an_ecall_with_a_nested_ocall() {
    let (host, enclave, _daemon) = pair(1, 4096);
    let _w = serve(enclave, 0);
    let mut claim = host.claim(false).unwrap();
    for _ in 0..100 {
        let r = claim
            .ecall(1, b"hello", &mut |id, input| {
                assert_eq!(id, 7);
                (Status::Ok, input.to_ascii_uppercase())
            })
            .unwrap();
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.output, b"HELLO");
    }
    let r = claim.ecall(99, b"", &mut |_, _| unreachable!()).unwrap();
    assert_eq!(r.status, Status::UnknownCall);
}

#[test]
fn rejects_messages_larger_than_the_slot() {
    let (host, enclave, _daemon) = pair(1, 8192);
    let _w = serve(enclave, 0);
    let mut claim = host.claim(false).unwrap();
    let r = claim
        .ecall(2, &[1u8; 8192], &mut |_, _| unreachable!())
        .unwrap();
    assert_eq!(r.output.len(), 8192);
    let err = claim
        .ecall(2, &[1u8; 8193], &mut |_, _| unreachable!())
        .unwrap_err();
    assert_eq!(
        err,
        CallError::MessageTooLarge {
            len: 8193,
            limit: 8192
        }
    );
}

#[test]
fn rejects_a_claim_when_every_slot_is_busy_unless_asked_to_wait() {
    let (host, enclave, _daemon) = pair(1, 4096);
    let _w = serve(enclave, 0);
    let h2 = host.clone();
    let busy = std::thread::spawn(move || {
        let mut c = h2.claim(false).unwrap();
        c.ecall(3, b"", &mut |_, _| unreachable!()).unwrap()
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(
        host.claim(false).unwrap_err(),
        CallError::OutOfTcs { slots: 1 }
    );
    // Waiting works once the slow call releases the slot.
    let mut c = host.claim(true).unwrap();
    assert_eq!(busy.join().unwrap().output, b"slow");
    assert_eq!(
        c.ecall(2, b"x", &mut |_, _| unreachable!()).unwrap().output,
        [0xab]
    );
}

#[test]
fn rejects_calls_on_a_lost_enclave_and_wakes_waiters() {
    let (host, enclave, daemon) = pair(2, 4096);
    let w0 = serve(enclave.clone(), 0);
    let h2 = host.clone();
    let waiting = std::thread::spawn(move || {
        let mut c = h2.claim(false).unwrap();
        // Call 4 is never answered by slot 1's (absent) worker: the host waits until lost.
        let _ = c.slot();
        c.ecall(3, b"", &mut |_, _| unreachable!())
    });
    std::thread::sleep(std::time::Duration::from_millis(20));
    daemon.mark_lost(EnclaveState::Lost, 2, "sandbox violation (SIGSYS)");
    let r = waiting.join().unwrap();
    // Either the slow call finished before the mark, or it saw the loss.
    if let Err(e) = r {
        assert!(matches!(e, CallError::EnclaveLost { .. }), "{e}");
    }
    let err = host.claim(false).unwrap_err();
    assert_eq!(
        err,
        CallError::EnclaveLost {
            code: 2,
            reason: "sandbox violation (SIGSYS)".into()
        }
    );
    assert!(matches!(
        w0.join().unwrap(),
        Err(CallError::EnclaveLost { .. })
    ));
}

#[test]
fn rejects_a_host_that_lies_about_the_length() {
    // The enclave side must not read past its slot even if the length word is forged.
    let layout = ChannelLayout::new(1, 4096).unwrap();
    let (fd, daemon) = Channel::create(layout).unwrap();
    let enclave = Channel::open(fd.as_fd(), layout).unwrap();
    drop(daemon);
    assert!(enclave.enclave_slot(1).is_none());
    assert!(ChannelLayout::new(0, 4096).is_err());
    assert!(ChannelLayout::new(1, 4095).is_err());
    assert!(ChannelLayout::new(1, 128 << 20).is_err());
    let other = ChannelLayout::new(2, 4096).unwrap();
    assert!(Channel::open(fd.as_fd(), other).is_err());
}

#[test]
fn serves_calls_whatever_each_side_spins() {
    // Zero spin sleeps at once (every hand-over is a futex wake-up); a long spin hands over
    // without sleeping. Every combination gives the same results, and a worker that sleeps
    // right after answering is still woken by the next call.
    use coffer_channel::WaitPolicy;
    use std::time::Duration;
    let policies = [
        WaitPolicy {
            spin: Duration::ZERO,
        },
        WaitPolicy {
            spin: Duration::from_millis(2),
        },
    ];
    for worker_policy in policies {
        let (host, enclave, daemon) = pair(1, 4096);
        let worker = std::thread::spawn(move || -> Result<(), CallError> {
            let s = enclave.enclave_slot(0).unwrap();
            loop {
                let inc = s.wait_ecall_with_policy(worker_policy)?;
                let r = s.ocall_with_policy(7, &inc.input, worker_policy)?;
                s.respond(Status::Ok, &r.output)?;
            }
        });
        let mut claim = host.claim(false).unwrap();
        for i in 0..200u32 {
            let policy = policies[(i % 2) as usize];
            let input = i.to_le_bytes();
            let r = claim
                .ecall_with_policy(1, &input, policy, &mut |id, data| {
                    assert_eq!(id, 7);
                    (Status::Ok, [data, b"!"].concat())
                })
                .unwrap();
            assert_eq!(r.output, [&input[..], b"!"].concat(), "{worker_policy:?}");
            if i % 50 == 0 {
                // Let the worker fall asleep.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        drop(claim);
        daemon.mark_lost(EnclaveState::Destroyed, 0, "done");
        assert!(matches!(
            worker.join().unwrap(),
            Err(CallError::EnclaveLost { .. })
        ));
    }
}

#[test]
fn wakes_every_host_thread_waiting_for_a_free_slot_in_turn() {
    // Four threads share one slot: each release wakes a waiter (and only a release that has
    // waiters makes the wake-up call), so every call completes.
    let (host, enclave, _daemon) = pair(1, 4096);
    let _w = serve(enclave, 0);
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let host = &host;
            s.spawn(move || {
                for _ in 0..50 {
                    let mut c = host.claim(true).unwrap();
                    let r = c.ecall(2, &[t; 3], &mut |_, _| unreachable!()).unwrap();
                    assert_eq!(r.output, [0xab; 3]);
                }
            });
        }
    });
}
