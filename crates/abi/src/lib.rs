//! # coffer-abi: SGX's architectural structures, byte for byte
//!
//! This crate owns the wire layouts Coffer shares with Intel SGX: SECINFO, ATTRIBUTES,
//! MISCSELECT, SIGSTRUCT, REPORT and its body, TARGETINFO, KEYREQUEST, the SGX SDK's sealed-data
//! layout and DCAP ECDSA quotes, plus the MRENCLAVE measurement engine and the SGXS stream.
//!
//! Every structure goes through [`Codec`]: parsing takes untrusted bytes, caps every length,
//! rejects truncation and trailing data with a [`DecodeError`] that names the field, and never
//! panics; `encode(parse(x)) == x` for every accepted `x`.
//!
//! It must never do I/O, hold keys, or sign: those belong to `coffer-sign`, `coffer-cpu` and the
//! platform daemon.

#![forbid(unsafe_code)]

pub mod attributes;
pub mod codec;
pub mod report_body;
pub mod sigstruct;

pub use attributes::{Attributes, AttributesFlags, Miscselect};
pub use codec::{Codec, DecodeError, FixedSize, Reader};
pub use report_body::ReportBody;
pub use sigstruct::{Sigstruct, SigstructDate};
pub mod quote;

pub mod keyrequest;
pub mod measure;
pub mod report;
pub mod sealed;
pub mod secinfo;
pub mod sgxs;
pub mod targetinfo;

pub use keyrequest::{KeyName, KeyPolicy, Keyrequest};
pub use measure::{MeasureError, Measurement, MeasurementRecord, RecordSink};
pub use report::Report;
pub use sealed::{SealedData, sealed_data_size};
pub use secinfo::{PageType, Secinfo, SecinfoFlags};
pub use sgxs::{SgxsError, SgxsReader, SgxsWriter, measure_sgxs, write_sgxs};
pub use targetinfo::Targetinfo;
