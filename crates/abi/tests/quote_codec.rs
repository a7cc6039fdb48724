//! DCAP quote codec: structured round trips, the v4/TDX/key-type rules, the length caps, and
//! no panic on hostile bytes.

#![allow(clippy::unwrap_used)]

use coffer_abi::quote::*;
use coffer_abi::{Codec, DecodeError, FixedSize, ReportBody};
use proptest::prelude::*;

fn report_body() -> impl Strategy<Value = ReportBody> {
    proptest::collection::vec(any::<u8>(), ReportBody::SIZE)
        .prop_map(|b| ReportBody::from_bytes(&b).unwrap())
}

fn ppid(len: usize) -> impl Strategy<Value = PpidCertificationData> {
    (
        proptest::collection::vec(any::<u8>(), len),
        any::<[u8; 16]>(),
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(|(ppid, cpusvn, pcesvn, pceid)| PpidCertificationData {
            ppid,
            cpusvn,
            pcesvn,
            pceid,
        })
}

fn blob() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..600)
}

fn certification_data() -> impl Strategy<Value = CertificationData> {
    prop_oneof![
        ppid(16).prop_map(CertificationData::PpidCleartext),
        ppid(256).prop_map(CertificationData::PpidRsa2048Encrypted),
        ppid(384).prop_map(CertificationData::PpidRsa3072Encrypted),
        blob().prop_map(CertificationData::PckLeafCertificate),
        blob().prop_map(CertificationData::PckCertificateChain),
        (prop_oneof![Just(0u16), 7u16..], blob()).prop_map(|(t, data)| CertificationData::Other {
            cert_type: CertificationDataType(t),
            data
        }),
    ]
}

prop_compose! {
    fn quote()(
        version in prop_oneof![Just(QuoteVersion::V3), Just(QuoteVersion::V4)],
        qe_svn in any::<u16>(),
        pce_svn in any::<u16>(),
        qe_vendor_id in any::<[u8; 16]>(),
        user_data in any::<[u8; 20]>(),
        report_body in report_body(),
        sig in any::<[u8; 32]>(),
        key in any::<[u8; 32]>(),
        qe_report in report_body(),
        qe_sig in any::<[u8; 32]>(),
        auth in proptest::collection::vec(any::<u8>(), 0..100),
        certification_data in certification_data(),
    ) -> Quote {
        let twice = |h: [u8; 32]| {
            let mut a = [0u8; 64];
            a[..32].copy_from_slice(&h);
            a[32..].copy_from_slice(&h);
            a
        };
        Quote {
            header: QuoteHeader {
                version,
                attestation_key_type: AttestationKeyType::ECDSA_256_P256,
                tee_type: TeeType::SGX,
                qe_svn,
                pce_svn,
                qe_vendor_id,
                user_data,
            },
            report_body,
            signature_data: QuoteSignatureData {
                isv_enclave_report_signature: twice(sig),
                ecdsa_attestation_key: twice(key),
                qe_report_certification_data: QeReportCertificationData {
                    qe_report,
                    qe_report_signature: twice(qe_sig),
                    qe_auth_data: QeAuthData::new(auth).unwrap(),
                    certification_data,
                },
            },
        }
    }
}

proptest! {
    #[test]
    fn accepts_every_structured_quote_and_round_trips_it(q in quote()) {
        let bytes = q.to_bytes();
        let parsed = Quote::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&parsed, &q);
        prop_assert_eq!(parsed.to_bytes(), bytes.clone());
        prop_assert_eq!(q.signed_bytes(), bytes[..QUOTE_SIGNED_SIZE].to_vec());
        let sig_len = u32::from_le_bytes(bytes[432..436].try_into().unwrap()) as usize;
        prop_assert_eq!(sig_len, bytes.len() - 436);
        prop_assert_eq!(q.signature_data_bytes().len(), sig_len);
    }

    #[test]
    fn rejects_every_truncation_and_padding_of_a_quote(q in quote(), cut in any::<prop::sample::Index>()) {
        let bytes = q.to_bytes();
        let n = cut.index(bytes.len());
        prop_assert!(Quote::from_bytes(&bytes[..n]).is_err());
        let mut padded = bytes.clone();
        padded.push(0);
        prop_assert!(
            matches!(Quote::from_bytes(&padded), Err(DecodeError::TrailingBytes { count: 1, .. })),
            "padded quote accepted or rejected for the wrong reason"
        );
    }

    #[test]
    fn never_panics_on_mutated_quotes_and_round_trips_what_it_accepts(
        q in quote(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = q.to_bytes();
        for (i, v) in edits {
            let i = i.index(bytes.len());
            bytes[i] = v;
        }
        if let Ok(parsed) = Quote::from_bytes(&bytes) {
            prop_assert_eq!(parsed.to_bytes(), bytes);
        }
    }

    #[test]
    fn never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Quote::from_bytes(&bytes);
    }
}

fn sample(version: QuoteVersion, cd: CertificationData) -> Quote {
    Quote {
        header: QuoteHeader {
            version,
            attestation_key_type: AttestationKeyType::ECDSA_256_P256,
            tee_type: TeeType::SGX,
            qe_svn: 1,
            pce_svn: 2,
            qe_vendor_id: INTEL_QE_VENDOR_ID,
            user_data: [0; 20],
        },
        report_body: ReportBody::default(),
        signature_data: QuoteSignatureData {
            isv_enclave_report_signature: [1; 64],
            ecdsa_attestation_key: [2; 64],
            qe_report_certification_data: QeReportCertificationData {
                qe_report: ReportBody::default(),
                qe_report_signature: [3; 64],
                qe_auth_data: QeAuthData::new(vec![4; 32]).unwrap(),
                certification_data: cd,
            },
        },
    }
}

fn chain() -> CertificationData {
    CertificationData::PckCertificateChain(b"-----BEGIN CERTIFICATE-----".to_vec())
}

fn invalid_reason(err: DecodeError) -> (&'static str, String) {
    match err {
        DecodeError::Invalid { what, reason } => (what, reason),
        other => panic!("expected DecodeError::Invalid, got {other:?}"),
    }
}

#[test]
fn accepts_a_v4_sgx_quote_with_the_qe_report_nested_in_type_6() {
    let q = sample(QuoteVersion::V4, chain());
    let b = q.to_bytes();
    // Offset 436 + 128: the outer certification data is type 6 and wraps the QE report.
    assert_eq!(u16::from_le_bytes([b[564], b[565]]), 6);
    let size = u32::from_le_bytes(b[566..570].try_into().unwrap()) as usize;
    assert_eq!(570 + size, b.len());
    let parsed = Quote::from_bytes(&b).unwrap();
    assert_eq!(
        parsed.pck_certificate_chain_pem(),
        Some(&b"-----BEGIN CERTIFICATE-----"[..])
    );
    assert_eq!(parsed.to_bytes(), b);
}

#[test]
fn rejects_a_v4_tdx_quote_naming_tdx() {
    let mut q = sample(QuoteVersion::V4, chain());
    q.header.tee_type = TeeType::TDX;
    let (what, reason) = invalid_reason(Quote::from_bytes(&q.to_bytes()).unwrap_err());
    assert_eq!(what, "QUOTE HEADER.TEE_TYPE");
    assert!(reason.contains("TDX"), "{reason}");
    // A real TDX quote has a 584-byte TD report: the header check must come first.
    let mut b = q.header.to_bytes();
    b.extend_from_slice(&[0u8; 584 + 4]);
    assert!(
        Quote::from_bytes(&b)
            .unwrap_err()
            .to_string()
            .contains("TDX")
    );
}

#[test]
fn rejects_unknown_tee_types_and_a_nonzero_v3_reserved_field() {
    let mut q = sample(QuoteVersion::V4, chain());
    q.header.tee_type = TeeType(0x7f);
    assert!(
        Quote::from_bytes(&q.to_bytes())
            .unwrap_err()
            .to_string()
            .contains("unknown TEE type")
    );
    let mut q = sample(QuoteVersion::V3, chain());
    q.header.tee_type = TeeType::TDX;
    let (what, _) = invalid_reason(Quote::from_bytes(&q.to_bytes()).unwrap_err());
    assert_eq!(what, "QUOTE HEADER.RESERVED");
}

#[test]
fn rejects_p384_and_unknown_attestation_key_types_naming_them() {
    for (t, name) in [
        (3u16, "ECDSA-384 with P-384"),
        (7, "7 (unknown)"),
        (0, "0 (unknown)"),
    ] {
        let mut q = sample(QuoteVersion::V3, chain());
        q.header.attestation_key_type = AttestationKeyType(t);
        let (what, reason) = invalid_reason(Quote::from_bytes(&q.to_bytes()).unwrap_err());
        assert_eq!(what, "QUOTE HEADER.ATT_KEY_TYPE");
        assert!(reason.contains(name), "{reason}");
    }
}

#[test]
fn rejects_unknown_versions_naming_them() {
    for v in [0u16, 1, 2, 5, 0xffff] {
        let mut q = sample(QuoteVersion::V3, chain());
        q.header.version = QuoteVersion(v);
        let (what, reason) = invalid_reason(Quote::from_bytes(&q.to_bytes()).unwrap_err());
        assert_eq!(what, "QUOTE HEADER.VERSION");
        assert!(reason.contains(&format!("version {v}")), "{reason}");
    }
}

#[test]
fn rejects_a_v4_quote_whose_certification_data_is_not_type_6() {
    // Encode the v3 layout (certification data inline) under a v4 header.
    let q = sample(QuoteVersion::V3, chain());
    let mut b = q.to_bytes();
    b[0] = 4;
    let (what, reason) = invalid_reason(Quote::from_bytes(&b).unwrap_err());
    assert_eq!(what, "QE CERTIFICATION DATA.TYPE");
    assert!(reason.contains("type 6"), "{reason}");
}

#[test]
fn rejects_type_6_nested_inside_a_qe_report() {
    let q = sample(QuoteVersion::V4, chain());
    let inner = q.signature_data.qe_report_certification_data.to_bytes();
    let nested = sample(
        QuoteVersion::V4,
        CertificationData::Other {
            cert_type: CertificationDataType::QE_REPORT_CERTIFICATION_DATA,
            data: inner,
        },
    );
    let (what, reason) = invalid_reason(Quote::from_bytes(&nested.to_bytes()).unwrap_err());
    assert_eq!(what, "QE CERTIFICATION DATA.TYPE");
    assert!(reason.contains("nested"), "{reason}");
}

#[test]
fn rejects_ppid_certification_data_of_the_wrong_length() {
    let p = PpidCertificationData {
        ppid: vec![0; 255],
        cpusvn: [0; 16],
        pcesvn: 0,
        pceid: 0,
    };
    let q = sample(QuoteVersion::V3, CertificationData::PpidRsa2048Encrypted(p));
    let err = Quote::from_bytes(&q.to_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("QE CERTIFICATION DATA.SIZE"),
        "{err}"
    );
}

#[test]
fn rejects_inputs_and_length_fields_beyond_the_caps() {
    let too_big = vec![0u8; MAX_QUOTE_SIZE + 1];
    assert!(matches!(
        Quote::from_bytes(&too_big),
        Err(DecodeError::InputTooLarge {
            limit: MAX_QUOTE_SIZE,
            ..
        })
    ));

    let b = sample(QuoteVersion::V3, chain()).to_bytes();
    let mut c = b.clone();
    c[432..436].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        Quote::from_bytes(&c),
        Err(DecodeError::TooLarge {
            what: "QUOTE.SIGNATURE_DATA_LEN",
            ..
        })
    ));

    // QE auth data size at 436 + 64 + 64 + 384 + 64 = 1012.
    let mut c = b.clone();
    c[1012..1014].copy_from_slice(&u16::MAX.to_le_bytes());
    assert!(matches!(
        Quote::from_bytes(&c),
        Err(DecodeError::TooLarge {
            what: "QE AUTHENTICATION DATA.SIZE",
            ..
        })
    ));
    assert!(QeAuthData::new(vec![0; MAX_QE_AUTH_DATA_SIZE + 1]).is_err());

    // Certification data size after the 32 bytes of auth data: 1014 + 32 + 2 = 1048.
    let mut c = b.clone();
    let over = u32::try_from(MAX_CERTIFICATION_DATA_SIZE + 1).unwrap();
    c[1048..1052].copy_from_slice(&over.to_le_bytes());
    assert!(matches!(
        Quote::from_bytes(&c),
        Err(DecodeError::TooLarge {
            what: "QE CERTIFICATION DATA.SIZE",
            ..
        })
    ));
}

#[test]
fn rejects_inflated_and_deflated_inner_length_fields() {
    let b = sample(QuoteVersion::V3, chain()).to_bytes();
    for (offset, width) in [(432usize, 4usize), (1012, 2), (1048, 4)] {
        for delta in [1i64, -1] {
            let mut c = b.clone();
            let mut field = [0u8; 8];
            field[..width].copy_from_slice(&c[offset..offset + width]);
            let v = i64::from_le_bytes(field) + delta;
            c[offset..offset + width].copy_from_slice(&v.to_le_bytes()[..width]);
            assert!(
                Quote::from_bytes(&c).is_err(),
                "field at {offset} {delta:+} accepted"
            );
        }
    }
}
