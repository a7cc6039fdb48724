//! The soft backend's TCB status: what protects enclaves on this host, and every channel into
//! them that remains open to root at run time (DESIGN §1, §5).
//!
//! The kernel, the daemon and root at run time are inside the soft backend's trusted computing
//! base. The platform reports how far, as DCAP reports TCB levels: `UpToDate` only when no
//! channel is open, `SWHardeningNeeded` when root can reach into enclaves or the platform's keys
//! (a host where root can read enclave memory is never above it), `ConfigurationNeeded` when a
//! protection of the soft backend itself is missing. Each open channel is one advisory with a
//! stable id from [`ADVISORIES`], documented in `docs/advisories.md` with the attack it allows
//! and the setting that closes it.
//!
//! [`HostFacts::probe`] reads the host (kernel configuration from `/proc/config.gz` or
//! `/boot/config-RELEASE`, boot command line, sysctls, and the lockdown mode from securityfs,
//! mounted detached with `fsopen(2)` when the host has not mounted it, so no mount of the host
//! changes); [`evaluate`] is a pure function of those facts, so every mapping is tested without
//! changing the machine.

use std::collections::HashMap;
use std::io::Read;

pub use coffer_proto::tcb::{Advisory, TcbLevel, TcbStatus};

/// One advisory: its stable id, the channel it names, and what closes it. `docs/advisories.md`
/// documents each (a test checks that it lists every id with its title).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvisoryInfo {
    pub id: &'static str,
    pub title: &'static str,
    /// The host setting or kernel build option that closes the channel.
    pub closed_by: &'static str,
}

/// The channels and shortfalls the TCB status can name, one advisory each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    BpfTracing,
    Uprobes,
    PerfSampling,
    Ptrace,
    DescriptorTheft,
    ProcMemWrite,
    Lockdown,
    ModuleLoading,
    RootKeyFile,
    SecretMemory,
    DaemonUid,
}

impl Channel {
    /// Every channel, in advisory-id order.
    pub const ALL: [Channel; 11] = [
        Channel::BpfTracing,
        Channel::Uprobes,
        Channel::PerfSampling,
        Channel::Ptrace,
        Channel::DescriptorTheft,
        Channel::ProcMemWrite,
        Channel::Lockdown,
        Channel::ModuleLoading,
        Channel::RootKeyFile,
        Channel::SecretMemory,
        Channel::DaemonUid,
    ];

    /// The channel's advisory.
    pub fn advisory(self) -> &'static AdvisoryInfo {
        &ADVISORIES[self as usize]
    }

    /// The channel's advisory id, e.g. `COFFER-SA-0001`.
    pub fn id(self) -> &'static str {
        self.advisory().id
    }
}

/// The advisories, indexed by [`Channel`]. Ids are stable: a channel never changes its id, and
/// a new channel gets the next one.
pub const ADVISORIES: [AdvisoryInfo; 11] = [
    AdvisoryInfo {
        id: "COFFER-SA-0001",
        title: "BPF tracing programs read enclave memory",
        closed_by: "a kernel built without CONFIG_BPF_EVENTS (or without CONFIG_BPF_SYSCALL)",
    },
    AdvisoryInfo {
        id: "COFFER-SA-0002",
        title: "uprobes read enclave registers and memory",
        closed_by: "a kernel built without CONFIG_UPROBES",
    },
    AdvisoryInfo {
        id: "COFFER-SA-0003",
        title: "perf samples enclave user stacks and registers",
        closed_by: "a kernel built without CONFIG_PERF_EVENTS (x86 selects it unconditionally)",
    },
    AdvisoryInfo {
        id: "COFFER-SA-0004",
        title: "root attaches to enclaves with ptrace",
        closed_by: "Yama active with kernel.yama.ptrace_scope = 3",
    },
    AdvisoryInfo {
        id: "COFFER-SA-0005",
        title: "root takes enclave descriptors with pidfd_getfd",
        closed_by: "Yama active with kernel.yama.ptrace_scope = 3",
    },
    AdvisoryInfo {
        id: "COFFER-SA-0006",
        title: "root writes enclave code through /proc/PID/mem",
        closed_by: "proc_mem.force_override=never (or CONFIG_PROC_MEM_NO_FORCE), or Yama ptrace_scope = 3",
    },
    AdvisoryInfo {
        id: "COFFER-SA-0007",
        title: "kernel lockdown is not in confidentiality mode",
        closed_by: "lockdown=confidentiality (or CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY) with the lockdown LSM active",
    },
    AdvisoryInfo {
        id: "COFFER-SA-0008",
        title: "root loads kernel modules",
        closed_by: "a kernel built without CONFIG_MODULES, or kernel.modules_disabled = 1",
    },
    AdvisoryInfo {
        id: "COFFER-SA-0009",
        title: "the platform root key is a file",
        closed_by: "nothing yet: the soft backend keeps its root key in the state directory",
    },
    AdvisoryInfo {
        id: "COFFER-SA-0010",
        title: "secret memory is unavailable",
        closed_by: "secretmem.enable=1 on kernels that need it (CONFIG_SECRETMEM)",
    },
    AdvisoryInfo {
        id: "COFFER-SA-0011",
        title: "the platform daemon runs without root",
        closed_by: "running `coffer platform serve` as root",
    },
];

/// A kernel build option as the host's configuration gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelOption {
    /// `=y` or `=m`.
    Enabled,
    /// `is not set`, or absent from a configuration that was read.
    Disabled,
    /// The host exposes no kernel configuration.
    Unknown,
}

/// The kernel lockdown mode (`lockdown` in securityfs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lockdown {
    None,
    Integrity,
    Confidentiality,
}

/// What the lockdown LSM says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockdownState {
    /// The lockdown LSM is active in this mode.
    Mode(Lockdown),
    /// securityfs was read and the lockdown LSM is not among the active ones.
    NotActive,
    /// securityfs could not be read (the daemon lacks the right to mount it, say): why.
    Unknown(String),
}

/// Whether kernel modules can be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleLoading {
    /// The kernel was built without module support.
    Unsupported,
    /// `modules_disabled` is 1: no module can be loaded until reboot.
    Disabled,
    Enabled,
    /// Neither the configuration nor `modules_disabled` could be read.
    Unknown,
}

/// Whether `/proc/PID/mem` writes may override page protections (`proc_mem.force_override`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcMemForce {
    /// Always (the default, and the only behaviour before Linux 6.12).
    Always,
    /// Only for a process's ptracer.
    Ptrace,
    Never,
    Unknown,
}

/// What the daemon found on its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// Where the kernel configuration was read (`/proc/config.gz`, `/boot/config-…`), `None`
    /// when the host exposes none (every option is then [`KernelOption::Unknown`]).
    pub kernel_config: Option<String>,
    pub bpf_syscall: KernelOption,
    pub bpf_events: KernelOption,
    pub uprobes: KernelOption,
    pub perf_events: KernelOption,
    /// `kernel.perf_event_paranoid` (it limits users without CAP_PERFMON, not root).
    pub perf_event_paranoid: Option<i32>,
    /// `kernel.unprivileged_bpf_disabled` (it limits users without CAP_BPF, not root).
    pub unprivileged_bpf_disabled: Option<u32>,
    /// Yama's `ptrace_scope`, `None` when Yama is not active.
    pub yama_ptrace_scope: Option<u8>,
    pub proc_mem_force: ProcMemForce,
    pub lockdown: LockdownState,
    pub modules: ModuleLoading,
    /// The platform root key is kept in a file of the state directory (true on every soft
    /// backend today).
    pub root_key_in_file: bool,
    /// `memfd_secret(2)` works.
    pub secret_memory: bool,
    /// The daemon's effective uid (0: root).
    pub euid: u32,
}

/// How much of a kernel file or configuration is read at most.
const MAX_SMALL_FILE: u64 = 4096;
const MAX_CONFIG: u64 = 4 << 20;

fn read_small(path: &str) -> Option<String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_SMALL_FILE)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// Parses `lockdown` in securityfs, whose active mode is in brackets:
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

/// A kernel configuration (`CONFIG_NAME=value` lines; `# CONFIG_NAME is not set` is the same as
/// absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelConfig {
    options: HashMap<String, String>,
}

impl KernelConfig {
    pub fn parse(text: &str) -> KernelConfig {
        let options = text
            .lines()
            .filter_map(|l| l.trim().split_once('='))
            .filter(|(k, _)| k.starts_with("CONFIG_"))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect();
        KernelConfig { options }
    }

    /// `CONFIG_NAME` (give the full name).
    pub fn option(&self, name: &str) -> KernelOption {
        match self.options.get(name).map(String::as_str) {
            Some("y" | "m") => KernelOption::Enabled,
            _ => KernelOption::Disabled,
        }
    }

    /// The raw value of `CONFIG_NAME` (quotes removed), if set.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.options.get(name).map(String::as_str)
    }
}

/// Reads the running kernel's configuration: `/proc/config.gz` (CONFIG_IKCONFIG_PROC), else
/// `/boot/config-RELEASE`. Returns where it came from.
pub fn read_kernel_config() -> Option<(String, KernelConfig)> {
    let gz = "/proc/config.gz";
    if let Ok(file) = std::fs::File::open(gz) {
        let mut text = String::new();
        if flate2::read::GzDecoder::new(file)
            .take(MAX_CONFIG)
            .read_to_string(&mut text)
            .is_ok()
        {
            return Some((gz.to_owned(), KernelConfig::parse(&text)));
        }
        tracing::warn!("{gz} could not be decompressed; trying /boot");
    }
    let release = rustix::system::uname();
    let path = format!("/boot/config-{}", release.release().to_string_lossy());
    let mut text = String::new();
    std::fs::File::open(&path)
        .ok()?
        .take(MAX_CONFIG)
        .read_to_string(&mut text)
        .ok()?;
    Some((path, KernelConfig::parse(&text)))
}

/// The value of `name=` on the kernel command line (the last one wins, as in the kernel).
pub fn cmdline_value<'a>(cmdline: &'a str, name: &str) -> Option<&'a str> {
    cmdline
        .split_whitespace()
        .take_while(|w| *w != "--")
        .filter_map(|w| w.split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .last()
}

/// `/proc/PID/mem`'s force mode: `proc_mem.force_override=` on the command line, else the
/// build's default (`CONFIG_PROC_MEM_*`, Linux 6.12 and later), else always (older kernels).
pub fn proc_mem_force(cmdline: Option<&str>, config: Option<&KernelConfig>) -> ProcMemForce {
    match cmdline.and_then(|c| cmdline_value(c, "proc_mem.force_override")) {
        Some("always") => return ProcMemForce::Always,
        Some("ptrace") => return ProcMemForce::Ptrace,
        Some("never") => return ProcMemForce::Never,
        _ => {}
    }
    let Some(config) = config else {
        return ProcMemForce::Unknown;
    };
    if config.option("CONFIG_PROC_MEM_NO_FORCE") == KernelOption::Enabled {
        ProcMemForce::Never
    } else if config.option("CONFIG_PROC_MEM_FORCE_PTRACE") == KernelOption::Enabled {
        ProcMemForce::Ptrace
    } else {
        ProcMemForce::Always
    }
}

/// Reads `name` from securityfs: from `/sys/kernel/security` when the host mounted it there,
/// else from a detached securityfs mount of this process (`fsopen`/`fsmount`, which needs
/// CAP_SYS_ADMIN): it is attached nowhere and goes when its descriptor closes, so no mount
/// namespace changes. `Ok(None)` when securityfs has no such file.
pub fn read_securityfs(name: &str) -> std::io::Result<Option<String>> {
    use rustix::fs::{Mode, OFlags};
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};

    let mounted = std::path::Path::new("/sys/kernel/security");
    if mounted.join("lsm").exists() {
        return match read_small(&mounted.join(name).to_string_lossy()) {
            Some(t) => Ok(Some(t)),
            None if !mounted.join(name).exists() => Ok(None),
            None => Err(std::io::Error::other(format!(
                "/sys/kernel/security/{name} could not be read"
            ))),
        };
    }
    let fs = rustix::mount::fsopen("securityfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
    rustix::mount::fsconfig_create(&fs)?;
    let mnt = rustix::mount::fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY
            | MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )?;
    let fd = match rustix::fs::openat(
        &mnt,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(MAX_SMALL_FILE)
        .read_to_string(&mut text)?;
    Ok(Some(text))
}

/// The lockdown LSM's mode, read from securityfs.
pub fn probe_lockdown() -> LockdownState {
    match read_securityfs("lockdown") {
        Ok(Some(text)) => match parse_lockdown(&text) {
            Some(mode) => LockdownState::Mode(mode),
            None => LockdownState::Unknown(format!("unreadable lockdown file {:?}", text.trim())),
        },
        Ok(None) => LockdownState::NotActive,
        Err(e) => LockdownState::Unknown(format!("securityfs could not be read: {e}")),
    }
}

impl HostFacts {
    /// Reads the host's settings.
    pub fn probe() -> HostFacts {
        // The configuration of the running kernel does not change: read it once.
        static CONFIG: std::sync::OnceLock<Option<(String, KernelConfig)>> =
            std::sync::OnceLock::new();
        let config = CONFIG.get_or_init(read_kernel_config);
        let cfg = config.as_ref().map(|(_, c)| c);
        let option = |name: &str| cfg.map_or(KernelOption::Unknown, |c| c.option(name));
        let cmdline = read_small("/proc/cmdline");
        let yama_ptrace_scope = read_small("/proc/sys/kernel/yama/ptrace_scope")
            .and_then(|t| t.trim().parse::<u8>().ok());
        let modules = match (
            option("CONFIG_MODULES"),
            read_small("/proc/sys/kernel/modules_disabled").map(|t| t.trim().to_owned()),
        ) {
            (KernelOption::Disabled, _) => ModuleLoading::Unsupported,
            (_, Some(t)) if t == "1" => ModuleLoading::Disabled,
            (_, Some(t)) if t == "0" => ModuleLoading::Enabled,
            (KernelOption::Enabled, _) => ModuleLoading::Enabled,
            _ => ModuleLoading::Unknown,
        };
        HostFacts {
            kernel_config: config.as_ref().map(|(p, _)| p.clone()),
            bpf_syscall: option("CONFIG_BPF_SYSCALL"),
            bpf_events: option("CONFIG_BPF_EVENTS"),
            uprobes: option("CONFIG_UPROBES"),
            perf_events: option("CONFIG_PERF_EVENTS"),
            perf_event_paranoid: read_small("/proc/sys/kernel/perf_event_paranoid")
                .and_then(|t| t.trim().parse().ok()),
            unprivileged_bpf_disabled: read_small("/proc/sys/kernel/unprivileged_bpf_disabled")
                .and_then(|t| t.trim().parse().ok()),
            yama_ptrace_scope,
            proc_mem_force: proc_mem_force(cmdline.as_deref(), cfg),
            lockdown: probe_lockdown(),
            modules,
            root_key_in_file: true,
            secret_memory: coffer_boundary::secret_memory_available(),
            euid: rustix::process::geteuid().as_raw(),
        }
    }

    /// The TCB status these facts give ([`evaluate`]).
    pub fn tcb_status(&self) -> TcbStatus {
        evaluate(self)
    }

    /// Whether root can ptrace an enclave (and so open its `/proc/PID/mem` for writing and take
    /// its descriptors): unless Yama forbids every attach.
    pub fn ptrace_open(&self) -> bool {
        self.yama_ptrace_scope.is_none_or(|s| s < 3)
    }

    fn config_note(&self, option: KernelOption, name: &str) -> String {
        match option {
            KernelOption::Enabled => format!("{name}=y"),
            KernelOption::Disabled => format!("{name} not set"),
            KernelOption::Unknown => {
                format!("{name} unknown: the kernel configuration is not exposed")
            }
        }
    }

    fn yama_note(&self) -> String {
        match self.yama_ptrace_scope {
            None => "Yama is not active".to_owned(),
            Some(s) => format!("Yama ptrace_scope is {s}"),
        }
    }
}

/// The channels open to root on a host with these facts, in advisory order, each with a short
/// text naming what was found. Pure: it reads nothing but `f`.
pub fn open_channels(f: &HostFacts) -> Vec<(Channel, String)> {
    let mut open = Vec::new();
    // An unknown option counts as enabled: a channel is closed only when the host shows it is.
    let enabled = |o: KernelOption| o != KernelOption::Disabled;
    if enabled(f.bpf_syscall) && enabled(f.bpf_events) {
        let unprivileged = f.unprivileged_bpf_disabled.map_or_else(String::new, |u| {
            format!("; unprivileged_bpf_disabled {u} does not bind root")
        });
        open.push((
            Channel::BpfTracing,
            format!(
                "BPF programs on tracepoints, kprobes or uprobes can read enclave memory with bpf_probe_read_user ({}, {}{unprivileged})",
                f.config_note(f.bpf_syscall, "CONFIG_BPF_SYSCALL"),
                f.config_note(f.bpf_events, "CONFIG_BPF_EVENTS")
            ),
        ));
    }
    if enabled(f.uprobes) {
        open.push((
            Channel::Uprobes,
            format!(
                "uprobes on the enclave's code can fetch its registers and memory ({})",
                f.config_note(f.uprobes, "CONFIG_UPROBES")
            ),
        ));
    }
    if enabled(f.perf_events) {
        let paranoid = f.perf_event_paranoid.map_or_else(String::new, |p| {
            format!("; perf_event_paranoid {p} does not bind root")
        });
        open.push((
            Channel::PerfSampling,
            format!(
                "perf samples copy enclave user stacks and registers ({}{paranoid})",
                f.config_note(f.perf_events, "CONFIG_PERF_EVENTS")
            ),
        ));
    }
    if f.ptrace_open() {
        open.push((
            Channel::Ptrace,
            format!(
                "CAP_SYS_PTRACE holders can attach to enclaves, change code and registers, and detach before the tracer poll sees them ({})",
                f.yama_note()
            ),
        ));
        open.push((
            Channel::DescriptorTheft,
            format!(
                "CAP_SYS_PTRACE holders can take an enclave's daemon socket with pidfd_getfd and obtain its EGETKEY keys and EREPORTs ({})",
                f.yama_note()
            ),
        ));
        let force = match f.proc_mem_force {
            ProcMemForce::Always => Some("proc_mem.force_override is always"),
            ProcMemForce::Ptrace => Some("proc_mem.force_override is ptrace"),
            ProcMemForce::Unknown => Some("proc_mem.force_override unknown"),
            ProcMemForce::Never => None,
        };
        if let Some(force) = force {
            open.push((
                Channel::ProcMemWrite,
                format!(
                    "root can write into enclave code through /proc/PID/mem ({force}; {})",
                    f.yama_note()
                ),
            ));
        }
    }
    match &f.lockdown {
        LockdownState::Mode(Lockdown::Confidentiality) => {}
        LockdownState::Mode(Lockdown::Integrity) => open.push((
            Channel::Lockdown,
            "kernel lockdown is in integrity mode, not confidentiality: root can still read kernel memory (/proc/kcore, BPF and kprobe kernel reads, tracefs)".to_owned(),
        )),
        LockdownState::Mode(Lockdown::None) => open.push((
            Channel::Lockdown,
            "kernel lockdown is none: root can read and change kernel memory".to_owned(),
        )),
        LockdownState::NotActive => open.push((
            Channel::Lockdown,
            "the lockdown LSM is not active: root can read and change kernel memory".to_owned(),
        )),
        LockdownState::Unknown(why) => open.push((
            Channel::Lockdown,
            format!("the kernel lockdown mode could not be read ({why})"),
        )),
    }
    match f.modules {
        ModuleLoading::Unsupported | ModuleLoading::Disabled => {}
        ModuleLoading::Enabled => open.push((
            Channel::ModuleLoading,
            "kernel modules can be loaded: root can add code to the kernel (kernel.modules_disabled is 0)".to_owned(),
        )),
        ModuleLoading::Unknown => open.push((
            Channel::ModuleLoading,
            "cannot tell whether kernel modules can be loaded".to_owned(),
        )),
    }
    if f.root_key_in_file {
        open.push((
            Channel::RootKeyFile,
            "the platform root key is a file in the state directory: whoever reads the disk or boots another kernel derives every enclave's seal and report keys".to_owned(),
        ));
    }
    if !f.secret_memory {
        open.push((
            Channel::SecretMemory,
            "memfd_secret is unavailable (boot with secretmem.enable=1): enclave memory is ordinary memory that root can read".to_owned(),
        ));
    }
    if f.euid != 0 {
        open.push((
            Channel::DaemonUid,
            format!(
                "the daemon runs without root: enclaves run under the daemon's uid {} instead of a uid of their own (still non-dumpable and sandboxed)",
                f.euid
            ),
        ));
    }
    open
}

/// The level a channel costs.
fn level_of(c: Channel) -> TcbLevel {
    match c {
        Channel::SecretMemory | Channel::DaemonUid => TcbLevel::ConfigurationNeeded,
        _ => TcbLevel::SwHardeningNeeded,
    }
}

/// Maps host facts to a TCB status: `UpToDate` only when no channel is open, otherwise the worst
/// level of the open channels, with one advisory each. Pure: it reads nothing but `f`.
pub fn evaluate(f: &HostFacts) -> TcbStatus {
    let open = open_channels(f);
    let level = open
        .iter()
        .map(|(c, _)| level_of(*c))
        .max()
        .unwrap_or(TcbLevel::UpToDate);
    TcbStatus {
        level,
        advisories: open
            .into_iter()
            .map(|(c, text)| Advisory {
                id: c.id().to_owned(),
                text,
            })
            .collect(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The Coffer node profile (docs/node-profile.md), with the root key still a file.
    fn hardened() -> HostFacts {
        HostFacts {
            kernel_config: Some("/proc/config.gz".into()),
            bpf_syscall: KernelOption::Enabled,
            bpf_events: KernelOption::Disabled,
            uprobes: KernelOption::Disabled,
            perf_events: KernelOption::Disabled,
            perf_event_paranoid: Some(3),
            unprivileged_bpf_disabled: Some(2),
            yama_ptrace_scope: Some(3),
            proc_mem_force: ProcMemForce::Never,
            lockdown: LockdownState::Mode(Lockdown::Confidentiality),
            modules: ModuleLoading::Unsupported,
            root_key_in_file: false,
            secret_memory: true,
            euid: 0,
        }
    }

    /// What was probed on the development machine (2026-12).
    fn this_machine() -> HostFacts {
        HostFacts {
            bpf_events: KernelOption::Enabled,
            uprobes: KernelOption::Enabled,
            perf_events: KernelOption::Enabled,
            perf_event_paranoid: Some(2),
            yama_ptrace_scope: None,
            proc_mem_force: ProcMemForce::Always,
            lockdown: LockdownState::Mode(Lockdown::Integrity),
            root_key_in_file: true,
            ..hardened()
        }
    }

    fn ids(s: &TcbStatus) -> Vec<&str> {
        s.advisory_ids().collect()
    }

    fn only(c: Channel, f: &HostFacts) {
        let s = evaluate(f);
        assert_eq!(ids(&s), [c.id()], "{s}");
        assert_eq!(s.level, level_of(c), "{s}");
    }

    #[test]
    fn advisory_ids_are_stable_and_in_channel_order() {
        for (i, c) in Channel::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
            assert_eq!(c.id(), format!("COFFER-SA-{:04}", i + 1));
        }
    }

    #[test]
    fn accepts_a_host_with_no_channel_as_up_to_date() {
        let s = evaluate(&hardened());
        assert_eq!(s.level, TcbLevel::UpToDate);
        assert!(s.advisories.is_empty());
        assert_eq!(s.to_string(), "UpToDate");
        // Modules disabled at run time and a kernel without BPF at all are as good.
        let s = evaluate(&HostFacts {
            modules: ModuleLoading::Disabled,
            bpf_syscall: KernelOption::Disabled,
            bpf_events: KernelOption::Enabled,
            ..hardened()
        });
        assert_eq!(s.level, TcbLevel::UpToDate, "{s}");
    }

    #[test]
    fn names_every_channel_open_on_the_development_machine() {
        let s = evaluate(&this_machine());
        assert_eq!(s.level, TcbLevel::SwHardeningNeeded);
        assert_eq!(
            ids(&s),
            [
                "COFFER-SA-0001",
                "COFFER-SA-0002",
                "COFFER-SA-0003",
                "COFFER-SA-0004",
                "COFFER-SA-0005",
                "COFFER-SA-0006",
                "COFFER-SA-0007",
                "COFFER-SA-0009",
            ]
        );
        let text = s.to_string();
        assert!(text.contains("integrity mode"), "{text}");
        assert!(!text.contains("lockdown mode could not be read"), "{text}");
        assert!(!text.contains("lockdown LSM is not active"), "{text}");
        assert!(text.contains("CONFIG_BPF_EVENTS=y"), "{text}");
    }

    #[test]
    fn bpf_needs_both_the_syscall_and_bpf_events() {
        only(
            Channel::BpfTracing,
            &HostFacts {
                bpf_events: KernelOption::Enabled,
                ..hardened()
            },
        );
        only(
            Channel::BpfTracing,
            &HostFacts {
                bpf_syscall: KernelOption::Unknown,
                bpf_events: KernelOption::Unknown,
                ..hardened()
            },
        );
    }

    #[test]
    fn uprobes_and_perf_are_named_when_built_in_or_unknown() {
        for o in [KernelOption::Enabled, KernelOption::Unknown] {
            only(
                Channel::Uprobes,
                &HostFacts {
                    uprobes: o,
                    ..hardened()
                },
            );
            only(
                Channel::PerfSampling,
                &HostFacts {
                    perf_events: o,
                    ..hardened()
                },
            );
        }
        let s = evaluate(&HostFacts {
            perf_events: KernelOption::Unknown,
            ..hardened()
        });
        assert!(s.to_string().contains("not exposed"), "{s}");
        // perf_event_paranoid does not close it: root is not bound by it.
        let s = evaluate(&HostFacts {
            perf_events: KernelOption::Enabled,
            perf_event_paranoid: Some(3),
            ..hardened()
        });
        assert!(s.to_string().contains("does not bind root"), "{s}");
    }

    #[test]
    fn ptrace_descriptor_theft_and_forced_writes_follow_yama() {
        for scope in [None, Some(0), Some(1), Some(2)] {
            let s = evaluate(&HostFacts {
                yama_ptrace_scope: scope,
                ..hardened()
            });
            assert_eq!(ids(&s), ["COFFER-SA-0004", "COFFER-SA-0005"], "{scope:?}");
            assert_eq!(s.level, TcbLevel::SwHardeningNeeded);
            let s = evaluate(&HostFacts {
                yama_ptrace_scope: scope,
                proc_mem_force: ProcMemForce::Always,
                ..hardened()
            });
            assert_eq!(
                ids(&s),
                ["COFFER-SA-0004", "COFFER-SA-0005", "COFFER-SA-0006"]
            );
        }
        for force in [
            ProcMemForce::Always,
            ProcMemForce::Ptrace,
            ProcMemForce::Unknown,
        ] {
            // Scope 3: no attach, and /proc/PID/mem cannot be opened for writing.
            assert_eq!(
                evaluate(&HostFacts {
                    proc_mem_force: force,
                    ..hardened()
                })
                .level,
                TcbLevel::UpToDate
            );
        }
        let s = evaluate(&HostFacts {
            yama_ptrace_scope: None,
            ..hardened()
        });
        assert!(s.to_string().contains("Yama is not active"), "{s}");
    }

    #[test]
    fn lockdown_is_named_in_every_mode_but_confidentiality_and_never_called_absent_when_active() {
        let integrity = evaluate(&HostFacts {
            lockdown: LockdownState::Mode(Lockdown::Integrity),
            ..hardened()
        });
        assert_eq!(ids(&integrity), ["COFFER-SA-0007"]);
        assert!(integrity.to_string().contains("integrity mode"));
        assert!(!integrity.to_string().contains("not active"));
        let none = evaluate(&HostFacts {
            lockdown: LockdownState::Mode(Lockdown::None),
            ..hardened()
        });
        assert!(none.to_string().contains("lockdown is none"), "{none}");
        let absent = evaluate(&HostFacts {
            lockdown: LockdownState::NotActive,
            ..hardened()
        });
        assert!(absent.to_string().contains("not active"), "{absent}");
        let unknown = evaluate(&HostFacts {
            lockdown: LockdownState::Unknown("EPERM".into()),
            ..hardened()
        });
        assert!(unknown.to_string().contains("could not be read (EPERM)"));
        for s in [none, absent, unknown] {
            assert_eq!(ids(&s), ["COFFER-SA-0007"]);
            assert_eq!(s.level, TcbLevel::SwHardeningNeeded);
        }
    }

    #[test]
    fn module_loading_root_key_secret_memory_and_uid() {
        only(
            Channel::ModuleLoading,
            &HostFacts {
                modules: ModuleLoading::Enabled,
                ..hardened()
            },
        );
        only(
            Channel::ModuleLoading,
            &HostFacts {
                modules: ModuleLoading::Unknown,
                ..hardened()
            },
        );
        only(
            Channel::RootKeyFile,
            &HostFacts {
                root_key_in_file: true,
                ..hardened()
            },
        );
        only(
            Channel::SecretMemory,
            &HostFacts {
                secret_memory: false,
                ..hardened()
            },
        );
        let s = evaluate(&HostFacts {
            euid: 1000,
            ..hardened()
        });
        assert_eq!(ids(&s), ["COFFER-SA-0011"]);
        assert_eq!(s.level, TcbLevel::ConfigurationNeeded);
        assert!(s.to_string().contains("uid 1000"), "{s}");
    }

    #[test]
    fn a_host_where_root_reads_enclave_memory_is_never_above_sw_hardening_needed() {
        for c in [
            Channel::BpfTracing,
            Channel::Uprobes,
            Channel::PerfSampling,
            Channel::Ptrace,
        ] {
            let f = match c {
                Channel::BpfTracing => HostFacts {
                    bpf_events: KernelOption::Enabled,
                    ..hardened()
                },
                Channel::Uprobes => HostFacts {
                    uprobes: KernelOption::Enabled,
                    ..hardened()
                },
                Channel::PerfSampling => HostFacts {
                    perf_events: KernelOption::Enabled,
                    ..hardened()
                },
                _ => HostFacts {
                    yama_ptrace_scope: Some(2),
                    ..hardened()
                },
            };
            assert!(evaluate(&f).level >= TcbLevel::SwHardeningNeeded, "{c:?}");
        }
        // A configuration shortfall on top keeps the worse level and every advisory.
        let s = evaluate(&HostFacts {
            secret_memory: false,
            ..this_machine()
        });
        assert_eq!(s.level, TcbLevel::ConfigurationNeeded);
        assert_eq!(s.advisories.len(), 9);
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
    fn reads_kernel_options_and_the_proc_mem_force_mode() {
        let c = KernelConfig::parse(
            "# comment\nCONFIG_BPF_EVENTS=y\nCONFIG_UPROBES=m\n# CONFIG_MODULES is not set\nCONFIG_LSM=\"landlock,lockdown\"\nCONFIG_PROC_MEM_FORCE_PTRACE=y\n",
        );
        assert_eq!(c.option("CONFIG_BPF_EVENTS"), KernelOption::Enabled);
        assert_eq!(c.option("CONFIG_UPROBES"), KernelOption::Enabled);
        assert_eq!(c.option("CONFIG_MODULES"), KernelOption::Disabled);
        assert_eq!(c.option("CONFIG_PERF_EVENTS"), KernelOption::Disabled);
        assert_eq!(c.value("CONFIG_LSM"), Some("landlock,lockdown"));
        assert_eq!(proc_mem_force(None, Some(&c)), ProcMemForce::Ptrace);
        assert_eq!(
            proc_mem_force(Some("quiet proc_mem.force_override=never"), Some(&c)),
            ProcMemForce::Never
        );
        // Words after `--` go to init, not to the kernel.
        assert_eq!(
            proc_mem_force(Some("quiet -- proc_mem.force_override=never"), Some(&c)),
            ProcMemForce::Ptrace
        );
        assert_eq!(proc_mem_force(None, None), ProcMemForce::Unknown);
        let old = KernelConfig::parse("CONFIG_BPF_EVENTS=y\n");
        assert_eq!(proc_mem_force(None, Some(&old)), ProcMemForce::Always);
        let never = KernelConfig::parse("CONFIG_PROC_MEM_NO_FORCE=y\n");
        assert_eq!(proc_mem_force(None, Some(&never)), ProcMemForce::Never);
        assert_eq!(
            cmdline_value("a=1 b=2 a=3", "a"),
            Some("3"),
            "the last one wins"
        );
    }

    #[test]
    fn every_advisory_is_documented_in_docs_advisories_md() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/advisories.md");
        let doc = std::fs::read_to_string(path).unwrap();
        for a in &ADVISORIES {
            let heading = format!("## {}: {}", a.id, a.title);
            assert!(
                doc.contains(&heading),
                "docs/advisories.md lacks `{heading}`"
            );
        }
        let listed = doc.matches("\n## COFFER-SA-").count();
        assert_eq!(
            listed,
            ADVISORIES.len(),
            "docs/advisories.md lists other ids"
        );
    }

    #[test]
    fn probes_this_host() {
        let facts = HostFacts::probe();
        assert_eq!(facts.euid, rustix::process::geteuid().as_raw());
        let s = evaluate(&facts);
        eprintln!("{facts:#?}\n{s}");
        assert_eq!(s.level == TcbLevel::UpToDate, s.advisories.is_empty());
        let admin = rustix::thread::capabilities(None).is_ok_and(|c| {
            c.effective
                .contains(rustix::thread::CapabilitySet::SYS_ADMIN)
        });
        if admin {
            // CAP_SYS_ADMIN can always read securityfs (mounting it detached when the host
            // has not).
            assert!(
                !matches!(facts.lockdown, LockdownState::Unknown(_)),
                "{:?}",
                facts.lockdown
            );
        }
    }
}
