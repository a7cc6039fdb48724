//! Quotes re-signed under certificate chains made here with rcgen: a forger controls every key
//! of them, so only a pinned root may stop them. Also the chain rules webpki enforces (CA bits,
//! EKU, validity of intermediates) and the PCK key type.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coffer_abi::Codec;
use coffer_abi::quote::{CertificationData, Quote, QuoteVersion};
use coffer_dcap::{QuoteVerificationError as E, RootTrust, VerifyOptions, verify};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};

fn vector(name: &str) -> Vec<u8> {
    coffer_testkit::vectors::read(&format!("dcap/{name}"))
}

/// 2026-01-01T00:00:00Z.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn intel_root() -> CertificateDer<'static> {
    let b = vector("quote_v3_pck_chain_b.bin");
    verify(&b, &VerifyOptions::unpinned(now()))
        .unwrap()
        .root()
        .unwrap()
        .clone()
}

/// Intel's names, so that only keys can tell the forged chain apart.
fn params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "Intel Corporation");
    p.distinguished_name
        .push(DnType::LocalityName, "Santa Clara");
    p.distinguished_name.push(DnType::StateOrProvinceName, "CA");
    p.distinguished_name.push(DnType::CountryName, "US");
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2040, 1, 1);
    p
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = params(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

fn p256_keypair() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
}

struct Pki {
    root: CertificateDer<'static>,
    chain_pem: Vec<u8>,
    leaf_key: Option<SigningKey>,
}

/// Knobs for the forged chain.
struct Forge {
    leaf_params: CertificateParams,
    ca_params: CertificateParams,
    leaf_alg: &'static rcgen::SignatureAlgorithm,
}

impl Default for Forge {
    fn default() -> Self {
        let mut leaf = params("Intel SGX PCK Certificate");
        leaf.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        Forge {
            leaf_params: leaf,
            ca_params: ca_params("Intel SGX PCK Processor CA"),
            leaf_alg: &rcgen::PKCS_ECDSA_P256_SHA256,
        }
    }
}

fn forge_pki(f: Forge) -> Pki {
    let root_key = p256_keypair();
    let root_params = ca_params("Intel SGX Root CA");
    let root = root_params.self_signed(&root_key).unwrap();
    let root_issuer = Issuer::from_params(&root_params, &root_key);

    let ca_key = p256_keypair();
    let ca = f.ca_params.signed_by(&ca_key, &root_issuer).unwrap();
    let ca_issuer = Issuer::from_params(&f.ca_params, &ca_key);

    let leaf_kp = KeyPair::generate_for(f.leaf_alg).unwrap();
    let leaf = f.leaf_params.signed_by(&leaf_kp, &ca_issuer).unwrap();
    let leaf_key = SigningKey::from_pkcs8_der(&leaf_kp.serialize_der()).ok();

    // Stored out of order, like quote A's chain.
    let chain_pem = [leaf.pem(), root.pem(), ca.pem()].concat().into_bytes();
    Pki {
        root: root.der().clone(),
        chain_pem,
        leaf_key,
    }
}

/// Quote B's enclave identity, re-signed end to end with forged keys under `pki`.
fn forge_quote(pki: &Pki) -> Vec<u8> {
    forge_quote_version(pki, QuoteVersion::V3)
}

fn forge_quote_version(pki: &Pki, version: QuoteVersion) -> Vec<u8> {
    let mut q = Quote::from_bytes(&vector("quote_v3_pck_chain_b.bin")).unwrap();
    q.header.version = version;
    let attestation_key = SigningKey::from_slice(&[0x42; 32]).unwrap();
    let point = attestation_key.verifying_key().to_sec1_point(false);
    let sd = &mut q.signature_data;
    sd.ecdsa_attestation_key
        .copy_from_slice(&point.as_bytes()[1..]);
    let qe = &mut sd.qe_report_certification_data;
    let mut h = Sha256::new();
    h.update(sd.ecdsa_attestation_key);
    h.update(qe.qe_auth_data.as_bytes());
    qe.qe_report.reportdata[..32].copy_from_slice(&h.finalize());
    if let Some(leaf_key) = &pki.leaf_key {
        let sig: Signature = leaf_key.sign(&qe.qe_report.to_bytes());
        qe.qe_report_signature.copy_from_slice(&sig.to_bytes());
    }
    qe.certification_data = CertificationData::PckCertificateChain(pki.chain_pem.clone());
    let sig: Signature = attestation_key.sign(&q.signed_bytes());
    q.signature_data
        .isv_enclave_report_signature
        .copy_from_slice(&sig.to_bytes());
    q.to_bytes()
}

#[test]
fn accepts_a_forged_chain_only_unpinned_or_pinned_to_the_forged_root() {
    let pki = forge_pki(Forge::default());
    let bytes = forge_quote(&pki);

    let v = verify(&bytes, &VerifyOptions::unpinned(now())).unwrap();
    assert_eq!(v.root_trust(), RootTrust::NotPinned);
    assert_eq!(v.root(), Some(&pki.root));

    let v = verify(&bytes, &VerifyOptions::pinned(pki.root.clone(), now())).unwrap();
    assert_eq!(v.root_trust(), RootTrust::Pinned);

    let err = verify(&bytes, &VerifyOptions::pinned(intel_root(), now())).unwrap_err();
    assert!(
        matches!(
            err,
            E::ChainUntrusted {
                anchor: "pinned root",
                ..
            }
        ),
        "{err:?}"
    );

    // The default: Intel's root key, built in. The forged chain copies every name of Intel's,
    // but not its key.
    let err = verify(&bytes, &VerifyOptions::new(now())).unwrap_err();
    assert!(
        matches!(
            err,
            E::ChainUntrusted {
                anchor: "Intel SGX Root CA key",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("Intel SGX Root CA key"), "{err}");
}

#[test]
fn accepts_a_v4_sgx_quote_with_the_chain_nested_in_type_6() {
    let pki = forge_pki(Forge::default());
    let bytes = forge_quote_version(&pki, QuoteVersion::V4);
    assert_eq!(u16::from_le_bytes([bytes[0], bytes[1]]), 4);
    // Outer certification data right after the two 64-byte ECDSA fields: type 6.
    assert_eq!(u16::from_le_bytes([bytes[564], bytes[565]]), 6);
    let v = verify(&bytes, &VerifyOptions::pinned(pki.root.clone(), now())).unwrap();
    assert_eq!(v.header().version, QuoteVersion::V4);
    assert_eq!(v.pck_chain().len(), 3);
    let err = verify(&bytes, &VerifyOptions::pinned(intel_root(), now())).unwrap_err();
    assert!(matches!(err, E::ChainUntrusted { .. }), "{err:?}");
}

#[test]
fn rejects_a_real_quote_pinned_to_a_root_with_intel_names_but_another_key() {
    let pki = forge_pki(Forge::default());
    let real = vector("quote_v3_pck_chain_b.bin");
    let err = verify(&real, &VerifyOptions::pinned(pki.root, now())).unwrap_err();
    assert!(
        matches!(
            err,
            E::ChainUntrusted {
                anchor: "pinned root",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn rejects_a_pck_leaf_issued_for_tls() {
    let mut f = Forge::default();
    f.leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let pki = forge_pki(f);
    let bytes = forge_quote(&pki);
    for opts in [
        VerifyOptions::unpinned(now()),
        VerifyOptions::pinned(pki.root.clone(), now()),
    ] {
        let err = verify(&bytes, &opts).unwrap_err();
        assert!(
            matches!(
                err,
                E::ChainUntrusted {
                    source: webpki::Error::RequiredEkuNotFoundContext(_),
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[test]
fn rejects_a_leaf_issued_by_a_certificate_that_is_not_a_ca() {
    let mut f = Forge::default();
    f.ca_params.is_ca = IsCa::ExplicitNoCa;
    let pki = forge_pki(f);
    let err = verify(&forge_quote(&pki), &VerifyOptions::unpinned(now())).unwrap_err();
    assert!(matches!(err, E::ChainUntrusted { .. }), "{err:?}");
}

#[test]
fn rejects_an_expired_intermediate_naming_it() {
    let mut f = Forge::default();
    f.ca_params.not_after = rcgen::date_time_ymd(2025, 6, 1);
    let pki = forge_pki(f);
    let err = verify(&forge_quote(&pki), &VerifyOptions::unpinned(now())).unwrap_err();
    match err {
        E::CertificateExpired { subject, .. } => {
            assert!(subject.contains("Intel SGX PCK Processor CA"), "{subject}")
        }
        other => panic!("expected CertificateExpired, got {other:?}"),
    }
}

#[test]
fn rejects_a_pck_leaf_with_a_p384_key() {
    let f = Forge {
        leaf_alg: &rcgen::PKCS_ECDSA_P384_SHA384,
        ..Forge::default()
    };
    let pki = forge_pki(f);
    assert!(pki.leaf_key.is_none());
    let err = verify(&forge_quote(&pki), &VerifyOptions::unpinned(now())).unwrap_err();
    assert!(matches!(err, E::PckKeyUnsupported), "{err:?}");
}

#[test]
fn rejects_a_forged_quote_whose_qe_report_was_signed_by_another_key() {
    let mut pki = forge_pki(Forge::default());
    pki.leaf_key = Some(SigningKey::from_slice(&[0x17; 32]).unwrap());
    let err = verify(&forge_quote(&pki), &VerifyOptions::unpinned(now())).unwrap_err();
    assert!(matches!(err, E::QeReportSignature), "{err:?}");
}
