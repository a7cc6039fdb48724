//! Property tests: every structure round-trips byte for byte, and parsers never panic.

use coffer_abi::measure::{Measurement, MeasurementRecord};
use coffer_abi::sealed::SealedDataRef;
use coffer_abi::secinfo::{PageType, Secinfo, SecinfoFlags};
use coffer_abi::sgxs::{SgxsReader, SgxsWriter, measure_sgxs};
use coffer_abi::sigstruct::{SIGSTRUCT_HEADER, SIGSTRUCT_HEADER2};
use coffer_abi::{
    Codec, FixedSize, Keyrequest, Report, ReportBody, SealedData, Sigstruct, Targetinfo,
};
use proptest::collection::vec;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

fn bytes_of<T: FixedSize>() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), T::SIZE)
}

fn roundtrips<T: FixedSize + std::fmt::Debug>(bytes: &[u8]) -> Result<(), TestCaseError> {
    let v = T::from_bytes(bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(v.to_bytes(), bytes);
    // One byte short, and one byte long, are both refused.
    prop_assert!(T::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    let mut padded = bytes.to_vec();
    padded.push(0);
    prop_assert!(T::from_bytes(&padded).is_err());
    Ok(())
}

#[test]
fn sizes_are_the_sdm_sizes() {
    assert_eq!(Secinfo::SIZE, 64);
    assert_eq!(ReportBody::SIZE, 384);
    assert_eq!(Report::SIZE, 432);
    assert_eq!(Targetinfo::SIZE, 512);
    assert_eq!(Keyrequest::SIZE, 512);
    assert_eq!(Sigstruct::SIZE, 1808);
}

proptest! {
    #[test]
    fn secinfo_roundtrips(bytes in bytes_of::<Secinfo>()) {
        roundtrips::<Secinfo>(&bytes)?;
    }

    #[test]
    fn report_body_roundtrips(bytes in bytes_of::<ReportBody>()) {
        roundtrips::<ReportBody>(&bytes)?;
    }

    #[test]
    fn report_roundtrips(bytes in bytes_of::<Report>()) {
        roundtrips::<Report>(&bytes)?;
        let r = Report::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&r.mac_data()[..], &bytes[..384]);
    }

    #[test]
    fn targetinfo_roundtrips(bytes in bytes_of::<Targetinfo>()) {
        roundtrips::<Targetinfo>(&bytes)?;
    }

    #[test]
    fn keyrequest_roundtrips(bytes in bytes_of::<Keyrequest>()) {
        roundtrips::<Keyrequest>(&bytes)?;
    }

    #[test]
    fn sigstruct_roundtrips(mut bytes in bytes_of::<Sigstruct>()) {
        // The first twelve HEADER bytes and HEADER2 are fixed; bytes 12..16 (the type) are free.
        bytes[..12].copy_from_slice(&SIGSTRUCT_HEADER[..12]);
        bytes[24..40].copy_from_slice(&SIGSTRUCT_HEADER2);
        roundtrips::<Sigstruct>(&bytes)?;
    }

    #[test]
    fn sealed_data_roundtrips(
        keyrequest in bytes_of::<Keyrequest>(),
        tag in any::<[u8; 16]>(),
        reserved1 in any::<[u8; 12]>(),
        reserved2 in any::<[u8; 12]>(),
        text in vec(any::<u8>(), 0..600),
        aad in vec(any::<u8>(), 0..300),
    ) {
        let mut s = SealedData::new(Keyrequest::from_bytes(&keyrequest).unwrap(), tag, &text, &aad)
            .unwrap();
        s._reserved1 = reserved1;
        s._reserved2 = reserved2;
        let bytes = s.to_bytes();
        prop_assert_eq!(bytes.len(), coffer_abi::sealed_data_size(aad.len(), text.len()).unwrap());
        let parsed = SealedData::from_bytes(&bytes).unwrap();
        prop_assert_eq!(parsed.encrypted_text(), &text[..]);
        prop_assert_eq!(parsed.additional_mac_text(), &aad[..]);
        prop_assert_eq!(&parsed, &s);
        prop_assert!(SealedData::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        let borrowed = SealedDataRef::parse(&bytes).unwrap();
        prop_assert_eq!(&borrowed, &s.borrowed());
        prop_assert_eq!(borrowed.to_sealed_data(), s);
        // The header alone, then the payload: the same bytes.
        let mut built = Vec::new();
        SealedData::encode_header(&borrowed.key_request, &tag, text.len(), aad.len(), &mut built)
            .unwrap();
        built[516..528].copy_from_slice(&reserved1);
        built[532..544].copy_from_slice(&reserved2);
        built.extend_from_slice(&text);
        built.extend_from_slice(&aad);
        prop_assert_eq!(built, bytes);
    }

    #[test]
    fn sealed_data_parser_never_panics(bytes in vec(any::<u8>(), 0..1200)) {
        let borrowed = SealedDataRef::parse(&bytes);
        if let Ok(s) = SealedData::from_bytes(&bytes) {
            prop_assert_eq!(s.to_bytes(), bytes.clone());
            prop_assert_eq!(borrowed.unwrap().to_sealed_data(), s);
        } else {
            // The borrowed view accepts exactly what the owned decoding accepts.
            prop_assert!(borrowed.is_err());
        }
    }

    #[test]
    fn sgxs_reader_never_panics(bytes in vec(any::<u8>(), 0..2000)) {
        let _ = measure_sgxs(&bytes[..]);
    }

    /// A random valid enclave: write it as SGXS, read it back, and compare.
    #[test]
    fn sgxs_roundtrips_and_hashes_to_mrenclave(
        ssaframesize in 1u32..8,
        size_log2 in 13u32..20,
        pages in vec((0u64..64, 0u8..3, any::<bool>(), any::<u8>(), any::<u8>()), 0..6),
    ) {
        let size = 1u64 << size_log2;
        let mut writer = SgxsWriter::new(Vec::new());
        let mut m = Measurement::with_sink(&mut writer);
        m.ecreate(ssaframesize, size).unwrap();
        for (page, kind, measure, perms, fill) in pages {
            let offset = (page * 4096) % size;
            let page_type = [PageType::REG, PageType::TCS, PageType::SS_FIRST][usize::from(kind)];
            let secinfo = Secinfo::new(page_type, SecinfoFlags::from_bits_retain(u64::from(perms & 7)));
            // A page may come up twice: the engine refuses it and carries on.
            let _ = m.add_page(offset, &secinfo, &[fill; 4096], measure);
        }
        let mrenclave = m.finish().unwrap();
        let stream = writer.into_inner();
        let want: [u8; 32] = Sha256::digest(&stream).into();
        prop_assert_eq!(mrenclave, want);

        let mut reader = SgxsReader::new(&stream[..]);
        let records: Vec<MeasurementRecord> = reader.by_ref().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(reader.finish().unwrap(), mrenclave);
        let mut again = Vec::new();
        prop_assert_eq!(coffer_abi::write_sgxs(&records, &mut again).unwrap(), mrenclave);
        prop_assert_eq!(again, stream);
    }
}
