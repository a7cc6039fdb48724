//! Quote verification: an unverified [`Quote`] in, a [`VerifiedQuote`] out only when every check
//! passes.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coffer_abi::quote::{ECDSA_P256_SIZE, Quote, QuoteHeader};
use coffer_abi::{Codec, DecodeError, ReportBody};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};

use crate::chain::{self, check_validity, order_path, parse_certificate, pem_chain_to_der};
use crate::error::QuoteVerificationError as E;

/// What a verification trusts, and when it happens.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The root CA the PCK chain must end at (DER). `None` checks the chain up to its own
    /// self-signed root and marks the result [`RootTrust::NotPinned`]: that proves the quote is
    /// internally consistent, not that it comes from genuine hardware or a trusted platform.
    pub root: Option<CertificateDer<'static>>,
    /// The time certificates must be valid at.
    pub now: UnixTime,
}

impl VerifyOptions {
    /// No pinned root, certificates checked at `now`.
    pub fn new(now: SystemTime) -> Self {
        VerifyOptions {
            root: None,
            now: unix_time(now),
        }
    }

    /// The chain must end at `root` (DER), certificates checked at `now`.
    pub fn pinned(root: CertificateDer<'static>, now: SystemTime) -> Self {
        VerifyOptions {
            root: Some(root),
            now: unix_time(now),
        }
    }
}

fn unix_time(t: SystemTime) -> UnixTime {
    UnixTime::since_unix_epoch(t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO))
}

/// Reads a root certificate given as DER or as one PEM `CERTIFICATE` block, and checks that it
/// parses as X.509.
pub fn parse_root_certificate(bytes: &[u8]) -> Result<CertificateDer<'static>, E> {
    let der = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        let block = pem::parse(bytes).map_err(|_| E::RootInvalid("malformed PEM"))?;
        if block.tag() != "CERTIFICATE" {
            return Err(E::RootInvalid("the PEM block is not a CERTIFICATE"));
        }
        block.into_contents()
    } else {
        bytes.to_vec()
    };
    parse_certificate(0, &der).map_err(|_| E::RootInvalid("not a valid X.509 certificate"))?;
    Ok(CertificateDer::from(der))
}

/// Whether the chain was checked against a root the caller chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootTrust {
    /// The chain ends at the root given in [`VerifyOptions::root`].
    Pinned,
    /// No root was given: the chain ends at a self-signed root it carries itself, which anyone
    /// can make. Callers must say so.
    NotPinned,
}

/// A quote whose signatures, QE binding and PCK chain all verified. Only [`verify`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedQuote {
    quote: Quote,
    chain: Vec<CertificateDer<'static>>,
    root: CertificateDer<'static>,
    root_trust: RootTrust,
}

impl VerifiedQuote {
    pub fn quote(&self) -> &Quote {
        &self.quote
    }

    pub fn header(&self) -> &QuoteHeader {
        &self.quote.header
    }

    /// The attested enclave's report body (MRENCLAVE, MRSIGNER, REPORTDATA...).
    pub fn report_body(&self) -> &ReportBody {
        &self.quote.report_body
    }

    /// The quoting enclave's report body (QE MRSIGNER, ISVSVN...).
    pub fn qe_report(&self) -> &ReportBody {
        &self.quote.qe_report_certification_data().qe_report
    }

    /// The chain's certificates as a path: PCK leaf first, each followed by its issuer.
    pub fn pck_chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The PCK leaf certificate.
    pub fn pck_leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The trust anchor: the pinned root, or the chain's own root when none was pinned.
    pub fn root(&self) -> &CertificateDer<'static> {
        &self.root
    }

    pub fn root_trust(&self) -> RootTrust {
        self.root_trust
    }

    pub fn into_quote(self) -> Quote {
        self.quote
    }
}

/// Something [`verify`] can take: a parsed [`Quote`] or its bytes.
pub trait QuoteInput {
    fn to_quote(&self) -> Result<Cow<'_, Quote>, DecodeError>;
}

impl QuoteInput for Quote {
    fn to_quote(&self) -> Result<Cow<'_, Quote>, DecodeError> {
        Ok(Cow::Borrowed(self))
    }
}

impl QuoteInput for [u8] {
    fn to_quote(&self) -> Result<Cow<'_, Quote>, DecodeError> {
        Quote::from_bytes(self).map(Cow::Owned)
    }
}

impl QuoteInput for Vec<u8> {
    fn to_quote(&self) -> Result<Cow<'_, Quote>, DecodeError> {
        self.as_slice().to_quote()
    }
}

impl<const N: usize> QuoteInput for [u8; N] {
    fn to_quote(&self) -> Result<Cow<'_, Quote>, DecodeError> {
        self.as_slice().to_quote()
    }
}

fn p256_key(xy: &[u8; ECDSA_P256_SIZE]) -> Option<VerifyingKey> {
    let mut sec1 = [0u8; 1 + ECDSA_P256_SIZE];
    sec1[0] = 0x04;
    sec1[1..].copy_from_slice(xy);
    VerifyingKey::from_sec1_bytes(&sec1).ok()
}

/// ECDSA P-256 with SHA-256; `sig` is r ‖ s, big-endian. High-S signatures are accepted, as
/// Intel's QE produces them.
fn ecdsa_ok(key: &VerifyingKey, msg: &[u8], sig: &[u8; ECDSA_P256_SIZE]) -> bool {
    Signature::from_slice(sig).is_ok_and(|s| key.verify(msg, &s).is_ok())
}

/// Verifies a quote, in this order:
///
/// 1. quote signature: ECDSA P-256/SHA-256 over bytes 0..432 with the attestation key;
/// 2. QE report binding: REPORTDATA[0..32] = SHA-256(attestation key ‖ QE auth data) and
///    REPORTDATA[32..64] = 0 (as Intel's QVL requires);
/// 3. QE report signature over the 384-byte QE report body with the PCK leaf's key (the chain is
///    decoded and the leaf found first; its failures are certificate-chain errors);
/// 4. the PCK chain: validity at `opts.now` of every certificate on the path and of the pinned
///    root, then webpki path validation to the pinned root, or, with none pinned, to the chain's
///    own root, whose self-signature is checked too.
///
/// It does not check TCB levels, the QE identity or revocation (that needs Intel's collateral).
pub fn verify<Q: QuoteInput + ?Sized>(quote: &Q, opts: &VerifyOptions) -> Result<VerifiedQuote, E> {
    let quote = quote.to_quote()?.into_owned();
    let sd = &quote.signature_data;
    let qe = &sd.qe_report_certification_data;

    // 1. Quote signature.
    let attestation_key = p256_key(&sd.ecdsa_attestation_key).ok_or(E::AttestationKeyInvalid)?;
    if !ecdsa_ok(
        &attestation_key,
        &quote.signed_bytes(),
        &sd.isv_enclave_report_signature,
    ) {
        return Err(E::QuoteSignature);
    }

    // 2. QE report binding.
    let mut h = Sha256::new();
    h.update(sd.ecdsa_attestation_key);
    h.update(qe.qe_auth_data.as_bytes());
    let (bound, padding) = qe.qe_report.reportdata.split_at(32);
    if h.finalize().as_slice() != bound {
        return Err(E::QeReportBinding);
    }
    if padding.iter().any(|b| *b != 0) {
        return Err(E::QeReportDataNotZeroPadded);
    }

    // 3. QE report signature, with the leaf of the PCK chain.
    let pem = quote
        .pck_certificate_chain_pem()
        .ok_or_else(|| E::NoPckCertificateChain(quote.certification_data().cert_type()))?;
    let stored = pem_chain_to_der(pem)?;
    let path = order_path(&stored)?;
    let (leaf_der, leaf) = path
        .certs
        .first()
        .ok_or(E::LeafNotFound { candidates: 0 })?;
    let pck_key = VerifyingKey::from_sec1_bytes(&leaf.public_key().subject_public_key.data)
        .map_err(|_| E::PckKeyUnsupported)?;
    if !ecdsa_ok(&pck_key, &qe.qe_report.to_bytes(), &qe.qe_report_signature) {
        return Err(E::QeReportSignature);
    }

    // 4. The chain. When a root is pinned, the chain's own copy of a root (if any) is not used,
    // so its validity does not matter.
    for (_, c) in &path.certs {
        if opts.root.is_none() || c.subject().as_raw() != c.issuer().as_raw() {
            check_validity(c, opts.now)?;
        }
    }
    let ordered: Vec<CertificateDer<'static>> =
        path.certs.iter().map(|(d, _)| (*d).clone()).collect();
    let leaf_der = (*leaf_der).clone();
    let (root, root_trust) = match &opts.root {
        Some(root) => {
            let parsed = parse_certificate(0, root)
                .map_err(|_| E::RootInvalid("not a valid X.509 certificate"))?;
            check_validity(&parsed, opts.now)?;
            // The chain's own self-issued root (if any) is left out: the path must reach the
            // pinned one.
            let intermediates: Vec<CertificateDer<'static>> = path
                .certs
                .iter()
                .skip(1)
                .filter(|(_, c)| c.subject().as_raw() != c.issuer().as_raw())
                .map(|(d, _)| (*d).clone())
                .collect();
            chain::verify_path(&leaf_der, &intermediates, root, "pinned root", opts.now)?;
            (root.clone(), RootTrust::Pinned)
        }
        None => {
            let (root_der, root) = match path.certs.last() {
                Some((d, c)) if path.ends_at_root => (*d, c),
                last => {
                    return Err(E::RootMissing {
                        issuer: last
                            .map(|(_, c)| c.issuer().to_string())
                            .unwrap_or_default(),
                    });
                }
            };
            root.verify_signature(None)
                .map_err(|source| E::RootNotSelfSigned {
                    subject: root.subject().to_string(),
                    source,
                })?;
            let n = ordered.len();
            let intermediates = ordered.get(1..n.saturating_sub(1)).unwrap_or_default();
            chain::verify_path(
                &leaf_der,
                intermediates,
                root_der,
                "chain's self-signed root",
                opts.now,
            )?;
            (root_der.clone(), RootTrust::NotPinned)
        }
    };
    Ok(VerifiedQuote {
        quote,
        chain: ordered,
        root,
        root_trust,
    })
}
