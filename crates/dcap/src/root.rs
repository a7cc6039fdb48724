//! Trust roots: Intel's SGX Root CA *key*, built in and pinned by default; a root certificate the
//! caller pins (a Coffer deployment root); or, for consistency checks only, a chain's own root.

use rustls_pki_types::{CertificateDer, Der, TrustAnchor};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::chain::parse_certificate;
use crate::error::QuoteVerificationError as E;

/// The SubjectPublicKeyInfo (DER) of Intel's SGX Root CA: a P-256 key.
///
/// Intel has issued two self-signed "Intel SGX Root CA" certificates for this one key (the same
/// subject and serial number, valid to 2033 and to 2049), and quotes in the field carry either,
/// so Coffer pins the key and the name, not a certificate. SHA-256 of these bytes is
/// [`INTEL_SGX_ROOT_CA_SPKI_SHA256`].
pub const INTEL_SGX_ROOT_CA_SPKI: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0x0b, 0xa9, 0xc4, 0xc0, 0xc0,
    0xc8, 0x61, 0x93, 0xa3, 0xfe, 0x23, 0xd6, 0xb0, 0x2c, 0xda, 0x10, 0xa8, 0xbb, 0xd4, 0xe8, 0x8e,
    0x48, 0xb4, 0x45, 0x85, 0x61, 0xa3, 0x6e, 0x70, 0x55, 0x25, 0xf5, 0x67, 0x91, 0x8e, 0x2e, 0xdc,
    0x88, 0xe4, 0x0d, 0x86, 0x0b, 0xd0, 0xcc, 0x4e, 0xe2, 0x6a, 0xac, 0xc9, 0x88, 0xe5, 0x05, 0xa9,
    0x53, 0x55, 0x8c, 0x45, 0x3f, 0x6b, 0x09, 0x04, 0xae, 0x73, 0x94,
];

/// SHA-256 of [`INTEL_SGX_ROOT_CA_SPKI`], lowercase hex.
pub const INTEL_SGX_ROOT_CA_SPKI_SHA256: &str =
    "a0af031289f5d5d4132f9186068a7fc13628633ba235777472e29b6b6c67a49e";

/// The subject (DER Name) of Intel's SGX Root CA: CN=Intel SGX Root CA, O=Intel Corporation,
/// L=Santa Clara, ST=CA, C=US. Certificates it issues name it as their issuer.
pub const INTEL_SGX_ROOT_CA_SUBJECT: &[u8] = &[
    0x30, 0x68, 0x31, 0x1a, 0x30, 0x18, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x11, 0x49, 0x6e, 0x74,
    0x65, 0x6c, 0x20, 0x53, 0x47, 0x58, 0x20, 0x52, 0x6f, 0x6f, 0x74, 0x20, 0x43, 0x41, 0x31, 0x1a,
    0x30, 0x18, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x0c, 0x11, 0x49, 0x6e, 0x74, 0x65, 0x6c, 0x20, 0x43,
    0x6f, 0x72, 0x70, 0x6f, 0x72, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x31, 0x14, 0x30, 0x12, 0x06, 0x03,
    0x55, 0x04, 0x07, 0x0c, 0x0b, 0x53, 0x61, 0x6e, 0x74, 0x61, 0x20, 0x43, 0x6c, 0x61, 0x72, 0x61,
    0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x08, 0x0c, 0x02, 0x43, 0x41, 0x31, 0x0b, 0x30,
    0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, 0x55, 0x53,
];

/// What the PCK chain (and, with collateral, every collateral signer) must chain to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TrustRoot {
    /// Intel's SGX Root CA key ([`INTEL_SGX_ROOT_CA_SPKI`]) under Intel's root name. Whatever
    /// copy of the root certificate a chain carries is ignored: no certificate is trusted, the
    /// key is.
    #[default]
    IntelSgxRootKey,
    /// A root CA certificate the caller chose (a Coffer deployment's root), as DER. It must be
    /// valid at the verification time.
    Certificate(CertificateDer<'static>),
    /// No pinned root: the chain must end at a self-signed root it carries itself. Anyone can
    /// make one, so this proves consistency, not provenance ([`crate::RootTrust::NotPinned`]).
    ChainOwnRoot,
}

/// A resolved trust anchor: webpki's view of it, plus the full DER of its name and key for the
/// CRL checks x509-parser makes.
#[derive(Debug)]
pub(crate) struct Anchor<'a> {
    pub ta: TrustAnchor<'a>,
    /// Full DER Name (with its SEQUENCE header).
    pub subject_der: Vec<u8>,
    /// Full DER SubjectPublicKeyInfo (with its SEQUENCE header).
    pub spki_der: Vec<u8>,
    /// "Intel SGX Root CA key", "pinned root" or "chain's self-signed root", for messages.
    pub name: &'static str,
}

impl Anchor<'static> {
    /// Intel's key under Intel's root name.
    pub fn intel() -> Self {
        Anchor {
            ta: TrustAnchor {
                subject: Der::from_slice(der_contents(INTEL_SGX_ROOT_CA_SUBJECT)),
                subject_public_key_info: Der::from_slice(der_contents(INTEL_SGX_ROOT_CA_SPKI)),
                name_constraints: None,
            },
            subject_der: INTEL_SGX_ROOT_CA_SUBJECT.to_vec(),
            spki_der: INTEL_SGX_ROOT_CA_SPKI.to_vec(),
            name: "Intel SGX Root CA key",
        }
    }
}

impl<'a> Anchor<'a> {
    /// A root certificate as the anchor.
    pub fn certificate(der: &'a CertificateDer<'static>, name: &'static str) -> Result<Self, E> {
        let cert = parse_certificate(0, der)
            .map_err(|_| E::RootInvalid("not a valid X.509 certificate"))?;
        let ta = webpki::anchor_from_trusted_cert(der).map_err(|source| E::ChainUntrusted {
            anchor: name,
            source,
        })?;
        Ok(Anchor {
            ta,
            subject_der: cert.subject().as_raw().to_vec(),
            spki_der: cert.public_key().raw.to_vec(),
            name,
        })
    }

    /// The anchor's key as x509-parser sees it (for CRL signatures).
    pub fn spki(&self) -> Result<SubjectPublicKeyInfo<'_>, E> {
        match SubjectPublicKeyInfo::from_der(&self.spki_der) {
            Ok(([], spki)) => Ok(spki),
            _ => Err(E::RootInvalid("the root's public key is not valid DER")),
        }
    }
}

/// The contents of a DER SEQUENCE with a short- or long-form length (webpki's trust anchors hold
/// the name and key without their outer header).
fn der_contents(der: &[u8]) -> &[u8] {
    let header = match der.get(1) {
        Some(&l) if l < 0x80 => 2,
        Some(&l) => 2 + usize::from(l & 0x7f),
        None => 0,
    };
    der.get(header..).unwrap_or_default()
}
