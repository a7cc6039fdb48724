//! Shared helpers of the CLI tests: run the real `coffer` binary and check how it ends.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use coffer_sign::EnclaveConfig;

/// The shared public test vectors (from the test kit: a clear failure when they are missing).
#[allow(unused_imports)] // not every test binary reads a vector
pub use coffer_testkit::vectors::vector;

pub fn coffer() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_coffer"));
    c.env_remove("COFFER_LOG");
    c
}

pub fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    coffer().args(args).output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The command succeeded; returns its stdout.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "expected success, got {:?}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// The command failed the way every `coffer` command must: a non-zero exit (not a signal), one
/// error line on stderr, no panic. Returns that line.
pub fn fails_cleanly(o: &Output, what: &str) -> String {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "{what}: expected failure, got success\nstdout: {}",
        stdout(o)
    );
    assert!(
        o.status.code().is_some(),
        "{what}: killed by a signal: {:?}",
        o.status
    );
    assert!(!err.contains("panicked"), "{what}: panicked:\n{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected one error line, got:\n{err}"
    );
    assert!(lines[0].starts_with("error: "), "{what}: {err}");
    lines[0].to_owned()
}

/// Last line of stdout.
pub fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or("")
}

pub fn json(o: &Output) -> serde_json::Value {
    let out = ok(o);
    assert_eq!(
        out.trim().lines().count(),
        1,
        "one JSON object on one line: {out}"
    );
    serde_json::from_str(out.trim()).unwrap()
}

/// A small enclave.toml in `dir`.
pub fn write_config(dir: &Path, debug: bool) -> PathBuf {
    let p = dir.join(if debug { "debug.toml" } else { "enclave.toml" });
    let config = EnclaveConfig {
        isv_prod_id: 5,
        debug,
        ..coffer_testkit::enclave::config()
    };
    std::fs::write(&p, config.to_canonical_toml()).unwrap();
    p
}

/// A static-pie ELF every machine here has.
pub const STATIC_ELF: &str = "/sbin/ldconfig";
/// A dynamically linked ELF.
pub const DYNAMIC_ELF: &str = "/bin/ls";
