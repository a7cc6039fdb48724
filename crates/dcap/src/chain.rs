//! The PCK certificate chain: PEM to DER, finding the leaf whatever order the chain is stored in,
//! and path validation with rustls-webpki to a pinned root or to the chain's own root.

use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage, RevocationCheckDepth,
    RevocationOptionsBuilder, UnknownStatusPolicy,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::prelude::FromDer;

use crate::error::QuoteVerificationError as E;
use crate::root::Anchor;

/// Most certificates accepted in a chain (Intel's has three: PCK, Processor/Platform CA, root).
/// Bounds the parsing and the quadratic issuer search a hostile chain can cause.
pub const MAX_CHAIN_CERTIFICATES: usize = 8;

/// Intel's SGX extensions arc (1.2.840.113741.1.13.1), used as the extended key usage a PCK
/// leaf must carry *if* it carries any: Intel's PCK certificates have no EKU extension, so this
/// only rejects a leaf issued for another purpose (a TLS server certificate, say).
const PCK_EKU: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01];

/// Decodes a PEM chain (certification data type 5) to DER certificates, in stored order.
///
/// Intel's PCCS ends the chain with a NUL byte, which is ignored. Every `-----BEGIN` must start
/// a well-formed `CERTIFICATE` block: the pem crate silently skips blocks it cannot frame, and a
/// skipped certificate must not go unnoticed.
pub fn pem_chain_to_der(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, E> {
    let end = pem.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    let text = pem.get(..end).unwrap_or_default();
    let begins = text.windows(10).filter(|w| *w == b"-----BEGIN").count();
    if begins > MAX_CHAIN_CERTIFICATES {
        return Err(E::ChainTooLong {
            count: begins,
            limit: MAX_CHAIN_CERTIFICATES,
        });
    }
    let blocks = pem::parse_many(text).map_err(E::ChainPem)?;
    if blocks.is_empty() {
        return Err(E::ChainPemContents("holds no PEM certificate"));
    }
    if blocks.len() != begins {
        return Err(E::ChainPemContents("a PEM block is not properly framed"));
    }
    blocks
        .into_iter()
        .map(|b| {
            if b.tag() == "CERTIFICATE" {
                Ok(CertificateDer::from(b.into_contents()))
            } else {
                Err(E::ChainPemContents("a PEM block is not a CERTIFICATE"))
            }
        })
        .collect()
}

/// Parses one certificate, requiring the DER to end where the certificate does.
pub(crate) fn parse_certificate<'a>(index: usize, der: &'a [u8]) -> Result<X509Certificate<'a>, E> {
    let malformed = |source| E::CertificateMalformed { index, source };
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(malformed(X509Error::InvalidCertificate)),
        Err(x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e)) => {
            Err(malformed(e))
        }
        Err(x509_parser::nom::Err::Incomplete(_)) => Err(malformed(X509Error::InvalidCertificate)),
    }
}

pub(crate) fn is_self_issued(c: &X509Certificate<'_>) -> bool {
    c.subject().as_raw() == c.issuer().as_raw()
}

/// The chain's certificates ordered as a path: leaf first, each followed by its issuer.
#[derive(Debug)]
pub(crate) struct Path<'a> {
    pub certs: Vec<(&'a CertificateDer<'static>, X509Certificate<'a>)>,
    /// Whether the last certificate is self-issued (the chain carries its root).
    pub ends_at_root: bool,
}

/// Orders `chain` as a path by names: the leaf is the one certificate that is not self-issued
/// and issued no other; then each certificate's issuer follows. Every certificate must be on
/// the path. Signatures are checked later, by webpki.
pub(crate) fn order_path<'a>(chain: &'a [CertificateDer<'static>]) -> Result<Path<'a>, E> {
    if chain.len() > MAX_CHAIN_CERTIFICATES {
        return Err(E::ChainTooLong {
            count: chain.len(),
            limit: MAX_CHAIN_CERTIFICATES,
        });
    }
    let mut pool = chain
        .iter()
        .enumerate()
        .map(|(i, der)| Ok((der, parse_certificate(i, der)?)))
        .collect::<Result<Vec<_>, E>>()?;
    let leaves: Vec<usize> = (0..pool.len())
        .filter(|&i| {
            let c = &pool[i].1;
            !is_self_issued(c)
                && !pool
                    .iter()
                    .enumerate()
                    .any(|(j, (_, o))| j != i && o.issuer().as_raw() == c.subject().as_raw())
        })
        .collect();
    let [leaf] = leaves[..] else {
        return Err(E::LeafNotFound {
            candidates: leaves.len(),
        });
    };
    let mut certs = vec![pool.swap_remove(leaf)];
    let mut ends_at_root = false;
    while let Some((_, current)) = certs.last() {
        if is_self_issued(current) {
            ends_at_root = true;
            break;
        }
        let issuer = current.issuer().as_raw();
        let found: Vec<usize> = (0..pool.len())
            .filter(|&j| pool[j].1.subject().as_raw() == issuer)
            .collect();
        match found[..] {
            [] => break,
            [j] => certs.push(pool.swap_remove(j)),
            _ => {
                return Err(E::IssuerAmbiguous {
                    issuer: current.issuer().to_string(),
                });
            }
        }
    }
    if let Some((_, extra)) = pool.first() {
        return Err(E::CertificateNotOnPath {
            subject: extra.subject().to_string(),
        });
    }
    Ok(Path {
        certs,
        ends_at_root,
    })
}

/// Fails with the expiry variants unless `cert` is valid at `now`.
pub(crate) fn check_validity(cert: &X509Certificate<'_>, now: UnixTime) -> Result<(), E> {
    let secs = now.as_secs();
    let t = i64::try_from(secs).unwrap_or(i64::MAX);
    let v = cert.validity();
    if t > v.not_after.timestamp() {
        return Err(E::CertificateExpired {
            subject: cert.subject().to_string(),
            not_after: v.not_after.to_string(),
            now: secs,
        });
    }
    if t < v.not_before.timestamp() {
        return Err(E::CertificateNotYetValid {
            subject: cert.subject().to_string(),
            not_before: v.not_before.to_string(),
            now: secs,
        });
    }
    Ok(())
}

/// Validates the path from the leaf to `anchor` with webpki: signatures, validity, basic
/// constraints, key usage and, given CRLs, revocation of every certificate below the anchor
/// (a certificate no CRL covers fails). `intermediates` may be in any order. webpki's error
/// goes to `map`.
pub(crate) fn verify_path(
    leaf: &CertificateDer<'static>,
    intermediates: &[CertificateDer<'static>],
    anchor: &Anchor<'_>,
    now: UnixTime,
    crls: Option<&[&CertRevocationList<'_>]>,
    map: impl Fn(webpki::Error) -> E,
) -> Result<(), E> {
    let anchors = [anchor.ta.clone()];
    let ee = EndEntityCert::try_from(leaf).map_err(&map)?;
    let revocation = match crls {
        Some(crls) => Some(
            RevocationOptionsBuilder::new(crls)
                .map_err(|_| map(webpki::Error::UnknownRevocationStatus))?
                .with_depth(RevocationCheckDepth::Chain)
                .with_status_policy(UnknownStatusPolicy::Deny)
                .with_expiration_policy(ExpirationPolicy::Enforce)
                .build(),
        ),
        None => None,
    };
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        intermediates,
        now,
        KeyUsage::required_if_present(PCK_EKU),
        revocation,
        None,
    )
    .map_err(map)?;
    Ok(())
}

/// Whether webpki's error is about revocation (a CRL), not about the path itself.
pub(crate) fn is_revocation_error(e: &webpki::Error) -> bool {
    matches!(
        e,
        webpki::Error::CertRevoked
            | webpki::Error::UnknownRevocationStatus
            | webpki::Error::InvalidCrlSignatureForPublicKey
            | webpki::Error::UnsupportedCrlSignatureAlgorithmContext(_)
            | webpki::Error::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(_)
            | webpki::Error::IssuerNotCrlSigner
            | webpki::Error::CrlExpired { .. }
            | webpki::Error::UnsupportedRevocationReason
            | webpki::Error::UnsupportedCrlVersion
            | webpki::Error::UnsupportedIndirectCrl
            | webpki::Error::UnsupportedDeltaCrl
            | webpki::Error::UnsupportedRevocationReasonsPartitioning
    )
}
