//! The handshake between two enclaves on one soft platform, and the attacks it must stop.
#![allow(clippy::unwrap_used)]

use coffer_abi::keyrequest::Keyrequest;
use coffer_abi::report::Report;
use coffer_abi::targetinfo::Targetinfo;
use coffer_abi::{Attributes, AttributesFlags, Codec, ReportBody};
use coffer_cpu::PlatformRoot;
use coffer_local_attest::{
    Initiator, KeyError, LocalAttestError, ReportService, Responder, ServiceCause,
};
use zeroize::Zeroizing;

struct Enclave<'a> {
    platform: &'a PlatformRoot,
    id: ReportBody,
}

impl ReportService for Enclave<'_> {
    fn identity(&self) -> &ReportBody {
        &self.id
    }
    fn ereport(&self, t: &Targetinfo, rd: &[u8; 64]) -> Result<Report, ServiceCause> {
        Ok(coffer_cpu::ereport(
            self.platform,
            &self.id,
            t,
            rd,
            &[7; 32],
        ))
    }
    fn egetkey(&self, r: &Keyrequest) -> Result<Zeroizing<[u8; 16]>, KeyError> {
        self.platform
            .egetkey(&self.id, r)
            .map_err(KeyError::Refused)
    }
}

fn enclave(p: &PlatformRoot, m: u8) -> Enclave<'_> {
    Enclave {
        platform: p,
        id: ReportBody {
            mrenclave: [m; 32],
            mrsigner: [9; 32],
            attributes: Attributes {
                flags: AttributesFlags::INIT | AttributesFlags::MODE64BIT,
                xfrm: 3,
            },
            ..ReportBody::default()
        },
    }
}

#[test]
fn accepts_a_mutual_handshake_with_one_shared_key() {
    let p = PlatformRoot::new([1; 16], [0; 16], [0; 16]);
    let (a, b) = (enclave(&p, 0xa), enclave(&p, 0xb));
    let (ini, m1) = Initiator::start(&a);
    let (res, m2) = Responder::respond(&b, &m1).unwrap();
    let (sa, m3) = ini.finish(&a, &m2).unwrap();
    let sb = res.finish(&b, &m3).unwrap();
    assert_eq!(*sa.key, *sb.key);
    assert_eq!(sa.peer.mrenclave, [0xb; 32]);
    assert_eq!(sb.peer.mrenclave, [0xa; 32]);
}

#[test]
fn rejects_a_report_from_another_platform() {
    let p1 = PlatformRoot::new([1; 16], [0; 16], [0; 16]);
    let p2 = PlatformRoot::new([2; 16], [0; 16], [0; 16]);
    let a = enclave(&p1, 0xa);
    let b_elsewhere = enclave(&p2, 0xb);
    let (ini, m1) = Initiator::start(&a);
    let (_, m2) = Responder::respond(&b_elsewhere, &m1).unwrap();
    assert!(matches!(
        ini.finish(&a, &m2),
        Err(LocalAttestError::ReportMac)
    ));
}

#[test]
fn rejects_a_report_for_another_target() {
    let p = PlatformRoot::new([1; 16], [0; 16], [0; 16]);
    let (a, b, c) = (enclave(&p, 0xa), enclave(&p, 0xb), enclave(&p, 0xc));
    // B answers C's first message; the attacker forwards the answer to A.
    let (_, m1c) = Initiator::start(&c);
    let (ini_a, _) = Initiator::start(&a);
    let (_, m2) = Responder::respond(&b, &m1c).unwrap();
    assert!(matches!(
        ini_a.finish(&a, &m2),
        Err(LocalAttestError::ReportMac)
    ));
}

#[test]
fn rejects_a_changed_byte_and_a_swapped_key() {
    let p = PlatformRoot::new([1; 16], [0; 16], [0; 16]);
    let (a, b) = (enclave(&p, 0xa), enclave(&p, 0xb));
    let (_, m1) = Initiator::start(&a);
    let (_, m2) = Responder::respond(&b, &m1).unwrap();
    for i in [0usize, 64, 100, 330, 383, 400, 420, 431] {
        let (ini, m1) = Initiator::start(&a);
        let (_, mut m2) = Responder::respond(&b, &m1).unwrap();
        m2.report[i] ^= 1;
        assert!(ini.finish(&a, &m2).is_err(), "byte {i}");
    }
    // The responder's report replayed into a new exchange: it binds the old keys.
    let (ini, _) = Initiator::start(&a);
    assert!(matches!(
        ini.finish(&a, &m2),
        Err(LocalAttestError::ReportData)
    ));
    // A man in the middle swapping the responder's public key.
    let (ini, m1) = Initiator::start(&a);
    let (_, mut m2) = Responder::respond(&b, &m1).unwrap();
    let (_, other) = Initiator::start(&b);
    m2.public_key = other.public_key;
    assert!(matches!(
        ini.finish(&a, &m2),
        Err(LocalAttestError::ReportData)
    ));
    // Garbage.
    let (ini, _) = Initiator::start(&a);
    let bad = coffer_local_attest::Msg2 {
        targetinfo: vec![0; 3],
        public_key: vec![4; 65],
        report: Report::default().to_bytes(),
    };
    assert!(matches!(
        ini.finish(&a, &bad),
        Err(LocalAttestError::Malformed(_))
    ));
}
