//! EREPORT and the report check a target enclave does with EGETKEY(REPORT_KEY).

use coffer_abi::ReportBody;
use coffer_abi::keyrequest::{KeyName, Keyrequest};
use coffer_abi::report::Report;
use coffer_abi::targetinfo::Targetinfo;
use subtle::ConstantTimeEq;

use crate::derive::{KeyDependencies, PlatformRoot, cmac};

/// Why a REPORT does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The MAC does not match: the report was changed, was made for another target, or on
    /// another platform.
    #[error(
        "REPORT MAC does not verify: the report was altered, targets another enclave, or comes from another platform"
    )]
    Mac,
}

/// EREPORT: a REPORT of `secs` (the reporting enclave, with `reportdata` bound in) for `target`,
/// MAC'd with the target's report key.
pub fn ereport(
    root: &PlatformRoot,
    secs: &ReportBody,
    target: &Targetinfo,
    reportdata: &[u8; 64],
    keyid: &[u8; 32],
) -> Report {
    let mut body = secs.clone();
    body.cpusvn = root.cpusvn();
    body.reportdata = *reportdata;
    let target_deps = KeyDependencies {
        mrenclave: target.measurement,
        attributes: target.attributes,
        miscselect: target.miscselect,
        configid: target.configid,
        configsvn: target.configsvn,
        ..KeyDependencies::default()
    };
    let key = root.report_key(&target_deps, keyid);
    let mut out = Report {
        body,
        keyid: *keyid,
        mac: [0; 16],
    };
    out.mac = cmac(&key, &out.mac_data());
    out
}

/// What the target enclave `secs` does to check a REPORT: EGETKEY(REPORT_KEY) with the report's
/// KEYID, then CMAC over the body, compared in constant time.
pub fn verify_report(
    root: &PlatformRoot,
    secs: &ReportBody,
    report: &Report,
) -> Result<(), ReportError> {
    let req = Keyrequest {
        keyname: KeyName::REPORT_KEY,
        keyid: report.keyid,
        ..Keyrequest::default()
    };
    let key = root.egetkey(secs, &req).map_err(|_| ReportError::Mac)?;
    let expected = cmac(&key, &report.mac_data());
    if bool::from(expected.ct_eq(&report.mac)) {
        Ok(())
    } else {
        Err(ReportError::Mac)
    }
}
