//! The one error type of quote verification: a variant per check, each message naming it.

use coffer_abi::DecodeError;
use coffer_abi::quote::CertificationDataType;
use thiserror::Error;

/// Why a quote did not verify. Checks run in the order of the variants below; the first failure
/// is reported.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum QuoteVerificationError {
    /// The bytes are not a well-formed quote Coffer supports.
    #[error("quote parsing: {0}")]
    Parse(#[from] DecodeError),

    /// Check 1: the attestation key in the signature data is not a point on P-256.
    #[error("quote signature: the ECDSA attestation key is not a valid P-256 public key")]
    AttestationKeyInvalid,
    /// Check 1: the ISV enclave report signature does not verify.
    #[error(
        "quote signature: the ISV enclave report signature over the quote's bytes 0..432 does \
         not verify with the attestation key"
    )]
    QuoteSignature,

    /// Check 2: the QE report does not vouch for this attestation key.
    #[error(
        "QE report binding: the QE report's REPORTDATA[0..32] is not SHA-256(attestation key ‖ \
         QE authentication data)"
    )]
    QeReportBinding,
    /// Check 2: the QE report's REPORTDATA is not zero after the hash.
    #[error("QE report binding: the QE report's REPORTDATA[32..64] is not zero")]
    QeReportDataNotZeroPadded,

    /// The certification data is not a PCK certificate chain, so there is no key to check
    /// the QE report with.
    #[error(
        "certificate chain: the quote carries certification data type {0}, not a PCK \
         certificate chain (type 5)"
    )]
    NoPckCertificateChain(CertificationDataType),
    /// The PEM text of the chain does not decode.
    #[error("certificate chain: malformed PEM: {0}")]
    ChainPem(#[source] pem::PemError),
    /// The PEM text holds something that is not a certificate, or blocks that do not parse.
    #[error("certificate chain: {0}")]
    ChainPemContents(&'static str),
    /// The chain holds more certificates than Coffer builds paths through.
    #[error("certificate chain: {count} certificates exceed the limit of {limit}")]
    ChainTooLong { count: usize, limit: usize },
    /// A certificate is not valid X.509 DER.
    #[error("certificate chain: certificate {index} is not valid X.509: {source}")]
    CertificateMalformed {
        index: usize,
        #[source]
        source: x509_parser::error::X509Error,
    },
    /// No single certificate is issued by no other one in the chain.
    #[error(
        "certificate chain: cannot identify the PCK leaf certificate ({candidates} certificates \
         are not the issuer of any other)"
    )]
    LeafNotFound { candidates: usize },
    /// Two certificates in the chain could have issued the same certificate.
    #[error("certificate chain: more than one certificate in the chain is named {issuer}")]
    IssuerAmbiguous { issuer: String },
    /// A certificate of the chain is not on the path from the leaf to the root.
    #[error("certificate chain: {subject} is not on the path from the PCK leaf to the root")]
    CertificateNotOnPath { subject: String },

    /// Check 3: the PCK leaf certificate does not hold a P-256 public key.
    #[error("QE report signature: the PCK leaf certificate's key is not an ECDSA P-256 key")]
    PckKeyUnsupported,
    /// Check 3: the QE report signature does not verify.
    #[error(
        "QE report signature: the signature over the QE report does not verify with the PCK \
         leaf certificate's key"
    )]
    QeReportSignature,

    /// Check 4: a certificate of the path (or the pinned root) has expired.
    #[error(
        "certificate chain: {subject} expired (notAfter {not_after}) before the verification \
         time ({now} Unix seconds)"
    )]
    CertificateExpired {
        subject: String,
        not_after: String,
        now: u64,
    },
    /// Check 4: a certificate of the path (or the pinned root) is not valid yet.
    #[error(
        "certificate chain: {subject} is not valid until {not_before}, after the verification \
         time ({now} Unix seconds)"
    )]
    CertificateNotYetValid {
        subject: String,
        not_before: String,
        now: u64,
    },
    /// Check 4, no root pinned: the path does not end at a self-signed root in the chain.
    #[error(
        "certificate chain: no root pinned and the chain has no certificate that issued {issuer}"
    )]
    RootMissing { issuer: String },
    /// Check 4, no root pinned: the chain's self-issued root does not verify its own signature.
    #[error("certificate chain: the root {subject} is not validly self-signed: {source}")]
    RootNotSelfSigned {
        subject: String,
        #[source]
        source: x509_parser::error::X509Error,
    },
    /// Check 4: path validation to the trust anchor failed.
    #[error("certificate chain: does not verify to the {anchor}: {source}")]
    ChainUntrusted {
        /// "pinned root" or "chain's self-signed root".
        anchor: &'static str,
        #[source]
        source: webpki::Error,
    },

    /// The root certificate given to pin is unusable.
    #[error("pinned root: {0}")]
    RootInvalid(&'static str),
}
