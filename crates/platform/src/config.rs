//! How the daemon is configured (`coffer platform serve` options).

use std::path::PathBuf;
use std::time::Duration;

use crate::admit::LaunchPolicy;
use crate::vm_size::VmSize;

/// How the daemon is configured.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    pub vm_size: VmSize,
    pub socket: PathBuf,
    /// Permissions of the socket file (default 0666; 0660 with [`PlatformConfig::socket_group`]).
    pub socket_mode: u32,
    /// The group the socket file belongs to (as `/dev/sgx_enclave` belongs to `sgx`): with mode
    /// 0660 only its members (and root) may connect. `None`: the daemon's group.
    pub socket_group: Option<u32>,
    pub state_dir: PathBuf,
    pub policy: LaunchPolicy,
    /// Enclave `id` runs as uid and gid `uid_base + id` (when the daemon runs as root).
    pub uid_base: u32,
    /// How long an enclave may take to report ready.
    pub ready_timeout: Duration,
    /// The most EPC bytes the enclaves of one uid may hold at once (root is not limited).
    pub epc_quota_per_uid: Option<u64>,
    /// The most connections one uid may hold open at once (root is not limited).
    pub max_connections_per_uid: Option<u32>,
    /// How long a connection that holds no enclave may stay silent before the daemon closes it.
    pub idle_timeout: Option<Duration>,
}

impl PlatformConfig {
    pub const DEFAULT_SOCKET_MODE: u32 = 0o666;
    pub const DEFAULT_UID_BASE: u32 = 1_000_000;
    pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(10);

    /// A configuration with the defaults for everything but the VM size, socket and state dir:
    /// no socket group, no per-uid quota or connection cap, no idle timeout.
    pub fn new(vm_size: VmSize, socket: PathBuf, state_dir: PathBuf) -> Self {
        PlatformConfig {
            vm_size,
            socket,
            socket_mode: Self::DEFAULT_SOCKET_MODE,
            socket_group: None,
            state_dir,
            policy: LaunchPolicy::default(),
            uid_base: Self::DEFAULT_UID_BASE,
            ready_timeout: Self::DEFAULT_READY_TIMEOUT,
            epc_quota_per_uid: None,
            max_connections_per_uid: None,
            idle_timeout: None,
        }
    }
}
