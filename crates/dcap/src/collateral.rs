//! Intel's verification collateral: the JSON shape of dcap-qvl's `QuoteCollateralV3`, and the
//! TCB Info (v3) and QE Identity (v2) documents inside it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::QuoteVerificationError as E;
use crate::tcb::{PlatformLevel, QeLevel, TcbLevelMatch, TcbStatus};

/// Largest collateral file accepted (Intel's is about 15 KiB).
pub const MAX_COLLATERAL_SIZE: usize = 1024 * 1024;

/// Most TCB levels accepted in one TCB Info or QE Identity (Intel's have a few dozen).
pub const MAX_TCB_LEVELS: usize = 1024;

/// Everything needed to evaluate a quote's TCB, as Intel's PCS publishes it for one platform
/// family (FMSPC). The field names and encodings are dcap-qvl's `QuoteCollateralV3` JSON: PEM
/// chains as text, CRLs and signatures as hex, the TCB Info and QE Identity as the exact JSON
/// text Intel signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collateral {
    /// PEM chain of the PCK CRL's issuer (PCK Processor or Platform CA, then the root).
    pub pck_crl_issuer_chain: String,
    /// The root CA's CRL (DER), revoking intermediate CAs and collateral signers.
    #[serde(with = "hex::serde")]
    pub root_ca_crl: Vec<u8>,
    /// The PCK CA's CRL (DER), revoking PCK certificates.
    #[serde(with = "hex::serde")]
    pub pck_crl: Vec<u8>,
    /// PEM chain of the TCB Info signer (Intel SGX TCB Signing, then the root).
    pub tcb_info_issuer_chain: String,
    /// The TCB Info object's exact JSON text (`{"id":"SGX","version":3,...}`).
    pub tcb_info: String,
    /// ECDSA P-256 signature over `tcb_info`'s bytes, raw r ‖ s.
    #[serde(with = "hex::serde")]
    pub tcb_info_signature: Vec<u8>,
    /// PEM chain of the QE Identity signer.
    pub qe_identity_issuer_chain: String,
    /// The QE Identity object's exact JSON text (`{"id":"QE","version":2,...}`).
    pub qe_identity: String,
    /// ECDSA P-256 signature over `qe_identity`'s bytes, raw r ‖ s.
    #[serde(with = "hex::serde")]
    pub qe_identity_signature: Vec<u8>,
}

/// Why a collateral file was not read.
#[derive(Debug, thiserror::Error)]
pub enum CollateralError {
    #[error("collateral: {length} bytes exceed the limit of {limit}")]
    TooLarge { length: usize, limit: usize },
    #[error("collateral: not the JSON of a QuoteCollateralV3: {0}")]
    Json(#[source] serde_json::Error),
}

impl Collateral {
    /// Reads the JSON form (dcap-qvl's `QuoteCollateralV3`). Unknown keys are ignored;
    /// trailing data after the object is not.
    pub fn from_json(bytes: &[u8]) -> Result<Collateral, CollateralError> {
        if bytes.len() > MAX_COLLATERAL_SIZE {
            return Err(CollateralError::TooLarge {
                length: bytes.len(),
                limit: MAX_COLLATERAL_SIZE,
            });
        }
        serde_json::from_slice(bytes).map_err(CollateralError::Json)
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        // Serializing strings and byte vectors cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// `secs` as RFC 3339 UTC (`2026-01-01T00:00:00Z`), for messages.
pub(crate) fn rfc3339(secs: u64) -> String {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
    match t {
        Some(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        None => format!("{secs} Unix seconds"),
    }
}

/// A date of the collateral, as Unix seconds and as written.
#[derive(Debug, Clone)]
pub(crate) struct Date {
    pub secs: i64,
    pub text: String,
}

pub(crate) fn parse_date(item: &'static str, field: &str, text: &str) -> Result<Date, E> {
    let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| E::CollateralMalformed {
        item,
        reason: format!("{field} {text:?} is not an RFC 3339 time: {e}"),
    })?;
    Ok(Date {
        secs: t.unix_timestamp(),
        text: text.to_owned(),
    })
}

/// Fails unless `issued <= now <= next_update`.
pub(crate) fn check_fresh(
    item: &'static str,
    issued: &Date,
    next_update: &Date,
    now: u64,
) -> Result<(), E> {
    let t = i64::try_from(now).unwrap_or(i64::MAX);
    if t < issued.secs {
        return Err(E::CollateralNotYetValid {
            item,
            issued: issued.text.clone(),
            now,
        });
    }
    if t > next_update.secs {
        return Err(E::CollateralStale {
            item,
            next_update: next_update.text.clone(),
            now,
        });
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TcbInfoJson {
    id: String,
    version: u32,
    issue_date: String,
    next_update: String,
    fmspc: String,
    pce_id: String,
    tcb_type: u32,
    tcb_evaluation_data_number: u32,
    tcb_levels: Vec<TcbLevelJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TcbLevelJson {
    tcb: TcbJson,
    tcb_date: String,
    tcb_status: String,
    #[serde(rename = "advisoryIDs", default)]
    advisory_ids: Vec<String>,
}

#[derive(Deserialize)]
struct TcbJson {
    sgxtcbcomponents: Vec<SvnJson>,
    pcesvn: u16,
}

#[derive(Deserialize)]
struct SvnJson {
    svn: u8,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QeIdentityJson {
    id: String,
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
    tcb_levels: Vec<QeTcbLevelJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QeTcbLevelJson {
    tcb: QeTcbJson,
    tcb_date: String,
    tcb_status: String,
    #[serde(rename = "advisoryIDs", default)]
    advisory_ids: Vec<String>,
}

#[derive(Deserialize)]
struct QeTcbJson {
    isvsvn: u16,
}

/// A verified-signature TCB Info (SGX, version 3), parsed.
#[derive(Debug)]
pub(crate) struct TcbInfo {
    pub issue_date: Date,
    pub next_update: Date,
    pub fmspc: [u8; 6],
    pub pce_id: [u8; 2],
    pub tcb_evaluation_data_number: u32,
    pub levels: Vec<PlatformLevel>,
}

/// A verified-signature QE Identity (QE, version 2), parsed.
#[derive(Debug)]
pub(crate) struct QeIdentity {
    pub issue_date: Date,
    pub next_update: Date,
    pub tcb_evaluation_data_number: u32,
    pub miscselect: u32,
    pub miscselect_mask: u32,
    pub attributes: [u8; 16],
    pub attributes_mask: [u8; 16],
    pub mrsigner: [u8; 32],
    pub isvprodid: u16,
    pub levels: Vec<QeLevel>,
}

fn hex_field<const N: usize>(item: &'static str, field: &str, text: &str) -> Result<[u8; N], E> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|e| E::CollateralMalformed {
        item,
        reason: format!("{field} {text:?} is not {N} bytes of hex: {e}"),
    })?;
    Ok(out)
}

fn status(item: &'static str, text: &str) -> Result<TcbStatus, E> {
    text.parse().map_err(|()| E::CollateralMalformed {
        item,
        reason: format!("unknown tcbStatus {text:?}"),
    })
}

fn too_many_levels(item: &'static str, n: usize) -> Result<(), E> {
    if n > MAX_TCB_LEVELS {
        return Err(E::CollateralMalformed {
            item,
            reason: format!("{n} TCB levels exceed the limit of {MAX_TCB_LEVELS}"),
        });
    }
    if n == 0 {
        return Err(E::CollateralMalformed {
            item,
            reason: "no TCB levels".into(),
        });
    }
    Ok(())
}

const TCB_INFO: &str = "TCB Info";
const QE_IDENTITY: &str = "QE Identity";

/// Parses the TCB Info JSON text (after its signature verified).
pub(crate) fn parse_tcb_info(text: &str) -> Result<TcbInfo, E> {
    let j: TcbInfoJson = serde_json::from_str(text).map_err(|e| E::CollateralMalformed {
        item: TCB_INFO,
        reason: e.to_string(),
    })?;
    if j.id != "SGX" || j.version != 3 || j.tcb_type != 0 {
        return Err(E::CollateralUnsupported {
            item: TCB_INFO,
            reason: format!(
                "id {:?} version {} tcbType {}; Coffer evaluates SGX TCB Info version 3, tcbType 0",
                j.id, j.version, j.tcb_type
            ),
        });
    }
    too_many_levels(TCB_INFO, j.tcb_levels.len())?;
    let levels = j
        .tcb_levels
        .into_iter()
        .map(|l| {
            let comps: Vec<u8> = l.tcb.sgxtcbcomponents.iter().map(|c| c.svn).collect();
            let components: [u8; 16] =
                comps
                    .as_slice()
                    .try_into()
                    .map_err(|_| E::CollateralMalformed {
                        item: TCB_INFO,
                        reason: format!("a TCB level has {} sgxtcbcomponents, not 16", comps.len()),
                    })?;
            Ok(PlatformLevel {
                components,
                pcesvn: l.tcb.pcesvn,
                matched: TcbLevelMatch {
                    status: status(TCB_INFO, &l.tcb_status)?,
                    tcb_date: l.tcb_date,
                    advisory_ids: l.advisory_ids,
                },
            })
        })
        .collect::<Result<Vec<_>, E>>()?;
    Ok(TcbInfo {
        issue_date: parse_date(TCB_INFO, "issueDate", &j.issue_date)?,
        next_update: parse_date(TCB_INFO, "nextUpdate", &j.next_update)?,
        fmspc: hex_field(TCB_INFO, "fmspc", &j.fmspc)?,
        pce_id: hex_field(TCB_INFO, "pceId", &j.pce_id)?,
        tcb_evaluation_data_number: j.tcb_evaluation_data_number,
        levels,
    })
}

/// Parses the QE Identity JSON text (after its signature verified).
pub(crate) fn parse_qe_identity(text: &str) -> Result<QeIdentity, E> {
    let j: QeIdentityJson = serde_json::from_str(text).map_err(|e| E::CollateralMalformed {
        item: QE_IDENTITY,
        reason: e.to_string(),
    })?;
    if j.id != "QE" || j.version != 2 {
        return Err(E::CollateralUnsupported {
            item: QE_IDENTITY,
            reason: format!(
                "id {:?} version {}; Coffer evaluates the SGX QE Identity (id QE) version 2",
                j.id, j.version
            ),
        });
    }
    too_many_levels(QE_IDENTITY, j.tcb_levels.len())?;
    let levels = j
        .tcb_levels
        .into_iter()
        .map(|l| {
            Ok(QeLevel {
                isvsvn: l.tcb.isvsvn,
                matched: TcbLevelMatch {
                    status: status(QE_IDENTITY, &l.tcb_status)?,
                    tcb_date: l.tcb_date,
                    advisory_ids: l.advisory_ids,
                },
            })
        })
        .collect::<Result<Vec<_>, E>>()?;
    Ok(QeIdentity {
        issue_date: parse_date(QE_IDENTITY, "issueDate", &j.issue_date)?,
        next_update: parse_date(QE_IDENTITY, "nextUpdate", &j.next_update)?,
        tcb_evaluation_data_number: j.tcb_evaluation_data_number,
        // Little-endian, as the REPORT's MISCSELECT field (and dcap-qvl) reads them.
        miscselect: u32::from_le_bytes(hex_field(QE_IDENTITY, "miscselect", &j.miscselect)?),
        miscselect_mask: u32::from_le_bytes(hex_field(
            QE_IDENTITY,
            "miscselectMask",
            &j.miscselect_mask,
        )?),
        attributes: hex_field(QE_IDENTITY, "attributes", &j.attributes)?,
        attributes_mask: hex_field(QE_IDENTITY, "attributesMask", &j.attributes_mask)?,
        mrsigner: hex_field(QE_IDENTITY, "mrsigner", &j.mrsigner)?,
        isvprodid: j.isvprodid,
        levels,
    })
}
