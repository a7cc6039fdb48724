//! `coffer platform serve|status`: run the node's platform daemon, and ask it what it runs.

use std::path::PathBuf;
use std::time::Duration;

use coffer_host::HostError;
use coffer_platform::{
    AllowlistError, HostFacts, LaunchPolicy, PlatformConfig, PlatformDaemon, ServeError,
    SignerAllowlist, VmSize,
};
use coffer_proto::client::PlatformStatus;
use serde_json::json;

use crate::util;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the platform daemon (as root): verify bundles, enforce launch policy and the EPC
    /// budget, start enclaves behind the kernel boundary and serve EREPORT / EGETKEY.
    Serve(ServeArgs),
    /// Show the node's VM size, EPC use, TCB status and enclaves.
    Status(StatusArgs),
    /// Certify this node with a deployment CA: a PCK key and certificate whose TCB is the
    /// node's hardening, written into the daemon's state directory.
    Provision(super::provision::Args),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The node's VM size (Azure's name), which fixes its EPC capacity, e.g. Standard_DC2s_v2.
    #[arg(long, value_parser = parse_vm_size)]
    vm_size: VmSize,
    /// Where to listen (a SOCK_SEQPACKET Unix socket; a stale socket file is replaced).
    #[arg(long)]
    socket: PathBuf,
    /// Permissions of the socket file. The default 0666 lets any local user create enclaves; with
    /// --socket-group the default is 0660: only the group's members (and root) may, as
    /// membership of /dev/sgx_enclave's group does on SGX hardware.
    #[arg(long, value_parser = parse_mode)]
    socket_mode: Option<u32>,
    /// The group (name or number) the socket file belongs to.
    #[arg(long, value_parser = parse_group)]
    socket_group: Option<u32>,
    /// The most EPC bytes the enclaves of one uid may hold at once (root is not limited).
    #[arg(long)]
    epc_quota_per_uid: Option<u64>,
    /// The most connections one uid may hold open at once (root is not limited).
    #[arg(long)]
    max_connections_per_uid: Option<u32>,
    /// Close a connection that holds no enclave after this many seconds without a request.
    #[arg(long)]
    idle_timeout: Option<u64>,
    /// The state directory (created 0700): the platform root key, owner epoch and CPUSVN.
    #[arg(long)]
    state_dir: PathBuf,
    /// Launch enclaves signed with the DEBUG attribute (a development node).
    #[arg(long)]
    allow_debug: bool,
    /// Only launch enclaves whose MRSIGNER is in this file (one 64-hex-digit MRSIGNER per line,
    /// `#` comments).
    #[arg(long)]
    signer_allowlist: Option<PathBuf>,
    /// Enclave N runs as uid and gid BASE + N (when the daemon runs as root).
    #[arg(long, default_value_t = PlatformConfig::DEFAULT_UID_BASE)]
    uid_base: u32,
    /// Seconds an enclave may take to report ready.
    #[arg(long, default_value_t = 10)]
    ready_timeout: u64,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The daemon's socket.
    #[arg(long)]
    socket: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Errors of `coffer platform`.
#[derive(Debug, thiserror::Error)]
pub enum PlatformCmdError {
    #[error(transparent)]
    Allowlist(#[from] AllowlistError),
    #[error("the platform daemon could not start: {0}")]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Client(#[from] HostError),
    #[error(transparent)]
    Provision(coffer_ca::CaError),
}

fn parse_vm_size(s: &str) -> Result<VmSize, String> {
    VmSize::from_name(s).map_err(|e| e.to_string())
}

fn parse_group(s: &str) -> Result<u32, String> {
    if let Ok(gid) = s.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(s) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(format!("no group named {s:?}")),
        Err(e) => Err(format!("looking up group {s:?}: {e}")),
    }
}

fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!(
            "{s:?} is not a file mode: give octal permissions such as 0666 or 0660"
        )),
    }
}

pub fn run(c: Command) -> Result<(), PlatformCmdError> {
    match c {
        Command::Serve(a) => serve(a),
        Command::Status(a) => status(a),
        Command::Provision(a) => super::provision::run(a).map_err(PlatformCmdError::Provision),
    }
}

fn serve(a: ServeArgs) -> Result<(), PlatformCmdError> {
    let signer_allowlist = a
        .signer_allowlist
        .as_deref()
        .map(SignerAllowlist::load)
        .transpose()?;
    let mut config = PlatformConfig::new(a.vm_size, a.socket.clone(), a.state_dir);
    config.socket_mode = a.socket_mode.unwrap_or(if a.socket_group.is_some() {
        0o660
    } else {
        PlatformConfig::DEFAULT_SOCKET_MODE
    });
    config.socket_group = a.socket_group;
    config.epc_quota_per_uid = a.epc_quota_per_uid;
    config.max_connections_per_uid = a.max_connections_per_uid;
    config.idle_timeout = a.idle_timeout.map(Duration::from_secs);
    config.policy = LaunchPolicy {
        allow_debug: a.allow_debug,
        signer_allowlist,
    };
    config.uid_base = a.uid_base;
    config.ready_timeout = Duration::from_secs(a.ready_timeout);
    let platform = PlatformDaemon::bind(config)?;
    let tcb = HostFacts::probe().tcb_status();
    let ids: Vec<&str> = tcb.advisory_ids().collect();
    eprintln!(
        "coffer platform: serving {} ({} MiB EPC) on {}; TCB status {}{}",
        a.vm_size.name,
        a.vm_size.epc_bytes >> 20,
        a.socket.display(),
        tcb.level,
        if ids.is_empty() {
            String::new()
        } else {
            format!(
                " with advisories {} (`coffer platform status` explains each; docs/advisories.md)",
                ids.join(", ")
            )
        }
    );
    if !rustix::process::geteuid().is_root() {
        eprintln!(
            "coffer platform: not running as root: enclaves run under this user's uid, not a uid of their own"
        );
    }
    platform.serve()?;
    Ok(())
}

fn status(a: StatusArgs) -> Result<(), PlatformCmdError> {
    let s = coffer_host::Platform::connect(&a.socket)?.status()?;
    if a.json {
        util::print_json(&status_json(&s));
    } else {
        print!("{}", status_text(&s));
    }
    Ok(())
}

fn status_json(s: &PlatformStatus) -> serde_json::Value {
    let enclaves: Vec<_> = s
        .enclaves
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "pid": e.pid,
                "mrenclave": hex::encode(e.mrenclave),
                "mrsigner": hex::encode(e.mrsigner),
                "debug": e.debug,
                "epc_bytes": e.epc_bytes,
                "state": e.state,
                "lost_reason": e.lost_reason,
                "owner_uid": e.owner_uid,
            })
        })
        .collect();
    json!({
        "vm_size": s.vm_size,
        "epc_total": s.epc_total,
        "epc_used": s.epc_used,
        "epc_free": s.epc_total.saturating_sub(s.epc_used),
        "tcb": {
            "level": s.tcb.level.as_str(),
            "advisories": s.tcb.advisories.iter().map(|a| json!({"id": a.id, "text": a.text})).collect::<Vec<_>>(),
        },
        "enclaves": enclaves,
    })
}

fn mib(bytes: u64) -> String {
    // Display only: f64 holds every EPC size exactly enough for one decimal.
    #[allow(clippy::cast_precision_loss)]
    let m = bytes as f64 / f64::from(1u32 << 20);
    format!("{m:.1} MiB")
}

fn status_text(s: &PlatformStatus) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "vm_size     {}", s.vm_size);
    let _ = writeln!(
        out,
        "epc         {} used of {} ({} of {} bytes)",
        mib(s.epc_used),
        mib(s.epc_total),
        s.epc_used,
        s.epc_total
    );
    let _ = writeln!(out, "tcb_level   {}", s.tcb.level);
    for a in &s.tcb.advisories {
        let _ = writeln!(out, "  {} {}", a.id, a.text);
    }
    let _ = writeln!(out, "enclaves    {}", s.enclaves.len());
    for e in &s.enclaves {
        let _ = writeln!(
            out,
            "  enclave {}: {}, pid {}, {}, {} EPC bytes, owner uid {}",
            e.id,
            e.state,
            e.pid,
            if e.debug { "DEBUG" } else { "production" },
            e.epc_bytes,
            e.owner_uid
        );
        let _ = writeln!(out, "    mrenclave {}", hex::encode(e.mrenclave));
        let _ = writeln!(out, "    mrsigner  {}", hex::encode(e.mrsigner));
        if let Some(r) = &e.lost_reason {
            let _ = writeln!(out, "    lost_reason {r}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use coffer_proto::client::EnclaveStatus;
    use coffer_proto::tcb::{Advisory, TcbLevel, TcbStatus};

    use super::*;

    fn sample() -> PlatformStatus {
        PlatformStatus {
            vm_size: "Standard_DC1s_v2".into(),
            epc_total: 28 << 20,
            epc_used: 4 << 20,
            tcb: TcbStatus {
                level: TcbLevel::SwHardeningNeeded,
                advisories: vec![Advisory {
                    id: "COFFER-SA-0004".into(),
                    text: "CAP_SYS_PTRACE holders can attach".into(),
                }],
            },
            enclaves: vec![EnclaveStatus {
                id: 3,
                pid: 42,
                mrenclave: [0xaa; 32],
                mrsigner: [0xbb; 32],
                debug: false,
                epc_bytes: 4 << 20,
                state: "lost".into(),
                lost_reason: Some("crashed (signal 11)".into()),
                owner_uid: 1000,
            }],
        }
    }

    #[test]
    fn prints_every_status_field_as_json() {
        let v = status_json(&sample());
        assert_eq!(v["vm_size"], "Standard_DC1s_v2");
        assert_eq!(v["epc_total"], 28 << 20);
        assert_eq!(v["epc_used"], 4 << 20);
        assert_eq!(v["tcb"]["level"], "SWHardeningNeeded");
        assert_eq!(v["tcb"]["advisories"][0]["id"], "COFFER-SA-0004");
        assert_eq!(
            v["tcb"]["advisories"][0]["text"],
            "CAP_SYS_PTRACE holders can attach"
        );
        let e = &v["enclaves"][0];
        for (k, want) in [
            ("id", json!(3)),
            ("pid", json!(42)),
            ("mrenclave", json!("aa".repeat(32))),
            ("mrsigner", json!("bb".repeat(32))),
            ("debug", json!(false)),
            ("epc_bytes", json!(4 << 20)),
            ("state", json!("lost")),
            ("lost_reason", json!("crashed (signal 11)")),
        ] {
            assert_eq!(e[k], want, "{k}");
        }
    }

    #[test]
    fn prints_a_readable_status() {
        let t = status_text(&sample());
        assert!(t.contains("4.0 MiB used of 28.0 MiB"), "{t}");
        assert!(t.contains("enclave 3: lost, pid 42"), "{t}");
        assert!(t.contains("lost_reason crashed (signal 11)"), "{t}");
        assert!(
            t.contains("tcb_level   SWHardeningNeeded\n  COFFER-SA-0004 CAP_SYS_PTRACE"),
            "{t}"
        );
    }

    #[test]
    fn parses_octal_modes_and_rejects_others() {
        assert_eq!(parse_mode("0666"), Ok(0o666));
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert!(parse_mode("0999").is_err());
        assert!(parse_mode("01777").is_err());
        assert_eq!(parse_group("0"), Ok(0));
        assert_eq!(parse_group("root"), Ok(0));
        assert!(parse_group("no-such-group-here").is_err());
        assert!(
            parse_vm_size("Standard_DC9s_v9")
                .unwrap_err()
                .contains("Standard_DC1s_v2")
        );
    }
}
