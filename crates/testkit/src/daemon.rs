//! The platform daemon in this process, on a socket in a temporary directory, for tests that
//! drive it through its client protocol. It stops serving, and its directory goes, when the
//! [`Daemon`] is dropped; connections still open are served until they close.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use coffer_platform::{
    LaunchPolicy, PlatformConfig, PlatformDaemon, ServeError, StopHandle, VmSize,
};

/// Each daemon of a test process gives its enclaves uids of their own range.
static UID_BASE: AtomicU32 = AtomicU32::new(3_000_000);

/// A daemon serving on `socket`, its state in `dir`.
#[derive(Debug)]
pub struct Daemon {
    /// The temporary directory: the socket, the state directory (`state`), and room for
    /// the test's files.
    pub dir: tempfile::TempDir,
    /// The daemon's socket.
    pub socket: PathBuf,
    stop: StopHandle,
    serving: Option<JoinHandle<Result<(), ServeError>>>,
}

impl Daemon {
    /// Starts a daemon for VM size `vm_size` (e.g. `Standard_DC2s_v2`) with `policy`, giving
    /// each enclave `ready_timeout` to report ready.
    pub fn start(vm_size: &str, policy: LaunchPolicy, ready_timeout: Duration) -> Daemon {
        Daemon::start_with(vm_size, policy, ready_timeout, |_| {})
    }

    /// [`Daemon::start`], with `configure` setting the rest of the configuration (per-uid
    /// limits, idle timeout, socket group).
    pub fn start_with(
        vm_size: &str,
        policy: LaunchPolicy,
        ready_timeout: Duration,
        configure: impl FnOnce(&mut PlatformConfig),
    ) -> Daemon {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let socket = dir.path().join("platform.sock");
        let vm_size =
            VmSize::from_name(vm_size).unwrap_or_else(|e| panic!("VM size {vm_size}: {e}"));
        let mut config = PlatformConfig::new(vm_size, socket.clone(), dir.path().join("state"));
        config.policy = policy;
        config.ready_timeout = ready_timeout;
        config.uid_base = UID_BASE.fetch_add(10_000, Ordering::SeqCst);
        configure(&mut config);
        let platform =
            PlatformDaemon::bind(config).unwrap_or_else(|e| panic!("starting the daemon: {e}"));
        let stop = platform
            .stop_handle()
            .unwrap_or_else(|e| panic!("the daemon's stop handle: {e}"));
        let serving = std::thread::spawn(move || platform.serve());
        Daemon {
            dir,
            socket,
            stop,
            serving: Some(serving),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(serving) = self.serving.take() {
            match serving.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("the test daemon stopped with an error: {e}"),
                Err(_) => eprintln!("the test daemon's thread panicked"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_serving_when_dropped() {
        let d = Daemon::start(
            "Standard_DC2s_v2",
            LaunchPolicy::default(),
            Duration::from_secs(5),
        );
        let socket = d.socket.clone();
        assert!(coffer_proto::connect(&socket).is_ok());
        drop(d);
        assert!(
            coffer_proto::connect(&socket).is_err(),
            "the socket must be gone"
        );
    }
}
