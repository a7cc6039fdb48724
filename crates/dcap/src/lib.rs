//! # coffer-dcap: verifying DCAP ECDSA quotes
//!
//! Quote in, verified claims out. Parsing a quote ([`UnverifiedQuote::parse`], or
//! [`coffer_abi::quote::Quote`]) gives an *unverified* quote: any field of it may be forged.
//! [`verify`] turns it into a [`VerifiedQuote`] only when the quote signature, the binding of
//! the attestation key to the quoting enclave's report, the QE report signature and the PCK
//! certificate chain all check out at an injected time, up to a pinned trust anchor: by default
//! Intel's SGX Root CA *key* ([`INTEL_SGX_ROOT_CA_SPKI`]), built in; or a root certificate the
//! caller pins ([`TrustRoot::Certificate`], a Coffer deployment's root).
//!
//! Given Intel's collateral ([`Collateral`], the JSON of dcap-qvl's `QuoteCollateralV3`), it also
//! checks the CRLs (revoked PCK or CA certificates), the TCB Info and QE Identity (signers chained
//! to the same anchor, signatures, freshness at the injected time), the QE's identity, and
//! matches the TCB levels as Intel's QVL does: [`VerifiedQuote::tcb`] then gives the TCB status
//! and advisory ids. Each failed check has its own [`QuoteVerificationError`] variant, whose
//! message names the step.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (quote_bytes, collateral_json) = (Vec::<u8>::new(), Vec::<u8>::new());
//! use std::time::SystemTime;
//! let collateral = coffer_dcap::Collateral::from_json(&collateral_json)?;
//! let opts = coffer_dcap::VerifyOptions::new(SystemTime::now()).with_collateral(collateral);
//! let verified = coffer_dcap::UnverifiedQuote::parse(&quote_bytes)?.verify(&opts)?;
//! println!("MRENCLAVE {:02x?}", verified.report_body().mrenclave);
//! if let Some(tcb) = verified.tcb() {
//!     println!("TCB {} {:?}", tcb.status, tcb.advisory_ids);
//! }
//! # Ok(()) }
//! ```
//!
//! [`VerifyOptions::unpinned`] checks a chain only up to its own self-signed root, which anyone
//! can make; the result says [`RootTrust::NotPinned`]. Nothing here fetches collateral.

#![forbid(unsafe_code)]

mod chain;
mod collateral;
mod error;
mod pck;
mod root;
mod tcb;
mod verify;

pub use chain::{MAX_CHAIN_CERTIFICATES, pem_chain_to_der};
pub use collateral::{Collateral, CollateralError, MAX_COLLATERAL_SIZE, MAX_TCB_LEVELS};
pub use error::QuoteVerificationError;
pub use pck::{PckExtension, UnverifiedPckInfo, unverified_pck_info};
pub use root::{
    INTEL_SGX_ROOT_CA_SPKI, INTEL_SGX_ROOT_CA_SPKI_SHA256, INTEL_SGX_ROOT_CA_SUBJECT, TrustRoot,
};
pub use tcb::{TcbLevelMatch, TcbStatus, TcbVerdict};
pub use verify::{
    QuoteInput, RootTrust, UnverifiedQuote, VerifiedQuote, VerifyOptions, parse_root_certificate,
    verify,
};
