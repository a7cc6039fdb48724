//! # typed-interface: what `coffer-enclave`'s `typed-enclave` example and the host's tests agree on
//!
//! One trait for the ECALLs, one for the OCALLs, and a second version of the ECALL trait for the
//! mismatch test (`crates/host/tests/typed.rs`). Like every interface crate, it never depends on
//! the enclave runtime: the host links it too.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

/// A method's own error type, carried across the boundary as a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DivError {
    ByZero,
    Overflow,
}

/// The ECALLs.
#[coffer_interface::ecalls]
pub trait Calc {
    fn add(&self, a: u64, b: u64) -> u64;
    fn divide(&self, a: i64, b: i64) -> Result<i64, DivError>;
    /// Asks the host to decorate `name` (OCALL `decorate`), then to check each of `xs`
    /// (OCALL `check`), and returns the decorated name and the sum.
    fn greet_and_sum(&self, name: String, xs: Vec<u64>) -> Result<(String, u64), String>;
    /// Holds the calling thread's TCS until the host's `wait_for_release` OCALL returns.
    fn hold(&self) -> Result<(), String>;
    /// Panics inside the enclave.
    fn panic(&self, message: String);
    /// This enclave's MRENCLAVE, as its `Ctx` reports it (reached through `with_ctx`).
    fn mrenclave(&self) -> Option<[u8; 32]>;
    #[switchless]
    fn ping(&self, x: u64) -> u64;
    /// `x` plus one, `times` times, each through the host's switchless `add_one` OCALL.
    #[switchless]
    fn count_up(&self, x: u64, times: u32) -> Result<u64, String>;
}

/// The OCALLs the host serves.
#[coffer_interface::ocalls]
pub trait CalcHost {
    fn decorate(&self, name: String) -> String;
    fn check(&self, x: u64) -> Result<u64, String>;
    fn wait_for_release(&self);
    #[switchless]
    fn add_one(&self, x: u64) -> u64;
}

/// The next version of `Calc`: `add` takes 32-bit numbers. A host built from it must not be
/// able to create an enclave built from the first.
pub mod v2 {
    #[coffer_interface::ecalls]
    pub trait Calc {
        fn add(&self, a: u32, b: u32) -> u64;
    }
}
