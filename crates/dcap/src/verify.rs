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
use webpki::{BorrowedCertRevocationList, CertRevocationList};
use x509_parser::certificate::X509Certificate;
use x509_parser::parse_x509_crl;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::x509::X509Name;

use crate::chain::{
    self, Path, check_validity, is_self_issued, order_path, parse_certificate, pem_chain_to_der,
};
use crate::collateral::{
    Collateral, Date, check_fresh, parse_qe_identity, parse_tcb_info, rfc3339,
};
use crate::error::QuoteVerificationError as E;
use crate::pck::parse_pck_extension;
use crate::root::{Anchor, TrustRoot};
use crate::tcb::{TcbStatus, TcbVerdict, match_platform_level, match_qe_level};

/// What a verification trusts, when it happens, and the collateral it evaluates the TCB with.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// What the PCK chain and the collateral's signers must chain to. Default: Intel's SGX Root
    /// CA key.
    pub root: TrustRoot,
    /// The time certificates, CRLs and collateral must be valid at.
    pub now: UnixTime,
    /// Intel's (or a deployment's) collateral: with it, revocation, the QE identity and the TCB
    /// level are checked and [`VerifiedQuote::tcb`] says the TCB status.
    pub collateral: Option<Collateral>,
}

impl VerifyOptions {
    /// The chain must end at Intel's SGX Root CA key (built in); checked at `now`.
    pub fn new(now: SystemTime) -> Self {
        VerifyOptions {
            root: TrustRoot::IntelSgxRootKey,
            now: unix_time(now),
            collateral: None,
        }
    }

    /// The chain must end at `root` (DER), certificates checked at `now`.
    pub fn pinned(root: CertificateDer<'static>, now: SystemTime) -> Self {
        VerifyOptions {
            root: TrustRoot::Certificate(root),
            now: unix_time(now),
            collateral: None,
        }
    }

    /// No pinned root: the chain is only checked up to its own self-signed root (see
    /// [`RootTrust::NotPinned`]).
    pub fn unpinned(now: SystemTime) -> Self {
        VerifyOptions {
            root: TrustRoot::ChainOwnRoot,
            now: unix_time(now),
            collateral: None,
        }
    }

    /// Also evaluates `collateral`: CRLs, QE identity, TCB level.
    pub fn with_collateral(mut self, collateral: Collateral) -> Self {
        self.collateral = Some(collateral);
        self
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

/// What the chain was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootTrust {
    /// The chain ends at Intel's SGX Root CA key, built into Coffer.
    IntelRootKey,
    /// The chain ends at the root certificate the caller pinned ([`TrustRoot::Certificate`]).
    Pinned,
    /// No root was pinned: the chain ends at a self-signed root it carries itself, which anyone
    /// can make. Callers must say so.
    NotPinned,
}

/// A quote whose signatures, QE binding and PCK chain all verified, and, given collateral,
/// whose revocation, QE identity and TCB level did. Only [`verify`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedQuote {
    quote: Quote,
    chain: Vec<CertificateDer<'static>>,
    root: Option<CertificateDer<'static>>,
    root_trust: RootTrust,
    tcb: Option<TcbVerdict>,
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

    /// The chain's certificates as a path: PCK leaf first, each followed by its issuer (the
    /// chain's own copy of a root included, if it carries one).
    pub fn pck_chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The PCK leaf certificate.
    pub fn pck_leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The root certificate trusted: the pinned one, or the chain's own one when none was
    /// pinned. `None` when Intel's root *key* was the anchor.
    pub fn root(&self) -> Option<&CertificateDer<'static>> {
        self.root.as_ref()
    }

    pub fn root_trust(&self) -> RootTrust {
        self.root_trust
    }

    /// The TCB verdict, when collateral was given.
    pub fn tcb(&self) -> Option<&TcbVerdict> {
        self.tcb.as_ref()
    }

    pub fn into_quote(self) -> Quote {
        self.quote
    }
}

/// A parsed quote none of whose fields is trusted yet: the only way to its claims is
/// [`UnverifiedQuote::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedQuote(Quote);

impl UnverifiedQuote {
    /// Parses a quote (size-capped; truncation and trailing bytes rejected).
    pub fn parse(bytes: &[u8]) -> Result<UnverifiedQuote, E> {
        Ok(UnverifiedQuote(Quote::from_bytes(bytes)?))
    }

    /// The parsed fields, unverified: for display and diagnostics only.
    pub fn unverified(&self) -> &Quote {
        &self.0
    }

    /// Verifies it ([`verify`]).
    pub fn verify(&self, opts: &VerifyOptions) -> Result<VerifiedQuote, E> {
        verify(&self.0, opts)
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

impl QuoteInput for UnverifiedQuote {
    fn to_quote(&self) -> Result<Cow<'_, Quote>, DecodeError> {
        Ok(Cow::Borrowed(&self.0))
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

/// Verifies a quote, in this order (each failure its own [`QuoteVerificationError`](crate::QuoteVerificationError)
/// variant):
///
/// 1. quote signature: ECDSA P-256/SHA-256 over bytes 0..432 with the attestation key;
/// 2. QE report binding: REPORTDATA[0..32] = SHA-256(attestation key ‖ QE auth data) and
///    REPORTDATA[32..64] = 0 (as Intel's QVL requires);
/// 3. QE report signature over the 384-byte QE report body with the PCK leaf's key (the chain is
///    decoded and the leaf found first; its failures are certificate-chain errors);
/// 4. the PCK chain: validity at `opts.now` of every certificate on the path (and of a pinned
///    root certificate), then webpki path validation to the anchor ([`TrustRoot`]);
/// 5. with collateral, the CRLs: well-formed, issued by the anchor and by the PCK leaf's issuer,
///    signed by them, within thisUpdate..nextUpdate at `opts.now`, listing no certificate of the
///    path; then the path again with webpki's revocation checking;
/// 6. with collateral: the PCK leaf's SGX extension (FMSPC, PCE-ID, TCB); the TCB Info's signer
///    chain (to the same anchor, with the CRLs), its signature, format, dates, FMSPC and PCE-ID;
///    the QE Identity's likewise, then the QE report against it (MRSIGNER, ISVPRODID, masked
///    MISCSELECT and ATTRIBUTES, ISVSVN to a QE TCB level); the platform TCB level; and the
///    combined status, refused when Revoked.
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
    let (_, leaf) = path
        .certs
        .first()
        .ok_or(E::LeafNotFound { candidates: 0 })?;
    let pck_key = VerifyingKey::from_sec1_bytes(&leaf.public_key().subject_public_key.data)
        .map_err(|_| E::PckKeyUnsupported)?;
    if !ecdsa_ok(&pck_key, &qe.qe_report.to_bytes(), &qe.qe_report_signature) {
        return Err(E::QeReportSignature);
    }

    // The anchor.
    let own_root = matches!(opts.root, TrustRoot::ChainOwnRoot);
    let (anchor, root, root_trust) = match &opts.root {
        TrustRoot::IntelSgxRootKey => (Anchor::intel(), None, RootTrust::IntelRootKey),
        TrustRoot::Certificate(root) => {
            let parsed = parse_certificate(0, root)
                .map_err(|_| E::RootInvalid("not a valid X.509 certificate"))?;
            check_validity(&parsed, opts.now)?;
            (
                Anchor::certificate(root, "pinned root")?,
                Some(root.clone()),
                RootTrust::Pinned,
            )
        }
        TrustRoot::ChainOwnRoot => {
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
            (
                Anchor::certificate(root_der, "chain's self-signed root")?,
                Some(root_der.clone()),
                RootTrust::NotPinned,
            )
        }
    };

    // 4. The PCK chain to the anchor.
    let ordered: Vec<CertificateDer<'static>> =
        path.certs.iter().map(|(d, _)| (*d).clone()).collect();
    verify_chain(&path, &anchor, own_root, opts.now, None, PCK)?;

    // 5. With collateral: the CRLs, checked against the anchor and the (now verified) PCK CA,
    // then the path again, with revocation.
    let now = opts.now.as_secs();
    let crls = match &opts.collateral {
        Some(c) => Some(check_crls(c, &anchor, &path, now)?),
        None => None,
    };
    let crl_refs: Option<Vec<&CertRevocationList<'_>>> =
        crls.as_ref().map(|c| c.webpki.iter().collect());
    if let Some(crl_refs) = &crl_refs {
        verify_chain(&path, &anchor, own_root, opts.now, Some(crl_refs), PCK)?;
    }

    // 6. The TCB.
    let tcb = match (&opts.collateral, &crls) {
        (Some(c), Some(crl_dates)) => Some(evaluate_tcb(
            &quote,
            leaf,
            c,
            &anchor,
            own_root,
            opts.now,
            crl_refs.as_deref().unwrap_or_default(),
            crl_dates.next_update,
        )?),
        _ => None,
    };
    Ok(VerifiedQuote {
        quote,
        chain: ordered,
        root,
        root_trust,
        tcb,
    })
}

const PCK: &str = "PCK certificate";
const ROOT_CRL: &str = "root CA CRL";
const PCK_CRL: &str = "PCK CRL";
const TCB_INFO: &str = "TCB Info";
const QE_IDENTITY: &str = "QE Identity";

/// The CRLs, checked, for webpki; and the earlier of their nextUpdates.
struct CheckedCrls<'a> {
    webpki: Vec<CertRevocationList<'a>>,
    next_update: i64,
}

fn parse_crl<'a>(item: &'static str, der: &'a [u8]) -> Result<CertificateRevocationList<'a>, E> {
    match parse_x509_crl(der) {
        Ok(([], crl)) => Ok(crl),
        Ok(_) => Err(E::CollateralMalformed {
            item,
            reason: "trailing bytes after the CRL".into(),
        }),
        Err(e) => Err(E::CollateralMalformed {
            item,
            reason: format!("not a DER CRL: {e}"),
        }),
    }
}

/// Step 5: both CRLs parse, come from the right issuer with a valid signature, are current, and
/// revoke no certificate of the PCK path.
fn check_crls<'a>(
    c: &'a Collateral,
    anchor: &Anchor<'_>,
    path: &Path<'_>,
    now: u64,
) -> Result<CheckedCrls<'a>, E> {
    let (_, leaf) = path
        .certs
        .first()
        .ok_or(E::LeafNotFound { candidates: 0 })?;
    let root_crl = parse_crl(ROOT_CRL, &c.root_ca_crl)?;
    let pck_crl = parse_crl(PCK_CRL, &c.pck_crl)?;

    if root_crl.issuer().as_raw() != anchor.subject_der.as_slice() {
        return Err(E::CrlIssuerMismatch {
            item: ROOT_CRL,
            expected: name_of(&anchor.subject_der),
            found: root_crl.issuer().to_string(),
        });
    }
    root_crl
        .verify_signature(&anchor.spki()?)
        .map_err(|_| E::CrlSignature {
            item: ROOT_CRL,
            signer: anchor.name.to_owned(),
        })?;

    if pck_crl.issuer().as_raw() != leaf.issuer().as_raw() {
        return Err(E::CrlIssuerMismatch {
            item: PCK_CRL,
            expected: leaf.issuer().to_string(),
            found: pck_crl.issuer().to_string(),
        });
    }
    let pck_ca = path
        .certs
        .iter()
        .skip(1)
        .find(|(_, c)| c.subject().as_raw() == leaf.issuer().as_raw())
        .ok_or_else(|| E::CrlSignature {
            item: PCK_CRL,
            signer: format!("{} (not in the quote's chain)", leaf.issuer()),
        })?;
    pck_crl
        .verify_signature(pck_ca.1.public_key())
        .map_err(|_| E::CrlSignature {
            item: PCK_CRL,
            signer: pck_ca.1.subject().to_string(),
        })?;

    let mut next_update = i64::MAX;
    for (item, crl) in [(ROOT_CRL, &root_crl), (PCK_CRL, &pck_crl)] {
        let issued = crl.last_update();
        let next = crl.next_update().ok_or_else(|| E::CollateralMalformed {
            item,
            reason: "the CRL has no nextUpdate".into(),
        })?;
        check_fresh(
            item,
            &Date {
                secs: issued.timestamp(),
                text: rfc3339(u64::try_from(issued.timestamp()).unwrap_or_default()),
            },
            &Date {
                secs: next.timestamp(),
                text: rfc3339(u64::try_from(next.timestamp()).unwrap_or_default()),
            },
            now,
        )?;
        next_update = next_update.min(next.timestamp());
    }

    check_not_revoked(PCK, path, &[(ROOT_CRL, &root_crl), (PCK_CRL, &pck_crl)])?;

    let webpki = [(ROOT_CRL, &c.root_ca_crl), (PCK_CRL, &c.pck_crl)]
        .into_iter()
        .map(|(item, der)| {
            BorrowedCertRevocationList::from_der(der)
                .map(CertRevocationList::from)
                .map_err(|e| E::CollateralMalformed {
                    item,
                    reason: format!("webpki cannot use the CRL: {e}"),
                })
        })
        .collect::<Result<Vec<_>, E>>()?;
    Ok(CheckedCrls {
        webpki,
        next_update,
    })
}

/// Fails naming the certificate if a CRL by its issuer lists its serial number.
fn check_not_revoked(
    chain: &'static str,
    path: &Path<'_>,
    crls: &[(&'static str, &CertificateRevocationList<'_>)],
) -> Result<(), E> {
    for (_, cert) in path.certs.iter().filter(|(_, c)| !is_self_issued(c)) {
        for (crl_name, crl) in crls {
            if crl.issuer().as_raw() == cert.issuer().as_raw()
                && crl
                    .iter_revoked_certificates()
                    .any(|r| r.raw_serial() == cert.raw_serial())
            {
                return Err(E::CertificateRevoked {
                    chain,
                    subject: cert.subject().to_string(),
                    serial: cert.raw_serial_as_string(),
                    crl: crl_name,
                });
            }
        }
    }
    Ok(())
}

fn name_of(der: &[u8]) -> String {
    match X509Name::from_der(der) {
        Ok((_, n)) => n.to_string(),
        Err(_) => hex::encode(der),
    }
}

/// Validity of every certificate on `path` (a pinned anchor makes the chain's own root copy
/// irrelevant), then webpki path validation to `anchor`, with the CRLs if given.
fn verify_chain(
    path: &Path<'_>,
    anchor: &Anchor<'_>,
    own_root: bool,
    now: UnixTime,
    crls: Option<&[&CertRevocationList<'_>]>,
    chain: &'static str,
) -> Result<(), E> {
    for (_, c) in &path.certs {
        if own_root || !is_self_issued(c) {
            check_validity(c, now)?;
        }
    }
    let leaf = path
        .certs
        .first()
        .map(|(d, _)| (*d).clone())
        .ok_or(E::LeafNotFound { candidates: 0 })?;
    // The chain's own self-issued root (if any) is never an intermediate: the path must reach
    // the anchor.
    let intermediates: Vec<CertificateDer<'static>> = path
        .certs
        .iter()
        .skip(1)
        .filter(|(_, c)| !is_self_issued(c))
        .map(|(d, _)| (*d).clone())
        .collect();
    chain::verify_path(&leaf, &intermediates, anchor, now, crls, |source| {
        if crls.is_some() && chain::is_revocation_error(&source) {
            E::Revocation { chain, source }
        } else if chain == PCK {
            E::ChainUntrusted {
                anchor: anchor.name,
                source,
            }
        } else {
            E::CollateralChainUntrusted {
                item: chain,
                anchor: anchor.name,
                source,
            }
        }
    })
}

/// The signer of a TCB Info or QE Identity: its PEM chain must verify to the anchor (with the
/// CRLs); returns the signer's P-256 key.
fn collateral_signer(
    item: &'static str,
    pem: &str,
    anchor: &Anchor<'_>,
    own_root: bool,
    now: UnixTime,
    crls: &[&CertRevocationList<'_>],
    root_crl_der: &[u8],
) -> Result<VerifyingKey, E> {
    let chain_err = |e: E| E::CollateralChain {
        item,
        reason: e.to_string(),
    };
    let stored = pem_chain_to_der(pem.as_bytes()).map_err(chain_err)?;
    let path = order_path(&stored).map_err(chain_err)?;
    let signer_chain = match item {
        TCB_INFO => "TCB Info signer",
        _ => "QE Identity signer",
    };
    let root_crl = parse_crl(ROOT_CRL, root_crl_der)?;
    check_not_revoked(signer_chain, &path, &[(ROOT_CRL, &root_crl)])?;
    verify_chain(&path, anchor, own_root, now, Some(crls), signer_chain)?;
    let (_, leaf) = path
        .certs
        .first()
        .ok_or(E::LeafNotFound { candidates: 0 })?;
    VerifyingKey::from_sec1_bytes(&leaf.public_key().subject_public_key.data).map_err(|_| {
        E::CollateralChain {
            item,
            reason: "the signer certificate's key is not an ECDSA P-256 key".into(),
        }
    })
}

fn check_collateral_signature(
    item: &'static str,
    key: &VerifyingKey,
    text: &str,
    sig: &[u8],
) -> Result<(), E> {
    let sig: &[u8; ECDSA_P256_SIZE] = sig.try_into().map_err(|_| E::CollateralMalformed {
        item,
        reason: format!(
            "the signature is {} bytes, not {ECDSA_P256_SIZE} (raw r ‖ s)",
            sig.len()
        ),
    })?;
    if !ecdsa_ok(key, text.as_bytes(), sig) {
        return Err(E::CollateralSignature { item });
    }
    Ok(())
}

/// Step 6: TCB Info, QE Identity, levels, combined status.
#[allow(clippy::too_many_arguments)]
fn evaluate_tcb(
    quote: &Quote,
    leaf: &X509Certificate<'_>,
    c: &Collateral,
    anchor: &Anchor<'_>,
    own_root: bool,
    now: UnixTime,
    crls: &[&CertRevocationList<'_>],
    crl_next_update: i64,
) -> Result<TcbVerdict, E> {
    let now_secs = now.as_secs();
    let pck = parse_pck_extension(leaf)?;

    // TCB Info.
    let key = collateral_signer(
        TCB_INFO,
        &c.tcb_info_issuer_chain,
        anchor,
        own_root,
        now,
        crls,
        &c.root_ca_crl,
    )?;
    check_collateral_signature(TCB_INFO, &key, &c.tcb_info, &c.tcb_info_signature)?;
    let tcb_info = parse_tcb_info(&c.tcb_info)?;
    check_fresh(
        TCB_INFO,
        &tcb_info.issue_date,
        &tcb_info.next_update,
        now_secs,
    )?;
    if tcb_info.fmspc != pck.fmspc {
        return Err(E::FmspcMismatch {
            pck: hex::encode(pck.fmspc),
            tcb_info: hex::encode(tcb_info.fmspc),
        });
    }
    if tcb_info.pce_id != pck.pce_id {
        return Err(E::PceIdMismatch {
            pck: hex::encode(pck.pce_id),
            tcb_info: hex::encode(tcb_info.pce_id),
        });
    }

    // QE Identity.
    let key = collateral_signer(
        QE_IDENTITY,
        &c.qe_identity_issuer_chain,
        anchor,
        own_root,
        now,
        crls,
        &c.root_ca_crl,
    )?;
    check_collateral_signature(QE_IDENTITY, &key, &c.qe_identity, &c.qe_identity_signature)?;
    let qi = parse_qe_identity(&c.qe_identity)?;
    check_fresh(QE_IDENTITY, &qi.issue_date, &qi.next_update, now_secs)?;
    let qe = &quote.qe_report_certification_data().qe_report;
    if qe.mrsigner != qi.mrsigner {
        return Err(E::QeIdentityMismatch {
            field: "MRSIGNER",
            expected: hex::encode(qi.mrsigner),
            found: hex::encode(qe.mrsigner),
        });
    }
    if qe.isvprodid != qi.isvprodid {
        return Err(E::QeIdentityMismatch {
            field: "ISVPRODID",
            expected: qi.isvprodid.to_string(),
            found: qe.isvprodid.to_string(),
        });
    }
    let misc = qe.miscselect.bits();
    if misc & qi.miscselect_mask != qi.miscselect & qi.miscselect_mask {
        return Err(E::QeIdentityMismatch {
            field: "MISCSELECT (masked)",
            expected: format!("{:08x}", qi.miscselect & qi.miscselect_mask),
            found: format!("{:08x}", misc & qi.miscselect_mask),
        });
    }
    let attrs = qe.attributes.to_array();
    let masked = |a: &[u8; 16]| -> [u8; 16] {
        let mut out = [0u8; 16];
        for ((o, v), m) in out.iter_mut().zip(a).zip(&qi.attributes_mask) {
            *o = v & m;
        }
        out
    };
    if masked(&attrs) != masked(&qi.attributes) {
        return Err(E::QeIdentityMismatch {
            field: "ATTRIBUTES (masked)",
            expected: hex::encode(masked(&qi.attributes)),
            found: hex::encode(masked(&attrs)),
        });
    }
    let qe_level = match_qe_level(&qi.levels, qe.isvsvn)
        .ok_or(E::QeTcbLevelNotFound { isvsvn: qe.isvsvn })?
        .matched
        .clone();
    if !qe_level.status.valid_for_qe() {
        return Err(E::TcbStatusInvalid {
            item: QE_IDENTITY,
            status: qe_level.status.to_string(),
        });
    }

    // Platform TCB level.
    let platform = match_platform_level(&tcb_info.levels, &pck.tcb_components, pck.pcesvn)
        .ok_or_else(|| E::TcbLevelNotFound {
            components: hex::encode(pck.tcb_components),
            pcesvn: pck.pcesvn,
        })?
        .matched
        .clone();

    let next_update = [
        tcb_info.next_update.secs,
        qi.next_update.secs,
        crl_next_update,
    ]
    .into_iter()
    .min()
    .unwrap_or_default();
    let verdict = TcbVerdict::combine(
        platform,
        qe_level,
        pck,
        tcb_info.tcb_evaluation_data_number,
        qi.tcb_evaluation_data_number,
        u64::try_from(next_update).unwrap_or_default(),
    );
    if verdict.status == TcbStatus::Revoked || verdict.platform.status == TcbStatus::Revoked {
        return Err(E::TcbRevoked {
            platform: verdict.platform.status,
            qe: verdict.qe.status,
            advisory_ids: verdict.advisory_ids,
        });
    }
    Ok(verdict)
}
