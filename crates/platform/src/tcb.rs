//! The soft backend's TCB status: how hardened the host is (DESIGN §1).
//!
//! The kernel and the daemon are inside the soft backend's trusted computing base, so the
//! platform reports what protects them, as DCAP reports TCB levels: `UpToDate`,
//! `SWHardeningNeeded` (the host works but should be hardened), `ConfigurationNeeded` (a
//! protection of §1 is missing). Each level comes with the reasons that gave it.
//!
//! [`HostFacts::probe`] reads the host; [`TcbStatus::evaluate`] is a pure function of those
//! facts, so every mapping is tested without changing the machine.

use std::path::Path;

/// DCAP-style TCB levels, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TcbLevel {
    UpToDate,
    SwHardeningNeeded,
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

/// The kernel lockdown mode (`/sys/kernel/security/lockdown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lockdown {
    None,
    Integrity,
    Confidentiality,
}

/// Whether kernel modules can be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleLoading {
    /// The kernel was built without module support.
    Unsupported,
    /// `modules_disabled` is 1: no module can be loaded until reboot.
    Disabled,
    Enabled,
    /// Neither file could be read.
    Unknown,
}

/// What the daemon found on its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// Yama's `ptrace_scope`, `None` when Yama is not active.
    pub yama_ptrace_scope: Option<u8>,
    /// `None` when the lockdown LSM is absent or securityfs is not mounted.
    pub lockdown: Option<Lockdown>,
    pub modules: ModuleLoading,
    /// `memfd_secret(2)` works.
    pub secret_memory: bool,
    /// The daemon's effective uid (0: root).
    pub euid: u32,
}

/// A TCB level and the reasons that gave it (empty for `UpToDate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcbStatus {
    pub level: TcbLevel,
    pub reasons: Vec<String>,
}

fn read_small(path: &str) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(4096)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// Parses `/sys/kernel/security/lockdown`, whose active mode is in brackets:
/// `none [integrity] confidentiality`.
pub fn parse_lockdown(text: &str) -> Option<Lockdown> {
    let start = text.find('[')?;
    let end = start + text.get(start..)?.find(']')?;
    match text.get(start + 1..end)? {
        "none" => Some(Lockdown::None),
        "integrity" => Some(Lockdown::Integrity),
        "confidentiality" => Some(Lockdown::Confidentiality),
        _ => None,
    }
}

impl HostFacts {
    /// Reads the host's settings.
    pub fn probe() -> HostFacts {
        let yama_ptrace_scope = read_small("/proc/sys/kernel/yama/ptrace_scope")
            .and_then(|t| t.trim().parse::<u8>().ok());
        let lockdown = read_small("/sys/kernel/security/lockdown").and_then(|t| parse_lockdown(&t));
        let modules =
            match read_small("/proc/sys/kernel/modules_disabled").map(|t| t.trim().to_owned()) {
                Some(t) if t == "1" => ModuleLoading::Disabled,
                Some(t) if t == "0" => ModuleLoading::Enabled,
                Some(_) => ModuleLoading::Unknown,
                None if !Path::new("/proc/modules").exists() => ModuleLoading::Unsupported,
                None => ModuleLoading::Unknown,
            };
        HostFacts {
            yama_ptrace_scope,
            lockdown,
            modules,
            secret_memory: coffer_boundary::secret_memory_available(),
            euid: rustix::process::geteuid().as_raw(),
        }
    }
}

impl TcbStatus {
    /// Maps host facts to a level, with one reason per shortfall.
    pub fn evaluate(f: &HostFacts) -> TcbStatus {
        let mut level = TcbLevel::UpToDate;
        let mut reasons = Vec::new();
        let mut note = |l: TcbLevel, reason: String| {
            level = level.max(l);
            reasons.push(reason);
        };
        if !f.secret_memory {
            note(
                TcbLevel::ConfigurationNeeded,
                "memfd_secret is unavailable (boot with secretmem.enable=1): enclave memory is ordinary memory that root can read".into(),
            );
        }
        if f.euid != 0 {
            note(
                TcbLevel::ConfigurationNeeded,
                format!(
                    "the daemon runs without root: enclaves run under the daemon's uid {} instead of a uid of their own (still non-dumpable and sandboxed)",
                    f.euid
                ),
            );
        }
        match f.yama_ptrace_scope {
            None => note(
                TcbLevel::SwHardeningNeeded,
                "Yama is not active: ptrace is limited only by uid and dumpability (set ptrace_scope to 2 or 3)".into(),
            ),
            Some(s @ (0 | 1)) => note(
                TcbLevel::SwHardeningNeeded,
                format!("Yama ptrace_scope is {s}: set it to 2 (admin-only attach) or 3 (no attach)"),
            ),
            Some(_) => {}
        }
        match f.lockdown {
            None => note(
                TcbLevel::SwHardeningNeeded,
                "kernel lockdown is not available: root can read kernel memory, secret memory included".into(),
            ),
            Some(Lockdown::None) => note(
                TcbLevel::SwHardeningNeeded,
                "kernel lockdown is off: root can read kernel memory, secret memory included (boot with lockdown=confidentiality)".into(),
            ),
            Some(Lockdown::Integrity) => note(
                TcbLevel::SwHardeningNeeded,
                "kernel lockdown is integrity: confidentiality would also keep root from reading kernel memory".into(),
            ),
            Some(Lockdown::Confidentiality) => {}
        }
        match f.modules {
            ModuleLoading::Unsupported | ModuleLoading::Disabled => {}
            ModuleLoading::Enabled => note(
                TcbLevel::SwHardeningNeeded,
                "kernel modules can be loaded: root can add code to the kernel (set /proc/sys/kernel/modules_disabled to 1)".into(),
            ),
            ModuleLoading::Unknown => note(
                TcbLevel::SwHardeningNeeded,
                "cannot tell whether kernel modules can be loaded".into(),
            ),
        }
        TcbStatus { level, reasons }
    }
}

impl std::fmt::Display for TcbStatus {
    /// `UpToDate`, or the level followed by its reasons: `SWHardeningNeeded: a; b`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.level.as_str())?;
        if !self.reasons.is_empty() {
            write!(f, ": {}", self.reasons.join("; "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hardened() -> HostFacts {
        HostFacts {
            yama_ptrace_scope: Some(3),
            lockdown: Some(Lockdown::Confidentiality),
            modules: ModuleLoading::Disabled,
            secret_memory: true,
            euid: 0,
        }
    }

    #[test]
    fn accepts_a_hardened_host_as_up_to_date() {
        let s = TcbStatus::evaluate(&hardened());
        assert_eq!(s.level, TcbLevel::UpToDate);
        assert!(s.reasons.is_empty());
        assert_eq!(s.to_string(), "UpToDate");
        let s = TcbStatus::evaluate(&HostFacts {
            yama_ptrace_scope: Some(2),
            modules: ModuleLoading::Unsupported,
            ..hardened()
        });
        assert_eq!(s.level, TcbLevel::UpToDate);
    }

    #[test]
    fn asks_for_software_hardening_naming_each_gap() {
        let s = TcbStatus::evaluate(&HostFacts {
            yama_ptrace_scope: Some(1),
            lockdown: Some(Lockdown::None),
            modules: ModuleLoading::Enabled,
            ..hardened()
        });
        assert_eq!(s.level, TcbLevel::SwHardeningNeeded);
        assert_eq!(s.reasons.len(), 3);
        let text = s.to_string();
        assert!(text.starts_with("SWHardeningNeeded: "), "{text}");
        for needle in [
            "ptrace_scope is 1",
            "lockdown is off",
            "modules can be loaded",
        ] {
            assert!(text.contains(needle), "{text} lacks {needle}");
        }
        let s = TcbStatus::evaluate(&HostFacts {
            yama_ptrace_scope: None,
            lockdown: None,
            ..hardened()
        });
        assert_eq!(s.level, TcbLevel::SwHardeningNeeded);
        assert!(s.to_string().contains("Yama is not active"));
    }

    #[test]
    fn asks_for_configuration_without_secret_memory_or_root() {
        let s = TcbStatus::evaluate(&HostFacts {
            secret_memory: false,
            lockdown: Some(Lockdown::Integrity),
            ..hardened()
        });
        assert_eq!(s.level, TcbLevel::ConfigurationNeeded);
        assert_eq!(s.reasons.len(), 2);
        let s = TcbStatus::evaluate(&HostFacts {
            euid: 1000,
            ..hardened()
        });
        assert_eq!(s.level, TcbLevel::ConfigurationNeeded);
        assert!(s.to_string().contains("uid 1000"), "{s}");
    }

    #[test]
    fn parses_the_lockdown_file() {
        assert_eq!(
            parse_lockdown("none [integrity] confidentiality\n"),
            Some(Lockdown::Integrity)
        );
        assert_eq!(
            parse_lockdown("[none] integrity confidentiality"),
            Some(Lockdown::None)
        );
        assert_eq!(
            parse_lockdown("none integrity [confidentiality]"),
            Some(Lockdown::Confidentiality)
        );
        assert_eq!(parse_lockdown("none integrity"), None);
        assert_eq!(parse_lockdown("[bogus]"), None);
        assert_eq!(parse_lockdown("]["), None);
    }

    #[test]
    fn probes_this_host() {
        let facts = HostFacts::probe();
        assert_eq!(facts.euid, rustix::process::geteuid().as_raw());
        let s = TcbStatus::evaluate(&facts);
        assert_eq!(s.level == TcbLevel::UpToDate, s.reasons.is_empty());
    }
}
