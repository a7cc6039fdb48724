//! Local attestation end to end: real enclaves (`seal-attest-enclave` in three layouts, so three
//! MRENCLAVEs) exchange REPORTs and run the mutual handshake through this daemon's EREPORT and
//! EGETKEY, with the test playing the hosts that relay the messages.

#![allow(clippy::unwrap_used)]

mod seal_attest;

use coffer_abi::report::Report;
use coffer_abi::{Codec, FixedSize, ReportBody};
use coffer_host::{Enclave, Platform};
use coffer_local_attest::{Msg1, Msg2, Msg3};
use seal_attest::{Daemon, bundle, call, config, create, daemon, raw, vector_key};

const REPORT_MAC: &str = "the peer's REPORT MAC does not verify";

/// Enclaves A, B and C of one signer on one platform, with different MRENCLAVEs.
struct Three {
    _d: Daemon,
    platform: Platform,
    a: Enclave,
    b: Enclave,
    c: Enclave,
}

fn three() -> Three {
    let d = daemon();
    let platform = Platform::connect(&d.socket).unwrap();
    let mk = |name: &str, heap_mib| {
        let path = bundle(d.dir.path(), name, &vector_key(), &config(1, 1, heap_mib));
        create(&platform, &path)
    };
    let (a, b, c) = (mk("a", 4), mk("b", 5), mk("c", 6));
    assert!(a.mrenclave() != b.mrenclave() && b.mrenclave() != c.mrenclave());
    Three {
        _d: d,
        platform,
        a,
        b,
        c,
    }
}

fn target_info(e: &Enclave) -> Vec<u8> {
    raw(e, call::TARGET_INFO, &[]).unwrap()
}

/// A REPORT of `from` for the enclave whose TARGETINFO is `target`.
fn report(from: &Enclave, target: &[u8], reportdata: [u8; 64]) -> Vec<u8> {
    raw(from, call::REPORT_FOR, &[target, &reportdata].concat()).unwrap()
}

fn verify(by: &Enclave, report: &[u8]) -> Result<ReportBody, String> {
    raw(by, call::VERIFY_REPORT, report).map(|b| ReportBody::from_bytes(&b).unwrap())
}

fn assert_fails(r: Result<impl std::fmt::Debug, String>, expected: &str, what: &str) {
    match r {
        Err(msg) => assert!(msg.contains(expected), "{what}: {msg}"),
        Ok(v) => panic!("{what}: accepted ({v:?})"),
    }
}

#[test]
fn a_report_targeted_at_b_verifies_in_b_and_nowhere_else() {
    let t = three();
    let reportdata = [0x5c; 64];
    let for_b = report(&t.a, &target_info(&t.b), reportdata);
    assert_eq!(for_b.len(), Report::SIZE);

    let body = verify(&t.b, &for_b).unwrap();
    assert_eq!(body.mrenclave, t.a.mrenclave());
    assert_eq!(body.mrsigner, t.a.mrsigner());
    assert_eq!(body.reportdata, reportdata);

    assert_fails(verify(&t.c, &for_b), REPORT_MAC, "C verifying B's report");
    assert_fails(verify(&t.a, &for_b), REPORT_MAC, "A verifying B's report");
    // A report for C does not verify in B either.
    let for_c = report(&t.a, &target_info(&t.c), reportdata);
    assert!(verify(&t.c, &for_c).is_ok());
    assert_fails(verify(&t.b, &for_c), REPORT_MAC, "B verifying C's report");
}

#[test]
fn rejects_a_report_with_one_changed_byte() {
    let t = three();
    let good = report(&t.a, &target_info(&t.b), [1; 64]);
    assert!(verify(&t.b, &good).is_ok());
    let regions = [
        (0, "CPUSVN"),
        (48, "ATTRIBUTES"),
        (64, "MRENCLAVE"),
        (128, "MRSIGNER"),
        (256, "ISVPRODID"),
        (258, "ISVSVN"),
        (320, "REPORTDATA"),
        (383, "the last byte of REPORTDATA"),
        (384, "KEYID"),
        (416, "MAC"),
        (431, "the last byte of the MAC"),
    ];
    for (at, what) in regions {
        let mut x = good.clone();
        x[at] ^= 0x01;
        assert_fails(verify(&t.b, &x), REPORT_MAC, what);
    }
}

#[test]
fn rejects_a_report_from_another_platform() {
    let t = three();
    let other = daemon();
    // The same bundle as A, on a platform with another root key.
    let path = bundle(other.dir.path(), "a", &vector_key(), &config(1, 1, 4));
    let a_there = create(&Platform::connect(&other.socket).unwrap(), &path);
    assert_eq!(a_there.mrenclave(), t.a.mrenclave());

    let ti_b = target_info(&t.b);
    assert!(verify(&t.b, &report(&t.a, &ti_b, [2; 64])).is_ok());
    assert_fails(
        verify(&t.b, &report(&a_there, &ti_b, [2; 64])),
        REPORT_MAC,
        "a report from another platform",
    );
}

/// Both ends of a finished handshake: the session ids in A and B.
fn handshake(a: &Enclave, b: &Enclave) -> (u64, u64) {
    let (ia, m1): (u64, Msg1) = seal_attest::call(a, call::LA_INITIATE, &()).unwrap();
    let (ib, m2): (u64, Msg2) = seal_attest::call(b, call::LA_RESPOND, &m1).unwrap();
    let m3: Msg3 = seal_attest::call(
        a,
        call::LA_COMPLETE_INITIATOR,
        &(ia, m2, Some(b.mrenclave())),
    )
    .unwrap();
    let () = seal_attest::call(
        b,
        call::LA_COMPLETE_RESPONDER,
        &(ib, m3, Some(a.mrenclave())),
    )
    .unwrap();
    (ia, ib)
}

fn confirm(e: &Enclave, session: u64) -> Result<Vec<u8>, String> {
    raw(
        e,
        call::SESSION_CONFIRM,
        &postcard::to_stdvec(&session).unwrap(),
    )
}

fn encrypt(e: &Enclave, session: u64, msg: &[u8]) -> Vec<u8> {
    let args = postcard::to_stdvec(&(session, msg)).unwrap();
    raw(e, call::SESSION_ENCRYPT, &args).unwrap()
}

fn decrypt(e: &Enclave, session: u64, ct: &[u8]) -> Result<Vec<u8>, String> {
    raw(
        e,
        call::SESSION_DECRYPT,
        &postcard::to_stdvec(&(session, ct)).unwrap(),
    )
}

#[test]
fn the_mutual_handshake_gives_both_enclaves_the_same_session_key() {
    let t = three();
    let (ia, ib) = handshake(&t.a, &t.b);

    // SHA-256(key ‖ "confirm") from each side: equal hashes, equal keys; the hash does not
    // reveal the key.
    let (ha, hb) = (confirm(&t.a, ia).unwrap(), confirm(&t.b, ib).unwrap());
    assert_eq!(ha.len(), 32);
    assert_eq!(ha, hb);

    // A message encrypted under the key in one enclave decrypts in the other, both ways; the
    // host relays only ciphertext.
    let known = b"a known message from A to B";
    let ct = encrypt(&t.a, ia, known);
    assert!(!ct.windows(known.len()).any(|w| w == known));
    assert_eq!(decrypt(&t.b, ib, &ct).unwrap(), known);
    let back = encrypt(&t.b, ib, b"and back");
    assert_eq!(decrypt(&t.a, ia, &back).unwrap(), b"and back");
    let mut changed = ct.clone();
    *changed.last_mut().unwrap() ^= 1;
    assert_fails(
        decrypt(&t.b, ib, &changed),
        "does not decrypt",
        "changed ciphertext",
    );

    // Another handshake has another key.
    let (ia2, ic) = handshake(&t.a, &t.c);
    let ha2 = confirm(&t.a, ia2).unwrap();
    assert_eq!(ha2, confirm(&t.c, ic).unwrap());
    assert_ne!(ha, ha2);
    assert_fails(
        decrypt(&t.c, ic, &ct),
        "does not decrypt",
        "another session",
    );

    // A closed session is gone, with its key.
    let closed: bool = seal_attest::call(&t.a, call::SESSION_CLOSE, &ia).unwrap();
    assert!(closed);
    assert_fails(confirm(&t.a, ia), "no local-attestation session", "closed");
    assert_eq!(confirm(&t.b, ib).unwrap(), hb);
    drop(t.platform);
}

#[test]
fn the_handshake_fails_for_a_refused_peer_a_changed_report_a_replay_or_another_platform() {
    let t = three();
    let begin = |a: &Enclave, b: &Enclave| -> (u64, u64, Msg2) {
        let (ia, m1): (u64, Msg1) = seal_attest::call(a, call::LA_INITIATE, &()).unwrap();
        let (ib, m2): (u64, Msg2) = seal_attest::call(b, call::LA_RESPOND, &m1).unwrap();
        (ia, ib, m2)
    };
    let complete_a = |ia: u64, m2: &Msg2, expect: [u8; 32]| -> Result<Msg3, String> {
        seal_attest::call(&t.a, call::LA_COMPLETE_INITIATOR, &(ia, m2, Some(expect)))
    };
    let complete_b = |ib: u64, m3: &Msg3| -> Result<(), String> {
        seal_attest::call(
            &t.b,
            call::LA_COMPLETE_RESPONDER,
            &(ib, m3, Some(t.a.mrenclave())),
        )
    };

    // A expects C but B answered.
    let (ia, _, m2) = begin(&t.a, &t.b);
    assert_fails(
        complete_a(ia, &m2, t.c.mrenclave()),
        "refused by this enclave's policy",
        "an unexpected peer",
    );

    // B's report changed in one byte: refused, and the handshake is over.
    let (ia, _, m2) = begin(&t.a, &t.b);
    let mut bad = m2.clone();
    bad.report[70] ^= 1;
    assert_fails(complete_a(ia, &bad, t.b.mrenclave()), REPORT_MAC, "Msg2");
    assert_fails(
        complete_a(ia, &m2, t.b.mrenclave()),
        "no local-attestation handshake",
        "a retry",
    );

    // A's report changed in one byte.
    let (ia, ib, m2) = begin(&t.a, &t.b);
    let mut m3 = complete_a(ia, &m2, t.b.mrenclave()).unwrap();
    m3.report[400] ^= 1;
    assert_fails(complete_b(ib, &m3), REPORT_MAC, "Msg3");

    // A responder's handshake id given to the initiator's step.
    let (_, ib, m2) = begin(&t.a, &t.b);
    let wrong: Result<Msg3, String> = seal_attest::call(
        &t.b,
        call::LA_COMPLETE_INITIATOR,
        &(ib, &m2, None::<[u8; 32]>),
    );
    assert_fails(wrong, "is not an initiator's", "a responder's id");

    // A genuine Msg3 of one handshake replayed into another.
    let (ia, ib, m2) = begin(&t.a, &t.b);
    let m3 = complete_a(ia, &m2, t.b.mrenclave()).unwrap();
    let (_, ib2, _) = begin(&t.a, &t.b);
    assert_fails(
        complete_b(ib2, &m3),
        "does not bind this exchange's keys",
        "a replayed Msg3",
    );
    assert!(complete_b(ib, &m3).is_ok());

    // B on another platform: its report for A cannot verify in A.
    let other = daemon();
    let path = bundle(other.dir.path(), "b", &vector_key(), &config(1, 1, 5));
    let b_there = create(&Platform::connect(&other.socket).unwrap(), &path);
    assert_eq!(b_there.mrenclave(), t.b.mrenclave());
    let (ia, _, m2) = begin(&t.a, &b_there);
    assert_fails(
        complete_a(ia, &m2, t.b.mrenclave()),
        REPORT_MAC,
        "a responder on another platform",
    );
}
