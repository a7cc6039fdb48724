//! The `.coffer` bundle: round trip, malformed files, and the launch check.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use coffer_abi::{AttributesFlags, SigstructDate};
use coffer_sign::bundle::{self, Bundle, BundleError, BundleVerifyError, HEADER_SIZE};
use coffer_sign::{EnclaveConfig, SigningKey, measure_enclave};
use coffer_testkit::elf;

fn key() -> SigningKey {
    let pem = coffer_testkit::vectors::read_to_string("sgx/sig1.key.pem");
    SigningKey::from_pem(&pem).unwrap()
}

fn config(debug: bool) -> EnclaveConfig {
    EnclaveConfig::from_toml(&format!(
        "isv_prod_id = 7\nisv_svn = 3\nheap_size = 0x40000\nstack_size = 0x10000\n\
         tcs_count = 2\ndebug = {debug}\n"
    ))
    .unwrap()
}

fn image() -> Vec<u8> {
    let code: Vec<u8> = (0..6000u32).map(|i| (i * 13 + 1) as u8).collect();
    elf::static_elf(&code, b"data", 0x2000)
}

fn date() -> SigstructDate {
    SigstructDate::parse("20260101").unwrap()
}

fn signed(debug: bool) -> Bundle {
    Bundle::sign(&key(), &config(debug), image(), date()).unwrap()
}

#[test]
fn accepts_a_signed_bundle_and_round_trips_it() {
    let b = signed(false);
    let bytes = b.to_bytes();
    assert_eq!(&bytes[..8], b"COFFERB\0");
    let again = Bundle::from_bytes(&bytes).unwrap();
    assert_eq!(again.to_bytes(), bytes);
    assert_eq!(Bundle::read_from(&bytes[..]).unwrap().to_bytes(), bytes);
    assert_eq!(again.image(), &image()[..]);
    let v = again.verify().unwrap();
    let m = measure_enclave(&image(), &config(false)).unwrap();
    assert_eq!(v.mrenclave(), m.mrenclave);
    assert_eq!(v.epc_size(), m.epc_size);
    assert_eq!(again.epc_size().unwrap(), m.epc_size);
    assert_eq!(v.mrsigner(), key().verifying_key().mrsigner());
    assert_eq!((v.isv_prod_id(), v.isv_svn(), v.debug()), (7, 3, false));
    assert_eq!(v.config(), &config(false));
    assert_eq!(v.image(), &image()[..]);
    assert_eq!(v.attributes().flags, AttributesFlags::MODE64BIT);
    assert_eq!(v.sigstruct().date, date());
}

#[test]
fn accepts_a_debug_bundle_with_the_debug_attribute() {
    let v = signed(true).verify().unwrap();
    assert!(v.debug());
    assert!(v.sigstruct().attributes.debug());
    assert!(v.attributes().flags.contains(AttributesFlags::DEBUG));
}

#[test]
fn rejects_a_bundle_with_one_code_byte_changed() {
    let b = signed(false);
    let mut bytes = b.to_bytes();
    let image_at = bytes.len() - image().len();
    bytes[image_at + 0x1000 + 17] ^= 0x01;
    let tampered = Bundle::from_bytes(&bytes).unwrap();
    match tampered.verify() {
        Err(BundleVerifyError::MeasurementMismatch { signed, computed }) => {
            assert_eq!(signed, b.sigstruct().enclavehash);
            assert_ne!(computed, signed);
            let msg = BundleVerifyError::MeasurementMismatch { signed, computed }.to_string();
            assert!(msg.contains(&hex::encode(signed)), "{msg}");
            assert!(msg.contains(&hex::encode(computed)), "{msg}");
            assert!(msg.starts_with("measurement mismatch"), "{msg}");
        }
        other => panic!("expected a measurement mismatch, got {other:?}"),
    }
}

#[test]
fn rejects_a_bundle_whose_configuration_was_changed() {
    // A bigger heap changes MRENCLAVE: the signed ENCLAVEHASH no longer matches.
    let b = signed(false);
    let mut c = config(false);
    c.heap_size *= 2;
    let changed = Bundle::new(b.sigstruct().clone(), c, image());
    assert!(matches!(
        changed.verify(),
        Err(BundleVerifyError::MeasurementMismatch { .. })
    ));
    // Flipping debug in the configuration does not match the signed DEBUG bit.
    let changed = Bundle::new(b.sigstruct().clone(), config(true), image());
    let e = changed.verify().unwrap_err();
    assert!(
        matches!(
            e,
            BundleVerifyError::DebugMismatch {
                config: true,
                signed: false
            }
        ),
        "{e}"
    );
    // Another ISVSVN in the configuration is refused, naming the field.
    let mut c = config(false);
    c.isv_svn = 4;
    let e = Bundle::new(b.sigstruct().clone(), c, image())
        .verify()
        .unwrap_err();
    assert!(e.to_string().contains("isv_svn"), "{e}");
}

#[test]
fn rejects_a_bad_signature() {
    let b = signed(false);
    let mut s = b.sigstruct().clone();
    s.isvsvn ^= 1;
    let mut c = config(false);
    c.isv_svn = s.isvsvn;
    let e = Bundle::new(s, c, image()).verify().unwrap_err();
    assert!(matches!(e, BundleVerifyError::Signature(_)), "{e}");
    assert!(e.to_string().starts_with("bad signature"), "{e}");
}

#[test]
fn rejects_attributes_outside_the_mask() {
    // A SIGSTRUCT signed with KSS set does not launch an enclave whose configuration has no KSS ID.
    let mut body = bundle::sigstruct_body(
        &config(false),
        measure_enclave(&image(), &config(false)).unwrap().mrenclave,
        date(),
    );
    body.attributes.flags |= AttributesFlags::KSS;
    let s = coffer_sign::sign(&key(), &body).unwrap();
    let e = Bundle::new(s, config(false), image()).verify().unwrap_err();
    assert!(
        matches!(e, BundleVerifyError::AttributesOutsideMask { .. }),
        "{e}"
    );
}

#[test]
fn two_step_signing_matches_one_step() {
    let (data, measured) = bundle::signing_data(&config(false), &image(), date()).unwrap();
    assert_eq!(data.len(), 256);
    let one = signed(false);
    assert_eq!(one.sigstruct().enclavehash, measured.mrenclave);
    // Sign the bytes as an HSM would (PKCS#1 v1.5 / SHA-256, big-endian): take the one-step
    // signature, which is deterministic.
    let mut sig_be = one.sigstruct().signature;
    sig_be.reverse();
    let two = Bundle::assemble(
        &key().verifying_key(),
        &sig_be,
        &config(false),
        image(),
        date(),
    )
    .unwrap();
    assert_eq!(two.to_bytes(), one.to_bytes());
    // A signature over other data is refused.
    sig_be[100] ^= 1;
    assert!(
        Bundle::assemble(
            &key().verifying_key(),
            &sig_be,
            &config(false),
            image(),
            date()
        )
        .is_err()
    );
}

#[test]
fn rejects_truncated_padded_and_inflated_bundles() {
    let bytes = signed(false).to_bytes();
    for cut in [
        0,
        7,
        HEADER_SIZE - 1,
        HEADER_SIZE,
        HEADER_SIZE + 1808,
        bytes.len() - 1,
    ] {
        let e = Bundle::from_bytes(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(e, BundleError::Truncated { .. }),
            "cut at {cut}: {e}"
        );
        assert!(Bundle::read_from(&bytes[..cut]).is_err());
    }
    let mut padded = bytes.clone();
    padded.push(0);
    assert!(matches!(
        Bundle::from_bytes(&padded),
        Err(BundleError::TrailingBytes(1))
    ));
    assert!(matches!(
        Bundle::read_from(&padded[..]),
        Err(BundleError::TrailingBytes(_))
    ));
    // Image length inflated past the cap, and past the file.
    let mut inflated = bytes.clone();
    inflated[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        Bundle::from_bytes(&inflated),
        Err(BundleError::TooLarge { part: "image", .. })
    ));
    assert!(matches!(
        Bundle::read_from(&inflated[..]),
        Err(BundleError::TooLarge { part: "image", .. })
    ));
    let mut inflated = bytes.clone();
    let len = u64::from_le_bytes(inflated[24..32].try_into().unwrap());
    inflated[24..32].copy_from_slice(&(len + 1).to_le_bytes());
    assert!(matches!(
        Bundle::from_bytes(&inflated),
        Err(BundleError::Truncated { part: "image", .. })
    ));
    let mut inflated = bytes.clone();
    inflated[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        Bundle::from_bytes(&inflated),
        Err(BundleError::TooLarge {
            part: "configuration",
            ..
        })
    ));
    // The configuration length shifted by one: the TOML no longer parses or the image is short.
    let mut shifted = bytes.clone();
    let clen = u32::from_le_bytes(shifted[20..24].try_into().unwrap());
    shifted[20..24].copy_from_slice(&(clen - 1).to_le_bytes());
    assert!(Bundle::from_bytes(&shifted).is_err());
}

#[test]
fn rejects_bad_headers() {
    let bytes = signed(false).to_bytes();
    let with = |at: usize, v: &[u8]| {
        let mut b = bytes.clone();
        b[at..at + v.len()].copy_from_slice(v);
        Bundle::from_bytes(&b).unwrap_err()
    };
    assert!(matches!(with(0, b"COFFERX"), BundleError::BadMagic));
    assert!(matches!(
        with(8, &2u32.to_le_bytes()),
        BundleError::UnsupportedVersion(2)
    ));
    assert!(matches!(
        with(12, &1u32.to_le_bytes()),
        BundleError::ReservedNotZero(1)
    ));
    assert!(matches!(
        with(16, &1807u32.to_le_bytes()),
        BundleError::SigstructLength(1807)
    ));
    let e = with(HEADER_SIZE + 1808, b"x");
    assert!(matches!(e, BundleError::Config(_)), "{e}");
}

#[test]
fn never_panics_on_mutated_bundles() {
    let bytes = signed(false).to_bytes();
    let mut rng = coffer_testkit::rng::rng(0x1234_5678_9abc_def1);
    let mut next = || coffer_testkit::rng::Rng::next_u64(&mut rng);
    for _ in 0..300 {
        let mut b = bytes.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % b.len() as u64) as usize;
            b[at] = next() as u8;
        }
        let cut = if next() % 4 == 0 {
            (next() % b.len() as u64) as usize
        } else {
            b.len()
        };
        if let Ok(parsed) = Bundle::from_bytes(&b[..cut]) {
            let _ = parsed.verify();
        }
    }
}
