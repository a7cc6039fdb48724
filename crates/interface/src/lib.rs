//! # coffer-interface: typed enclave interfaces
//!
//! Enclave developers describe their ECALLs as one Rust trait and their OCALLs as another:
//!
//! ```
//! #[coffer_interface::ecalls]
//! pub trait Counter {
//!     fn add(&self, by: u64) -> u64;
//!     fn name(&self, prefix: String) -> Result<String, String>;
//! }
//! ```
//!
//! The attribute generates `COUNTER_INTERFACE` (id and call table), `CounterProxy<T>` for the
//! caller and `counter_dispatch` for the callee (see `coffer-interface-macros`). The host SDK and
//! the enclave runtime provide the [`Transport`]s; arguments and results travel postcard-encoded
//! by value, and a method's own `Result` error crosses the boundary like any other value. Pass
//! bulk bytes as [`Bytes`], not `Vec<u8>`.

#![forbid(unsafe_code)]

pub use coffer_interface_macros::{ecalls, ocalls};

/// A byte buffer that crosses the boundary as one byte string.
///
/// Use it for bulk data in interface methods: serde encodes a `Vec<u8>` one element at a time,
/// which makes a megabyte argument 10–20 times slower (see `docs/benchmarks.md`); `Bytes` is
/// copied in one piece. It dereferences to `Vec<u8>`; `Bytes::from(vec)` and `bytes.into_vec()`
/// convert.
pub type Bytes = serde_bytes::ByteBuf;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// One call of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallInfo {
    /// The call id on the wire (1-based, in declaration order).
    pub id: u32,
    pub name: &'static str,
    /// Whether the trait marks the call `#[switchless]`.
    pub switchless: bool,
}

/// An interface: its name, id and call table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceInfo {
    pub name: &'static str,
    /// SHA-256 of the trait's canonical text: equal ids mean the same calls with the same types.
    pub id: [u8; 32],
    pub calls: &'static [CallInfo],
}

impl InterfaceInfo {
    /// The id as lowercase hex.
    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }
}

/// Why a typed call did not produce the method's result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The enclave is lost (crashed, killed by its sandbox, debugger attached, destroyed).
    #[error("EnclaveLost: {0}")]
    EnclaveLost(String),
    /// Every enclave thread is busy.
    #[error("OutOfTcs: all {0} enclave threads are busy")]
    OutOfTcs(u32),
    /// The callee has no such call: the two sides were built from different interfaces.
    #[error("the callee does not implement call {0}")]
    UnknownCall(u32),
    /// The arguments could not be encoded, or the result could not be decoded.
    #[error("encoding: {0}")]
    Codec(String),
    /// The callee could not decode the arguments or refused the message.
    #[error("the callee refused the call's message: {0}")]
    Refused(String),
    /// Anything else the transport reports.
    #[error("{0}")]
    Other(String),
}

/// Why a callee could not run a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    #[error("unknown call id {0}")]
    UnknownCall(u32),
    #[error("malformed arguments: {0}")]
    BadArguments(String),
    #[error("the result could not be encoded: {0}")]
    Encode(String),
}

/// The callee's dispatcher for an implementation `I`: the `<trait>_dispatch` the attribute
/// generates, as a function pointer (`hello_dispatch` coerces to `Dispatch<MyEnclave>`).
pub type Dispatch<I> = fn(&I, u32, &[u8]) -> Result<Vec<u8>, DispatchError>;

/// Moves an encoded call to the other side and back.
pub trait Transport {
    /// Makes the call and returns the callee's encoded result.
    fn call(&self, call: &CallInfo, input: &[u8]) -> Result<Vec<u8>, TransportError>;
}

impl<T: Transport + ?Sized> Transport for &T {
    fn call(&self, call: &CallInfo, input: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).call(call, input)
    }
}

impl<T: Transport + ?Sized> Transport for std::sync::Arc<T> {
    fn call(&self, call: &CallInfo, input: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).call(call, input)
    }
}

/// Encodes a call's arguments (generated code).
pub fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, TransportError> {
    postcard::to_stdvec(v).map_err(|e| TransportError::Codec(e.to_string()))
}

/// Decodes a call's result (generated code). Trailing bytes are refused.
pub fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, TransportError> {
    match postcard::take_from_bytes::<T>(b) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(TransportError::Codec(format!(
            "{} trailing bytes after the result",
            rest.len()
        ))),
        Err(e) => Err(TransportError::Codec(e.to_string())),
    }
}

/// Decodes a call's arguments on the callee's side (generated code). Trailing bytes are refused.
pub fn decode_args<T: DeserializeOwned>(b: &[u8]) -> Result<T, DispatchError> {
    match postcard::take_from_bytes::<T>(b) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(DispatchError::BadArguments(format!(
            "{} trailing bytes after the arguments",
            rest.len()
        ))),
        Err(e) => Err(DispatchError::BadArguments(e.to_string())),
    }
}

/// Encodes a method's result on the callee's side (generated code).
pub fn encode_result<T: Serialize>(v: &T) -> Result<Vec<u8>, DispatchError> {
    postcard::to_stdvec(v).map_err(|e| DispatchError::Encode(e.to_string()))
}
