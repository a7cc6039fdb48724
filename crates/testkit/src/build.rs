//! Building binaries for tests, once per test process, in `target/enclave-tests`: a target
//! directory of their own, so a build does not wait for the lock of the `cargo test` that runs
//! the test, and test binaries that build at the same time take turns on cargo's lock there.
//!
//! Enclaves are built as `coffer build` builds them: release profile, an explicit
//! `--target x86_64-unknown-linux-gnu` and `-C target-feature=+crt-static`, which together give
//! a static-pie executable (without `--target` the flag would also reach proc-macros, which then
//! fail to build).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::process;

/// The target triple enclaves are built for.
pub const ENCLAVE_TARGET: &str = "x86_64-unknown-linux-gnu";

/// How long one build may take (a cold build of the `coffer` command takes minutes on two cores).
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The workspace's root directory.
pub fn workspace_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

/// `target/enclave-tests` of the workspace.
pub fn test_target_dir() -> PathBuf {
    workspace_dir().join("target/enclave-tests")
}

/// The binary `package` (its binary of the same name), built statically as an enclave.
pub fn build_static_enclave(package: &str) -> PathBuf {
    once(&format!("static bin {package}"), || {
        let mut cargo = static_build();
        cargo.args(["-p", package, "--bin", package]);
        run_cargo(&mut cargo, package);
        static_output_dir().join(package)
    })
}

/// The example `example` of `package`, built statically as an enclave.
pub fn build_static_example(package: &str, example: &str) -> PathBuf {
    once(&format!("static example {package} {example}"), || {
        let mut cargo = static_build();
        cargo.args(["-p", package, "--example", example]);
        run_cargo(&mut cargo, &format!("{package}'s example {example}"));
        static_output_dir().join("examples").join(example)
    })
}

/// The binary `bin` of `package`, built for the host (dev profile, no extra flags). For tests
/// that run another package's binary, which `CARGO_BIN_EXE_…` does not give.
pub fn build_host_binary(package: &str, bin: &str) -> PathBuf {
    once(&format!("host bin {package} {bin}"), || {
        host_build(
            package,
            &["--bin", bin],
            &format!("{package}'s binary {bin}"),
        );
        test_target_dir().join("debug").join(bin)
    })
}

/// The example `example` of `package`, built for the host (dev profile, no extra flags): test
/// programs that must not be binaries of the crate they test.
pub fn build_host_example(package: &str, example: &str) -> PathBuf {
    once(&format!("host example {package} {example}"), || {
        host_build(
            package,
            &["--example", example],
            &format!("{package}'s example {example}"),
        );
        test_target_dir().join("debug/examples").join(example)
    })
}

fn host_build(package: &str, what: &[&str], name: &str) {
    let mut cargo = cargo();
    cargo.args(["build", "-p", package]).args(what);
    cargo.arg("--target-dir").arg(test_target_dir());
    cargo.env_remove("CARGO_ENCODED_RUSTFLAGS");
    run_cargo(&mut cargo, name);
}

/// Where the static builds land.
fn static_output_dir() -> PathBuf {
    test_target_dir().join(ENCLAVE_TARGET).join("release")
}

/// Runs `build` the first time `key` is asked for in this process. Builds take turns: the
/// lock is held while building (cargo would serialise them on its own lock anyway).
fn once(key: &str, build: impl FnOnce() -> PathBuf) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    let map = built.get_or_insert_with(HashMap::new);
    if let Some(path) = map.get(key) {
        return path.clone();
    }
    let path = build();
    map.insert(key.to_owned(), path.clone());
    path
}

/// `cargo` in the workspace, with nothing of the outer build's configuration that would change
/// where or how it builds.
fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut c = Command::new(cargo);
    c.current_dir(workspace_dir())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET");
    c
}

fn static_build() -> Command {
    let mut c = cargo();
    c.args([
        "build",
        "--release",
        "--target",
        ENCLAVE_TARGET,
        "--target-dir",
    ])
    .arg(test_target_dir())
    .env(
        "CARGO_ENCODED_RUSTFLAGS",
        "-C\x1ftarget-feature=+crt-static",
    );
    c
}

/// Runs a build, its progress shown on the test's standard error.
fn run_cargo(cargo: &mut Command, what: &str) {
    let status = process::status_within(&format!("cargo building {what}"), cargo, BUILD_TIMEOUT);
    assert!(
        status.success(),
        "building {what} failed ({status}); cargo's messages are above"
    );
}
