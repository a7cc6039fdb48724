//! Quote parsing and verification against the public DCAP vectors in `../shared/vectors/dcap`,
//! with corrupted, expired and re-chained copies, and a cross-check with dcap-qvl.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coffer_abi::quote::{
    AttestationKeyType, CertificationData, CertificationDataType, INTEL_QE_VENDOR_ID, Quote,
    QuoteVersion,
};
use coffer_abi::{Codec, DecodeError};
use coffer_dcap::{
    QuoteVerificationError as E, RootTrust, VerifyOptions, parse_root_certificate,
    pem_chain_to_der, verify,
};
use rustls_pki_types::CertificateDer;

fn vector(name: &str) -> Vec<u8> {
    coffer_testkit::vectors::read(&format!("dcap/{name}"))
}

fn quote_a() -> Vec<u8> {
    vector("quote_v3_pck_chain_a.bin")
}

fn quote_b() -> Vec<u8> {
    vector("quote_v3_pck_chain_b.bin")
}

/// 2026-01-01T00:00:00Z: every certificate of both chains is valid.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn unpinned() -> VerifyOptions {
    VerifyOptions::unpinned(now())
}

/// The self-signed root each quote's own chain carries.
fn own_root(bytes: &[u8]) -> CertificateDer<'static> {
    verify(bytes, &unpinned()).unwrap().root().unwrap().clone()
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

struct Expected {
    len: usize,
    qe_svn: u16,
    pce_svn: u16,
    mrenclave: &'static str,
    mrsigner: &'static str,
    attributes: &'static str,
    sig_len: usize,
    cert_size: usize,
}

const A: Expected = Expected {
    len: 4578,
    qe_svn: 2,
    pce_svn: 7,
    mrenclave: "04d285fd1b0f11a7e29392d7481f2d94dcdb298ba7619b04e7fc320d81f2970e",
    mrsigner: "9affcfae47b848ec2caf1c49b4b283531e1cc425f93582b36806e52a43d78d1a",
    attributes: "07000000000000001f00000000000000",
    sig_len: 4142,
    cert_size: 3526,
};

const B: Expected = Expected {
    len: 4600,
    qe_svn: 10,
    pce_svn: 15,
    mrenclave: "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb",
    mrsigner: "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6",
    attributes: "0500000000000000e700000000000000",
    sig_len: 4164,
    cert_size: 3548,
};

const QE_MRSIGNER: &str = "8c4f5775d796503e96137f77c68a829a0056ac8ded70140b081b094490c57bff";

fn check_readme_values(bytes: &[u8], e: &Expected) -> Quote {
    assert_eq!(bytes.len(), e.len);
    let q = Quote::from_bytes(bytes).unwrap();
    assert_eq!(q.header.version, QuoteVersion::V3);
    assert_eq!(
        q.header.attestation_key_type,
        AttestationKeyType::ECDSA_256_P256
    );
    assert_eq!((q.header.qe_svn, q.header.pce_svn), (e.qe_svn, e.pce_svn));
    assert_eq!(q.header.qe_vendor_id, INTEL_QE_VENDOR_ID);
    assert_eq!(
        q.header.qe_vendor_id.to_vec(),
        h("939a7233f79c4ca9940a0db3957f0607")
    );
    assert_eq!(q.report_body.mrenclave.to_vec(), h(e.mrenclave));
    assert_eq!(q.report_body.mrsigner.to_vec(), h(e.mrsigner));
    assert_eq!((q.report_body.isvprodid, q.report_body.isvsvn), (0, 0));
    assert_eq!(
        q.report_body.attributes.to_array().to_vec(),
        h(e.attributes)
    );
    assert_eq!(q.signature_data_bytes().len(), e.sig_len);
    let qe = q.qe_report_certification_data();
    assert_eq!(qe.qe_auth_data.as_bytes().len(), 32);
    assert_eq!(
        q.certification_data().cert_type(),
        CertificationDataType::PCK_CERTIFICATE_CHAIN
    );
    assert_eq!(q.certification_data().body_bytes().len(), e.cert_size);
    assert_eq!(qe.qe_report.mrsigner.to_vec(), h(QE_MRSIGNER));
    assert_eq!(q.to_bytes(), bytes);
    q
}

#[test]
fn accepts_quote_a_with_the_readme_values() {
    let q = check_readme_values(&quote_a(), &A);
    assert!(q.report_body.attributes.debug());
}

#[test]
fn accepts_quote_b_with_the_readme_values() {
    let q = check_readme_values(&quote_b(), &B);
    assert!(!q.report_body.attributes.debug());
    assert!(q.report_body.reportdata.starts_with(b"Hello, world!"));
}

#[test]
fn accepts_both_quotes_without_a_pinned_root_and_says_so() {
    for bytes in [quote_a(), quote_b()] {
        let v = verify(&bytes, &unpinned()).unwrap();
        assert_eq!(v.root_trust(), RootTrust::NotPinned);
        assert_eq!(v.pck_chain().len(), 3);
        assert_eq!(v.pck_chain().last(), v.root());
        assert_eq!(
            v.report_body(),
            &Quote::from_bytes(&bytes).unwrap().report_body
        );
        assert_eq!(v.qe_report().mrsigner.to_vec(), h(QE_MRSIGNER));
    }
}

#[test]
fn accepts_quote_a_whose_chain_is_stored_out_of_order() {
    // Stored as PCK, Root, Processor CA: the path must come out leaf, Processor CA, Root.
    let bytes = quote_a();
    let q = Quote::from_bytes(&bytes).unwrap();
    let stored = pem_chain_to_der(q.pck_certificate_chain_pem().unwrap()).unwrap();
    let v = verify(&bytes, &unpinned()).unwrap();
    assert_eq!(
        v.pck_chain(),
        &[stored[0].clone(), stored[2].clone(), stored[1].clone()]
    );
    assert_eq!(v.pck_leaf(), &stored[0]);
}

#[test]
fn accepts_both_quotes_pinned_to_their_own_root_in_der_and_pem() {
    for bytes in [quote_a(), quote_b()] {
        let root = own_root(&bytes);
        let v = verify(&bytes, &VerifyOptions::pinned(root.clone(), now())).unwrap();
        assert_eq!(v.root_trust(), RootTrust::Pinned);
        assert_eq!(v.root(), Some(&root));

        let pem = pem::encode(&pem::Pem::new("CERTIFICATE", root.to_vec()));
        assert_eq!(parse_root_certificate(pem.as_bytes()).unwrap(), root);
        assert_eq!(parse_root_certificate(&root).unwrap(), root);
    }
}

/// The two vectors carry two certificates of the same Intel SGX Root CA: same name, same key,
/// re-issued with a later notAfter (2033 in A, 2049 in B). A trust anchor is a name and a key,
/// so each quote verifies pinned to the other's root certificate. (A root with Intel's name but
/// another key is rejected: see `forged_chain.rs`.)
#[test]
fn accepts_each_quote_pinned_to_the_other_root_certificate_of_the_same_key() {
    let (a, b) = (quote_a(), quote_b());
    let (root_a, root_b) = (own_root(&a), own_root(&b));
    assert_ne!(root_a, root_b);
    let spki = |der: &CertificateDer<'_>| {
        let (_, c) = x509_parser::parse_x509_certificate(der).unwrap();
        (c.subject().as_raw().to_vec(), c.public_key().raw.to_vec())
    };
    assert_eq!(spki(&root_a), spki(&root_b));
    for (bytes, other) in [(&a, root_b), (&b, root_a)] {
        let v = verify(bytes, &VerifyOptions::pinned(other.clone(), now())).unwrap();
        assert_eq!(v.root_trust(), RootTrust::Pinned);
        assert_eq!(v.root(), Some(&other));
    }
}

#[test]
fn rejects_root_certificates_that_are_not_certificates() {
    assert!(matches!(
        parse_root_certificate(b"not a certificate"),
        Err(E::RootInvalid(_))
    ));
    let key = pem::encode(&pem::Pem::new("PRIVATE KEY", vec![1, 2, 3]));
    assert!(matches!(
        parse_root_certificate(key.as_bytes()),
        Err(E::RootInvalid(_))
    ));
}

#[test]
fn rejects_the_corrupted_quote_with_the_quote_signature_variant() {
    let bytes = vector("quote_v3_pck_chain_a_corrupted.bin");
    let err = verify(&bytes, &unpinned()).unwrap_err();
    assert!(matches!(err, E::QuoteSignature), "{err:?}");
    assert!(err.to_string().starts_with("quote signature:"), "{err}");
}

fn flipped(bytes: &[u8], offset: usize) -> Vec<u8> {
    let mut c = bytes.to_vec();
    c[offset] ^= 0x01;
    c
}

// Offsets in a v3 quote: report body at 48, signature data at 436, QE report body at 564,
// QE auth data size at 1012 and bytes at 1014, certification data at 1046 + auth data size.
const REPORT_BODY_MRENCLAVE: usize = 48 + 64;
const QE_REPORT: usize = 436 + 128;
const QE_AUTH_DATA: usize = 1014;

#[test]
fn rejects_a_flipped_report_body_byte_with_the_quote_signature_variant() {
    for bytes in [quote_a(), quote_b()] {
        for offset in [8usize, 12, REPORT_BODY_MRENCLAVE, 48 + 320, 431] {
            let err = verify(&flipped(&bytes, offset), &unpinned()).unwrap_err();
            assert!(matches!(err, E::QuoteSignature), "offset {offset}: {err:?}");
        }
    }
}

#[test]
fn rejects_a_flipped_attestation_key_or_signature_byte_in_check_one() {
    for bytes in [quote_a(), quote_b()] {
        for offset in [436, 436 + 63, 436 + 64, 436 + 127] {
            let err = verify(&flipped(&bytes, offset), &unpinned()).unwrap_err();
            assert!(
                matches!(err, E::QuoteSignature | E::AttestationKeyInvalid),
                "offset {offset}: {err:?}"
            );
        }
    }
}

#[test]
fn rejects_a_flipped_qe_report_body_byte_with_the_qe_report_signature_variant() {
    for bytes in [quote_a(), quote_b()] {
        // MRENCLAVE, MRSIGNER, ISVSVN of the QE report: not covered by the binding.
        for offset in [QE_REPORT, QE_REPORT + 64, QE_REPORT + 128, QE_REPORT + 258] {
            let err = verify(&flipped(&bytes, offset), &unpinned()).unwrap_err();
            assert!(
                matches!(err, E::QeReportSignature),
                "offset {offset}: {err:?}"
            );
            assert!(err.to_string().starts_with("QE report signature:"), "{err}");
        }
    }
}

#[test]
fn rejects_a_flipped_qe_reportdata_byte_with_the_binding_variants() {
    for bytes in [quote_a(), quote_b()] {
        let err = verify(&flipped(&bytes, QE_REPORT + 320), &unpinned()).unwrap_err();
        assert!(matches!(err, E::QeReportBinding), "{err:?}");
        assert!(err.to_string().starts_with("QE report binding:"), "{err}");
        // The second half of REPORTDATA must be zero, as Intel's QVL requires.
        let err = verify(&flipped(&bytes, QE_REPORT + 320 + 40), &unpinned()).unwrap_err();
        assert!(matches!(err, E::QeReportDataNotZeroPadded), "{err:?}");
    }
}

#[test]
fn rejects_a_flipped_qe_auth_data_byte_with_the_binding_variant() {
    for bytes in [quote_a(), quote_b()] {
        for offset in [QE_AUTH_DATA, QE_AUTH_DATA + 31] {
            let err = verify(&flipped(&bytes, offset), &unpinned()).unwrap_err();
            assert!(
                matches!(err, E::QeReportBinding),
                "offset {offset}: {err:?}"
            );
        }
    }
}

/// Changes one base64 character a few characters before the end of certificate `index` of the
/// PEM chain: inside the last bytes of its signature, so the DER stays well-formed.
fn with_corrupted_certificate_signature(bytes: &[u8], index: usize) -> Vec<u8> {
    let mut c = bytes.to_vec();
    let end_marker = b"-----END CERTIFICATE-----";
    let ends: Vec<usize> = c
        .windows(end_marker.len())
        .enumerate()
        .filter(|(_, w)| *w == end_marker)
        .map(|(i, _)| i)
        .collect();
    let mut pos = ends[index];
    let mut seen = 0;
    while seen < 6 {
        pos -= 1;
        if c[pos].is_ascii_alphanumeric() {
            seen += 1;
        }
    }
    c[pos] = if c[pos] == b'A' { b'B' } else { b'A' };
    c
}

#[test]
fn rejects_a_corrupted_certificate_with_a_chain_variant() {
    for (bytes, index, name) in [
        (quote_a(), 0, "A leaf"),
        (quote_a(), 1, "A root"),
        (quote_a(), 2, "A processor CA"),
        (quote_b(), 0, "B leaf"),
        (quote_b(), 1, "B processor CA"),
        (quote_b(), 2, "B root"),
    ] {
        let bad = with_corrupted_certificate_signature(&bytes, index);
        assert_eq!(bad.len(), bytes.len());
        let err = verify(&bad, &unpinned()).unwrap_err();
        assert!(
            matches!(err, E::ChainUntrusted { .. } | E::RootNotSelfSigned { .. }),
            "{name}: {err:?}"
        );
        assert!(
            err.to_string().starts_with("certificate chain:"),
            "{name}: {err}"
        );
        // Pinned to the intact root, the chain's copy of the root is not used: only a broken
        // leaf or Processor CA still fails.
        let pinned = verify(&bad, &VerifyOptions::pinned(own_root(&bytes), now()));
        if name.ends_with("root") {
            assert_eq!(pinned.unwrap().root_trust(), RootTrust::Pinned);
        } else {
            assert!(
                matches!(pinned, Err(E::ChainUntrusted { .. })),
                "{name}: {pinned:?}"
            );
        }
    }
}

#[test]
fn rejects_truncated_padded_and_inflated_quotes_in_the_parser() {
    for bytes in [quote_a(), quote_b()] {
        let mut inflated = bytes.clone();
        let len = u32::from_le_bytes(inflated[432..436].try_into().unwrap()) + 1;
        inflated[432..436].copy_from_slice(&len.to_le_bytes());
        let mut inflated_padded = inflated.clone();
        inflated_padded.push(0);
        let mut padded = bytes.clone();
        padded.push(0);
        for (name, c) in [
            ("truncated by one", bytes[..bytes.len() - 1].to_vec()),
            ("truncated to the header", bytes[..48].to_vec()),
            ("empty", Vec::new()),
            ("padded", padded),
            ("inflated", inflated),
            ("inflated and padded", inflated_padded),
        ] {
            let err = Quote::from_bytes(&c).unwrap_err();
            let verr = verify(&c, &unpinned()).unwrap_err();
            assert!(
                matches!(verr, E::Parse(ref e) if *e == err),
                "{name}: {verr:?}"
            );
            assert!(
                verr.to_string().starts_with("quote parsing:"),
                "{name}: {verr}"
            );
        }
    }
}

#[test]
fn never_panics_on_every_truncation_of_the_vectors() {
    for bytes in [quote_a(), quote_b()] {
        for n in 0..bytes.len() {
            assert!(Quote::from_bytes(&bytes[..n]).is_err());
        }
    }
}

#[test]
fn rejects_quote_a_after_its_pck_leaf_expired() {
    // The leaf's notAfter is 2027-05-05 11:10:42 UTC.
    let after = UNIX_EPOCH + Duration::from_secs(1_809_515_442 + 1);
    let before = UNIX_EPOCH + Duration::from_secs(1_809_515_442 - 60);
    let bytes = quote_a();
    verify(&bytes, &VerifyOptions::unpinned(before)).unwrap();
    for opts in [
        VerifyOptions::unpinned(after),
        VerifyOptions::pinned(own_root(&bytes), after),
    ] {
        let err = verify(&bytes, &opts).unwrap_err();
        match &err {
            E::CertificateExpired { subject, .. } => {
                assert!(subject.contains("Intel SGX PCK Certificate"), "{subject}")
            }
            other => panic!("expected CertificateExpired, got {other:?}"),
        }
        assert!(err.to_string().contains("expired"), "{err}");
    }
}

#[test]
fn rejects_certificates_not_yet_valid() {
    // Quote B's leaf was issued 2023-09-20.
    let early = UNIX_EPOCH + Duration::from_secs(1_672_531_200);
    let err = verify(&quote_b(), &VerifyOptions::unpinned(early)).unwrap_err();
    assert!(matches!(err, E::CertificateNotYetValid { .. }), "{err:?}");
}

/// Quote `bytes` with its PEM chain replaced by `pem` (the chain is not signed by anything in
/// the quote, so the signatures still verify).
fn with_chain(bytes: &[u8], pem: Vec<u8>) -> Vec<u8> {
    let mut q = Quote::from_bytes(bytes).unwrap();
    q.signature_data
        .qe_report_certification_data
        .certification_data = CertificationData::PckCertificateChain(pem);
    q.to_bytes()
}

fn pem_of(certs: &[CertificateDer<'_>]) -> Vec<u8> {
    certs
        .iter()
        .map(|c| pem::encode(&pem::Pem::new("CERTIFICATE", c.to_vec())))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn accepts_a_chain_without_its_root_only_when_a_root_is_pinned() {
    let bytes = quote_b();
    let v = verify(&bytes, &unpinned()).unwrap();
    let without_root = with_chain(&bytes, pem_of(&v.pck_chain()[..2]));
    let pinned = verify(
        &without_root,
        &VerifyOptions::pinned(v.root().unwrap().clone(), now()),
    )
    .unwrap();
    assert_eq!(pinned.root_trust(), RootTrust::Pinned);
    let err = verify(&without_root, &unpinned()).unwrap_err();
    assert!(matches!(err, E::RootMissing { .. }), "{err:?}");
}

#[test]
fn rejects_chains_with_extra_ambiguous_or_missing_certificates() {
    let a = verify(&quote_a(), &unpinned()).unwrap();
    let b = verify(&quote_b(), &unpinned()).unwrap();
    let chain = a.pck_chain();

    // Two roots named "Intel SGX Root CA".
    let two_roots = [
        chain[0].clone(),
        chain[1].clone(),
        chain[2].clone(),
        b.root().unwrap().clone(),
    ];
    let err = verify(&with_chain(&quote_a(), pem_of(&two_roots)), &unpinned()).unwrap_err();
    assert!(matches!(err, E::IssuerAmbiguous { .. }), "{err:?}");

    // A second leaf: the PCK leaf cannot be told apart.
    let two_leaves = [
        chain[0].clone(),
        chain[1].clone(),
        chain[2].clone(),
        b.pck_leaf().clone(),
    ];
    let err = verify(&with_chain(&quote_a(), pem_of(&two_leaves)), &unpinned()).unwrap_err();
    assert!(matches!(err, E::LeafNotFound { candidates: 2 }), "{err:?}");

    // Only the root: no leaf at all.
    let err = verify(&with_chain(&quote_a(), pem_of(&chain[2..])), &unpinned()).unwrap_err();
    assert!(matches!(err, E::LeafNotFound { candidates: 0 }), "{err:?}");

    // Empty and non-certificate PEM.
    let err = verify(&with_chain(&quote_a(), Vec::new()), &unpinned()).unwrap_err();
    assert!(matches!(err, E::ChainPemContents(_)), "{err:?}");
    let key = pem::encode(&pem::Pem::new("PRIVATE KEY", vec![1, 2, 3])).into_bytes();
    let err = verify(&with_chain(&quote_a(), key), &unpinned()).unwrap_err();
    assert!(matches!(err, E::ChainPemContents(_)), "{err:?}");

    // A chain whose last certificate lost its END line must not lose it silently.
    let mut cut = pem_of(chain);
    cut.truncate(cut.len() - 30);
    let err = verify(&with_chain(&quote_a(), cut), &unpinned()).unwrap_err();
    assert!(
        matches!(err, E::ChainPemContents(_) | E::ChainPem(_)),
        "{err:?}"
    );

    // Too many certificates.
    let many: Vec<_> = std::iter::repeat_n(chain[0].clone(), 9).collect();
    let err = verify(&with_chain(&quote_a(), pem_of(&many)), &unpinned()).unwrap_err();
    assert!(matches!(err, E::ChainTooLong { count: 9, .. }), "{err:?}");
}

#[test]
fn rejects_a_quote_whose_certification_data_is_not_a_pem_chain() {
    let mut q = Quote::from_bytes(&quote_a()).unwrap();
    let leaf = verify(&quote_a(), &unpinned()).unwrap().pck_leaf().to_vec();
    q.signature_data
        .qe_report_certification_data
        .certification_data = CertificationData::PckLeafCertificate(leaf);
    let err = verify(&q, &unpinned()).unwrap_err();
    assert!(
        matches!(
            err,
            E::NoPckCertificateChain(CertificationDataType::PCK_LEAF_CERTIFICATE)
        ),
        "{err:?}"
    );
}

#[test]
fn accepts_a_parsed_quote_as_well_as_bytes() {
    let q = Quote::from_bytes(&quote_b()).unwrap();
    let v = verify(&q, &unpinned()).unwrap();
    assert_eq!(v.into_quote(), q);
    let arr: [u8; 4600] = quote_b().try_into().unwrap();
    verify(&arr, &unpinned()).unwrap();
    verify(quote_b().as_slice(), &unpinned()).unwrap();
}

#[test]
fn parse_errors_name_the_field() {
    let mut bytes = quote_a();
    bytes[2] = 3;
    match Quote::from_bytes(&bytes).unwrap_err() {
        DecodeError::Invalid { what, reason } => {
            assert_eq!(what, "QUOTE HEADER.ATT_KEY_TYPE");
            assert!(reason.contains("P-384"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

/// dcap-qvl is an independent parser: both must read the same fields out of the same bytes.
#[test]
fn accepts_both_quotes_with_the_same_fields_as_dcap_qvl() {
    for bytes in [quote_a(), quote_b()] {
        let ours = Quote::from_bytes(&bytes).unwrap();
        let theirs = dcap_qvl::quote::Quote::parse(&bytes).unwrap();
        assert_eq!(theirs.header.version, ours.header.version.0);
        assert_eq!(
            theirs.header.attestation_key_type,
            ours.header.attestation_key_type.0
        );
        assert_eq!(theirs.header.tee_type, ours.header.tee_type.0);
        assert_eq!(theirs.header.qe_svn, ours.header.qe_svn);
        assert_eq!(theirs.header.pce_svn, ours.header.pce_svn);
        assert_eq!(theirs.header.qe_vendor_id, ours.header.qe_vendor_id);
        assert_eq!(theirs.header.user_data, ours.header.user_data);

        let r = theirs.report.as_sgx().unwrap();
        let b = &ours.report_body;
        assert_eq!(r.cpu_svn, b.cpusvn);
        assert_eq!(r.misc_select, b.miscselect.bits());
        assert_eq!(r.attributes, b.attributes.to_array());
        assert_eq!(r.mr_enclave, b.mrenclave);
        assert_eq!(r.mr_signer, b.mrsigner);
        assert_eq!(r.isv_prod_id, b.isvprodid);
        assert_eq!(r.isv_svn, b.isvsvn);
        assert_eq!(r.report_data, b.reportdata);

        let auth = theirs.auth_data.clone().into_v3();
        let sd = &ours.signature_data;
        let qe = &sd.qe_report_certification_data;
        assert_eq!(auth.ecdsa_signature, sd.isv_enclave_report_signature);
        assert_eq!(auth.ecdsa_attestation_key, sd.ecdsa_attestation_key);
        assert_eq!(auth.qe_report.to_vec(), qe.qe_report.to_bytes());
        assert_eq!(auth.qe_report_signature, qe.qe_report_signature);
        assert_eq!(auth.qe_auth_data.data, qe.qe_auth_data.as_bytes());
        assert_eq!(
            auth.certification_data.cert_type,
            ours.certification_data().cert_type().0
        );
        assert_eq!(
            theirs.raw_cert_chain().unwrap(),
            ours.pck_certificate_chain_pem().unwrap()
        );
        assert_eq!(theirs.signed_length(), coffer_abi::quote::QUOTE_SIGNED_SIZE);
    }
}

/// Intel's root key is built in and pinned by default: both vectors verify with provenance,
/// whichever of Intel's two root certificates (2033, 2049) their chain carries.
#[test]
fn accepts_both_quotes_to_the_built_in_intel_root_key_by_default() {
    for bytes in [quote_a(), quote_b()] {
        let v = verify(&bytes, &VerifyOptions::new(now())).unwrap();
        assert_eq!(v.root_trust(), RootTrust::IntelRootKey);
        assert_eq!(v.root(), None);
        assert_eq!(v.pck_chain().len(), 3);
        assert!(v.tcb().is_none());
        let q = coffer_dcap::UnverifiedQuote::parse(&bytes).unwrap();
        assert_eq!(
            q.verify(&VerifyOptions::new(now())).unwrap().report_body(),
            &q.unverified().report_body
        );
    }
}

#[test]
fn the_built_in_key_is_the_key_of_both_intel_root_certificates() {
    use sha2::Digest;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(coffer_dcap::INTEL_SGX_ROOT_CA_SPKI)),
        coffer_dcap::INTEL_SGX_ROOT_CA_SPKI_SHA256
    );
    let mut fingerprints = Vec::new();
    for bytes in [quote_a(), quote_b()] {
        let root = own_root(&bytes);
        let (_, c) = x509_parser::parse_x509_certificate(&root).unwrap();
        assert_eq!(c.public_key().raw, coffer_dcap::INTEL_SGX_ROOT_CA_SPKI);
        assert_eq!(c.subject().as_raw(), coffer_dcap::INTEL_SGX_ROOT_CA_SUBJECT);
        fingerprints.push(hex::encode(sha2::Sha256::digest(&root)));
    }
    // Two certificates, one key; B's is the one with fingerprint 44:A0:19:6B....
    assert_ne!(fingerprints[0], fingerprints[1]);
    assert!(fingerprints[1].starts_with("44a0196b"), "{fingerprints:?}");
}

#[test]
fn the_pinned_key_ignores_the_chain_s_own_copy_of_the_root() {
    // A broken self-signature on the chain's root copy does not matter: the key is trusted, not
    // that certificate. A broken leaf or Processor CA still fails.
    for (bytes, index, root_index) in [(quote_a(), [0, 2], 1), (quote_b(), [0, 1], 2)] {
        let bad_root = with_corrupted_certificate_signature(&bytes, root_index);
        let v = verify(&bad_root, &VerifyOptions::new(now())).unwrap();
        assert_eq!(v.root_trust(), RootTrust::IntelRootKey);
        for i in index {
            let bad = with_corrupted_certificate_signature(&bytes, i);
            let err = verify(&bad, &VerifyOptions::new(now())).unwrap_err();
            assert!(
                matches!(
                    err,
                    E::ChainUntrusted {
                        anchor: "Intel SGX Root CA key",
                        ..
                    } | E::QeReportSignature
                ),
                "{err:?}"
            );
        }
        // And the root copy can be left out altogether.
        let v = verify(&bytes, &unpinned()).unwrap();
        let without_root = with_chain(&bytes, pem_of(&v.pck_chain()[..2]));
        verify(&without_root, &VerifyOptions::new(now())).unwrap();
    }
}

/// Quote B (dcap-qvl's `sample/sgx_quote`) with the real Intel collateral dcap-qvl ships for it
/// (`sample/sgx_quote_collateral.json`, fetched from Intel's PCS 2025-06-19). That file is not
/// part of Coffer's vectors, so this test is ignored; run it with
/// `COFFER_DCAP_QVL_SAMPLE_COLLATERAL=~/.cargo/registry/src/*/dcap-qvl-0.7.1/sample/sgx_quote_collateral.json
/// cargo test -p coffer-dcap --test vectors -- --ignored`.
#[test]
#[ignore = "needs dcap-qvl's sample collateral; set COFFER_DCAP_QVL_SAMPLE_COLLATERAL"]
fn accepts_quote_b_with_intel_s_real_collateral_as_dcap_qvl_does() {
    let path = std::env::var("COFFER_DCAP_QVL_SAMPLE_COLLATERAL")
        .expect("COFFER_DCAP_QVL_SAMPLE_COLLATERAL names dcap-qvl's sgx_quote_collateral.json");
    let json = std::fs::read(path).unwrap();
    let collateral = coffer_dcap::Collateral::from_json(&json).unwrap();
    // Inside every validity window: TCB Info 2025-06-19T10:56:11Z..2025-07-19T10:56:11Z, QE
    // Identity ..2025-07-19T10:01:18Z, PCK CRL ..2025-07-19T10:23:18Z.
    let when = UNIX_EPOCH + Duration::from_secs(1_751_328_000); // 2025-07-01
    let v = verify(
        &quote_b(),
        &VerifyOptions::new(when).with_collateral(collateral.clone()),
    )
    .unwrap();
    let tcb = v.tcb().unwrap();
    assert_eq!(
        tcb.status,
        coffer_dcap::TcbStatus::ConfigurationAndSWHardeningNeeded
    );
    assert_eq!(tcb.advisory_ids, ["INTEL-SA-00289", "INTEL-SA-00615"]);
    assert_eq!(hex::encode(tcb.pck.fmspc), "00a067110000");

    let qc: dcap_qvl::QuoteCollateralV3 = serde_json::from_slice(&json).unwrap();
    let r = dcap_qvl::verify::QuoteVerifier::new_prod()
        .verify(&quote_b(), &qc, 1_751_328_000)
        .unwrap();
    assert_eq!(r.status, tcb.status.as_str());
    assert_eq!(r.advisory_ids, tcb.advisory_ids);

    // Half a year later the collateral is stale.
    let err = verify(
        &quote_b(),
        &VerifyOptions::new(now()).with_collateral(collateral),
    )
    .unwrap_err();
    assert!(matches!(err, E::CollateralStale { .. }), "{err:?}");
}

#[test]
fn reads_the_sgx_extension_of_both_real_pck_certificates() {
    for (bytes, fmspc, comps, pcesvn) in [
        (
            quote_a(),
            "00906ea10000",
            "06060204018001000000000000000000",
            7,
        ),
        (
            quote_b(),
            "00a067110000",
            "0b0b0202ff0100000000000000000000",
            13,
        ),
    ] {
        let q = Quote::from_bytes(&bytes).unwrap();
        let info = coffer_dcap::unverified_pck_info(&q).unwrap();
        assert_eq!(info.ca, "processor");
        assert!(info.issuer.contains("Intel SGX PCK Processor CA"));
        assert_eq!(hex::encode(info.extension.fmspc), fmspc);
        assert_eq!(hex::encode(info.extension.tcb_components), comps);
        assert_eq!(info.extension.cpusvn, info.extension.tcb_components);
        assert_eq!(info.extension.pcesvn, pcesvn);
        assert_eq!(info.extension.pce_id, [0, 0]);
        assert_eq!(info.extension.ppid.len(), 16);
    }
}
