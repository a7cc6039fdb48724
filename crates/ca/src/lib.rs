//! # coffer-ca: a Coffer deployment's certificate authority
//!
//! The root of trust of a deployment, in Intel's DCAP formats so that existing DCAP verifiers
//! (Intel's QVL, dcap-qvl, Coffer's own `coffer-dcap`) check Coffer quotes with only the root
//! certificate swapped for Intel's:
//!
//! - [`Authority::init`] makes a root CA (ECDSA P-256), a PCK CA issued by it (the counterpart
//!   of Intel's "PCK Processor CA") and a TCB signer (Intel's "TCB Signing" certificate), which
//!   signs TCB Info and QE Identity.
//! - [`Authority::provision`] certifies a node: a new PCK key and a certificate carrying Intel's
//!   SGX extension ([`extension`]: PPID, TCB components, PCESVN, CPUSVN, PCE-ID, FMSPC, SGX
//!   type), whose TCB components encode the node's hardening facts ([`tcb`]).
//! - [`Authority::collateral`] signs TCB Info v3, QE Identity v2 and the CRLs, and gives them in
//!   dcap-qvl's `QuoteCollateralV3` shape; [`Authority::revoke`] revokes a PCK certificate.
//!
//! What this crate must never do: overwrite a key, or certify a TCB better than the one the
//! platform reported.
//!
//! With the `test-support` feature, [`test_support`] builds whole test deployments and quotes
//! (the one writer of these formats that tests use).

#![forbid(unsafe_code)]

mod authority;
pub mod extension;
pub mod files;
pub mod formats;
pub mod tcb;
#[cfg(feature = "test-support")]
pub mod test_support;

pub use authority::{
    Authority, CaError, FMSPC, IssuedRecord, PCE_ID, PCK_CHAIN_FILE, PCK_KEY_FILE, Provisioned,
    QE_IDENTITY_FILE, QeIdentity, SignedCollateral, parse_serial, rfc3339,
};
pub use formats::{QeLevelInfo, TcbLevelInfo};
