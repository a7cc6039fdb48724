//! # coffer-sign: the enclave author's tools
//!
//! RSA-3072 signing keys with public exponent 3 (the only kind SGX's EINIT accepts), SIGSTRUCT
//! signing and verification, MRSIGNER, and the two-step flow for keys held in an HSM (emit the 256
//! bytes to sign, then attach a signature made elsewhere and check it), the enclave configuration
//! ([`config`]), the deterministic enclave layout that gives MRENCLAVE ([`layout`]) and the
//! `.coffer` bundle file with its launch check ([`bundle`]).
//!
//! It must never load or run enclaves; it only produces and checks signatures.

#![forbid(unsafe_code)]

pub mod bundle;
pub mod config;
pub mod key;
pub mod layout;
pub mod sigstruct;

pub use bundle::{Bundle, BundleError, BundleSignError, BundleVerifyError, VerifiedBundle};
pub use config::{ConfigError, EnclaveConfig};
pub use key::{KeyError, SigningKey, VerifyingKey};
pub use layout::{LayoutError, Measured, measure_enclave};
pub use sigstruct::{
    SigstructBody, SigstructSignError, SigstructVerifyError, VerifiedSigstruct, assemble, sign,
    signing_data, verify,
};
