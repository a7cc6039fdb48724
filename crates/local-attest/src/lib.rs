//! # coffer-local-attest: mutual local attestation between two enclaves
//!
//! Two enclaves on one platform prove their identities to each other with REPORTs, each MAC'd
//! with the other's report key, and agree on a session key with an ephemeral P-256 Diffie-Hellman
//! exchange whose public keys are bound into the reports' REPORTDATA:
//!
//! ```text
//! initiator A                                      responder B
//!   Msg1 { targetinfo_A, g^a }            ──►
//!                                          ◄──    Msg2 { targetinfo_B, g^b, REPORT_B→A }
//!   verify REPORT_B with A's report key;          REPORTDATA_B = SHA-256("coffer-la/2" ‖ g^a ‖ g^b)
//!   Msg3 { REPORT_A→B }                   ──►     verify REPORT_A with B's report key;
//!                                                  REPORTDATA_A = SHA-256("coffer-la/3" ‖ g^a ‖ g^b)
//! both: key = HKDF-SHA-256(ikm = g^ab, salt = SHA-256(transcript), info = "coffer local attestation")
//! ```
//!
//! Each side ends with a [`Session`]: the peer's identity (its REPORT BODY, to check against a
//! policy) and a 32-byte session key. A report for another target, from another platform, or with
//! any changed byte fails; so does a report whose REPORTDATA does not bind this exchange's keys
//! (a replayed report).

#![forbid(unsafe_code)]

use cmac::{Cmac, KeyInit, Mac};
use coffer_abi::keyrequest::{KeyName, Keyrequest};
use coffer_abi::report::Report;
use coffer_abi::targetinfo::Targetinfo;
use coffer_abi::{Codec, DecodeError, ReportBody};
use hkdf::Hkdf;
use p256::PublicKey;
use p256::ecdh::EphemeralSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub use coffer_seal::{KeyError, ServiceCause};

/// What an enclave needs from its platform to attest locally.
pub trait ReportService {
    /// The enclave's own identity.
    fn identity(&self) -> &ReportBody;
    /// EREPORT for `target` with `reportdata`; a failure keeps the platform's own error.
    fn ereport(&self, target: &Targetinfo, reportdata: &[u8; 64]) -> Result<Report, ServiceCause>;
    /// EGETKEY (only the REPORT_KEY is asked for here).
    fn egetkey(&self, request: &Keyrequest) -> Result<Zeroizing<[u8; 16]>, KeyError>;
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum LocalAttestError {
    #[error("malformed handshake message")]
    Malformed(#[source] DecodeError),
    /// The responder's TARGETINFO names another enclave than the one its REPORT is of.
    #[error(
        "the responder's TARGETINFO names enclave {}, its REPORT is of enclave {}",
        hex::encode(.targetinfo), hex::encode(.report)
    )]
    TargetMismatch {
        targetinfo: [u8; 32],
        report: [u8; 32],
    },
    #[error(
        "the peer's REPORT MAC does not verify: it was altered, targets another enclave, or comes from another platform"
    )]
    ReportMac,
    #[error(
        "the peer's REPORTDATA does not bind this exchange's keys (a replayed or foreign report)"
    )]
    ReportData,
    /// The platform gave no report key to verify the peer's REPORT with.
    #[error("the platform gave no report key")]
    Key(#[source] KeyError),
    /// The platform made no REPORT of this enclave.
    #[error("the platform made no REPORT")]
    Report(#[source] ServiceCause),
    #[error("the peer's public key is not a valid P-256 point")]
    PublicKey,
}

/// Initiator → responder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Msg1 {
    pub targetinfo: Vec<u8>,
    pub public_key: Vec<u8>,
}

/// Responder → initiator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Msg2 {
    pub targetinfo: Vec<u8>,
    pub public_key: Vec<u8>,
    pub report: Vec<u8>,
}

/// Initiator → responder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Msg3 {
    pub report: Vec<u8>,
}

/// The outcome: who the peer is, and the key both sides now share.
pub struct Session {
    pub peer: ReportBody,
    pub key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("peer_mrenclave", &self.peer.mrenclave)
            .field("key", &"<secret>")
            .finish()
    }
}

const LABEL_2: &[u8] = b"coffer-la/2";
const LABEL_3: &[u8] = b"coffer-la/3";
const HKDF_INFO: &[u8] = b"coffer local attestation";

fn bind(label: &[u8], ga: &[u8], gb: &[u8]) -> [u8; 64] {
    let mut h = Sha256::new();
    h.update(label);
    h.update(ga);
    h.update(gb);
    let mut rd = [0u8; 64];
    rd[..32].copy_from_slice(&h.finalize());
    rd
}

fn parse_point(bytes: &[u8]) -> Result<PublicKey, LocalAttestError> {
    PublicKey::from_sec1_bytes(bytes).map_err(|_| LocalAttestError::PublicKey)
}

fn encode_point(k: &PublicKey) -> Vec<u8> {
    k.to_sec1_bytes().to_vec()
}

fn parse<T: Codec>(b: &[u8]) -> Result<T, LocalAttestError> {
    T::from_bytes(b).map_err(LocalAttestError::Malformed)
}

/// Checks a REPORT targeted at this enclave: EGETKEY(REPORT_KEY, report.KEYID), CMAC over the body,
/// constant-time comparison. Returns the report's body.
pub fn verify_report(
    svc: &dyn ReportService,
    report: &Report,
) -> Result<ReportBody, LocalAttestError> {
    let req = Keyrequest {
        keyname: KeyName::REPORT_KEY,
        keyid: report.keyid,
        ..Keyrequest::default()
    };
    let key = svc.egetkey(&req).map_err(LocalAttestError::Key)?;
    let mut mac = <Cmac<aes::Aes128> as KeyInit>::new(&(*key).into());
    mac.update(&report.mac_data());
    let expected: [u8; 16] = mac.finalize().into_bytes().into();
    if bool::from(expected.ct_eq(&report.mac)) {
        Ok(report.body.clone())
    } else {
        Err(LocalAttestError::ReportMac)
    }
}

fn session_key(
    secret: &EphemeralSecret,
    peer: &PublicKey,
    ga: &[u8],
    gb: &[u8],
) -> Zeroizing<[u8; 32]> {
    let shared = secret.diffie_hellman(peer);
    let mut salt = Sha256::new();
    salt.update(b"coffer-la/salt");
    salt.update(ga);
    salt.update(gb);
    let salt = salt.finalize();
    let hk = Hkdf::<Sha256>::new(Some(&salt), shared.raw_secret_bytes());
    let mut okm = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA-256's 8160-byte output limit.
    let _ = hk.expand(HKDF_INFO, &mut okm[..]);
    okm
}

fn new_secret() -> EphemeralSecret {
    use p256::elliptic_curve::Generate;
    EphemeralSecret::generate()
}

/// The initiator's side.
pub struct Initiator {
    secret: EphemeralSecret,
    public: Vec<u8>,
}

impl std::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initiator").finish_non_exhaustive()
    }
}

impl Initiator {
    /// Starts a handshake: the first message carries this enclave's TARGETINFO and public key.
    pub fn start(svc: &dyn ReportService) -> (Initiator, Msg1) {
        let secret = new_secret();
        let public = encode_point(&secret.public_key());
        let ti = Targetinfo::from_report_body(svc.identity());
        let msg = Msg1 {
            targetinfo: ti.to_bytes(),
            public_key: public.clone(),
        };
        (Initiator { secret, public }, msg)
    }

    /// Checks the responder's report and answers with this enclave's own.
    pub fn finish(
        self,
        svc: &dyn ReportService,
        msg: &Msg2,
    ) -> Result<(Session, Msg3), LocalAttestError> {
        let report: Report = parse(&msg.report)?;
        let peer_ti: Targetinfo = parse(&msg.targetinfo)?;
        let peer_key = parse_point(&msg.public_key)?;
        let peer = verify_report(svc, &report)?;
        if !bool::from(
            report
                .body
                .reportdata
                .ct_eq(&bind(LABEL_2, &self.public, &msg.public_key)),
        ) {
            return Err(LocalAttestError::ReportData);
        }
        if peer_ti.measurement != peer.mrenclave {
            return Err(LocalAttestError::TargetMismatch {
                targetinfo: peer_ti.measurement,
                report: peer.mrenclave,
            });
        }
        let mine = svc
            .ereport(&peer_ti, &bind(LABEL_3, &self.public, &msg.public_key))
            .map_err(LocalAttestError::Report)?;
        let key = session_key(&self.secret, &peer_key, &self.public, &msg.public_key);
        Ok((
            Session { peer, key },
            Msg3 {
                report: mine.to_bytes(),
            },
        ))
    }
}

/// The responder's side.
pub struct Responder {
    secret: EphemeralSecret,
    public: Vec<u8>,
    initiator_public: Vec<u8>,
    initiator_key: PublicKey,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder").finish_non_exhaustive()
    }
}

impl Responder {
    /// Answers the first message with a report targeted at the initiator.
    pub fn respond(
        svc: &dyn ReportService,
        msg: &Msg1,
    ) -> Result<(Responder, Msg2), LocalAttestError> {
        let target: Targetinfo = parse(&msg.targetinfo)?;
        let initiator_key = parse_point(&msg.public_key)?;
        let secret = new_secret();
        let public = encode_point(&secret.public_key());
        let report = svc
            .ereport(&target, &bind(LABEL_2, &msg.public_key, &public))
            .map_err(LocalAttestError::Report)?;
        let out = Msg2 {
            targetinfo: Targetinfo::from_report_body(svc.identity()).to_bytes(),
            public_key: public.clone(),
            report: report.to_bytes(),
        };
        Ok((
            Responder {
                secret,
                public,
                initiator_public: msg.public_key.clone(),
                initiator_key,
            },
            out,
        ))
    }

    /// Checks the initiator's report and completes the session.
    pub fn finish(self, svc: &dyn ReportService, msg: &Msg3) -> Result<Session, LocalAttestError> {
        let report: Report = parse(&msg.report)?;
        let peer = verify_report(svc, &report)?;
        if !bool::from(report.body.reportdata.ct_eq(&bind(
            LABEL_3,
            &self.initiator_public,
            &self.public,
        ))) {
            return Err(LocalAttestError::ReportData);
        }
        let key = session_key(
            &self.secret,
            &self.initiator_key,
            &self.initiator_public,
            &self.public,
        );
        Ok(Session { peer, key })
    }
}
