//! Typed calls through the platform daemon: the `typed-enclave` example of `coffer-enclave`
//! (built statically, signed with the vectors' key) driven through its generated proxy, with
//! the host's OCALLs served by its generated dispatcher. The daemon runs in this process.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use coffer_host::interface::TransportError;
use coffer_host::{
    Enclave, EnclaveOptions, HostError, Platform, PlatformError, RequestError, SwitchlessConfig,
};
use coffer_platform::LaunchPolicy;
use coffer_sign::EnclaveConfig;
use coffer_testkit::{Daemon, enclave};
use typed_interface::{
    CALC_HOST_INTERFACE, CALC_INTERFACE, CalcHost, CalcProxy, DivError, calc_host_dispatch,
};

/// A gate the host's `wait_for_release` OCALL waits at: it holds an enclave thread (its TCS)
/// for as long as the test wants.
#[derive(Default)]
struct Gate {
    /// (threads waiting, released)
    state: Mutex<(u32, bool)>,
    changed: Condvar,
}

impl Gate {
    fn wait_for_holders(&self, n: u32) {
        let mut s = self.state.lock().unwrap();
        while s.0 < n {
            s = self.changed.wait(s).unwrap();
        }
    }

    fn release(&self) {
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }
}

/// The host's side of the OCALLs.
#[derive(Clone, Default)]
struct Host {
    gate: Arc<Gate>,
}

impl CalcHost for Host {
    fn decorate(&self, name: String) -> String {
        format!("hello, {name}!")
    }

    fn check(&self, x: u64) -> Result<u64, String> {
        if x > 100 {
            return Err(format!("{x} is too big"));
        }
        Ok(x)
    }

    fn wait_for_release(&self) {
        let mut s = self.gate.state.lock().unwrap();
        s.0 += 1;
        self.gate.changed.notify_all();
        while !s.1 {
            s = self.gate.changed.wait(s).unwrap();
        }
    }

    fn add_one(&self, x: u64) -> u64 {
        x + 1
    }
}

fn config(tcs_count: u32) -> EnclaveConfig {
    EnclaveConfig {
        isv_prod_id: 3,
        heap_size: 4 << 20,
        tcs_count,
        ..enclave::config()
    }
}

/// The signed typed enclave with `tcs_count` threads, written into the daemon's directory.
fn bundle(d: &Daemon, tcs_count: u32) -> PathBuf {
    let image = enclave::static_image("coffer-enclave/typed-enclave");
    let b = enclave::sign(&coffer_testkit::vector_key(), &config(tcs_count), image);
    enclave::write_bundle(d.dir.path(), &format!("typed-{tcs_count}.coffer"), &b)
}

fn daemon() -> Daemon {
    Daemon::start(
        "Standard_DC2s_v2",
        LaunchPolicy::default(),
        Duration::from_secs(10),
    )
}

fn options(host: Host) -> EnclaveOptions {
    EnclaveOptions::typed(&CALC_INTERFACE).serving(&CALC_HOST_INTERFACE, host, calc_host_dispatch)
}

fn create(platform: &Platform, path: &std::path::Path, options: EnclaveOptions) -> Enclave {
    platform.create_enclave_with(path, options).unwrap()
}

#[test]
fn accepts_typed_calls_with_results_and_errors_crossing() {
    let d = daemon();
    let path = bundle(&d, 2);
    let platform = Platform::connect(&d.socket).unwrap();
    let enclave = create(&platform, &path, options(Host::default()));
    let calc = CalcProxy::new(&enclave);

    assert_eq!(calc.add(2, 40).unwrap(), 42);
    assert_eq!(calc.divide(84, 2).unwrap(), Ok(42));
    assert_eq!(calc.divide(1, 0).unwrap(), Err(DivError::ByZero));
    assert_eq!(calc.divide(i64::MIN, -1).unwrap(), Err(DivError::Overflow));
    assert_eq!(calc.mrenclave().unwrap(), Some(enclave.mrenclave()));
    // Arguments and results of more than a few bytes.
    let xs: Vec<u64> = (0..=100).collect();
    assert_eq!(
        calc.greet_and_sum("Ada".into(), xs).unwrap(),
        Ok(("hello, Ada!".into(), 5050))
    );
}

#[test]
fn nests_typed_ocalls_and_carries_their_errors_back() {
    let d = daemon();
    let path = bundle(&d, 2);
    let platform = Platform::connect(&d.socket).unwrap();
    let enclave = create(&platform, &path, options(Host::default()));
    let calc = CalcProxy::new(&enclave);
    // The host's `check` refuses 101 with its own error, which the enclave hands back as its
    // method's error.
    assert_eq!(
        calc.greet_and_sum("Bob".into(), vec![1, 101, 2]).unwrap(),
        Err("101 is too big".into())
    );
    // Many OCALLs inside one ECALL.
    assert_eq!(calc.count_up(7, 1000).unwrap(), Ok(1007));

    // A host that serves no OCALLs: the enclave's proxy learns the call is unknown.
    let bare = create(&platform, &path, EnclaveOptions::typed(&CALC_INTERFACE));
    assert_eq!(
        CalcProxy::new(&bare)
            .greet_and_sum("Eve".into(), vec![])
            .unwrap(),
        Err("the callee does not implement call 1".into())
    );
}

#[test]
fn rejects_an_enclave_of_another_interface_version_at_creation() {
    let d = daemon();
    let path = bundle(&d, 2);
    let platform = Platform::connect(&d.socket).unwrap();
    let err = platform
        .create_enclave_with(
            &path,
            EnclaveOptions::typed(&typed_interface::v2::CALC_INTERFACE),
        )
        .unwrap_err();
    let HostError::Refused(PlatformError::LaunchFailed(reason)) = &err else {
        panic!("expected LaunchFailed, got {err}");
    };
    assert!(
        reason.ends_with(&format!(
            "interface mismatch: the host expects Calc {}, this enclave implements Calc {}",
            typed_interface::v2::CALC_INTERFACE.id_hex(),
            CALC_INTERFACE.id_hex()
        )),
        "{reason}"
    );
    // Nothing is left running, and the matching version starts.
    assert!(platform.status().unwrap().enclaves.is_empty());
    let enclave = create(&platform, &path, options(Host::default()));
    assert_eq!(CalcProxy::new(&enclave).add(1, 1).unwrap(), 2);
}

#[test]
fn loses_the_enclave_when_an_ecall_panics() {
    let d = daemon();
    let path = bundle(&d, 2);
    let platform = Platform::connect(&d.socket).unwrap();
    let enclave = create(&platform, &path, options(Host::default()));
    let calc = CalcProxy::new(&enclave);
    assert_eq!(calc.add(1, 2).unwrap(), 3);
    let err = calc.panic("boom".into()).unwrap_err();
    assert_eq!(
        err,
        TransportError::EnclaveLost("the enclave aborted (a panic)".into())
    );
    assert_eq!(
        err.to_string(),
        "EnclaveLost: the enclave aborted (a panic)"
    );
    // Every later call fails the same way.
    assert_eq!(calc.add(1, 2).unwrap_err(), err);
    assert_eq!(calc.ping(1).unwrap_err(), err);
}

/// Holds the enclave's only TCS with `hold` on another thread, runs `f`, then releases it.
fn while_held<R>(enclave: &Enclave, host: &Host, f: impl FnOnce() -> R) -> R {
    std::thread::scope(|s| {
        let holder = s.spawn(|| CalcProxy::new(enclave).hold());
        host.gate.wait_for_holders(1);
        let r = f();
        host.gate.release();
        assert_eq!(holder.join().unwrap().unwrap(), Ok(()));
        r
    })
}

#[test]
fn rejects_a_call_when_every_tcs_is_busy() {
    let d = daemon();
    let path = bundle(&d, 1);
    let platform = Platform::connect(&d.socket).unwrap();
    let host = Host::default();
    let enclave = create(&platform, &path, options(host.clone()));
    let err = while_held(&enclave, &host, || CalcProxy::new(&enclave).add(1, 2)).unwrap_err();
    assert_eq!(err, TransportError::OutOfTcs(1));
    assert_eq!(err.to_string(), "OutOfTcs: all 1 enclave threads are busy");
    // Free again.
    assert_eq!(CalcProxy::new(&enclave).add(1, 2).unwrap(), 3);
}

#[test]
fn waits_for_a_free_tcs_when_asked_to() {
    let d = daemon();
    let path = bundle(&d, 1);
    let platform = Platform::connect(&d.socket).unwrap();
    let host = Host::default();
    let enclave = create(&platform, &path, options(host.clone()).wait_for_tcs(true));
    let released = AtomicBool::new(false);
    let sum = std::thread::scope(|s| {
        let holder = s.spawn(|| CalcProxy::new(&enclave).hold());
        host.gate.wait_for_holders(1);
        let waiter = s.spawn(|| {
            let sum = CalcProxy::new(&enclave).add(20, 22);
            // The only TCS was held until the release.
            assert!(released.load(Ordering::SeqCst), "the call did not wait");
            sum
        });
        std::thread::sleep(Duration::from_millis(100));
        released.store(true, Ordering::SeqCst);
        host.gate.release();
        assert_eq!(holder.join().unwrap().unwrap(), Ok(()));
        waiter.join().unwrap()
    });
    assert_eq!(sum.unwrap(), 42);
}

/// The same calls, switchless and not, on enclaves of one and two threads.
fn workload(calc: &CalcProxy<&Enclave>) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..300u64 {
        out.push(format!("{:?}", calc.ping(i)));
        if i % 25 == 0 {
            out.push(format!("{:?}", calc.count_up(i, 20)));
            out.push(format!("{:?}", calc.add(i, i)));
            out.push(format!(
                "{:?}",
                calc.greet_and_sum(format!("n{i}"), vec![i % 7])
            ));
        }
        if i % 100 == 0 {
            // Let the spinning workers give up and sleep: the next call must wake them.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    out
}

#[test]
fn switchless_calls_give_the_same_results_as_normal_ones() {
    let d = daemon();
    let platform = Platform::connect(&d.socket).unwrap();
    let mut results = Vec::new();
    for tcs in [1, 2] {
        let path = bundle(&d, tcs);
        for switchless in [None, Some(SwitchlessConfig::default())] {
            let mut o = options(Host::default());
            o.switchless = switchless;
            let enclave = create(&platform, &path, o);
            let calc = CalcProxy::new(&enclave);
            results.push(workload(&calc));
        }
    }
    assert!(results[0].iter().any(|r| r == "Ok(Ok(45))"));
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r, &results[0], "run {i}");
    }
}

#[test]
fn rejects_a_switchless_spin_above_the_cap() {
    let d = daemon();
    let path = bundle(&d, 1);
    let platform = Platform::connect(&d.socket).unwrap();
    let o = options(Host::default()).switchless(SwitchlessConfig {
        spin: Duration::from_millis(11),
    });
    let err = platform.create_enclave_with(&path, o).unwrap_err();
    assert!(
        matches!(
            &err,
            HostError::Refused(PlatformError::Invalid(RequestError::SwitchlessSpin { .. }))
        ),
        "{err}"
    );
}
