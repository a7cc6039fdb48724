//! The generated proxy and dispatcher, joined by an in-process transport.
#![allow(clippy::unwrap_used)]

use coffer_interface::{CallInfo, DispatchError, Transport, TransportError};

#[coffer_interface::ecalls]
pub trait Counter {
    fn add(&self, by: u64) -> u64;
    fn greet(&self, name: String, times: u8) -> Result<String, String>;
    #[switchless]
    fn nothing(&self);
}

#[coffer_interface::ecalls]
pub trait CounterV2 {
    fn add(&self, by: u32) -> u64;
}

struct Impl(std::sync::atomic::AtomicU64);

impl Counter for Impl {
    fn add(&self, by: u64) -> u64 {
        self.0.fetch_add(by, std::sync::atomic::Ordering::SeqCst) + by
    }
    fn greet(&self, name: String, times: u8) -> Result<String, String> {
        if times == 0 {
            return Err("zero times".into());
        }
        Ok(format!("hello {name}").repeat(times as usize))
    }
    fn nothing(&self) {}
}

struct Local<'a>(&'a Impl);

impl Transport for Local<'_> {
    fn call(&self, call: &CallInfo, input: &[u8]) -> Result<Vec<u8>, TransportError> {
        counter_dispatch(self.0, call.id, input).map_err(|e| match e {
            DispatchError::UnknownCall(id) => TransportError::UnknownCall(id),
            other => TransportError::Refused(other.to_string()),
        })
    }
}

#[test]
fn accepts_calls_through_the_generated_proxy() {
    let imp = Impl(Default::default());
    let p = CounterProxy::new(Local(&imp));
    assert_eq!(p.add(5).unwrap(), 5);
    assert_eq!(p.add(2).unwrap(), 7);
    assert_eq!(p.greet("x".into(), 2).unwrap(), Ok("hello xhello x".into()));
    assert_eq!(p.greet("x".into(), 0).unwrap(), Err("zero times".into()));
    p.nothing().unwrap();
}

#[test]
fn accepts_a_call_table_in_declaration_order() {
    let calls = COUNTER_INTERFACE.calls;
    assert_eq!(calls.len(), 3);
    assert_eq!((calls[0].id, calls[0].name), (1, "add"));
    assert!(calls[2].switchless && !calls[0].switchless);
    assert_eq!(COUNTER_INTERFACE.name, "Counter");
}

#[test]
fn rejects_a_changed_interface_by_id() {
    assert_ne!(COUNTER_INTERFACE.id, COUNTER_V2_INTERFACE.id);
    assert_eq!(COUNTER_INTERFACE.id_hex().len(), 64);
}

#[test]
fn rejects_malformed_arguments_and_unknown_calls() {
    let imp = Impl(Default::default());
    assert!(matches!(
        counter_dispatch(&imp, 1, &[0xff; 20]),
        Err(DispatchError::BadArguments(_))
    ));
    // Trailing bytes after valid arguments are refused too.
    let mut ok = coffer_interface::encode(&(5u64,)).unwrap();
    ok.push(0);
    assert!(matches!(
        counter_dispatch(&imp, 1, &ok),
        Err(DispatchError::BadArguments(_))
    ));
    assert_eq!(
        counter_dispatch(&imp, 9, &[]),
        Err(DispatchError::UnknownCall(9))
    );
}
