//! The boundary's mechanisms against the real kernel, each in a freshly exec'ed probe process.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;

use coffer_boundary::process::{SpawnError, SpawnStep};
use coffer_boundary::seccomp_policy::ENCLAVE_POLICY;
use coffer_boundary::{SealedImage, SpawnSpec, spawn_enclave_process};
use common::{Launch, NOBODY, require_root};
use rustix::io::Errno;

const CAP_IPC_LOCK: u64 = 1 << 14;

#[test]
fn sealed_copy_of_a_static_binary_runs() {
    let path = "/sbin/ldconfig";
    let bytes = std::fs::read(path).expect("Debian's ldconfig is a static-pie binary");
    let image = SealedImage::new("ldconfig", &bytes).unwrap();
    let (out_r, out_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let child = spawn_enclave_process(SpawnSpec {
        image: &image,
        argv: vec!["ldconfig".into(), "--version".into()],
        envp: vec![],
        fds: vec![(out_w.as_fd(), 1)],
        credentials: None,
        keep_ipc_lock: false,
    })
    .unwrap();
    drop(out_w);
    let output = std::io::read_to_string(std::fs::File::from(out_r)).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(output.contains("ldconfig"), "{output:?}");
}

#[test]
fn sealed_image_cannot_be_written_after_launch() {
    let image = common::sealed_probe();
    let mut probe = Launch::new(&["tracer-watch"]).start_image(&image);
    assert!(probe.line().starts_with("worker-tid "));
    assert!(probe.line().starts_with("locked "));
    // Through the daemon's own descriptor.
    assert_eq!(
        rustix::io::pwrite(&image, b"\xcc", 0x1000),
        Err(Errno::PERM)
    );
    assert_eq!(rustix::fs::ftruncate(&image, 0), Err(Errno::PERM));
    image.verify().unwrap();
    // Through the running process's executable.
    let exe = format!("/proc/{}/exe", probe.pid());
    let opened = std::fs::OpenOptions::new().write(true).open(&exe);
    let err = opened.expect_err("the running image must not open for writing");
    assert!(
        matches!(
            err.raw_os_error(),
            Some(libc::EPERM | libc::ETXTBSY | libc::EACCES)
        ),
        "{err}"
    );
    assert!(probe.wait().success());
}

#[test]
fn enclave_process_runs_unprivileged_with_only_ipc_lock() {
    if !require_root("enclave_process_runs_unprivileged_with_only_ipc_lock") {
        return;
    }
    let mut probe = Launch::new(&["status"]).enclave_identity().start();
    let status = probe.line();
    assert!(probe.wait().success());
    let fields: BTreeSet<&str> = status.split(' ').collect();
    let lock = format!("{CAP_IPC_LOCK:#x}");
    for expected in [
        format!("uid={}", NOBODY.uid),
        format!("gid={}", NOBODY.gid),
        "groups=0".to_owned(),
        format!("eff={lock}"),
        format!("prm={lock}"),
        format!("inh={lock}"),
        format!("amb={lock}"),
        format!("bnd={lock}"),
        "nnp=1".to_owned(),
        // The image is execute-only, so the kernel starts the process non-dumpable.
        "dumpable=0".to_owned(),
    ] {
        assert!(
            fields.contains(expected.as_str()),
            "{expected} missing in {status}"
        );
    }
}

#[test]
fn enclave_process_without_ipc_lock_has_no_capabilities() {
    if !require_root("enclave_process_without_ipc_lock_has_no_capabilities") {
        return;
    }
    let mut launch = Launch::new(&["status"]);
    launch.credentials = Some(NOBODY);
    let mut probe = launch.start();
    let status = probe.line();
    assert!(probe.wait().success());
    for expected in ["eff=0x0", "prm=0x0", "amb=0x0", "bnd=0x0", "uid=65534"] {
        assert!(
            status.split(' ').any(|f| f == expected),
            "{expected} missing in {status}"
        );
    }
}

#[test]
fn ipc_lock_lets_an_unprivileged_enclave_map_64_mib_of_secret_memory() {
    if !require_root("ipc_lock_lets_an_unprivileged_enclave_map_64_mib_of_secret_memory") {
        return;
    }
    let mut probe = Launch::new(&["secret", "64"]).enclave_identity().start();
    let line = probe.line();
    assert!(probe.wait().success(), "{line}");
    assert!(line.starts_with("ok 67108864 bytes"), "{line}");

    // Control: the same uid without CAP_IPC_LOCK is held to RLIMIT_MEMLOCK (8 MiB here).
    let mut launch = Launch::new(&["secret", "64"]);
    launch.credentials = Some(NOBODY);
    let mut probe = launch.start();
    let line = probe.line();
    assert!(!probe.wait().success(), "{line}");
    assert!(line.contains("RLIMIT_MEMLOCK"), "{line}");
}

#[test]
fn seccomp_allows_every_rule_with_allowed_arguments() {
    let mut probe = Launch::new(&["seccomp-allowed"]).start();
    let lines = probe.lines();
    let status = probe.wait();
    assert!(status.success(), "{status:?}, output {lines:?}");
    let exercised: BTreeSet<&str> = lines.iter().filter_map(|l| l.strip_prefix("ok ")).collect();
    let policy: BTreeSet<&str> = ENCLAVE_POLICY.iter().map(|r| r.syscall).collect();
    assert_eq!(
        exercised, policy,
        "every rule, and only those, must be exercised"
    );
}

#[test]
fn seccomp_kills_forbidden_calls_with_sigsys() {
    let cases = [
        "open",
        "openat",
        "socket",
        "execve",
        "mmap-exec",
        "mmap-rw",
        "mprotect",
        "brk",
        "clone",
        "ptrace",
        "kill",
        "prctl",
        "memfd_create",
        "rt_sigaction",
        "futex-lock-pi",
        "futex-requeue",
        "pread-offset",
        "pread-other-fd-offset",
        "tgkill-other-signal",
        "tgkill-other-process",
        "x32-getpid",
    ];
    for case in cases {
        let mut probe = Launch::new(&["seccomp-forbidden", case]).start();
        assert_eq!(probe.line(), "installed", "{case}");
        let rest = probe.lines();
        let status = probe.wait();
        assert_eq!(
            status.signal(),
            Some(libc::SIGSYS),
            "{case}: {status:?}, output {rest:?}"
        );
    }
}

#[test]
fn landlock_denies_opening_any_file() {
    let mut probe = Launch::new(&["landlock"]).start();
    let report = probe.line();
    let lines = probe.lines();
    assert!(probe.wait().success(), "{lines:?}");
    assert!(report.starts_with("report abi="), "{report}");
    assert!(
        !report.contains("enforcement=None"),
        "Landlock must be enforced here: {report}"
    );
    let eacces = libc::EACCES;
    for path in [
        "/dev/null",
        "/proc/self/status",
        "/etc/hostname",
        "/tmp",
        "/tmp/coffer-landlock-probe",
    ] {
        let expected = format!("denied {path} {eacces}");
        assert!(lines.contains(&expected), "{expected} missing in {lines:?}");
    }
    // What was opened before keeps working.
    assert!(lines.contains(&"read-before 0".to_owned()), "{lines:?}");
    assert!(lines.contains(&"probe ok".to_owned()), "{lines:?}");
}

#[test]
fn spawn_reports_the_failing_step() {
    let image = SealedImage::new("garbage", b"this is not an executable").unwrap();
    let err = spawn_enclave_process(SpawnSpec {
        image: &image,
        argv: vec!["garbage".into()],
        envp: vec![],
        fds: vec![],
        credentials: None,
        keep_ipc_lock: false,
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            SpawnError::Child {
                step: SpawnStep::Exec,
                errno: Errno::NOEXEC
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("execveat"), "{err}");
}

#[test]
fn rejects_bad_spawn_specs() {
    let image = common::sealed_probe();
    let stdout = std::io::stdout();
    let spec = |argv: Vec<String>, fds| SpawnSpec {
        image: &image,
        argv,
        envp: vec![],
        fds,
        credentials: None,
        keep_ipc_lock: false,
    };
    assert!(matches!(
        spawn_enclave_process(spec(vec![], vec![])),
        Err(SpawnError::NoArgv)
    ));
    assert!(matches!(
        spawn_enclave_process(spec(vec!["a\0b".into()], vec![])),
        Err(SpawnError::BadString(_))
    ));
    assert!(matches!(
        spawn_enclave_process(spec(vec!["p".into()], vec![(stdout.as_fd(), 4096)])),
        Err(SpawnError::BadTarget(4096))
    ));
    assert!(matches!(
        spawn_enclave_process(spec(
            vec!["p".into()],
            vec![(stdout.as_fd(), 5), (stdout.as_fd(), 5)]
        )),
        Err(SpawnError::DuplicateTarget(5))
    ));
}
