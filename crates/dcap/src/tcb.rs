//! TCB statuses, TCB level matching and how the platform and QE statuses combine, as Intel's
//! QVL does it.

use std::fmt;
use std::str::FromStr;

use crate::pck::PckExtension;

/// A TCB status as Intel's TCB Info and QE Identity name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcbStatus {
    UpToDate,
    SWHardeningNeeded,
    ConfigurationNeeded,
    ConfigurationAndSWHardeningNeeded,
    OutOfDate,
    OutOfDateConfigurationNeeded,
    Revoked,
}

impl TcbStatus {
    /// The name Intel writes (`"UpToDate"`...).
    pub fn as_str(&self) -> &'static str {
        match self {
            TcbStatus::UpToDate => "UpToDate",
            TcbStatus::SWHardeningNeeded => "SWHardeningNeeded",
            TcbStatus::ConfigurationNeeded => "ConfigurationNeeded",
            TcbStatus::ConfigurationAndSWHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            TcbStatus::OutOfDate => "OutOfDate",
            TcbStatus::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            TcbStatus::Revoked => "Revoked",
        }
    }

    const ALL: [TcbStatus; 7] = [
        TcbStatus::UpToDate,
        TcbStatus::SWHardeningNeeded,
        TcbStatus::ConfigurationNeeded,
        TcbStatus::ConfigurationAndSWHardeningNeeded,
        TcbStatus::OutOfDate,
        TcbStatus::OutOfDateConfigurationNeeded,
        TcbStatus::Revoked,
    ];

    /// Whether a QE Identity TCB level may carry this status (Intel's QVL accepts these for
    /// enclave identities; the SW-hardening statuses are platform-only).
    pub(crate) fn valid_for_qe(self) -> bool {
        !matches!(
            self,
            TcbStatus::SWHardeningNeeded | TcbStatus::ConfigurationAndSWHardeningNeeded
        )
    }

    /// Combines the platform status (`self`) with the QE's, as Intel's QVL
    /// (`convergeTcbStatusWithQeTcbStatus`): only an `OutOfDate` or `Revoked` QE changes it.
    pub fn converge(self, qe: TcbStatus) -> TcbStatus {
        use TcbStatus::*;
        match (qe, self) {
            (Revoked, _) => Revoked,
            (OutOfDate, UpToDate | SWHardeningNeeded) => OutOfDate,
            (OutOfDate, ConfigurationNeeded | ConfigurationAndSWHardeningNeeded) => {
                OutOfDateConfigurationNeeded
            }
            _ => self,
        }
    }
}

impl fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TcbStatus {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        TcbStatus::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or(())
    }
}

/// The TCB level a TCB Info or QE Identity assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcbLevelMatch {
    pub status: TcbStatus,
    /// The level's `tcbDate` (RFC 3339).
    pub tcb_date: String,
    pub advisory_ids: Vec<String>,
}

/// What the collateral says about the platform and its quoting enclave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcbVerdict {
    /// The platform status converged with the QE's ([`TcbStatus::converge`]). Never
    /// [`TcbStatus::Revoked`]: that is an error.
    pub status: TcbStatus,
    /// The platform level's advisory ids, then the QE level's that are not among them.
    pub advisory_ids: Vec<String>,
    /// The level the TCB Info assigned to the PCK certificate's TCB.
    pub platform: TcbLevelMatch,
    /// The level the QE Identity assigned to the QE's ISVSVN.
    pub qe: TcbLevelMatch,
    /// What the PCK certificate's SGX extension says (FMSPC, PCE-ID, TCB).
    pub pck: PckExtension,
    /// The TCB Info's `tcbEvaluationDataNumber`.
    pub tcb_evaluation_data_number: u32,
    /// The QE Identity's `tcbEvaluationDataNumber`.
    pub qe_identity_tcb_evaluation_data_number: u32,
    /// The earliest `nextUpdate` of the TCB Info, the QE Identity and both CRLs (Unix seconds):
    /// this verdict needs fresh collateral after it.
    pub collateral_next_update: u64,
}

impl TcbVerdict {
    /// Combines the platform and QE levels: status as [`TcbStatus::converge`], advisory ids of
    /// both (platform first, no duplicates).
    pub(crate) fn combine(
        platform: TcbLevelMatch,
        qe: TcbLevelMatch,
        pck: PckExtension,
        tcb_evaluation_data_number: u32,
        qe_identity_tcb_evaluation_data_number: u32,
        collateral_next_update: u64,
    ) -> TcbVerdict {
        let mut advisory_ids = platform.advisory_ids.clone();
        for id in &qe.advisory_ids {
            if !advisory_ids.contains(id) {
                advisory_ids.push(id.clone());
            }
        }
        TcbVerdict {
            status: platform.status.converge(qe.status),
            advisory_ids,
            platform,
            qe,
            pck,
            tcb_evaluation_data_number,
            qe_identity_tcb_evaluation_data_number,
            collateral_next_update,
        }
    }
}

/// One TCB Info level, parsed.
#[derive(Debug, Clone)]
pub(crate) struct PlatformLevel {
    pub components: [u8; 16],
    pub pcesvn: u16,
    pub matched: TcbLevelMatch,
}

/// The first level, in Intel's QVL order (components compared lexicographically, highest
/// first, then PCESVN, highest first; a stable sort keeps the TCB Info's order among equals),
/// whose every component and PCESVN the platform meets.
pub(crate) fn match_platform_level<'a>(
    levels: &'a [PlatformLevel],
    components: &[u8; 16],
    pcesvn: u16,
) -> Option<&'a PlatformLevel> {
    let mut sorted: Vec<&PlatformLevel> = levels.iter().collect();
    sorted.sort_by(|a, b| {
        b.components
            .cmp(&a.components)
            .then_with(|| b.pcesvn.cmp(&a.pcesvn))
    });
    sorted.into_iter().find(|l| {
        l.components
            .iter()
            .zip(components)
            .all(|(need, have)| have >= need)
            && pcesvn >= l.pcesvn
    })
}

/// One QE Identity level, parsed.
#[derive(Debug, Clone)]
pub(crate) struct QeLevel {
    pub isvsvn: u16,
    pub matched: TcbLevelMatch,
}

/// The first QE level, in the QE Identity's order, whose ISVSVN the QE meets (Intel publishes
/// them highest first).
pub(crate) fn match_qe_level(levels: &[QeLevel], isvsvn: u16) -> Option<&QeLevel> {
    levels.iter().find(|l| isvsvn >= l.isvsvn)
}
