//! The one error type of quote verification: a variant per check, each message naming it.

use coffer_abi::DecodeError;
use coffer_abi::quote::CertificationDataType;
use thiserror::Error;

use crate::tcb::TcbStatus;

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
         time ({})", crate::collateral::rfc3339(*now)
    )]
    CertificateExpired {
        subject: String,
        not_after: String,
        now: u64,
    },
    /// Check 4: a certificate of the path (or the pinned root) is not valid yet.
    #[error(
        "certificate chain: {subject} is not valid until {not_before}, after the verification \
         time ({})", crate::collateral::rfc3339(*now)
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
        /// "Intel SGX Root CA key", "pinned root" or "chain's self-signed root".
        anchor: &'static str,
        #[source]
        source: webpki::Error,
    },

    /// The root certificate given to pin is unusable.
    #[error("pinned root: {0}")]
    RootInvalid(&'static str),

    /// Collateral: a CRL, the TCB Info or the QE Identity does not parse, or lacks a field.
    #[error("collateral {item}: malformed: {reason}")]
    CollateralMalformed { item: &'static str, reason: String },
    /// Collateral: issued after the verification time.
    #[error(
        "collateral {item}: not valid yet: issued {issued}, after the verification time ({})",
        crate::collateral::rfc3339(*now)
    )]
    CollateralNotYetValid {
        item: &'static str,
        issued: String,
        now: u64,
    },
    /// Collateral: its next update was due before the verification time (stale collateral).
    #[error(
        "collateral {item}: stale: its next update was due {next_update}, before the \
         verification time ({})", crate::collateral::rfc3339(*now)
    )]
    CollateralStale {
        item: &'static str,
        next_update: String,
        now: u64,
    },
    /// Collateral: a CRL is not issued by the CA whose certificates it must cover.
    #[error("collateral {item}: issued by {found}, not by {expected}")]
    CrlIssuerMismatch {
        item: &'static str,
        expected: String,
        found: String,
    },
    /// Collateral: a CRL's signature does not verify with its issuer's key.
    #[error("collateral {item}: the CRL signature does not verify with the key of {signer}")]
    CrlSignature { item: &'static str, signer: String },
    /// A certificate's serial number is listed in a CRL of the collateral.
    #[error("{chain} chain: {subject} (serial {serial}) is revoked by the {crl}")]
    CertificateRevoked {
        /// "PCK certificate", "TCB Info signer" or "QE Identity signer".
        chain: &'static str,
        subject: String,
        serial: String,
        crl: &'static str,
    },
    /// Path validation with the collateral's CRLs failed on revocation (no CRL covers a
    /// certificate of the path, or webpki found it revoked).
    #[error("{chain} chain: revocation check against the collateral CRLs failed: {source}")]
    Revocation {
        chain: &'static str,
        #[source]
        source: webpki::Error,
    },
    /// Collateral: the issuer chain of the TCB Info or QE Identity is unusable.
    #[error("collateral {item}: signer certificate chain: {reason}")]
    CollateralChain { item: &'static str, reason: String },
    /// Collateral: the signer chain of the TCB Info or QE Identity does not verify to the anchor.
    #[error(
        "collateral {item}: signer certificate chain does not verify to the {anchor}: {source}"
    )]
    CollateralChainUntrusted {
        item: &'static str,
        anchor: &'static str,
        #[source]
        source: webpki::Error,
    },
    /// Collateral: the ECDSA signature over the TCB Info or QE Identity JSON does not verify.
    #[error(
        "collateral {item}: the ECDSA P-256 signature over the JSON text does not verify with \
         the signer certificate's key"
    )]
    CollateralSignature { item: &'static str },
    /// Collateral: the TCB Info or QE Identity is of a kind Coffer does not evaluate.
    #[error("collateral {item}: unsupported: {reason}")]
    CollateralUnsupported { item: &'static str, reason: String },

    /// The PCK leaf certificate's SGX extension is missing or malformed.
    #[error("PCK certificate SGX extension: {reason}")]
    PckExtension { reason: String },
    /// The TCB Info is for another platform family.
    #[error("TCB Info: issued for FMSPC {tcb_info}, but the PCK certificate's FMSPC is {pck}")]
    FmspcMismatch { pck: String, tcb_info: String },
    /// The TCB Info is for another PCE.
    #[error("TCB Info: issued for PCE-ID {tcb_info}, but the PCK certificate's PCE-ID is {pck}")]
    PceIdMismatch { pck: String, tcb_info: String },
    /// The platform's TCB is below every TCB level (Intel: TCB not supported).
    #[error(
        "TCB level: the platform TCB (components {components}, PCESVN {pcesvn}) is below every \
         TCB level of the TCB Info"
    )]
    TcbLevelNotFound { components: String, pcesvn: u16 },
    /// The matched level carries a status that structure may not have.
    #[error("TCB level: the matched {item} level has status {status:?}, which {item} may not use")]
    TcbStatusInvalid { item: &'static str, status: String },
    /// The QE report does not match the QE Identity.
    #[error("QE identity: the QE report's {field} is {found}, the QE Identity requires {expected}")]
    QeIdentityMismatch {
        field: &'static str,
        expected: String,
        found: String,
    },
    /// The QE's ISVSVN is below every QE TCB level.
    #[error("QE identity: the QE's ISVSVN {isvsvn} is below every QE TCB level of the QE Identity")]
    QeTcbLevelNotFound { isvsvn: u16 },
    /// The platform or QE TCB level is revoked.
    #[error(
        "TCB status: Revoked (platform {platform}, QE {qe}; advisories {})",
        advisory_ids.join(", ")
    )]
    TcbRevoked {
        platform: TcbStatus,
        qe: TcbStatus,
        advisory_ids: Vec<String>,
    },
}
