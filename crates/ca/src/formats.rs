//! The one writer of Intel's collateral formats: TCB Info v3 and QE Identity v2 (compact JSON
//! text, fields in Intel's order), their signatures (ECDSA P-256, raw r ‖ s) and CRLs. The
//! deployment CA ([`crate::Authority`]) and the test deployments ([`crate::test_support`]) both
//! write through it.

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rcgen::{
    CertificateRevocationListParams, Issuer, KeyIdMethod, KeyPair, RevocationReason,
    RevokedCertParams, SerialNumber,
};
use serde::Serialize;
use time::OffsetDateTime;

use crate::authority::{QeIdentity, rfc3339};

/// One TCB level of a TCB Info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcbLevelInfo {
    pub components: [u8; 16],
    pub pcesvn: u16,
    pub status: coffer_dcap::TcbStatus,
    pub advisory_ids: Vec<String>,
}

/// One TCB level of a QE Identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QeLevelInfo {
    pub isvsvn: u16,
    pub status: coffer_dcap::TcbStatus,
    pub advisory_ids: Vec<String>,
}

/// A TCB Info (`{"id":"SGX",...}`).
#[derive(Debug, Clone)]
pub struct TcbInfo<'a> {
    /// 3 (anything else is for tests of verifiers).
    pub version: u32,
    pub issue_date: OffsetDateTime,
    pub next_update: OffsetDateTime,
    pub fmspc: [u8; 6],
    pub pce_id: [u8; 2],
    pub tcb_evaluation_data_number: u32,
    /// Every level's tcbDate.
    pub tcb_date: OffsetDateTime,
    pub levels: &'a [TcbLevelInfo],
}

/// A QE Identity (`{"id":"QE","version":2,...}`).
#[derive(Debug, Clone)]
pub struct QeIdentityInfo<'a> {
    pub issue_date: OffsetDateTime,
    pub next_update: OffsetDateTime,
    pub tcb_evaluation_data_number: u32,
    pub tcb_date: OffsetDateTime,
    pub identity: &'a QeIdentity,
    pub levels: &'a [QeLevelInfo],
}

impl TcbInfo<'_> {
    /// The compact JSON text that is signed and published.
    pub fn to_json(&self) -> String {
        let tcb_date = rfc3339(self.tcb_date);
        let doc = TcbInfoJson {
            id: "SGX",
            version: self.version,
            issue_date: rfc3339(self.issue_date),
            next_update: rfc3339(self.next_update),
            fmspc: hex::encode_upper(self.fmspc),
            pce_id: hex::encode_upper(self.pce_id),
            tcb_type: 0,
            tcb_evaluation_data_number: self.tcb_evaluation_data_number,
            tcb_levels: self
                .levels
                .iter()
                .map(|l| TcbLevelJson {
                    tcb: TcbJson {
                        sgxtcbcomponents: l
                            .components
                            .iter()
                            .map(|s| SvnJson { svn: *s })
                            .collect(),
                        pcesvn: l.pcesvn,
                    },
                    tcb_date: tcb_date.clone(),
                    tcb_status: l.status.as_str(),
                    advisory_ids: &l.advisory_ids,
                })
                .collect(),
        };
        // Strings, numbers and arrays of them: serialization cannot fail.
        serde_json::to_string(&doc).unwrap_or_default()
    }
}

impl QeIdentityInfo<'_> {
    /// The compact JSON text that is signed and published.
    pub fn to_json(&self) -> String {
        let qe = self.identity;
        let tcb_date = rfc3339(self.tcb_date);
        let doc = QeIdentityJson {
            id: "QE",
            version: 2,
            issue_date: rfc3339(self.issue_date),
            next_update: rfc3339(self.next_update),
            tcb_evaluation_data_number: self.tcb_evaluation_data_number,
            miscselect: hex::encode_upper(qe.miscselect.to_be_bytes()),
            miscselect_mask: hex::encode_upper(qe.miscselect_mask.to_be_bytes()),
            attributes: hex::encode_upper(qe.attributes),
            attributes_mask: hex::encode_upper(qe.attributes_mask),
            mrsigner: hex::encode_upper(qe.mrsigner),
            isvprodid: qe.isvprodid,
            tcb_levels: self
                .levels
                .iter()
                .map(|l| QeTcbLevelJson {
                    tcb: QeTcbJson { isvsvn: l.isvsvn },
                    tcb_date: tcb_date.clone(),
                    tcb_status: l.status.as_str(),
                    advisory_ids: &l.advisory_ids,
                })
                .collect(),
        };
        serde_json::to_string(&doc).unwrap_or_default()
    }
}

/// ECDSA P-256 / SHA-256 over `text`'s bytes, raw r ‖ s, as Intel signs TCB Info and QE Identity.
pub fn sign(key: &SigningKey, text: &str) -> Vec<u8> {
    let sig: Signature = key.sign(text.as_bytes());
    sig.to_bytes().to_vec()
}

/// Intel's PCS body for a TCB Info: `{"tcbInfo":TEXT,"signature":"HEX"}`.
pub fn tcb_info_body(text: &str, signature: &[u8]) -> String {
    format!(
        r#"{{"tcbInfo":{text},"signature":"{}"}}"#,
        hex::encode(signature)
    )
}

/// Intel's PCS body for a QE Identity: `{"enclaveIdentity":TEXT,"signature":"HEX"}`.
pub fn qe_identity_body(text: &str, signature: &[u8]) -> String {
    format!(
        r#"{{"enclaveIdentity":{text},"signature":"{}"}}"#,
        hex::encode(signature)
    )
}

/// A revoked certificate: its serial (minimal DER bytes) and when it was revoked.
#[derive(Debug, Clone)]
pub struct Revoked<'a> {
    pub serial: &'a [u8],
    pub at: OffsetDateTime,
}

/// A CRL (DER) signed by `issuer`, numbered `number`, listing `revoked` (key compromise).
pub fn crl(
    issuer: &Issuer<'_, KeyPair>,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    number: u64,
    revoked: &[Revoked<'_>],
) -> Result<Vec<u8>, rcgen::Error> {
    let crl = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|r| RevokedCertParams {
                serial_number: SerialNumber::from_slice(r.serial),
                revocation_time: r.at,
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(issuer)?;
    Ok(crl.der().to_vec())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TcbInfoJson<'a> {
    id: &'static str,
    version: u32,
    issue_date: String,
    next_update: String,
    fmspc: String,
    pce_id: String,
    tcb_type: u32,
    tcb_evaluation_data_number: u32,
    tcb_levels: Vec<TcbLevelJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TcbLevelJson<'a> {
    tcb: TcbJson,
    tcb_date: String,
    tcb_status: &'static str,
    #[serde(rename = "advisoryIDs", skip_serializing_if = "<[String]>::is_empty")]
    advisory_ids: &'a [String],
}

#[derive(Serialize)]
struct TcbJson {
    sgxtcbcomponents: Vec<SvnJson>,
    pcesvn: u16,
}

#[derive(Serialize)]
struct SvnJson {
    svn: u8,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QeIdentityJson<'a> {
    id: &'static str,
    version: u32,
    issue_date: String,
    next_update: String,
    tcb_evaluation_data_number: u32,
    miscselect: String,
    miscselect_mask: String,
    attributes: String,
    attributes_mask: String,
    mrsigner: String,
    isvprodid: u16,
    tcb_levels: Vec<QeTcbLevelJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QeTcbLevelJson<'a> {
    tcb: QeTcbJson,
    tcb_date: String,
    tcb_status: &'static str,
    #[serde(rename = "advisoryIDs", skip_serializing_if = "<[String]>::is_empty")]
    advisory_ids: &'a [String],
}

#[derive(Serialize)]
struct QeTcbJson {
    isvsvn: u16,
}
