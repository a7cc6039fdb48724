//! EGETKEY and EREPORT as an attacker would probe them: other enclaves, other signers, other
//! platforms, higher SVNs, changed bytes.
#![allow(clippy::unwrap_used)]

use coffer_abi::keyrequest::{KeyName, KeyPolicy, Keyrequest};
use coffer_abi::targetinfo::Targetinfo;
use coffer_abi::{Attributes, AttributesFlags, ReportBody};
use coffer_cpu::{EgetkeyError, PlatformRoot, ReportError, ereport, verify_report};

fn platform(seed: u8) -> PlatformRoot {
    PlatformRoot::new([seed; 16], [0xee; 16], [2; 16])
}

fn enclave(mrenclave: u8, mrsigner: u8, prodid: u16, svn: u16) -> ReportBody {
    ReportBody {
        mrenclave: [mrenclave; 32],
        mrsigner: [mrsigner; 32],
        isvprodid: prodid,
        isvsvn: svn,
        attributes: Attributes {
            flags: AttributesFlags::INIT | AttributesFlags::MODE64BIT,
            xfrm: 3,
        },
        ..ReportBody::default()
    }
}

fn seal_request(policy: KeyPolicy, svn: u16) -> Keyrequest {
    Keyrequest {
        keyname: KeyName::SEAL_KEY,
        keypolicy: policy,
        isvsvn: svn,
        cpusvn: [2; 16],
        attributemask: Attributes {
            flags: AttributesFlags::from_bits_retain(!0),
            xfrm: 0,
        },
        keyid: [9; 32],
        miscmask: !0,
        ..Keyrequest::default()
    }
}

#[test]
fn accepts_the_same_request_twice_with_the_same_key() {
    let p = platform(1);
    let e = enclave(1, 1, 0, 1);
    let r = seal_request(KeyPolicy::MRENCLAVE, 1);
    assert_eq!(*p.egetkey(&e, &r).unwrap(), *p.egetkey(&e, &r).unwrap());
}

#[test]
fn rejects_sharing_mrenclave_keys_between_enclaves() {
    let p = platform(1);
    let r = seal_request(KeyPolicy::MRENCLAVE, 1);
    let a = p.egetkey(&enclave(1, 1, 0, 1), &r).unwrap();
    let b = p.egetkey(&enclave(2, 1, 0, 1), &r).unwrap();
    assert_ne!(*a, *b);
}

#[test]
fn accepts_mrsigner_keys_across_enclaves_of_one_signer_and_product() {
    let p = platform(1);
    let r = seal_request(KeyPolicy::MRSIGNER, 1);
    let a = p.egetkey(&enclave(1, 7, 3, 1), &r).unwrap();
    let b = p.egetkey(&enclave(2, 7, 3, 2), &r).unwrap();
    assert_eq!(*a, *b, "v2 derives v1's seal key");
    let other_signer = p.egetkey(&enclave(1, 8, 3, 1), &r).unwrap();
    let other_product = p.egetkey(&enclave(1, 7, 4, 1), &r).unwrap();
    assert_ne!(*a, *other_signer);
    assert_ne!(*a, *other_product);
}

#[test]
fn rejects_a_request_above_the_enclave_isvsvn() {
    let p = platform(1);
    let err = p
        .egetkey(&enclave(1, 7, 3, 1), &seal_request(KeyPolicy::MRSIGNER, 2))
        .unwrap_err();
    assert_eq!(
        err,
        EgetkeyError::InvalidIsvsvn {
            requested: 2,
            current: 1
        }
    );
}

#[test]
fn rejects_a_request_above_the_platform_cpusvn() {
    let p = platform(1);
    let mut r = seal_request(KeyPolicy::MRSIGNER, 1);
    r.cpusvn[15] = 3;
    assert!(matches!(
        p.egetkey(&enclave(1, 7, 3, 1), &r),
        Err(EgetkeyError::InvalidCpusvn { .. })
    ));
    // A lower CPUSVN is allowed and gives a different key.
    r.cpusvn[15] = 1;
    let low = p.egetkey(&enclave(1, 7, 3, 1), &r).unwrap();
    let cur = p
        .egetkey(&enclave(1, 7, 3, 1), &seal_request(KeyPolicy::MRSIGNER, 1))
        .unwrap();
    assert_ne!(*low, *cur);
}

#[test]
fn rejects_sharing_keys_between_platforms_and_debug_modes() {
    let r = seal_request(KeyPolicy::MRENCLAVE, 1);
    let e = enclave(1, 1, 0, 1);
    let a = platform(1).egetkey(&e, &r).unwrap();
    let b = platform(2).egetkey(&e, &r).unwrap();
    assert_ne!(*a, *b);
    let mut debug = e.clone();
    debug.attributes.flags |= AttributesFlags::DEBUG;
    // Even with DEBUG masked out by the request, a debug enclave gets another key.
    let mut r2 = r.clone();
    r2.attributemask.flags = AttributesFlags::MODE64BIT;
    assert_ne!(
        *platform(1).egetkey(&e, &r2).unwrap(),
        *platform(1).egetkey(&debug, &r2).unwrap()
    );
}

#[test]
fn rejects_provisioning_keys_and_kss_policies_without_the_attribute() {
    let p = platform(1);
    let mut r = seal_request(KeyPolicy::MRSIGNER, 1);
    r.keyname = KeyName::PROVISION_KEY;
    assert_eq!(
        p.egetkey(&enclave(1, 1, 0, 1), &r),
        Err(EgetkeyError::NotAllowed(KeyName::PROVISION_KEY))
    );
    let r = seal_request(KeyPolicy::MRSIGNER | KeyPolicy::CONFIGID, 1);
    assert!(matches!(
        p.egetkey(&enclave(1, 1, 0, 1), &r),
        Err(EgetkeyError::InvalidKeypolicy(_))
    ));
    let mut r = seal_request(KeyPolicy::MRSIGNER, 1);
    r.keyname = KeyName(9);
    assert_eq!(
        p.egetkey(&enclave(1, 1, 0, 1), &r),
        Err(EgetkeyError::InvalidKeyname(KeyName(9)))
    );
}

#[test]
fn accepts_a_report_for_its_target_only() {
    let p = platform(1);
    let a = enclave(1, 1, 0, 1);
    let b = enclave(2, 1, 0, 1);
    let c = enclave(3, 1, 0, 1);
    let report = ereport(
        &p,
        &a,
        &Targetinfo::from_report_body(&b),
        &[5; 64],
        &[4; 32],
    );
    assert_eq!(report.body.reportdata, [5; 64]);
    assert_eq!(report.body.mrenclave, a.mrenclave);
    verify_report(&p, &b, &report).unwrap();
    assert_eq!(verify_report(&p, &c, &report), Err(ReportError::Mac));
    assert_eq!(
        verify_report(&platform(2), &b, &report),
        Err(ReportError::Mac)
    );
}

#[test]
fn rejects_a_report_with_any_byte_changed() {
    use coffer_abi::Codec;
    use coffer_abi::report::Report;
    let p = platform(1);
    let a = enclave(1, 1, 0, 1);
    let b = enclave(2, 1, 0, 1);
    let report = ereport(
        &p,
        &a,
        &Targetinfo::from_report_body(&b),
        &[5; 64],
        &[4; 32],
    );
    let bytes = report.to_bytes();
    for i in (0..bytes.len()).step_by(7) {
        let mut x = bytes.clone();
        x[i] ^= 0x01;
        let changed = Report::from_bytes(&x).unwrap();
        assert_eq!(
            verify_report(&p, &b, &changed),
            Err(ReportError::Mac),
            "byte {i}"
        );
    }
}
