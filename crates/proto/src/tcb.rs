//! The soft backend's TCB status as it travels: a DCAP-style level and the advisories that gave
//! it, each with a stable id (`COFFER-SA-NNNN`, documented in `docs/advisories.md`) and a short
//! text naming what was found on the host.
//!
//! The platform daemon computes it (`coffer_platform::tcb`); `coffer platform status` shows it,
//! and quotes will carry it signed, so it is plain serde data.

use serde::{Deserialize, Serialize};

/// DCAP-style TCB levels, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TcbLevel {
    /// No channel into enclaves is open to root at run time and nothing needs configuring.
    UpToDate,
    /// The host works, but root at run time can reach into enclaves or the platform's keys:
    /// each open channel is an advisory.
    #[serde(rename = "SWHardeningNeeded")]
    SwHardeningNeeded,
    /// A protection of the soft backend itself is missing (secret memory, the daemon's root).
    ConfigurationNeeded,
}

impl TcbLevel {
    /// DCAP's spelling of the level.
    pub fn as_str(self) -> &'static str {
        match self {
            TcbLevel::UpToDate => "UpToDate",
            TcbLevel::SwHardeningNeeded => "SWHardeningNeeded",
            TcbLevel::ConfigurationNeeded => "ConfigurationNeeded",
        }
    }
}

impl std::fmt::Display for TcbLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason for the level: an advisory id (`COFFER-SA-0001`) and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Advisory {
    pub id: String,
    pub text: String,
}

/// A TCB level and the advisories that gave it (none for `UpToDate`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TcbStatus {
    pub level: TcbLevel,
    pub advisories: Vec<Advisory>,
}

impl TcbStatus {
    /// The advisory ids, in order.
    pub fn advisory_ids(&self) -> impl Iterator<Item = &str> {
        self.advisories.iter().map(|a| a.id.as_str())
    }
}

impl std::fmt::Display for TcbStatus {
    /// `UpToDate`, or the level followed by its advisories:
    /// `SWHardeningNeeded: COFFER-SA-0001 text; COFFER-SA-0002 text`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.level.as_str())?;
        for (i, a) in self.advisories.iter().enumerate() {
            let sep = if i == 0 { ": " } else { "; " };
            write!(f, "{sep}{} {}", a.id, a.text)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_prints_the_level_and_each_advisory() {
        let s = TcbStatus {
            level: TcbLevel::SwHardeningNeeded,
            advisories: vec![
                Advisory {
                    id: "COFFER-SA-0001".into(),
                    text: "a".into(),
                },
                Advisory {
                    id: "COFFER-SA-0002".into(),
                    text: "b".into(),
                },
            ],
        };
        let bytes = postcard::to_allocvec(&s).unwrap();
        let (back, rest) = postcard::take_from_bytes::<TcbStatus>(&bytes).unwrap();
        assert!(rest.is_empty());
        assert_eq!(back, s);
        assert_eq!(
            s.to_string(),
            "SWHardeningNeeded: COFFER-SA-0001 a; COFFER-SA-0002 b"
        );
        assert_eq!(
            s.advisory_ids().collect::<Vec<_>>(),
            ["COFFER-SA-0001", "COFFER-SA-0002"]
        );
        let up = TcbStatus {
            level: TcbLevel::UpToDate,
            advisories: vec![],
        };
        assert_eq!(up.to_string(), "UpToDate");
        assert!(TcbLevel::UpToDate < TcbLevel::SwHardeningNeeded);
        assert!(TcbLevel::SwHardeningNeeded < TcbLevel::ConfigurationNeeded);
    }
}
