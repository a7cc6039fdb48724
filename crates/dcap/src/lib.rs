//! # coffer-dcap: verifying DCAP ECDSA quotes
//!
//! Parsing a quote ([`coffer_abi::quote::Quote`]) gives an *unverified* quote: any field of it may
//! be forged. [`verify`] turns it into a [`VerifiedQuote`] only when the quote signature, the
//! binding of the attestation key to the quoting enclave's report, the QE report signature and
//! the PCK certificate chain all check out, at an injected time and, when the caller pins one,
//! up to a chosen root CA. Each failed check has its own [`QuoteVerificationError`] variant.
//!
//! ```no_run
//! # fn main() -> Result<(), coffer_dcap::QuoteVerificationError> {
//! # let (quote_bytes, root_pem) = (Vec::<u8>::new(), Vec::<u8>::new());
//! use std::time::SystemTime;
//! let root = coffer_dcap::parse_root_certificate(&root_pem)?;
//! let verified = coffer_dcap::verify(&quote_bytes, &coffer_dcap::VerifyOptions::pinned(root, SystemTime::now()))?;
//! println!("MRENCLAVE {:02x?}", verified.report_body().mrenclave);
//! # Ok(()) }
//! ```
//!
//! It must never trust a quote's own chain silently: without a pinned root the result says
//! [`RootTrust::NotPinned`]. It does not fetch or evaluate Intel collateral (TCB info, QE
//! identity, CRLs).

#![forbid(unsafe_code)]

mod chain;
mod error;
mod verify;

pub use chain::{MAX_CHAIN_CERTIFICATES, pem_chain_to_der};
pub use error::QuoteVerificationError;
pub use verify::{
    QuoteInput, RootTrust, VerifiedQuote, VerifyOptions, parse_root_certificate, verify,
};
