//! The SGXS reader, writer and measurement engine against the public test enclave
//! (`shared/vectors/sgx/test_enclave.sgxs`, from fortanix/rust-sgx) and corrupted copies of it.

use coffer_abi::measure::{MeasureError, Measurement, MeasurementRecord};
use coffer_abi::secinfo::{PageType, Secinfo, SecinfoFlags};
use coffer_abi::sgxs::{SgxsError, SgxsReader, measure_sgxs, write_sgxs};
use coffer_abi::{Codec, Sigstruct};
use sha2::{Digest, Sha256};

const MRENCLAVE: &str = "784acfd7d5096a8f0fbd3265760bff21b120f62407a9a9e5ba31aa3c8ed198fc";

fn vector(name: &str) -> Vec<u8> {
    coffer_testkit::vectors::read(&format!("sgx/{name}"))
}

fn sgxs() -> Vec<u8> {
    vector("test_enclave.sgxs")
}

fn read_all(bytes: &[u8]) -> Result<(Vec<MeasurementRecord>, [u8; 32]), SgxsError> {
    let mut reader = SgxsReader::new(bytes);
    let mut records = Vec::new();
    while let Some(r) = reader.next_record()? {
        records.push(r);
    }
    Ok((records, reader.finish()?))
}

/// Stream offsets of every record, with the record.
fn offsets(records: &[MeasurementRecord]) -> Vec<(usize, &MeasurementRecord)> {
    let mut at = 0;
    records
        .iter()
        .map(|r| {
            let here = at;
            at += r.encoded_len();
            (here, r)
        })
        .collect()
}

#[test]
fn accepts_the_test_enclave_and_computes_its_mrenclave() {
    let bytes = sgxs();
    let (records, mrenclave) = read_all(&bytes).unwrap();
    assert_eq!(hex::encode(mrenclave), MRENCLAVE);
    let file_hash: [u8; 32] = Sha256::digest(&bytes).into();
    assert_eq!(mrenclave, file_hash);
    assert_eq!(measure_sgxs(&bytes[..]).unwrap(), mrenclave);

    assert_eq!(
        records[0],
        MeasurementRecord::ECreate {
            ssaframesize: 1,
            size: 0x40000
        }
    );
    let count = |name| records.iter().filter(|r| r.name() == name).count();
    assert_eq!(
        (count("ECREATE"), count("EADD"), count("EEXTEND")),
        (1, 9, 144)
    );
}

#[test]
fn mrenclave_matches_the_enclavehash_its_sigstruct_signs() {
    let sig = Sigstruct::from_bytes(&vector("test_enclave.sig")).unwrap();
    assert_eq!(measure_sgxs(&sgxs()[..]).unwrap(), sig.enclavehash);
}

#[test]
fn rewriting_the_records_gives_the_same_bytes() {
    let bytes = sgxs();
    let (records, mrenclave) = read_all(&bytes).unwrap();
    let mut out = Vec::new();
    assert_eq!(write_sgxs(&records, &mut out).unwrap(), mrenclave);
    assert_eq!(out, bytes);
}

/// Feeds `records` to `m` the way the layout code does: ECREATE, then each page with add_page.
fn add_by_pages(records: &[MeasurementRecord], m: &mut Measurement<'_>) {
    let mut i = 0;
    while i < records.len() {
        match &records[i] {
            MeasurementRecord::ECreate { ssaframesize, size } => {
                m.ecreate(*ssaframesize, *size)
                    .unwrap_or_else(|e| panic!("ECREATE: {e}"));
                i += 1;
            }
            MeasurementRecord::EAdd { offset, secinfo } => {
                let mut page = [0u8; 4096];
                let mut chunks = 0;
                while let Some(MeasurementRecord::EExtend { data, .. }) =
                    records.get(i + 1 + chunks)
                {
                    page[chunks * 256..(chunks + 1) * 256].copy_from_slice(data);
                    chunks += 1;
                }
                assert!(
                    chunks == 0 || chunks == 16,
                    "the vector measures whole pages"
                );
                m.add_page(*offset, secinfo, &page, chunks == 16)
                    .unwrap_or_else(|e| panic!("page 0x{offset:x}: {e}"));
                i += 1 + chunks;
            }
            MeasurementRecord::EExtend { .. } => panic!("EEXTEND without EADD at record {i}"),
        }
    }
}

#[test]
fn the_engine_driven_page_by_page_gives_the_same_stream() {
    // Rebuild the enclave with add_page, the way the layout code does, writing SGXS as it goes.
    let bytes = sgxs();
    let (records, mrenclave) = read_all(&bytes).unwrap();
    let mut out = coffer_abi::SgxsWriter::new(Vec::new());
    let mut m = Measurement::with_sink(&mut out);
    add_by_pages(&records, &mut m);
    assert_eq!(m.finish().unwrap(), mrenclave);
    assert_eq!(out.into_inner(), bytes);
}

#[test]
fn the_engine_without_a_sink_gives_the_same_mrenclave() {
    // Without a sink add_page hashes a page's records without building them.
    let (records, mrenclave) = read_all(&sgxs()).unwrap();
    let mut m = Measurement::new();
    add_by_pages(&records, &mut m);
    assert_eq!((m.pages_added(), m.eextends()), (9, 144));
    assert_eq!(hex::encode(m.finish().unwrap()), MRENCLAVE);
    assert_eq!(hex::encode(mrenclave), MRENCLAVE);
}

#[test]
fn a_changed_data_byte_changes_mrenclave() {
    let bytes = sgxs();
    let (records, mrenclave) = read_all(&bytes).unwrap();
    let (at, _) = offsets(&records)
        .into_iter()
        .find(|(_, r)| r.name() == "EEXTEND")
        .unwrap();
    let mut copy = bytes.clone();
    copy[at + 64 + 100] ^= 1;
    let changed = measure_sgxs(&copy[..]).unwrap();
    assert_ne!(changed, mrenclave);
}

#[test]
fn a_tcs_page_measures_the_same_with_its_permissions_set() {
    let bytes = sgxs();
    let (records, mrenclave) = read_all(&bytes).unwrap();
    let (at, _) = offsets(&records)
        .into_iter()
        .find(|(_, r)| {
            matches!(r, MeasurementRecord::EAdd { secinfo, .. } if secinfo.page_type == PageType::TCS)
        })
        .expect("the test enclave has a TCS page");
    let mut copy = bytes.clone();
    copy[at + 16] |= 0x07; // R | W | X
    let (canonical, tcs_rwx) = read_all(&copy).unwrap();
    assert_eq!(tcs_rwx, mrenclave);
    // The reader hands back the record as measured, so re-writing gives the canonical stream.
    let mut out = Vec::new();
    write_sgxs(&canonical, &mut out).unwrap();
    assert_eq!(out, bytes);

    // The same page as PT_REG measures differently.
    let mut reg = bytes.clone();
    reg[at + 17] = PageType::REG.0;
    assert_ne!(measure_sgxs(&reg[..]).unwrap(), mrenclave);
}

#[test]
fn rejects_a_truncated_stream() {
    let bytes = sgxs();
    let err = measure_sgxs(&bytes[..bytes.len() - 1]).unwrap_err();
    assert!(
        matches!(
            err,
            SgxsError::Truncated {
                part: "EEXTEND data",
                needed: 256,
                got: 255,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("truncated"));

    // Cut inside a record header.
    let err = measure_sgxs(&bytes[..64 + 10]).unwrap_err();
    assert!(
        matches!(
            err,
            SgxsError::Truncated {
                index: 1,
                offset: 64,
                part: "record header",
                got: 10,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_trailing_garbage() {
    let mut copy = sgxs();
    copy.extend_from_slice(b"garbage");
    assert!(matches!(
        measure_sgxs(&copy[..]),
        Err(SgxsError::Truncated {
            part: "record header",
            got: 7,
            ..
        })
    ));

    let mut copy = sgxs();
    let end = copy.len();
    copy.extend_from_slice(b"GARBAGE!");
    copy.extend_from_slice(&[0; 56]);
    let err = measure_sgxs(&copy[..]).unwrap_err();
    assert!(
        matches!(err, SgxsError::UnknownTag { tag, offset, .. } if &tag == b"GARBAGE!" && offset == end as u64),
        "{err}"
    );
    assert!(
        err.to_string().contains("unknown tag \"GARBAGE!\""),
        "{err}"
    );
}

#[test]
fn rejects_an_unknown_tag() {
    let bytes = sgxs();
    let (records, _) = read_all(&bytes).unwrap();
    let (at, _) = offsets(&records)
        .into_iter()
        .find(|(_, r)| r.name() == "EADD")
        .unwrap();
    let mut copy = bytes.clone();
    copy[at..at + 8].copy_from_slice(b"UNMEASRD");
    let err = measure_sgxs(&copy[..]).unwrap_err();
    assert!(
        matches!(err, SgxsError::UnknownTag { index: 1, tag, .. } if &tag == b"UNMEASRD"),
        "{err}"
    );
    copy[at..at + 8].copy_from_slice(b"EADD\0\0\0\x01");
    let err = measure_sgxs(&copy[..]).unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown tag \"EADD\\x00\\x00\\x00\\x01\""),
        "{err}"
    );
}

#[test]
fn rejects_an_eextend_outside_any_added_page() {
    let bytes = sgxs();
    let (records, _) = read_all(&bytes).unwrap();
    // 0x3000 is inside the enclave but was never EADDed.
    assert!(
        !records
            .iter()
            .any(|r| matches!(r, MeasurementRecord::EAdd { offset, .. } if *offset == 0x3000))
    );
    let (at, _) = offsets(&records)
        .into_iter()
        .filter(|(_, r)| r.name() == "EEXTEND")
        .nth(20)
        .unwrap();
    let mut copy = bytes.clone();
    copy[at + 8..at + 16].copy_from_slice(&0x3100u64.to_le_bytes());
    let err = measure_sgxs(&copy[..]).unwrap_err();
    assert!(
        matches!(
            err,
            SgxsError::Measure {
                source: MeasureError::ChunkOutsideAddedPage { offset: 0x3100 },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("not inside a page added by EADD"),
        "{err}"
    );
}

#[test]
fn rejects_a_page_added_twice_and_a_second_ecreate() {
    let bytes = sgxs();
    let mut twice = bytes.clone();
    twice.extend_from_slice(&bytes[64..128]); // the first EADD again
    assert!(matches!(
        measure_sgxs(&twice[..]),
        Err(SgxsError::Measure {
            source: MeasureError::PageAddedTwice { offset: 0 },
            ..
        })
    ));
    let mut recreate = bytes.clone();
    recreate.extend_from_slice(&bytes[..64]);
    assert!(matches!(
        measure_sgxs(&recreate[..]),
        Err(SgxsError::Measure {
            source: MeasureError::CreatedTwice,
            ..
        })
    ));
    assert!(matches!(
        measure_sgxs(&bytes[64..]),
        Err(SgxsError::Measure {
            index: 0,
            source: MeasureError::NotCreated { record: "EADD" },
            ..
        })
    ));
}

#[test]
fn rejects_an_empty_stream_and_non_zero_padding() {
    assert!(matches!(
        measure_sgxs(&[][..]),
        Err(SgxsError::Measure {
            source: MeasureError::NoEcreate,
            ..
        })
    ));
    let mut copy = sgxs();
    copy[63] = 1; // ECREATE padding
    assert!(matches!(
        measure_sgxs(&copy[..]),
        Err(SgxsError::NonZeroPadding {
            record: "ECREATE",
            ..
        })
    ));
}

#[test]
fn stops_after_the_first_error() {
    let mut copy = sgxs();
    copy[64..72].copy_from_slice(b"BOGUSTAG");
    let mut reader = SgxsReader::new(&copy[..]);
    assert!(reader.next().unwrap().is_ok());
    assert!(reader.next().unwrap().is_err());
    assert!(reader.next().is_none());
    assert!(matches!(reader.finish(), Err(SgxsError::AlreadyFailed)));
}

#[test]
fn rejects_more_eextends_than_the_enclave_has_chunks() {
    // SIZE 0x2000 has 32 chunks; repeating EEXTENDs past that is capped.
    let mut records = vec![
        MeasurementRecord::ECreate {
            ssaframesize: 1,
            size: 0x2000,
        },
        MeasurementRecord::EAdd {
            offset: 0,
            secinfo: Secinfo::new(PageType::REG, SecinfoFlags::R),
        },
    ];
    for _ in 0..32 {
        records.push(MeasurementRecord::EExtend {
            offset: 0,
            data: [0; 256],
        });
    }
    let mut stream = Vec::new();
    write_sgxs(&records, &mut stream).unwrap();
    assert!(measure_sgxs(&stream[..]).is_ok());
    records.push(MeasurementRecord::EExtend {
        offset: 0,
        data: [0; 256],
    });
    stream.clear();
    write_sgxs(&records, &mut stream).unwrap();
    let err = measure_sgxs(&stream[..]).unwrap_err();
    assert!(
        matches!(
            err,
            SgxsError::TooLarge {
                limit: 32,
                index: 34,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_writing_an_invalid_sequence() {
    let records = [MeasurementRecord::EExtend {
        offset: 0,
        data: [0; 256],
    }];
    let mut out = Vec::new();
    assert!(matches!(
        write_sgxs(&records, &mut out),
        Err(MeasureError::NotCreated { record: "EEXTEND" })
    ));
    assert!(out.is_empty());
}
