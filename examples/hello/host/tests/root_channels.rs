//! Root's run-time channels into a production hello enclave (docs/advisories.md), each attacked
//! with the real binaries, as root, on the machine the test runs on. Every test asserts two
//! things: whether the channel is open here (the attack reads the probe digest out of the
//! enclave, changes its code or speaks for it, or the kernel refuses), and that
//! `coffer platform status --json` names the channel's advisory exactly when it is open. On the
//! development machine every attack works and every advisory is named; on a host built to the
//! Coffer node profile (docs/node-profile.md) the same tests pass the other way for every channel
//! the profile closes.
//!
//! | test | channel | advisory |
//! |---|---|---|
//! | `bpf_tracing_reads_the_probe_…` | bpftrace on `raw_syscalls:sys_enter`, `probe_read_user` of the secret mappings | COFFER-SA-0001 |
//! | `a_uprobe_fetches_the_probe_…` | uprobes through tracefs and through bpftrace, reading above the worker's stack pointer | COFFER-SA-0002 |
//! | `perf_user_stack_samples_copy_the_probe_…` | `perf record --call-graph dwarf -p PID`, then a scan of `perf.data` | COFFER-SA-0003 |
//! | `a_brief_ptrace_attach_changes_code_unseen_…` | SEIZE, INTERRUPT, POKEDATA, DETACH in well under 1 ms; the daemon does not notice | COFFER-SA-0004 |
//! | `pidfd_getfd_speaks_for_the_enclave_…` | the enclave's daemon socket taken; EGETKEY and EREPORT on it | COFFER-SA-0005 |
//! | `a_forced_proc_mem_write_changes_code_…` | a write into the r-x image mapping through `/proc/PID/mem` | COFFER-SA-0006 |
//! | `the_root_key_file_derives_enclave_keys_…` | `root.key` read; the enclave's seal key derived offline | COFFER-SA-0009 |
//! | `the_status_gives_level_and_advisories_as_fields_…` | the JSON fields; lockdown (SA-0007) and the configuration-based channels against securityfs and the kernel configuration as the test reads them | all |
//!
//! The binaries: `coffer` built by `coffer_testkit::build_host_binary` into `target/enclave-tests`
//! (as `system.rs` does), `hello-enclave` built and signed by `coffer build` there too.
//!
//! The setup: `coffer platform serve` (the real daemon binary) on a socket of its own; this
//! test process is the host application: it creates a production `hello` enclave (signed with
//! the public vectors' key, `examples/hello/enclave.toml`) through coffer-host, sends it a
//! PROBE with a fresh nonce (the enclave keeps SHA-256("coffer-probe" ‖ nonce) 1,000 times in
//! its secret heap and once in its worker's thread-local storage, on its secret stack, and
//! never sends it out), and keeps ECALL traffic going while the attack runs (an `echo` ECALL,
//! which makes an OCALL, about every millisecond), as an application would.
//!
//! The tools are the distribution's: bpftrace, perf and a shell for tracefs (`.ci/run` installs
//! them). tracefs is mounted, when a tool needs it, in a private mount namespace of that tool
//! (`unshare -m`), so the host's mounts do not change. A tool that is missing fails the test
//! (it would otherwise read as a closed channel); a tool that runs but reads nothing decides
//! "closed" only when the kernel refused it, otherwise the test fails as inconclusive.
//!
//! Not root: the tests skip, saying why, except under `CI=true`.

#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use coffer_host::{Enclave, EnclaveOptions, Platform};
use coffer_testkit::process::{Finished, Spawned};
use coffer_testkit::root_attack::{self, Mapping};
use coffer_testkit::{require_root, workspace_dir};
use hello_common::{
    HELLO_HOST_INTERFACE, HELLO_INTERFACE, HelloHost, HelloProxy, hello_host_dispatch, probe_digest,
};
use serde_json::Value;

/// How long any one `coffer` run or daemon wait may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// How long an attack tool may run.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a build may take (cold, it compiles the enclave and its dependencies).
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

// ---------------------------------------------------------------------------------------------
// The binaries, the bundle and the node.

struct Fixture {
    coffer: PathBuf,
    /// `examples/hello/enclave.toml` (production), signed with the vectors' `sig1.key.pem`.
    hello: PathBuf,
    /// The ELF image inside it.
    image: Vec<u8>,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let coffer = coffer_testkit::build_host_binary("coffer-cli", "coffer");
        let dir = tempfile::tempdir().unwrap();
        let hello = dir.path().join("hello.coffer");
        let mut cmd = Command::new(&coffer);
        cmd.current_dir(workspace_dir())
            .args(["build", "-p", "hello-enclave", "--key"])
            .arg(coffer_testkit::vector("sgx/sig1.key.pem"))
            .arg("--config")
            .arg(workspace_dir().join("examples/hello/enclave.toml"))
            .arg("-o")
            .arg(&hello)
            .arg("--target-dir")
            .arg(coffer_testkit::test_target_dir())
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR");
        coffer_testkit::process::run("coffer build", &mut cmd, BUILD_TIMEOUT)
            .expect_success("coffer build");
        // The image is stored last in the bundle, unchanged.
        let mut inspect = Command::new(&coffer);
        inspect.arg("inspect").arg(&hello).arg("--json");
        let out = coffer_testkit::process::run("coffer inspect", &mut inspect, TIMEOUT)
            .expect_success("coffer inspect")
            .to_owned();
        let info: Value = serde_json::from_str(out.trim()).unwrap();
        let bundle = std::fs::read(&hello).unwrap();
        let size = usize::try_from(info["image_size"].as_u64().unwrap()).unwrap();
        let image = bundle[bundle.len() - size..].to_vec();
        Fixture {
            coffer,
            hello,
            image,
            _dir: dir,
        }
    })
}

static UID_BASE: AtomicU32 = AtomicU32::new(3_700_000);

/// `coffer platform serve` on a socket of its own, stopped when dropped (after its enclaves,
/// which belong to this process's connections, are gone).
struct Node {
    daemon: Option<Spawned>,
    socket: PathBuf,
    /// The daemon's state directory (its root key file among others).
    state: PathBuf,
    _dir: tempfile::TempDir,
}

impl Node {
    fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("platform.sock");
        let uid_base = UID_BASE.fetch_add(10_000, Ordering::SeqCst).to_string();
        let mut cmd = Command::new(&fixture().coffer);
        cmd.args([
            "platform",
            "serve",
            "--vm-size",
            "Standard_DC2s_v2",
            "--socket",
        ])
        .arg(&socket)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["--uid-base", &uid_base])
        .env_remove("COFFER_LOG");
        let mut node = Node {
            daemon: Some(Spawned::start("coffer platform serve", &mut cmd)),
            socket,
            state: dir.path().join("state"),
            _dir: dir,
        };
        let deadline = Instant::now() + TIMEOUT;
        while node.try_status().is_none() {
            let daemon = node.daemon.as_mut().unwrap();
            if daemon.has_exited() {
                let done = node.daemon.take().unwrap().wait(TIMEOUT);
                panic!("the daemon ended: {}\n{}", done.status, done.stderr);
            }
            assert!(Instant::now() < deadline, "the daemon did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        node
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

    /// The advisory ids of the node's TCB status.
    fn advisories(&self) -> (String, Vec<String>) {
        let s = self.status();
        let level = s["tcb"]["level"].as_str().unwrap().to_owned();
        let ids = s["tcb"]["advisories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect();
        (level, ids)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(daemon) = self.daemon.take() {
            let _ = daemon.kill();
        }
    }
}

struct EchoHost;

impl HelloHost for EchoHost {
    fn echo(&self, text: String) -> String {
        text
    }
}

/// A production hello enclave of this process that PROBEd a fresh nonce.
struct Held {
    _platform: Platform,
    enclave: Enclave,
    pid: u32,
    digest: [u8; 32],
}

fn hold(node: &Node) -> Held {
    let platform = Platform::connect(&node.socket).unwrap();
    let options = EnclaveOptions::typed(&HELLO_INTERFACE).serving(
        &HELLO_HOST_INTERFACE,
        EchoHost,
        hello_host_dispatch,
    );
    let enclave = platform
        .create_enclave_with(&fixture().hello, options)
        .unwrap();
    assert!(
        !enclave.debug(),
        "the attacks must run against a production enclave"
    );
    let mut nonce = [0u8; 32];
    getrandom_nonce(&mut nonce);
    HelloProxy::new(&enclave).probe(nonce.to_vec()).unwrap();
    let pid = enclave.pid();
    Held {
        _platform: platform,
        enclave,
        pid,
        digest: probe_digest(&nonce),
    }
}

fn getrandom_nonce(bytes: &mut [u8; 32]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(bytes)
        .unwrap();
}

impl Held {
    fn echo(&self) -> Result<String, String> {
        match HelloProxy::new(&self.enclave).echo("ping".to_owned()) {
            Ok(r) => r,
            Err(e) => Err(e.to_string()),
        }
    }

    /// Runs `attack` while another thread makes an `echo` ECALL about every millisecond.
    /// Returns the attack's result and the number of ECALLs made meanwhile.
    fn with_traffic<T>(&self, attack: impl FnOnce() -> T) -> (T, u64) {
        let stop = AtomicBool::new(false);
        let calls = AtomicU64::new(0);
        let result = std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    if self.echo().is_err() {
                        break;
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            let result = attack();
            stop.store(true, Ordering::Relaxed);
            result
        });
        (result, calls.load(Ordering::Relaxed))
    }

    /// The enclave's secret memory: its `memfd_secret` mappings (heap, worker stacks).
    fn secret_mappings(&self) -> Vec<Mapping> {
        let secret: Vec<Mapping> = root_attack::mappings(self.pid)
            .into_iter()
            .filter(|m| m.path.starts_with("/secretmem") && m.perms.starts_with("rw"))
            .collect();
        assert!(
            !secret.is_empty(),
            "the enclave has no secret memory mapping"
        );
        secret
    }
}

/// The check every test ends with: the status names `id` exactly when the attack found the
/// channel open. Prints what was measured.
fn assert_named_exactly_when_open(node: &Node, id: &str, open: bool, evidence: &str) {
    let (level, ids) = node.advisories();
    eprintln!(
        "{id}: channel {} on this host ({evidence}); TCB status {level} {ids:?}",
        if open { "OPEN" } else { "closed" }
    );
    assert_eq!(
        ids.iter().any(|i| i == id),
        open,
        "{id} must be named exactly when the channel is open: the attack found it {}, the status is {level} {ids:?} ({evidence})",
        if open { "open" } else { "closed" }
    );
    if open {
        assert_ne!(level, "UpToDate", "{ids:?}");
    }
}

/// Runs `script` with `sh -c` in a private mount namespace with tracefs mounted at
/// `/sys/kernel/tracing` (the host's mounts do not change), under a timeout.
fn with_private_tracefs(what: &str, script: &str) -> Finished {
    let full = format!(
        "set -e; mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing; {script}"
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &full]);
    coffer_testkit::process::run(what, &mut cmd, TOOL_TIMEOUT)
}

/// Fails the test when `tool` is not installed: a missing tool must not read as a closed
/// channel.
fn require_tool(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: .ci/run installs it from the distribution's packages (apt-get install bpftrace linux-perf)"
    );
}

/// Whether `e` is the kernel refusing an attack (rather than the test getting something wrong,
/// which must not read as a closed channel).
fn refused(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EPERM | libc::EACCES | libc::EIO | libc::EFAULT)
    )
}

/// Every `\xHH` of bpftrace's `%rx` output, as bytes.
fn unescape_hex(text: &str) -> Vec<u8> {
    text.split("\\x")
        .skip(1)
        .filter_map(|h| h.get(..2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// COFFER-SA-0001: BPF tracing programs.

/// A bpftrace program on `raw_syscalls:sys_enter`, filtered by the enclave's pid, copies its
/// secret mappings out 4 KiB per system call with `probe_read_user` (`buf(uptr(...))`).
#[test]
fn bpf_tracing_reads_the_probe_exactly_when_the_status_names_coffer_sa_0001() {
    if !require_root("bpf_tracing_reads_the_probe_exactly_when_the_status_names_coffer_sa_0001") {
        return;
    }
    require_tool("bpftrace");
    let node = Node::start();
    let held = hold(&node);
    let secret = held.secret_mappings();
    let mut script = String::new();
    let mut done = Vec::new();
    for (i, m) in secret.iter().enumerate() {
        let size = m.end - m.start;
        writeln!(
            script,
            "tracepoint:raw_syscalls:sys_enter /pid == {pid} && @o{i} < {size}/ {{
  $i = 0;
  while ($i < 64) {{
    printf(\"{i} %lu %rx\\n\", @o{i} + $i * 64, buf(uptr({start} + @o{i} + $i * 64), 64));
    $i++;
  }}
  @o{i} += 4096;
}}",
            pid = held.pid,
            start = m.start,
        )
        .unwrap();
        done.push(format!("@o{i} >= {size}"));
    }
    // Clearing the maps at the end keeps bpftrace from printing them into the dump.
    let clear: String = (0..secret.len())
        .map(|i| format!("clear(@o{i}); "))
        .collect();
    writeln!(
        script,
        "interval:ms:50 {{ if ({}) {{ exit(); }} }}\ninterval:s:40 {{ exit(); }}\nEND {{ {clear}}}",
        done.join(" && ")
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.bt");
    std::fs::write(&path, &script).unwrap();
    let started = Instant::now();
    let (run, calls) = held.with_traffic(|| {
        with_private_tracefs(
            "bpftrace",
            &format!(
                "export BPFTRACE_PERF_RB_PAGES=1024; exec bpftrace {}",
                path.display()
            ),
        )
    });
    let took = started.elapsed();
    // Put the dump back together, mapping by mapping.
    let mut images: Vec<Vec<u8>> = secret
        .iter()
        .map(|m| vec![0u8; usize::try_from(m.end - m.start).unwrap()])
        .collect();
    let mut bytes_read = 0usize;
    for line in run.stdout.lines() {
        let mut f = line.splitn(3, ' ');
        let (Some(i), Some(off), Some(data)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let (Ok(i), Ok(off)) = (i.parse::<usize>(), off.parse::<usize>()) else {
            continue;
        };
        let data = unescape_hex(data);
        if let Some(dst) = images
            .get_mut(i)
            .and_then(|img| img.get_mut(off..off + data.len()))
        {
            dst.copy_from_slice(&data);
            bytes_read += data.len();
        }
    }
    let copies: usize = images
        .iter()
        .map(|img| root_attack::count(img, &held.digest))
        .sum();
    let evidence = format!(
        "bpftrace exited {}, read {bytes_read} of {} secret bytes in {took:?} during {calls} ECALLs, {copies} probe copies",
        run.status,
        images.iter().map(Vec::len).sum::<usize>()
    );
    if copies == 0 {
        assert!(
            bytes_read == 0 && !run.status.success(),
            "bpftrace read enclave memory but no probe copy, or read nothing without being refused: inconclusive ({evidence})\n{}",
            run.stderr
        );
    }
    assert_named_exactly_when_open(&node, "COFFER-SA-0001", copies > 0, &evidence);
}

// ---------------------------------------------------------------------------------------------
// COFFER-SA-0003: perf user-stack sampling.

/// `perf record -e raw_syscalls:sys_enter --call-graph dwarf -p PID`: each sample carries 8 KiB
/// of the sampled thread's user stack, which for an ECALL worker is secret memory holding the
/// probe's thread-local copy. The test scans `perf.data` for the probe.
#[test]
fn perf_user_stack_samples_copy_the_probe_exactly_when_the_status_names_coffer_sa_0003() {
    if !require_root(
        "perf_user_stack_samples_copy_the_probe_exactly_when_the_status_names_coffer_sa_0003",
    ) {
        return;
    }
    require_tool("perf");
    let node = Node::start();
    let held = hold(&node);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("perf.data");
    let (run, calls) = held.with_traffic(|| {
        with_private_tracefs(
            "perf record",
            &format!(
                "exec perf record -q -e raw_syscalls:sys_enter -c 32 --call-graph dwarf -p {} -o {} -- sleep 1",
                held.pid,
                data.display()
            ),
        )
    });
    let bytes = std::fs::read(&data).unwrap_or_default();
    let copies = root_attack::count(&bytes, &held.digest);
    let evidence = format!(
        "perf record exited {}, wrote {} bytes of perf.data during {calls} ECALLs, {copies} probe copies in it",
        run.status,
        bytes.len()
    );
    if copies == 0 {
        assert!(
            !run.status.success(),
            "perf recorded but no probe copy: inconclusive ({evidence})\n{}",
            run.stderr
        );
    }
    assert_named_exactly_when_open(&node, "COFFER-SA-0003", copies > 0, &evidence);
}

// ---------------------------------------------------------------------------------------------
// COFFER-SA-0004: a brief ptrace attach.

/// As root: `PTRACE_SEIZE` the enclave's main thread, stop it, `PTRACE_POKEDATA` a changed word
/// into its code (read back while attached), write the original back, detach — well under the
/// daemon's 100 ms tracer poll. Then the daemon still reports the enclave running and it still
/// serves ECALLs: the tracer poll catches a debugger that stays, not this.
#[test]
fn a_brief_ptrace_attach_changes_code_unseen_exactly_when_the_status_names_coffer_sa_0004() {
    if !require_root(
        "a_brief_ptrace_attach_changes_code_unseen_exactly_when_the_status_names_coffer_sa_0004",
    ) {
        return;
    }
    let node = Node::start();
    let held = hold(&node);
    let code = code_address(held.pid);
    // The fastest of a few tries: the machine is shared with builds.
    let mut best: Option<root_attack::BriefAttach> = None;
    let mut refusal = None;
    for _ in 0..5 {
        match root_attack::brief_ptrace_poke(held.pid, code) {
            Ok(a) => {
                assert_eq!(
                    a.poked, !a.original,
                    "POKEDATA did not change the word: {a:?}"
                );
                if best.is_none_or(|b| a.attached_for < b.attached_for) {
                    best = Some(a);
                }
            }
            Err(e) => {
                refusal = Some(e);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let evidence = match (&best, &refusal) {
        (Some(a), _) => {
            // Longer than the poll period: the daemon had every chance to look.
            std::thread::sleep(Duration::from_millis(500));
            assert_eq!(enclave_state(&node, held.pid), "running");
            assert_eq!(held.echo().as_deref(), Ok("ping"));
            assert!(
                a.attached_for < Duration::from_millis(1),
                "the fastest attach took {:?}: not brief on this machine",
                a.attached_for
            );
            format!(
                "attached, changed a code word and detached in {:?} (fastest of 5); the daemon still reports the enclave running and it answers ECALLs",
                a.attached_for
            )
        }
        (None, Some(e)) => {
            assert!(refused(e), "not a refusal: {e}");
            format!("PTRACE_SEIZE/POKEDATA refused: {e}")
        }
        (None, None) => unreachable!("five tries"),
    };
    assert_named_exactly_when_open(&node, "COFFER-SA-0004", best.is_some(), &evidence);
}

/// The state the daemon reports for the enclave with pid `pid`.
fn enclave_state(node: &Node, pid: u32) -> String {
    let status = node.status();
    let enclave = status["enclaves"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["pid"].as_u64() == Some(u64::from(pid)))
        .cloned()
        .unwrap_or_else(|| panic!("no enclave with pid {pid}: {status}"));
    enclave["state"].as_str().unwrap().to_owned()
}

/// An address in the enclave's executable mapping (of its sealed image), in its last page: the
/// tail of the code segment, which no ECALL runs.
fn code_address(pid: u32) -> u64 {
    let exec = root_attack::mappings(pid)
        .into_iter()
        .find(|m| m.perms.starts_with("r-x") && m.path.starts_with("/memfd:"))
        .unwrap_or_else(|| panic!("no executable image mapping in /proc/{pid}/maps"));
    exec.end - 16
}

// ---------------------------------------------------------------------------------------------
// COFFER-SA-0006: forced /proc/PID/mem writes.

/// As root: open the enclave's `/proc/PID/mem` for writing and write a changed byte into its
/// read-only executable mapping (the kernel forces it through the page protection), read it
/// back, and write the original back. The sealed image itself does not change (the write lands
/// in a private copy of the page).
#[test]
fn a_forced_proc_mem_write_changes_code_exactly_when_the_status_names_coffer_sa_0006() {
    if !require_root(
        "a_forced_proc_mem_write_changes_code_exactly_when_the_status_names_coffer_sa_0006",
    ) {
        return;
    }
    let node = Node::start();
    let held = hold(&node);
    let code = code_address(held.pid);
    let image_before = std::fs::read(format!("/proc/{}/exe", held.pid)).ok();
    let outcome = root_attack::forced_proc_mem_write(held.pid, code);
    let evidence = match &outcome {
        Ok(w) => {
            assert_eq!(w.written, !w.original, "{w:?}");
            let image_after = std::fs::read(format!("/proc/{}/exe", held.pid)).ok();
            assert_eq!(image_before, image_after, "the sealed image changed");
            assert_eq!(held.echo().as_deref(), Ok("ping"));
            std::thread::sleep(Duration::from_millis(300));
            assert_eq!(enclave_state(&node, held.pid), "running");
            format!(
                "wrote {:#04x} over {:#04x} at {code:#x} in the r-x image mapping and read it back; the enclave still runs",
                w.written, w.original
            )
        }
        Err(e) => {
            assert!(refused(e), "not a refusal: {e}");
            format!("the write was refused: {e}")
        }
    };
    assert_named_exactly_when_open(&node, "COFFER-SA-0006", outcome.is_ok(), &evidence);
}

// ---------------------------------------------------------------------------------------------
// COFFER-SA-0005: descriptor theft; COFFER-SA-0009: the root key file.

/// What root got by speaking for an enclave on its stolen daemon socket.
struct Stolen {
    /// The KEYREQUEST sent (a seal key).
    request: coffer_abi::Keyrequest,
    /// The daemon's EGETKEY answer.
    seal_key: Vec<u8>,
    /// The daemon's EREPORT answer, for the attacker's REPORTDATA.
    report: coffer_abi::Report,
    reportdata: [u8; 64],
}

/// As root: `pidfd_getfd` the enclave's daemon socket (its descriptor 3) and ask the daemon, as
/// the enclave, for EGETKEY (a seal key) and EREPORT with REPORTDATA of the attacker's choice.
/// The enclave is idle meanwhile (no ECALL), so nothing else uses the socket.
fn steal_and_ask(held: &Held) -> std::io::Result<Stolen> {
    use coffer_abi::codec::Codec;
    use coffer_abi::{KeyName, Keyrequest, Report, Targetinfo};
    use coffer_proto::enclave::{DaemonReply, EnclaveMessage, fds};
    use std::os::fd::AsFd;

    let sock = root_attack::take_descriptor(held.pid, fds::DAEMON)?;
    let ask = |msg: &EnclaveMessage| -> DaemonReply {
        coffer_proto::send(sock.as_fd(), msg, &[]).unwrap();
        coffer_proto::recv::<DaemonReply>(sock.as_fd()).unwrap().0
    };
    let request = Keyrequest {
        keyname: KeyName::SEAL_KEY,
        keyid: [0x5a; 32],
        ..Keyrequest::default()
    };
    let seal_key = match ask(&EnclaveMessage::Egetkey {
        keyrequest: request.to_bytes(),
    }) {
        DaemonReply::Key(k) => k,
        other => panic!("EGETKEY on the stolen socket: {other:?}"),
    };
    let reportdata = [0xa7u8; 64];
    let report = match ask(&EnclaveMessage::Ereport {
        targetinfo: Targetinfo::default().to_bytes(),
        reportdata: reportdata.to_vec(),
    }) {
        DaemonReply::Report(r) => Report::from_bytes(&r).unwrap(),
        other => panic!("EREPORT on the stolen socket: {other:?}"),
    };
    Ok(Stolen {
        request,
        seal_key,
        report,
        reportdata,
    })
}

/// The daemon answers the thief as it would the enclave: a 16-byte seal key, and a REPORT with
/// the enclave's MRENCLAVE and the thief's REPORTDATA, which a verifier takes for the enclave's.
#[test]
fn pidfd_getfd_speaks_for_the_enclave_exactly_when_the_status_names_coffer_sa_0005() {
    if !require_root(
        "pidfd_getfd_speaks_for_the_enclave_exactly_when_the_status_names_coffer_sa_0005",
    ) {
        return;
    }
    let node = Node::start();
    let held = hold(&node);
    let (open, evidence) = match steal_and_ask(&held) {
        Ok(s) => {
            assert_eq!(s.seal_key.len(), 16);
            assert_eq!(s.report.body.reportdata, s.reportdata);
            assert_eq!(s.report.body.mrenclave, held.enclave.mrenclave());
            assert_eq!(s.report.body.mrsigner, held.enclave.mrsigner());
            // The enclave itself is none the wiser.
            assert_eq!(held.echo().as_deref(), Ok("ping"));
            (
                true,
                format!(
                    "took descriptor 3; EGETKEY returned a 16-byte seal key, EREPORT a REPORT with the enclave's MRENCLAVE {}… and the attacker's REPORTDATA",
                    hex::encode(&s.report.body.mrenclave[..8])
                ),
            )
        }
        Err(e) => {
            assert!(refused(&e), "not a refusal: {e}");
            (false, format!("pidfd_getfd refused: {e}"))
        }
    };
    assert_named_exactly_when_open(&node, "COFFER-SA-0005", open, &evidence);
}

/// As root: read the platform's root key file (and the two public state files beside it) and
/// derive an enclave's seal key offline, as anyone can who reads the disk or boots another
/// kernel. Where descriptor theft is open too, the derived key is checked against the daemon's
/// own EGETKEY answer for the enclave, with the identity its REPORT gave: the file is the key.
#[test]
fn the_root_key_file_derives_enclave_keys_exactly_when_the_status_names_coffer_sa_0009() {
    if !require_root(
        "the_root_key_file_derives_enclave_keys_exactly_when_the_status_names_coffer_sa_0009",
    ) {
        return;
    }
    let node = Node::start();
    let held = hold(&node);
    let file = node.state.join("root.key");
    let readable = std::fs::read(&file).is_ok_and(|k| k.len() == 16);
    let evidence = if readable {
        let root = platform_root_from_files(&node.state);
        match steal_and_ask(&held) {
            Ok(s) => {
                let offline = root.egetkey(&s.report.body, &s.request).unwrap();
                assert_eq!(
                    &s.seal_key[..],
                    &offline[..],
                    "the key derived from {} is not the daemon's",
                    file.display()
                );
                format!(
                    "{} read; the seal key derived offline equals the daemon's EGETKEY answer for the enclave",
                    file.display()
                )
            }
            Err(e) => format!(
                "{} read (no daemon answer to compare it with: pidfd_getfd refused: {e})",
                file.display()
            ),
        }
    } else {
        format!("{} could not be read", file.display())
    };
    assert_named_exactly_when_open(&node, "COFFER-SA-0009", readable, &evidence);
}

/// The platform's root as root reads it from the daemon's state directory: `root.key` (16
/// bytes), `owner-epoch` and `cpusvn` (32 hex digits each).
fn platform_root_from_files(state: &std::path::Path) -> coffer_cpu::PlatformRoot {
    let raw = |name: &str| std::fs::read(state.join(name)).unwrap();
    let hex16 = |name: &str| -> [u8; 16] {
        let text = String::from_utf8(raw(name)).unwrap();
        hex::decode(text.trim()).unwrap().try_into().unwrap()
    };
    let root: [u8; 16] = raw("root.key").try_into().unwrap();
    coffer_cpu::PlatformRoot::new(root, hex16("owner-epoch"), hex16("cpusvn"))
}

// ---------------------------------------------------------------------------------------------
// COFFER-SA-0002: uprobes.

/// The function each ECALL worker enters whenever it waits for its next ECALL
/// (`coffer_channel::slot::EnclaveSlot::wait_ecall_with_policy`), from the image's symbol table
/// (what an attacker reads from the public bundle): its virtual address and its file offset.
fn worker_wait_function(image: &[u8]) -> (u64, u64) {
    use object::{Object, ObjectSegment, ObjectSymbol};
    let elf = object::File::parse(image).unwrap();
    let symbol = elf
        .symbols()
        .find(|s| {
            s.name()
                .is_ok_and(|n| n.contains("EnclaveSlot") && n.contains("wait_ecall_with_policy"))
        })
        .expect("the enclave image names EnclaveSlot::wait_ecall_with_policy");
    let address = symbol.address();
    let offset = elf
        .segments()
        .find_map(|seg| {
            let (file_offset, _) = seg.file_range();
            (seg.address() <= address && address < seg.address() + seg.size())
                .then(|| address - seg.address() + file_offset)
        })
        .expect("the symbol lies in a loaded segment");
    (address, offset)
}

/// What one way of placing uprobes got.
struct UprobeRun {
    route: &'static str,
    run: Finished,
    /// Events that delivered stack bytes.
    hits: usize,
    copies: usize,
}

impl UprobeRun {
    fn describe(&self) -> String {
        format!(
            "{}: exited {}, {} events with stack bytes, {} probe copies",
            self.route, self.run.status, self.hits, self.copies
        )
    }

    /// The kernel refused (the tool failed and nothing fired), as opposed to an inconclusive run.
    fn refused(&self) -> bool {
        self.hits == 0 && !self.run.status.success()
    }
}

/// Route 1, tracefs: uprobe events on `/proc/PID/exe` at `offset`, each fetching 3 KiB of the
/// worker's stack above its stack pointer (`+N(%sp):x64[32]`), in a trace instance of their own
/// (the global trace buffer is untouched), removed afterwards.
fn uprobe_via_tracefs(held: &Held, offset: u64) -> UprobeRun {
    // Events of 12 arguments of 256 bytes (under a trace buffer page each), overlapping by 64
    // bytes so that no copy falls between two.
    const EVENTS: u64 = 6;
    const SPAN: u64 = 12 * 256;
    let group = format!("coffer_rc{}", std::process::id());
    let mut define = String::new();
    for e in 0..EVENTS {
        let base = e * (SPAN - 64);
        let args: Vec<String> = (0..12)
            .map(|a| format!("a{a}=+{}(%sp):x64[32]", base + a * 256))
            .collect();
        writeln!(
            define,
            "echo 'p:{group}/e{e} /proc/{}/exe:{offset:#x} {}' >> uprobe_events",
            held.pid,
            args.join(" ")
        )
        .unwrap();
    }
    let script = format!(
        "cd /sys/kernel/tracing
cleanup() {{ echo 0 > instances/{group}/events/{group}/enable 2>/dev/null; rmdir instances/{group} 2>/dev/null; for e in $(seq 0 {last}); do echo '-:{group}/e'$e >> uprobe_events 2>/dev/null; done; true; }}
trap cleanup EXIT
{define}mkdir instances/{group}
echo 16384 > instances/{group}/buffer_size_kb
echo 1 > instances/{group}/events/{group}/enable
sleep 0.5
echo 0 > instances/{group}/events/{group}/enable
cat instances/{group}/trace",
        last = EVENTS - 1
    );
    let run = with_private_tracefs("uprobe (tracefs)", &script);
    // Each event line: `... e3: (0x...) a0={0x..,0x..,...} a1={...} ...`.
    let (mut hits, mut copies) = (0, 0);
    for line in run.stdout.lines().filter(|l| l.contains(" a0={")) {
        let mut bytes = Vec::new();
        for arg in line.split('{').skip(1) {
            let words = arg.split('}').next().unwrap_or_default();
            for w in words.split(',') {
                if let Ok(v) = u64::from_str_radix(w.trim().trim_start_matches("0x"), 16) {
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        if !bytes.is_empty() {
            hits += 1;
        }
        copies += root_attack::count(&bytes, &held.digest);
    }
    UprobeRun {
        route: "tracefs uprobe_events",
        run,
        hits,
        copies,
    }
}

/// Route 2, without tracefs (lockdown's confidentiality mode closes tracefs, not uprobes):
/// bpftrace's uprobe (the perf uprobe PMU) at the same function, copying 12 KiB above the
/// stack pointer with `probe_read_user`.
fn uprobe_via_bpftrace(held: &Held, address: u64) -> UprobeRun {
    let program = format!(
        "uprobe:/proc/{pid}/exe:{address:#x} /pid == {pid}/ {{
  $t = nsecs;
  $sp = reg(\"sp\");
  $i = 0;
  while ($i < 192) {{
    printf(\"%lu %lu %rx\\n\", $t, $i, buf(uptr($sp + $i * 64), 64));
    $i++;
  }}
}}
interval:ms:1500 {{ exit(); }}",
        pid = held.pid
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uprobe.bt");
    std::fs::write(&path, program).unwrap();
    let run = with_private_tracefs(
        "uprobe (bpftrace)",
        &format!(
            "export BPFTRACE_PERF_RB_PAGES=1024; exec bpftrace {}",
            path.display()
        ),
    );
    // Put each event's 12 KiB back together.
    let mut events: std::collections::BTreeMap<u64, Vec<(u64, Vec<u8>)>> = Default::default();
    for line in run.stdout.lines() {
        let mut f = line.splitn(3, ' ');
        let (Some(t), Some(i), Some(data)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let (Ok(t), Ok(i)) = (t.parse::<u64>(), i.parse::<u64>()) else {
            continue;
        };
        events.entry(t).or_default().push((i, unescape_hex(data)));
    }
    let (mut hits, mut copies) = (0, 0);
    for chunks in events.values_mut() {
        chunks.sort_by_key(|(i, _)| *i);
        let bytes: Vec<u8> = chunks.iter().flat_map(|(_, b)| b.iter().copied()).collect();
        hits += usize::from(!bytes.is_empty());
        copies += root_attack::count(&bytes, &held.digest);
    }
    UprobeRun {
        route: "bpftrace uprobe",
        run,
        hits,
        copies,
    }
}

/// As root: uprobes at the function every ECALL worker enters between ECALLs, fetching the
/// worker's stack above its stack pointer; the enclave's thread-local storage, with the probe's
/// copy, sits at the top of that secret stack. Two routes, because lockdown's confidentiality
/// mode closes tracefs but not uprobes: tracefs `uprobe_events` on `/proc/PID/exe`, and
/// bpftrace's uprobe (perf's uprobe PMU). The channel is open when either reads the probe.
#[test]
fn a_uprobe_fetches_the_probe_exactly_when_the_status_names_coffer_sa_0002() {
    if !require_root("a_uprobe_fetches_the_probe_exactly_when_the_status_names_coffer_sa_0002") {
        return;
    }
    require_tool("bpftrace");
    let node = Node::start();
    let held = hold(&node);
    let (address, offset) = worker_wait_function(&fixture().image);
    let (runs, calls) = held.with_traffic(|| {
        [
            uprobe_via_tracefs(&held, offset),
            uprobe_via_bpftrace(&held, address),
        ]
    });
    let open = runs.iter().any(|r| r.copies > 0);
    let evidence = format!(
        "{} during {calls} ECALLs",
        runs.iter()
            .map(UprobeRun::describe)
            .collect::<Vec<_>>()
            .join("; ")
    );
    if !open {
        for r in &runs {
            assert!(
                r.refused(),
                "{} fired but fetched no probe copy, or fired nowhere without a refusal: inconclusive ({evidence})\n{}",
                r.route,
                r.run.stderr
            );
        }
    }
    assert_named_exactly_when_open(&node, "COFFER-SA-0002", open, &evidence);
}

// ---------------------------------------------------------------------------------------------
// The status as a whole, against what the test reads of the host itself.

/// A kernel option as the test reads it, independently of the daemon: `Some(true)` for `=y`/`=m`,
/// `None` when the host exposes no configuration.
fn kernel_option(name: &str) -> Option<bool> {
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "if [ -r /proc/config.gz ]; then zcat /proc/config.gz; else cat /boot/config-$(uname -r); fi",
    ]);
    let done = coffer_testkit::process::run("reading the kernel configuration", &mut cmd, TIMEOUT);
    if !done.status.success() || done.stdout.is_empty() {
        return None;
    }
    Some(
        done.stdout
            .lines()
            .any(|l| l == format!("{name}=y") || l == format!("{name}=m")),
    )
}

/// The lockdown file as the test reads it: through a securityfs mount of its own in a private
/// mount namespace (`None`: the lockdown LSM is not active).
fn lockdown_file() -> Option<String> {
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mountpoint -q /sys/kernel/security || mount -t securityfs securityfs /sys/kernel/security; cat /sys/kernel/security/lockdown 2>/dev/null || true",
    ]);
    let done = coffer_testkit::process::run("reading securityfs", &mut cmd, TIMEOUT);
    let text = done.expect_success("reading securityfs").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// `coffer platform status --json` (the real binary, against the real daemon) gives the level
/// and the advisories as fields, names lockdown by the mode securityfs shows (mounting it
/// privately when the host has not, and leaving the host's mounts as they were), and names the
/// configuration-based channels exactly as the test reads the kernel configuration itself.
#[test]
fn the_status_gives_level_and_advisories_as_fields_and_reads_lockdown_and_the_kernel_configuration()
{
    if !require_root(
        "the_status_gives_level_and_advisories_as_fields_and_reads_lockdown_and_the_kernel_configuration",
    ) {
        return;
    }
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let node = Node::start();
    let status = node.status();
    let tcb = &status["tcb"];
    let level = tcb["level"].as_str().unwrap();
    let advisories = tcb["advisories"].as_array().unwrap();
    let text_of = |id: &str| {
        advisories
            .iter()
            .find(|a| a["id"] == id)
            .map(|a| a["text"].as_str().unwrap().to_owned())
    };
    for a in advisories {
        let id = a["id"].as_str().unwrap();
        assert!(id.starts_with("COFFER-SA-") && id.len() == 14, "{a}");
        assert!(!a["text"].as_str().unwrap().is_empty(), "{a}");
    }
    assert_eq!(level == "UpToDate", advisories.is_empty(), "{tcb}");

    // Lockdown: named unless confidentiality, by its real mode, never "not active" when it is.
    let lockdown = lockdown_file();
    let sa7 = text_of("COFFER-SA-0007");
    match lockdown.as_deref() {
        Some(t) if t.contains("[confidentiality]") => assert_eq!(sa7, None, "{tcb}"),
        Some(t) => {
            let sa7 = sa7.unwrap_or_else(|| panic!("lockdown is {t:?} but not named: {tcb}"));
            let mode = if t.contains("[integrity]") {
                "integrity mode"
            } else {
                "lockdown is none"
            };
            assert!(sa7.contains(mode), "lockdown is {t:?}: {sa7}");
            assert!(
                !sa7.contains("not active") && !sa7.contains("could not be read"),
                "{sa7}"
            );
        }
        None => assert!(
            sa7.as_deref().is_some_and(|t| t.contains("not active")),
            "{tcb}"
        ),
    }

    // The configuration-based channels, as the test reads the configuration.
    for (id, options) in [
        (
            "COFFER-SA-0001",
            &["CONFIG_BPF_SYSCALL", "CONFIG_BPF_EVENTS"][..],
        ),
        ("COFFER-SA-0002", &["CONFIG_UPROBES"][..]),
        ("COFFER-SA-0003", &["CONFIG_PERF_EVENTS"][..]),
    ] {
        let open = options.iter().all(|o| kernel_option(o) != Some(false));
        assert_eq!(text_of(id).is_some(), open, "{id} ({options:?}): {tcb}");
    }
    let modules_loadable = kernel_option("CONFIG_MODULES") != Some(false)
        && std::fs::read_to_string("/proc/sys/kernel/modules_disabled")
            .map_or(true, |t| t.trim() != "1");
    assert_eq!(
        text_of("COFFER-SA-0008").is_some(),
        modules_loadable,
        "{tcb}"
    );
    // The soft backend's root key is a file, and the daemon runs as root here.
    assert!(text_of("COFFER-SA-0009").is_some(), "{tcb}");
    assert_eq!(text_of("COFFER-SA-0011"), None, "{tcb}");
    // A host where root reads enclave memory is never above SWHardeningNeeded.
    assert_ne!(level, "UpToDate", "{tcb}");

    // The daemon read securityfs without changing this namespace's mounts.
    let mounts_after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert_eq!(
        mounts_before
            .lines()
            .filter(|l| l.contains("securityfs"))
            .count(),
        mounts_after
            .lines()
            .filter(|l| l.contains("securityfs"))
            .count(),
        "the daemon changed the host's mounts"
    );
    eprintln!("TCB status: {tcb:#}; lockdown file {lockdown:?}");
}
