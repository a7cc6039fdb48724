//! Issue 3's "Done when", tested as an attacker would, with the real binaries: the `coffer`
//! command builds, signs and inspects the hello bundles and runs the platform daemon
//! (`coffer platform serve`, as root), and the `hello` host creates and calls the enclaves.
//! Every attack has a control where it must succeed (a DEBUG twin, an allowed signer, a daemon
//! with `--allow-debug`, a second enclave after the first is gone), so an insecure build fails.
//!
//! Where the binaries come from:
//! - `hello` is this package's binary (`CARGO_BIN_EXE_hello`).
//! - `coffer` belongs to `coffer-cli`, a binary-only package: a dev-dependency on it would not
//!   give `CARGO_BIN_EXE_coffer` (cargo sets that only for the test's own package). The test
//!   builds it once per run with `cargo build -p coffer-cli --bin coffer --target-dir
//!   target/enclave-tests` (`coffer_testkit::build_host_binary`), the directory the static
//!   enclave builds use. Cargo brings it up to date, so it is never stale (taking
//!   `target/debug/coffer` next to this test's executable would run whatever the last
//!   workspace build left there, stale when only this package was built), and it never waits
//!   for the outer `cargo test`'s lock. The cost is one cold build of coffer-cli in that
//!   directory (minutes on two cores, once per machine); a warm one takes about a second.
//! - The bundles: `coffer keygen`, then `coffer build -p hello-enclave --target-dir
//!   target/enclave-tests` (its own target directory again) with `examples/hello/enclave.toml`
//!   and its DEBUG twin `enclave-debug.toml`; the variants (a bigger heap, another signer) are
//!   made by `coffer sign` from the ELF inside the first bundle.
//!
//! Every child process runs under a timeout and is killed when its guard goes (a failed
//! assertion included); each daemon is stopped only after its enclaves are gone.

#![allow(clippy::unwrap_used)]

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use coffer_boundary::{Credentials, EnclaveChild, SealedImage, SpawnSpec, spawn_enclave_process};
use coffer_host::interface::TransportError;
use coffer_host::{Enclave, EnclaveOptions, Platform};
use coffer_testkit::process::{Finished, Spawned};
use coffer_testkit::ptrace::Tracer;
use coffer_testkit::{MIB, SecretScan, require_root, scan_for_secret, workspace_dir};
use hello_common::{
    HELLO_HOST_INTERFACE, HELLO_INTERFACE, HelloHost, HelloProxy, PROBE_HEAP_COPIES,
    hello_host_dispatch, probe_digest,
};
use serde_json::Value;

/// How long any one `hello` or `coffer` run, or any wait for the daemon, may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// How long a build may take (cold, it compiles the enclave and its dependencies).
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long `coffer keygen` may take: the search for RSA-3072 primes with e = 3 in a debug
/// build takes from seconds to a minute on a busy machine.
const KEYGEN_TIMEOUT: Duration = Duration::from_secs(5 * 60);

// ---------------------------------------------------------------------------------------------
// The binaries and bundles, made once per test process.

/// The `coffer` binary, the key, and the bundles every test uses.
struct Fixture {
    coffer: PathBuf,
    /// `hello.coffer`: `examples/hello/enclave.toml`, signed with `key`.
    hello: PathBuf,
    /// `hello-debug.coffer`: `examples/hello/enclave-debug.toml`, signed with `key`.
    debug: PathBuf,
    /// hello with a 16 MiB heap: more than half of a `Standard_DC1s_v2`'s 28 MiB of EPC.
    big: PathBuf,
    /// `hello.coffer` with one byte of code changed.
    changed: PathBuf,
    /// hello signed with another key (the vectors' `sig1.key.pem`).
    foreign: PathBuf,
    /// The ELF image inside `hello.coffer`.
    image: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(Fixture::make)
}

impl Fixture {
    fn make() -> Fixture {
        let coffer = coffer_testkit::build_host_binary("coffer-cli", "coffer");
        let dir = fixture_dir();
        let examples = workspace_dir().join("examples/hello");
        let key = dir.join("key.pem");
        let mut keygen = Command::new(&coffer);
        keygen.arg("keygen").arg("-o").arg(&key);
        coffer_testkit::process::run("coffer keygen", &mut keygen, KEYGEN_TIMEOUT)
            .expect_success("coffer keygen");

        let hello = dir.join("hello.coffer");
        let debug = dir.join("hello-debug.coffer");
        for (config, out) in [("enclave.toml", &hello), ("enclave-debug.toml", &debug)] {
            let config = examples.join(config);
            let target_dir = coffer_testkit::test_target_dir();
            let mut cmd = Command::new(&coffer);
            cmd.current_dir(workspace_dir())
                .args(["build", "-p", "hello-enclave", "--key"])
                .arg(&key)
                .arg("--config")
                .arg(&config)
                .arg("-o")
                .arg(out)
                .arg("--target-dir")
                .arg(&target_dir)
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .env_remove("CARGO_TARGET_DIR");
            coffer_testkit::process::run("coffer build", &mut cmd, BUILD_TIMEOUT)
                .expect_success("coffer build");
        }

        // The image is stored last in the bundle, unchanged.
        let bundle = std::fs::read(&hello).unwrap();
        let image_size = inspect(&coffer, &hello)["image_size"].as_u64().unwrap();
        let image_start = bundle.len() - usize::try_from(image_size).unwrap();
        let image = bundle[image_start..].to_vec();
        let elf = dir.join("hello-enclave.elf");
        std::fs::write(&elf, &image).unwrap();

        let production = std::fs::read_to_string(examples.join("enclave.toml")).unwrap();
        let big_config = dir.join("big.toml");
        std::fs::write(&big_config, with_heap(&production, 16 * MIB)).unwrap();
        let big = dir.join("big.coffer");
        sign(&coffer, &key, &big_config, &elf, &big);

        let foreign = dir.join("foreign.coffer");
        let other_key = coffer_testkit::vector("sgx/sig1.key.pem");
        sign(
            &coffer,
            &other_key,
            &examples.join("enclave.toml"),
            &elf,
            &foreign,
        );

        let mut changed_bytes = bundle;
        changed_bytes[image_start + coffer_testkit::elf::executable_byte(&image)] ^= 0x01;
        let changed = dir.join("changed.coffer");
        std::fs::write(&changed, changed_bytes).unwrap();

        Fixture {
            coffer,
            hello,
            debug,
            big,
            changed,
            foreign,
            image,
        }
    }
}

/// `target/enclave-tests/hello-system/PID`, fresh; the folders of earlier runs whose process
/// is gone are removed.
fn fixture_dir() -> PathBuf {
    let parent = coffer_testkit::test_target_dir().join("hello-system");
    std::fs::create_dir_all(&parent).unwrap();
    for entry in std::fs::read_dir(&parent).unwrap().flatten() {
        let name = entry.file_name();
        let stale = name
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        if stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = parent.join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    dir
}

/// `config` (an enclave.toml) with its heap size replaced.
fn with_heap(config: &str, heap_size: u64) -> String {
    let mut out: String = config
        .lines()
        .filter(|l| !l.trim_start().starts_with("heap_size"))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(&format!("heap_size = {heap_size}\n"));
    out
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// Runs `coffer ARGS` and expects success; returns its standard output.
fn run_coffer(coffer: &Path, what: &str, args: &[&OsStr]) -> String {
    let mut cmd = Command::new(coffer);
    cmd.args(args).env_remove("COFFER_LOG");
    let done = coffer_testkit::process::run(&format!("coffer {what}"), &mut cmd, TIMEOUT);
    done.expect_success(&format!("coffer {what}")).to_owned()
}

fn sign(coffer: &Path, key: &Path, config: &Path, elf: &Path, out: &Path) {
    let args = [
        os("sign"),
        os("--key"),
        key.as_os_str(),
        os("--config"),
        config.as_os_str(),
        elf.as_os_str(),
        os("-o"),
        out.as_os_str(),
    ];
    run_coffer(coffer, "sign", &args);
}

/// `coffer inspect BUNDLE --json`.
fn inspect(coffer: &Path, bundle: &Path) -> Value {
    let out = run_coffer(
        coffer,
        "inspect",
        &[os("inspect"), bundle.as_os_str(), os("--json")],
    );
    serde_json::from_str(out.trim()).unwrap()
}

fn random_nonce() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes
}

// ---------------------------------------------------------------------------------------------
// A node: `coffer platform serve` on a socket of its own.

/// Each daemon of this process gives its enclaves uids of their own range.
static UID_BASE: AtomicU32 = AtomicU32::new(3_500_000);

/// A running `coffer platform serve`, stopped (after its enclaves are gone) when dropped.
struct Node {
    daemon: Option<Spawned>,
    socket: PathBuf,
    /// Holds the socket and the state directory.
    _dir: tempfile::TempDir,
}

impl Node {
    /// Starts a daemon for `vm_size` with the `extra` options, and waits until it answers.
    fn start(vm_size: &str, extra: &[&OsStr]) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("platform.sock");
        let uid_base = UID_BASE.fetch_add(10_000, Ordering::SeqCst).to_string();
        let mut cmd = Command::new(&fixture().coffer);
        cmd.args(["platform", "serve", "--vm-size", vm_size, "--socket"])
            .arg(&socket)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(["--uid-base", &uid_base])
            .args(extra)
            .env_remove("COFFER_LOG");
        let mut node = Node {
            daemon: Some(Spawned::start("coffer platform serve", &mut cmd)),
            socket,
            _dir: dir,
        };
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if node.try_status().is_some() {
                return node;
            }
            let daemon = node.daemon.as_mut().unwrap();
            if daemon.has_exited() {
                let done = node.daemon.take().unwrap().wait(TIMEOUT);
                panic!("the daemon ended: {}\n{}", done.status, done.stderr);
            }
            assert!(Instant::now() < deadline, "the daemon did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn daemon_pid(&self) -> u32 {
        self.daemon.as_ref().unwrap().pid()
    }

    fn try_status(&self) -> Option<Value> {
        let mut cmd = Command::new(&fixture().coffer);
        cmd.args(["platform", "status", "--json", "--socket"])
            .arg(&self.socket);
        let done = coffer_testkit::process::try_run("coffer platform status", &mut cmd, TIMEOUT)?;
        done.status
            .success()
            .then(|| serde_json::from_str(done.stdout.trim()).ok())
            .flatten()
    }

    /// `coffer platform status --json`.
    fn status(&self) -> Value {
        self.try_status().expect("coffer platform status failed")
    }

    /// Polls the status until `check` holds.
    fn wait_for(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        coffer_testkit::wait_until(what, TIMEOUT, Duration::from_millis(50), || {
            let s = self.status();
            if check(&s) { Ok(s) } else { Err(s) }
        })
    }

    /// `hello --socket SOCKET --bundle BUNDLE ARGS`.
    fn hello(&self, bundle: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hello"));
        cmd.arg("--socket")
            .arg(&self.socket)
            .arg("--bundle")
            .arg(bundle)
            .args(args);
        cmd
    }

    /// Runs hello to its end.
    fn run_hello(&self, bundle: &Path, args: &[&str]) -> Finished {
        coffer_testkit::process::run("hello", &mut self.hello(bundle, args), TIMEOUT)
    }

    /// `hello --probe NONCE --hold`: the running hello and its enclave's pid.
    fn hold(&self, bundle: &Path, nonce: &[u8]) -> (Spawned, u32) {
        let hex = hex::encode(nonce);
        let mut hello = Spawned::start(
            "hello --hold",
            &mut self.hello(bundle, &["--probe", &hex, "--hold"]),
        );
        let line = hello.line(TIMEOUT);
        let pid = line
            .strip_prefix("enclave pid: ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("expected `enclave pid: N`, got {line:?}"));
        (hello, pid)
    }

    /// A host connection of this test process, for ECALLs made directly through coffer-host.
    fn connect(&self) -> Platform {
        Platform::connect(&self.socket).unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // The enclaves go with their clients' connections; wait for that, then make sure.
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Some(s) = self.try_status() {
            let pids: Vec<i32> = s["enclaves"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| i32::try_from(e["pid"].as_i64()?).ok())
                .collect();
            if pids.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                for pid in pids.into_iter().filter_map(rustix::process::Pid::from_raw) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(daemon) = self.daemon.take() {
            let _ = daemon.kill();
        }
    }
}

/// The one enclave of `status` with pid `pid`.
fn enclave_with_pid(status: &Value, pid: u32) -> Value {
    status["enclaves"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["pid"].as_u64() == Some(u64::from(pid)))
        .unwrap_or_else(|| panic!("no enclave with pid {pid}: {status:#}"))
        .clone()
}

fn epc_used(status: &Value) -> u64 {
    status["epc_used"].as_u64().unwrap()
}

// ---------------------------------------------------------------------------------------------
// The hello host's side, for the ECALLs a test makes directly.

struct EchoHost;

impl HelloHost for EchoHost {
    fn echo(&self, text: String) -> String {
        text
    }
}

fn create_hello(platform: &Platform, bundle: &Path) -> Enclave {
    let options = EnclaveOptions::typed(&HELLO_INTERFACE).serving(
        &HELLO_HOST_INTERFACE,
        EchoHost,
        hello_host_dispatch,
    );
    platform.create_enclave_with(bundle, options).unwrap()
}

fn echo(enclave: &Enclave, text: &str) -> Result<String, TransportError> {
    HelloProxy::new(enclave)
        .echo(text.to_owned())
        .map(|r| r.unwrap())
}

// ---------------------------------------------------------------------------------------------
// The memory scan.

/// Holds a hello enclave that has PROBEd a fresh nonce and scans it, as root, through
/// `/proc/PID/mem`, for the digest and for the nonce.
///
/// Where the bytes are, so that only the boundary decides the result: the digest is computed
/// inside the enclave from the nonce and never leaves it; the test's own copy is in the test
/// process, which the scan does not read, and the enclave was executed from a sealed image by
/// the daemon, so it holds no copy of anyone's memory. The nonce is the marker: it stays in the
/// call buffer of the channel, which the enclave maps as ordinary shared memory, so finding it
/// proves that the scan reads the enclave's ordinary memory in this very run.
fn hold_and_scan(node: &Node, bundle: &Path) -> SecretScan {
    let nonce = random_nonce();
    let (hello, pid) = node.hold(bundle, &nonce);
    let scan = scan_for_secret(pid, &probe_digest(&nonce), &nonce);
    let done = hello.wait(TIMEOUT);
    done.expect_success("hello --hold after its standard input closed");
    scan
}

#[test]
fn root_scan_of_proc_mem_does_not_find_the_probe_in_hello_but_finds_it_in_its_debug_twin() {
    if !require_root(
        "root_scan_of_proc_mem_does_not_find_the_probe_in_hello_but_finds_it_in_its_debug_twin",
    ) {
        return;
    }
    let f = fixture();
    let node = Node::start("Standard_DC2s_v2", &[os("--allow-debug")]);

    // At least the heap and the two worker stacks are secret memory, which the kernel refuses.
    hold_and_scan(&node, &f.hello).assert_secret_hidden(3);
    // The control: the DEBUG twin keeps the same copies in ordinary memory, the heap's and the
    // one on the worker's stack.
    hold_and_scan(&node, &f.debug).assert_secret_found(PROBE_HEAP_COPIES + 1);
}

// ---------------------------------------------------------------------------------------------
// Debuggers.

/// Run by `an_unprivileged_process_of_the_enclaves_uid_cannot_ptrace_hello` as the attacker,
/// in a process of the enclave's own uid and capability; does nothing when run directly.
#[test]
#[ignore = "a helper process of another test"]
fn helper_ptrace_attach() {
    let Ok(tracee) = std::env::var("COFFER_SYSTEM_TRACEE") else {
        return;
    };
    match coffer_testkit::ptrace::seize(tracee.parse().unwrap()) {
        Ok(()) => println!("attached"),
        Err(e) => println!("denied {}", e.raw_os_error().unwrap_or(0)),
    }
}

/// The uid and gid process `pid` runs as.
fn credentials_of(pid: u32) -> Credentials {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let id = |field: &str| -> u32 {
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    Credentials {
        uid: id("Uid:"),
        gid: id("Gid:"),
    }
}

/// Kills and reaps the attacker process when dropped.
struct Attacker(EnclaveChild);

impl Drop for Attacker {
    fn drop(&mut self) {
        if self.0.kill().is_ok() {
            let _ = self.0.wait();
        }
    }
}

/// Runs [`helper_ptrace_attach`] against `tracee` in a process with `credentials` and
/// `CAP_IPC_LOCK` alone (what an enclave process has: another enclave of the same uid), started
/// as the daemon starts enclaves; returns its verdict (`attached` or `denied ERRNO`).
fn attack(credentials: Credentials, tracee: u32) -> String {
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let image = SealedImage::new("hello-system-attacker", &exe).unwrap();
    let (mut out, out_w) = std::io::pipe().unwrap();
    let stderr = std::io::stderr();
    let child = spawn_enclave_process(SpawnSpec {
        image: &image,
        argv: ["attacker", "--exact", "helper_ptrace_attach", "--ignored"]
            .into_iter()
            .chain(["--nocapture"])
            .map(str::to_owned)
            .collect(),
        envp: vec![
            format!("COFFER_SYSTEM_TRACEE={tracee}"),
            "RUST_BACKTRACE=0".to_owned(),
        ],
        fds: vec![(out_w.as_fd(), 1), (stderr.as_fd(), 2)],
        credentials: Some(credentials),
        keep_ipc_lock: true,
    })
    .unwrap();
    let attacker = Attacker(child);
    drop(out_w);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let output = rx
        .recv_timeout(TIMEOUT)
        .unwrap_or_else(|_| panic!("the attacker did not finish within {TIMEOUT:?}"));
    let status = attacker.0.wait().unwrap();
    assert!(
        status.success(),
        "the attacker failed ({status}):\n{output}"
    );
    output
        .lines()
        .find(|l| *l == "attached" || l.starts_with("denied "))
        .unwrap_or_else(|| panic!("no verdict from the attacker:\n{output}"))
        .to_owned()
}

#[test]
fn an_unprivileged_process_of_the_enclaves_uid_cannot_ptrace_hello() {
    if !require_root("an_unprivileged_process_of_the_enclaves_uid_cannot_ptrace_hello") {
        return;
    }
    let f = fixture();
    let node = Node::start("Standard_DC2s_v2", &[os("--allow-debug")]);

    // The attacker has everything the enclave has (its uid, gid and capability): only the
    // enclave's non-dumpable flag stands in the way.
    let (hello, pid) = node.hold(&f.hello, &random_nonce());
    let credentials = credentials_of(pid);
    assert_ne!(credentials.uid, 0, "the enclave must not run as root");
    assert_eq!(
        attack(credentials, pid),
        format!("denied {}", libc::EPERM),
        "an unprivileged attach to the production enclave"
    );
    hello
        .wait(TIMEOUT)
        .expect_success("hello --hold, undisturbed by the refused attach");

    // The control: the same attacker on the DEBUG twin (dumpable, as SGX's DEBUG attribute
    // allows a debugger in) attaches.
    let (hello, pid) = node.hold(&f.debug, &random_nonce());
    assert_eq!(
        attack(credentials_of(pid), pid),
        "attached",
        "control: a DEBUG enclave can be debugged by its uid"
    );
    hello.wait(TIMEOUT).expect_success("hello --hold (DEBUG)");
}

/// The runtime checks for a tracer when an ECALL arrives, at most once a millisecond per
/// worker under a steady stream of calls; a debugger takes longer than that to attach in
/// practice. The test waits that long so that "the next ECALL" is well defined.
const AFTER_ATTACH: Duration = Duration::from_millis(5);

#[test]
fn root_tracer_makes_hello_lost_at_the_next_ecall() {
    if !require_root("root_tracer_makes_hello_lost_at_the_next_ecall") {
        return;
    }
    let f = fixture();
    let node = Node::start("Standard_DC2s_v2", &[os("--allow-debug")]);
    let platform = node.connect();

    let enclave = create_hello(&platform, &f.hello);
    assert_eq!(echo(&enclave, "before").unwrap(), "before");
    let tracer = Tracer::attach(enclave.pid()).unwrap();
    std::thread::sleep(AFTER_ATTACH);
    match echo(&enclave, "traced") {
        Err(TransportError::EnclaveLost(reason)) => assert_eq!(
            reason,
            format!("tracer attached (pid {})", tracer.tid()),
            "the loss names the tracer"
        ),
        other => panic!("expected EnclaveLost at the first ECALL under a tracer, got {other:?}"),
    }
    drop(tracer);
    assert!(matches!(
        echo(&enclave, "again"),
        Err(TransportError::EnclaveLost(_))
    ));
    let pid = enclave.pid();
    let s = node.wait_for("the traced enclave's EPC to be free", |s| epc_used(s) == 0);
    assert_eq!(enclave_with_pid(&s, pid)["state"], "lost", "{s:#}");

    // The control: a DEBUG enclave may be debugged, and serves on.
    let enclave = create_hello(&platform, &f.debug);
    let tracer = Tracer::attach(enclave.pid()).unwrap();
    std::thread::sleep(AFTER_ATTACH);
    assert_eq!(echo(&enclave, "debugged").unwrap(), "debugged");
    drop(tracer);
}

// ---------------------------------------------------------------------------------------------
// The sandbox, the EPC budget, and launch policy.

#[test]
fn try_open_loses_hello_to_its_sandbox_frees_its_epc_and_the_daemon_serves_on() {
    if !require_root("try_open_loses_hello_to_its_sandbox_frees_its_epc_and_the_daemon_serves_on") {
        return;
    }
    let f = fixture();
    let node = Node::start("Standard_DC2s_v2", &[]);
    let (bystander, bystander_pid) = node.hold(&f.hello, &random_nonce());
    let before = node.status();
    let bystander_epc = enclave_with_pid(&before, bystander_pid)["epc_bytes"].clone();
    assert_eq!(before["epc_used"], bystander_epc, "{before:#}");

    let done = node.run_hello(&f.hello, &["--try-open", "/etc/hostname"]);
    done.expect_code(3, "hello --try-open");
    assert!(
        done.stderr.contains(
            "EnclaveLost: sandbox violation: the enclave made a forbidden system call (killed by \
             seccomp)"
        ),
        "{}",
        done.stderr
    );

    let after = node.wait_for("the lost enclave's EPC to be free", |s| {
        s["epc_used"] == before["epc_used"]
    });
    for e in after["enclaves"].as_array().unwrap() {
        if e["pid"].as_u64() != Some(u64::from(bystander_pid)) {
            assert_eq!(e["state"], "lost", "gone or lost: {after:#}");
        }
    }
    assert_eq!(
        enclave_with_pid(&after, bystander_pid)["state"],
        "running",
        "{after:#}"
    );

    let done = node.run_hello(&f.hello, &["--echo", "still serving"]);
    assert_eq!(
        done.expect_success("another hello after the violation"),
        "still serving\n"
    );
    bystander
        .wait(TIMEOUT)
        .expect_success("the bystander hello --hold");
}

/// Whether process `pid` still runs (a zombie holds no memory and runs nothing).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name's closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

#[test]
fn a_sigkilled_daemon_leaves_no_enclave_running() {
    if !require_root("a_sigkilled_daemon_leaves_no_enclave_running") {
        return;
    }
    let f = fixture();
    let mut node = Node::start("Standard_DC2s_v2", &[]);
    let (hello, enclave_pid) = node.hold(&f.hello, &random_nonce());
    // A second enclave, created on another client thread of the daemon that is still alive.
    let platform = node.connect();
    let second = create_hello(&platform, &f.hello);
    let second_pid = second.pid();
    assert!(running(enclave_pid) && running(second_pid));

    let daemon = node.daemon.take().unwrap();
    let daemon_pid = daemon.pid();
    let _ = daemon.kill(); // SIGKILL: no handler, no clean-up of its own
    assert!(!running(daemon_pid), "the daemon still runs");
    let left = coffer_testkit::wait_until(
        "every enclave to end with its daemon",
        Duration::from_secs(1),
        Duration::from_millis(10),
        || {
            let left: Vec<u32> = [enclave_pid, second_pid]
                .into_iter()
                .filter(|pid| running(*pid))
                .collect();
            if left.is_empty() { Ok(left) } else { Err(left) }
        },
    );
    assert!(left.is_empty());
    drop(second);
    let _ = hello.kill();
}

#[test]
fn a_second_hello_that_does_not_fit_on_dc1s_v2_is_refused_until_the_first_exits() {
    if !require_root("a_second_hello_that_does_not_fit_on_dc1s_v2_is_refused_until_the_first_exits")
    {
        return;
    }
    let f = fixture();
    let asked = inspect(&f.coffer, &f.big)["epc_size"].as_u64().unwrap();
    assert!(asked > 14 * MIB, "two must not fit in 28 MiB: {asked}");
    let node = Node::start("Standard_DC1s_v2", &[]);

    let (first, _) = node.hold(&f.big, &random_nonce());
    let done = node.run_hello(&f.big, &["--echo", "second"]);
    done.expect_code(1, "the second hello");
    let expected = format!(
        "error: EPC exhausted: the enclave needs {asked} bytes but only {} of {} bytes are free on \
         this Standard_DC1s_v2 node",
        28 * MIB - asked,
        28 * MIB
    );
    assert_eq!(done.stderr.trim_end(), expected);

    first.wait(TIMEOUT).expect_success("the first hello --hold");
    node.wait_for("the first enclave's EPC to be free", |s| epc_used(s) == 0);
    let done = node.run_hello(&f.big, &["--echo", "second"]);
    assert_eq!(
        done.expect_success("the second hello, now that it fits"),
        "second\n"
    );
}

#[test]
fn rejects_hello_with_one_code_byte_changed_naming_both_measurements() {
    if !require_root("rejects_hello_with_one_code_byte_changed_naming_both_measurements") {
        return;
    }
    let f = fixture();
    let original = inspect(&f.coffer, &f.hello);
    let changed = inspect(&f.coffer, &f.changed);
    assert_eq!(changed["measurement_valid"], false, "{changed:#}");
    assert_eq!(changed["signature_valid"], true, "{changed:#}");
    let expected = changed["mrenclave"].as_str().unwrap();
    let actual = changed["measured_mrenclave"].as_str().unwrap();
    assert_eq!(expected, original["mrenclave"].as_str().unwrap());
    assert_ne!(expected, actual);

    let node = Node::start("Standard_DC2s_v2", &[]);
    let done = node.run_hello(&f.changed, &["--echo", "x"]);
    done.expect_code(1, "hello with the changed bundle");
    assert_eq!(
        done.stderr.trim_end(),
        format!(
            "error: measurement mismatch: SIGSTRUCT ENCLAVEHASH is {expected} but the image and \
             configuration measure {actual}"
        )
    );
    assert_eq!(epc_used(&node.status()), 0);
}

#[test]
fn rejects_hello_from_a_signer_not_on_the_allowlist_and_accepts_one_on_it() {
    if !require_root("rejects_hello_from_a_signer_not_on_the_allowlist_and_accepts_one_on_it") {
        return;
    }
    let f = fixture();
    let ours = inspect(&f.coffer, &f.hello)["mrsigner"]
        .as_str()
        .unwrap()
        .to_owned();
    let theirs = inspect(&f.coffer, &f.foreign)["mrsigner"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(ours, theirs);
    let allowlist = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(allowlist.path(), format!("# the only signer\n{theirs}\n")).unwrap();
    let node = Node::start(
        "Standard_DC2s_v2",
        &[os("--signer-allowlist"), allowlist.path().as_os_str()],
    );

    let done = node.run_hello(&f.hello, &["--echo", "x"]);
    done.expect_code(1, "hello signed by a key not on the allowlist");
    assert_eq!(
        done.stderr.trim_end(),
        format!(
            "error: signer not allowed: MRSIGNER {ours} is not on the platform's signer allowlist"
        )
    );
    // The control: the same enclave signed by the allowed key runs.
    let done = node.run_hello(&f.foreign, &["--echo", "allowed"]);
    assert_eq!(
        done.expect_success("hello signed by the allowed key"),
        "allowed\n"
    );
}

#[test]
fn rejects_debug_hello_without_allow_debug() {
    if !require_root("rejects_debug_hello_without_allow_debug") {
        return;
    }
    let f = fixture();
    let node = Node::start("Standard_DC2s_v2", &[]);
    let done = node.run_hello(&f.debug, &["--echo", "x"]);
    done.expect_code(1, "a DEBUG hello without --allow-debug");
    assert_eq!(
        done.stderr.trim_end(),
        "error: debug not allowed: this platform was started without --allow-debug"
    );
    // The control: the production twin runs on the same daemon (and the DEBUG one runs with
    // --allow-debug in the memory-scan test).
    let done = node.run_hello(&f.hello, &["--echo", "production"]);
    assert_eq!(done.expect_success("production hello"), "production\n");
}

// ---------------------------------------------------------------------------------------------
// The sealed image.

/// Every path that reaches the running image of `pid`: `/proc/PID/exe`, its mappings in
/// `/proc/PID/map_files`, and any descriptor of the enclave or of the daemon that refers to
/// the same file.
fn paths_to_image(pid: u32, daemon: u32) -> Vec<PathBuf> {
    let exe = PathBuf::from(format!("/proc/{pid}/exe"));
    let meta = std::fs::metadata(&exe).unwrap();
    let same = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
    };
    let mut paths = vec![exe.clone()];
    for dir in [
        format!("/proc/{pid}/map_files"),
        format!("/proc/{pid}/fd"),
        format!("/proc/{daemon}/fd"),
    ] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            paths.extend(entries.flatten().map(|e| e.path()).filter(|p| same(p)));
        }
    }
    paths
}

#[test]
fn the_sealed_image_of_a_running_hello_cannot_be_written() {
    if !require_root("the_sealed_image_of_a_running_hello_cannot_be_written") {
        return;
    }
    let f = fixture();
    let node = Node::start("Standard_DC2s_v2", &[]);
    let (hello, pid) = node.hold(&f.hello, &random_nonce());
    let exe = format!("/proc/{pid}/exe");

    // What runs is what was measured: the bundle's image, byte for byte.
    assert!(
        std::fs::read(&exe).unwrap() == f.image,
        "the running image differs"
    );

    // Root cannot open it for writing, by any path that reaches it.
    let paths = paths_to_image(pid, node.daemon_pid());
    assert!(
        paths.len() >= 2,
        "/proc/PID/exe and its mappings: {paths:?}"
    );
    for path in &paths {
        match std::fs::OpenOptions::new().write(true).open(path) {
            Err(e) => assert!(
                matches!(
                    e.raw_os_error(),
                    Some(libc::EPERM | libc::ETXTBSY | libc::EACCES)
                ),
                "{}: {e}",
                path.display()
            ),
            Ok(mut file) => {
                let err = std::io::Write::write(&mut file, b"\xcc")
                    .expect_err(&format!("{} took a write", path.display()));
                assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{}", path.display());
            }
        }
    }

    // The refusal is the seals' doing, not only the kernel's refusal to write a running
    // executable (ETXTBSY, which would end with the process): writes, size changes and new
    // seals are all sealed off for good.
    let file = std::fs::File::open(&exe).unwrap();
    let seals = rustix::fs::fcntl_get_seals(&file).unwrap();
    use rustix::fs::SealFlags;
    assert!(
        seals.contains(SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL),
        "{seals:?}"
    );
    drop(file);
    hello.wait(TIMEOUT).expect_success("hello --hold");
}
