//! How the platform's hardening facts become SGX TCB components, and TCB levels of the
//! collateral.
//!
//! SGX TCB component N (1 to 11) stands for advisory N of the platform's table
//! ([`coffer_platform::tcb::ADVISORIES`], `COFFER-SA-0001` … `COFFER-SA-0011`, documented in
//! `docs/advisories.md`): SVN 1 when the channel the advisory names is closed on the node, 0
//! when it is open. Components 12 to 16 are 0. A TCB level matches a platform when each of its
//! components is at most the platform's, so a node with a channel closed never matches a level
//! that needs more closed than it has.

use coffer_platform::tcb::ADVISORIES;
use coffer_proto::tcb::{TcbLevel, TcbStatus};

/// Components in use: one per advisory of the platform's table.
pub const COMPONENTS_USED: usize = ADVISORIES.len();

// The SGX extension has sixteen components: the table must fit.
const _: () = assert!(COMPONENTS_USED <= 16);

/// The PCESVN of Coffer's soft backend.
pub const PCESVN: u16 = 1;

/// A TCB status names an advisory the platform's table does not have.
#[derive(Debug, thiserror::Error)]
#[error(
    "the TCB status names advisory {id:?}, which is not in the platform's advisory table (COFFER-SA-0001..COFFER-SA-{last:04}): this CA cannot certify it"
)]
pub struct UnknownAdvisory {
    pub id: String,
    pub last: usize,
}

/// The component index (0-based) of advisory `id`.
pub fn component_of(id: &str) -> Option<usize> {
    ADVISORIES.iter().position(|a| a.id == id)
}

/// The sixteen TCB components for a platform whose open advisories are `status`'s.
pub fn components_for(status: &TcbStatus) -> Result<[u8; 16], UnknownAdvisory> {
    let mut c = [0u8; 16];
    c[..COMPONENTS_USED].fill(1);
    for id in status.advisory_ids() {
        let i = component_of(id).ok_or_else(|| UnknownAdvisory {
            id: id.to_owned(),
            last: COMPONENTS_USED,
        })?;
        c[i] = 0;
    }
    Ok(c)
}

/// The advisory ids open at `components`, in the table's order.
pub fn open_advisories(components: &[u8; 16]) -> Vec<String> {
    ADVISORIES
        .iter()
        .zip(components)
        .filter(|(_, svn)| **svn == 0)
        .map(|(a, _)| a.id.to_owned())
        .collect()
}

/// The components of a node with every channel closed.
pub fn all_closed() -> [u8; 16] {
    let mut c = [0u8; 16];
    c[..COMPONENTS_USED].fill(1);
    c
}

/// The collateral's status for a platform level (the same names as DCAP's).
pub fn dcap_status(level: TcbLevel) -> coffer_dcap::TcbStatus {
    match level {
        TcbLevel::UpToDate => coffer_dcap::TcbStatus::UpToDate,
        TcbLevel::SwHardeningNeeded => coffer_dcap::TcbStatus::SWHardeningNeeded,
        TcbLevel::ConfigurationNeeded => coffer_dcap::TcbStatus::ConfigurationNeeded,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use coffer_proto::tcb::Advisory;

    #[test]
    fn maps_each_advisory_to_its_own_component_and_back() {
        for (i, a) in ADVISORIES.iter().enumerate() {
            assert_eq!(a.id, format!("COFFER-SA-{:04}", i + 1));
            let s = TcbStatus {
                level: TcbLevel::SwHardeningNeeded,
                advisories: vec![Advisory {
                    id: a.id.into(),
                    text: String::new(),
                }],
            };
            let c = components_for(&s).unwrap();
            let mut want = all_closed();
            want[i] = 0;
            assert_eq!(c, want);
            assert_eq!(open_advisories(&c), [a.id]);
        }
    }

    #[test]
    fn rejects_an_unknown_advisory() {
        let s = TcbStatus {
            level: TcbLevel::SwHardeningNeeded,
            advisories: vec![Advisory {
                id: "COFFER-SA-0099".into(),
                text: String::new(),
            }],
        };
        let e = components_for(&s).unwrap_err();
        assert!(e.to_string().contains("COFFER-SA-0099"), "{e}");
    }
}
