//! Sealing across enclaves, signers, versions and platforms, as an attacker would probe it.
#![allow(clippy::unwrap_used)]

use coffer_abi::keyrequest::Keyrequest;
use coffer_abi::{Attributes, AttributesFlags, ReportBody};
use coffer_cpu::PlatformRoot;
use coffer_seal::{EgetkeyError, KeyError, KeySource, SealPolicy, UnsealError, seal, unseal};
use zeroize::Zeroizing;

struct Enclave<'a> {
    platform: &'a PlatformRoot,
    id: ReportBody,
}

impl KeySource for Enclave<'_> {
    fn identity(&self) -> &ReportBody {
        &self.id
    }
    fn egetkey(&self, r: &Keyrequest) -> Result<Zeroizing<[u8; 16]>, KeyError> {
        self.platform
            .egetkey(&self.id, r)
            .map_err(KeyError::Refused)
    }
}

fn platform(seed: u8) -> PlatformRoot {
    PlatformRoot::new([seed; 16], [1; 16], [3; 16])
}

fn enclave(p: &PlatformRoot, mrenclave: u8, mrsigner: u8, prodid: u16, svn: u16) -> Enclave<'_> {
    Enclave {
        platform: p,
        id: ReportBody {
            mrenclave: [mrenclave; 32],
            mrsigner: [mrsigner; 32],
            isvprodid: prodid,
            isvsvn: svn,
            cpusvn: p.cpusvn(),
            attributes: Attributes {
                flags: AttributesFlags::INIT | AttributesFlags::MODE64BIT,
                xfrm: 3,
            },
            ..ReportBody::default()
        },
    }
}

#[test]
fn accepts_a_round_trip_with_aad() {
    let p = platform(1);
    let e = enclave(&p, 1, 1, 1, 1);
    let blob = seal(&e, SealPolicy::MrEnclave, b"header", b"secret data").unwrap();
    assert_eq!(
        u32::from_le_bytes(blob[512..516].try_into().unwrap()),
        11,
        "plain_text_offset"
    );
    assert_eq!(blob.len(), 560 + 11 + 6);
    assert!(
        !blob.windows(11).any(|w| w == b"secret data"),
        "plaintext must not appear"
    );
    let u = unseal(&e, &blob).unwrap();
    assert_eq!(u.plaintext.as_slice(), b"secret data");
    assert_eq!(u.aad, b"header");
    // Two seals of the same data differ (fresh KEYID each time).
    assert_ne!(
        blob,
        seal(&e, SealPolicy::MrEnclave, b"header", b"secret data").unwrap()
    );
}

#[test]
fn accepts_mrsigner_seals_from_an_older_version() {
    let p = platform(1);
    let v1 = enclave(&p, 1, 7, 5, 1);
    let v2 = enclave(&p, 2, 7, 5, 2);
    let blob = seal(&v1, SealPolicy::MrSigner, b"", b"from v1").unwrap();
    assert_eq!(unseal(&v2, &blob).unwrap().plaintext.as_slice(), b"from v1");
}

#[test]
fn rejects_a_newer_version_seal_in_an_older_version() {
    let p = platform(1);
    let v1 = enclave(&p, 1, 7, 5, 1);
    let v2 = enclave(&p, 2, 7, 5, 2);
    let blob = seal(&v2, SealPolicy::MrSigner, b"", b"from v2").unwrap();
    assert!(matches!(
        unseal(&v1, &blob),
        Err(UnsealError::KeyUnavailable(_))
    ));
}

#[test]
fn rejects_other_signers_products_enclaves_and_platforms() {
    let p = platform(1);
    let me = enclave(&p, 1, 7, 5, 1);
    let by_signer = seal(&me, SealPolicy::MrSigner, b"", b"x").unwrap();
    let by_enclave = seal(&me, SealPolicy::MrEnclave, b"", b"x").unwrap();
    let tampered = |r: Result<_, UnsealError>| matches!(r, Err(UnsealError::Tampered(_)));
    assert!(
        tampered(unseal(&enclave(&p, 1, 8, 5, 1), &by_signer)),
        "other signer"
    );
    assert!(
        tampered(unseal(&enclave(&p, 1, 7, 6, 1), &by_signer)),
        "other product"
    );
    assert!(
        tampered(unseal(&enclave(&p, 2, 7, 5, 1), &by_enclave)),
        "other enclave"
    );
    let p2 = platform(2);
    assert!(
        tampered(unseal(&enclave(&p2, 1, 7, 5, 1), &by_enclave)),
        "other platform"
    );
    // MRSIGNER policy admits another enclave of the same signer and product.
    assert!(unseal(&enclave(&p, 2, 7, 5, 1), &by_signer).is_ok());
}

#[test]
fn rejects_every_single_byte_change() {
    let p = platform(1);
    let e = enclave(&p, 1, 1, 1, 1);
    let blob = seal(&e, SealPolicy::MrEnclave, b"aad", b"sealed text").unwrap();
    for i in 0..blob.len() {
        let mut x = blob.clone();
        x[i] ^= 0x80;
        let r = unseal(&e, &x);
        match r {
            Err(UnsealError::Tampered(_)) | Err(UnsealError::Malformed(_)) => {}
            // The high bit of ISVSVN or a CPUSVN byte asks for a key above this enclave's:
            // EGETKEY refuses it before any MAC is checked.
            Err(UnsealError::KeyUnavailable(_))
                if (4..6).contains(&i) || (8..24).contains(&i) || (2..4).contains(&i) => {}
            other => panic!("byte {i}: {other:?}"),
        }
    }
    assert!(matches!(
        unseal(&e, &blob[..blob.len() - 1]),
        Err(UnsealError::Tampered(_)) | Err(UnsealError::Malformed(_))
    ));
    let mut padded = blob.clone();
    padded.push(0);
    assert!(matches!(
        unseal(&e, &padded),
        Err(UnsealError::Malformed(_))
    ));
}

#[test]
fn writes_the_sdk_layout_byte_for_byte() {
    use aes_gcm::aead::{AeadInOut, KeyInit};
    use coffer_abi::Codec;
    use coffer_abi::sealed::SealedData;

    let p = platform(1);
    let e = enclave(&p, 1, 1, 1, 1);
    let plaintext: Vec<u8> = (0..100_000u32)
        .map(|i| (i % 251).to_le_bytes()[0])
        .collect();
    let blob = seal(&e, SealPolicy::MrSigner, b"label", &plaintext).unwrap();
    // Rebuild the blob the long way, from its key request: AES-128-GCM with the derived key and
    // a zero nonce, then the SDK's structure around it.
    let request = SealedData::from_bytes(&blob).unwrap().key_request;
    let key = e.egetkey(&request).unwrap();
    let mut ciphertext = plaintext.clone();
    let tag = aes_gcm::Aes128Gcm::new((&*key).into())
        .encrypt_inout_detached(
            &aes_gcm::Nonce::default(),
            b"label",
            ciphertext.as_mut_slice().into(),
        )
        .unwrap();
    let want = SealedData::new(request, tag.into(), &ciphertext, b"label").unwrap();
    assert_eq!(blob, want.to_bytes());
}

#[test]
fn accepts_a_round_trip_of_a_mebibyte_and_edge_sizes() {
    let p = platform(1);
    let e = enclave(&p, 1, 1, 1, 1);
    for (len, aad) in [
        (1 << 20, &b""[..]),
        ((1 << 20) + 13, b"aad"),
        (0, b"only aad"),
        (0, b""),
        (1, b""),
    ] {
        let data: Vec<u8> = (0..len)
            .map(|i: usize| (i * 31 + 7).to_le_bytes()[0])
            .collect();
        let blob = seal(&e, SealPolicy::MrEnclave, aad, &data).unwrap();
        assert_eq!(blob.len(), 560 + len + aad.len());
        let u = unseal(&e, &blob).unwrap();
        assert!(u.plaintext.as_slice() == data.as_slice(), "{len} bytes");
        assert_eq!(u.aad, aad);
    }
}

#[test]
fn rejects_a_changed_tag_or_ciphertext_of_a_large_blob() {
    let p = platform(1);
    let e = enclave(&p, 1, 1, 1, 1);
    let blob = seal(&e, SealPolicy::MrEnclave, b"aad", &vec![0x5a; 300_000]).unwrap();
    for at in [544, 559, 560, 560 + 150_000, blob.len() - 4, blob.len() - 1] {
        let mut x = blob.clone();
        x[at] ^= 1;
        assert!(
            matches!(unseal(&e, &x), Err(UnsealError::Tampered(_))),
            "byte {at}"
        );
    }
}

#[test]
fn rejects_data_over_the_cap_before_asking_for_a_key() {
    struct NoKey<'a>(Enclave<'a>, std::cell::Cell<u32>);
    impl KeySource for NoKey<'_> {
        fn identity(&self) -> &ReportBody {
            self.0.identity()
        }
        fn egetkey(&self, r: &Keyrequest) -> Result<Zeroizing<[u8; 16]>, KeyError> {
            self.1.set(self.1.get() + 1);
            self.0.egetkey(r)
        }
    }
    let p = platform(1);
    let e = NoKey(enclave(&p, 1, 1, 1, 1), std::cell::Cell::new(0));
    let cap = coffer_abi::sealed::MAX_SEALED_PAYLOAD;
    // Zeroed allocations this large are mapped lazily: the test touches almost none of it.
    let big = vec![0u8; cap + 1];
    assert!(matches!(
        seal(&e, SealPolicy::MrEnclave, b"", &big),
        Err(coffer_seal::SealError::TooLarge(_))
    ));
    assert!(matches!(
        seal(&e, SealPolicy::MrEnclave, &big[..1], &big[..cap]),
        Err(coffer_seal::SealError::TooLarge(_))
    ));
    assert_eq!(
        e.1.get(),
        0,
        "EGETKEY was asked for a seal that cannot be made"
    );
    seal(&e, SealPolicy::MrEnclave, b"", &big[..1]).unwrap();
    assert_eq!(e.1.get(), 1);
}

#[test]
fn a_key_the_platform_refuses_is_unavailable_and_an_unreachable_platform_says_so() {
    let p = platform(1);
    let e = enclave(&p, 1, 1, 1, 2);
    let blob = seal(&e, SealPolicy::MrSigner, b"", b"data").unwrap();

    // An older version refuses the newer blob's key: the refusal is kept as the source.
    let old = enclave(&p, 1, 1, 1, 1);
    let err = unseal(&old, &blob).unwrap_err();
    let UnsealError::KeyUnavailable(KeyError::Refused(EgetkeyError::InvalidIsvsvn {
        requested: 2,
        current: 1,
    })) = err
    else {
        panic!("{err:?}")
    };

    // A platform that cannot be reached is not a key that is unavailable.
    struct Down<'a>(Enclave<'a>);
    impl KeySource for Down<'_> {
        fn identity(&self) -> &ReportBody {
            self.0.identity()
        }
        fn egetkey(&self, _: &Keyrequest) -> Result<Zeroizing<[u8; 16]>, KeyError> {
            let closed = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
            Err(KeyError::DaemonUnreachable(Box::new(closed)))
        }
    }
    let err = unseal(&Down(enclave(&p, 1, 1, 1, 2)), &blob).unwrap_err();
    assert!(
        matches!(err, UnsealError::Platform(KeyError::DaemonUnreachable(_))),
        "{err:?}"
    );
    let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
        .map(|e| e.to_string())
        .collect::<Vec<_>>();
    assert_eq!(
        chain[..2],
        [
            "the platform did not answer the seal key request",
            "the platform daemon is unreachable"
        ]
    );
}
