//! SIGSTRUCT signing and verification against the public vectors in `../shared/vectors/sgx`.
#![allow(clippy::unwrap_used)]

use coffer_abi::{Attributes, AttributesFlags, Codec, Miscselect, Sigstruct, SigstructDate};
use coffer_sign::{
    SigningKey, SigstructBody, SigstructSignError, SigstructVerifyError, VerifyingKey, assemble,
    sign, signing_data, verify,
};

fn vector(name: &str) -> Vec<u8> {
    coffer_testkit::vectors::read(&format!("sgx/{name}"))
}

fn sig1_body() -> SigstructBody {
    let mut enclavehash = [0u8; 32];
    hex::decode_to_slice(
        "c50673624a6cb17c1c6c2a4e6906f47a170c4629b8723781d1017ef376f1a75d",
        &mut enclavehash,
    )
    .unwrap();
    SigstructBody {
        vendor: 0,
        date: SigstructDate::parse("20160109").unwrap(),
        swdefined: 0,
        miscselect: Miscselect::empty(),
        miscmask: 0xffff_ffff,
        attributes: Attributes {
            flags: AttributesFlags::MODE64BIT,
            xfrm: 0x3,
        },
        attributemask: Attributes {
            flags: AttributesFlags::from_bits_retain(!0x2),
            xfrm: !0xe4,
        },
        enclavehash,
        isvprodid: 0,
        isvsvn: 0,
        ..SigstructBody::default()
    }
}

fn sig1_key() -> SigningKey {
    SigningKey::from_pem(std::str::from_utf8(&vector("sig1.key.pem")).unwrap()).unwrap()
}

#[test]
fn accepts_sig1_and_reproduces_it_byte_for_byte() {
    let s = sign(&sig1_key(), &sig1_body()).unwrap();
    assert_eq!(s.to_bytes(), vector("sig1.sigstruct.bin"));
    let v = verify(&s).unwrap();
    assert_eq!(
        hex::encode(v.mrsigner()),
        "83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e"
    );
}

#[test]
fn accepts_test_enclave_sig() {
    let s = Sigstruct::from_bytes(&vector("test_enclave.sig")).unwrap();
    let v = verify(&s).unwrap();
    assert_eq!(
        hex::encode(v.mrsigner()),
        "fb4bab3d6036ac1d730fa83d7366df1dd2dfeac194ef335d6854d8a6c6475542"
    );
    assert_eq!(
        hex::encode(s.enclavehash),
        "784acfd7d5096a8f0fbd3265760bff21b120f62407a9a9e5ba31aa3c8ed198fc"
    );
    assert_eq!(s.isvprodid, 0xffff);
    assert_eq!(s.isvsvn, 0);
    assert_eq!(s.date.to_string(), "2016-12-14");
}

#[test]
fn accepts_two_step_signing_with_an_external_signature() {
    let key = sig1_key();
    let body = sig1_body();
    let data = signing_data(&body);
    assert_eq!(data.len(), 256);
    // An "HSM" signs the 256 bytes; here the same key stands in for it.
    let mut be = sign(&key, &body).unwrap().signature;
    be.reverse();
    let s = assemble(&body, &key.verifying_key(), &be).unwrap();
    assert_eq!(s.to_bytes(), vector("sig1.sigstruct.bin"));
}

#[test]
fn rejects_an_external_signature_made_with_another_key() {
    let other = SigningKey::generate().unwrap();
    let body = sig1_body();
    let mut be = sign(&other, &body).unwrap().signature;
    be.reverse();
    let err = assemble(&body, &sig1_key().verifying_key(), &be).unwrap_err();
    assert!(matches!(err, SigstructSignError::SignatureInvalid), "{err}");
    let err = assemble(&body, &sig1_key().verifying_key(), &be[1..]).unwrap_err();
    assert!(
        matches!(err, SigstructSignError::SignatureLength { len: 383 }),
        "{err}"
    );
}

#[test]
fn rejects_a_changed_signed_field() {
    let mut s = Sigstruct::from_bytes(&vector("sig1.sigstruct.bin")).unwrap();
    s.isvsvn = 1;
    assert!(matches!(verify(&s), Err(SigstructVerifyError::Signature)));
    let mut s = Sigstruct::from_bytes(&vector("sig1.sigstruct.bin")).unwrap();
    s.enclavehash[31] ^= 1;
    assert!(matches!(verify(&s), Err(SigstructVerifyError::Signature)));
}

#[test]
fn rejects_a_changed_signature_q1_q2_or_exponent() {
    let good = Sigstruct::from_bytes(&vector("sig1.sigstruct.bin")).unwrap();
    let mut s = good.clone();
    s.signature[0] ^= 1;
    assert!(matches!(verify(&s), Err(SigstructVerifyError::Signature)));
    let mut s = good.clone();
    s.q1[5] ^= 1;
    assert!(matches!(verify(&s), Err(SigstructVerifyError::Q1)));
    let mut s = good.clone();
    s.q2[5] ^= 1;
    assert!(matches!(verify(&s), Err(SigstructVerifyError::Q2)));
    let mut s = good.clone();
    s.exponent = 65537;
    assert!(matches!(
        verify(&s),
        Err(SigstructVerifyError::Exponent(65537))
    ));
    let mut s = good;
    s.modulus[0] ^= 1;
    assert!(verify(&s).is_err());
}

#[test]
fn accepts_a_generated_key_roundtrip_through_pem() {
    let key = SigningKey::generate().unwrap();
    let pem = key.to_pem().unwrap();
    let again = SigningKey::from_pem(&pem).unwrap();
    assert_eq!(again.verifying_key(), key.verifying_key());
    let public = VerifyingKey::from_pem(&key.verifying_key().to_pem().unwrap()).unwrap();
    assert_eq!(public.mrsigner(), key.verifying_key().mrsigner());
    let s = sign(&key, &sig1_body()).unwrap();
    assert_eq!(verify(&s).unwrap().mrsigner(), public.mrsigner());
}

#[test]
fn rejects_keys_of_the_wrong_shape() {
    assert!(SigningKey::from_pem("not a key").is_err());
    let small =
        rsa::PrivateKey::new_with_exp(&mut rand::rng(), 2048, rsa::BoxedUint::from(3u64)).unwrap();
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let pem = small.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).unwrap();
    assert!(matches!(
        SigningKey::from_pem(&pem),
        Err(coffer_sign::KeyError::WrongSize { bits: 2048 })
    ));
}
