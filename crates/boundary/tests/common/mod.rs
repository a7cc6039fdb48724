//! Shared by the kernel tests: starting the probe binary as an enclave process.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::process::ExitStatus;

use coffer_boundary::{Credentials, EnclaveChild, SealedImage, SpawnSpec, spawn_enclave_process};

/// The probe (`examples/probe.rs`), or the one `COFFER_BOUNDARY_PROBE` names (a static-pie
/// build of it, built as enclaves are).
pub fn probe_path() -> String {
    std::env::var("COFFER_BOUNDARY_PROBE").unwrap_or_else(|_| {
        coffer_testkit::build_host_example("coffer-boundary", "coffer-boundary-probe")
            .display()
            .to_string()
    })
}

/// `nobody`, the enclave identity the tests use.
pub const NOBODY: Credentials = Credentials {
    uid: 65534,
    gid: 65534,
};

pub use coffer_testkit::require_root;

/// The probe binary, sealed.
pub fn sealed_probe() -> SealedImage {
    let path = probe_path();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading the probe {path}: {e}"));
    SealedImage::new("coffer-boundary-probe", &bytes).unwrap()
}

/// A running probe with pipes on its standard input and output.
pub struct Probe {
    pub child: EnclaveChild,
    pub stdin: Option<OwnedFd>,
    pub stdout: BufReader<std::fs::File>,
}

/// How to start a probe.
pub struct Launch<'a> {
    pub args: &'a [&'a str],
    pub credentials: Option<Credentials>,
    pub keep_ipc_lock: bool,
    /// Extra descriptors (source, target).
    pub fds: Vec<(OwnedFd, RawFd)>,
}

impl<'a> Launch<'a> {
    pub fn new(args: &'a [&'a str]) -> Self {
        Self {
            args,
            credentials: None,
            keep_ipc_lock: false,
            fds: Vec::new(),
        }
    }

    pub fn enclave_identity(mut self) -> Self {
        self.credentials = Some(NOBODY);
        self.keep_ipc_lock = true;
        self
    }

    pub fn start(self) -> Probe {
        let image = sealed_probe();
        self.start_image(&image)
    }

    pub fn start_image(self, image: &SealedImage) -> Probe {
        use rustix::pipe::{PipeFlags, pipe_with};
        let (stdin_r, stdin_w) = pipe_with(PipeFlags::CLOEXEC).unwrap();
        let (stdout_r, stdout_w) = pipe_with(PipeFlags::CLOEXEC).unwrap();
        let stderr = std::io::stderr();
        let mut argv = vec!["coffer-boundary-probe".to_owned()];
        argv.extend(self.args.iter().map(|s| (*s).to_owned()));
        let mut fds = vec![
            (stdin_r.as_fd(), 0),
            (stdout_w.as_fd(), 1),
            (stderr.as_fd(), 2),
        ];
        fds.extend(self.fds.iter().map(|(fd, target)| (fd.as_fd(), *target)));
        let child = spawn_enclave_process(SpawnSpec {
            image,
            argv,
            envp: vec!["RUST_BACKTRACE=0".to_owned()],
            fds,
            credentials: self.credentials,
            keep_ipc_lock: self.keep_ipc_lock,
        })
        .unwrap();
        Probe {
            child,
            stdin: Some(stdin_w),
            stdout: BufReader::new(std::fs::File::from(stdout_r)),
        }
    }
}

impl Probe {
    /// The next line of output, without its newline ("" at end of output).
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim_end_matches('\n').to_owned()
    }

    /// Every remaining line of output.
    pub fn lines(&mut self) -> Vec<String> {
        (&mut self.stdout).lines().map(Result::unwrap).collect()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_ref().expect("standard input is open");
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = rustix::io::write(stdin, rest).unwrap();
            rest = &rest[n..];
        }
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    pub fn wait(mut self) -> ExitStatus {
        self.close_stdin();
        self.child.wait().unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        // Already reaped by `wait`, both fail harmlessly (ESRCH, ECHILD).
        if self.child.kill().is_ok() {
            let _ = self.child.wait();
        }
    }
}
