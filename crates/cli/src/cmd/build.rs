//! `coffer build -p PACKAGE --key KEY.pem --config enclave.toml -o APP.coffer [--target-dir DIR]`
//!
//! Builds an enclave crate as a static x86-64 executable and signs it in one step. Cargo links a
//! Rust binary statically (static-pie) only with `-C target-feature=+crt-static` *and* an explicit
//! `--target x86_64-unknown-linux-gnu`: without `--target` the flag also reaches build scripts
//! and proc-macros, which then fail to build. The flag is added through
//! `CARGO_ENCODED_RUSTFLAGS`, keeping the flags already given in `CARGO_ENCODED_RUSTFLAGS` or
//! `RUSTFLAGS` (which it overrides, as it overrides `build.rustflags` of Cargo's configuration).

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cmd::sign::{self, SignCmdError};

/// The target triple enclaves are built for.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";
/// The flag that makes the binary static.
pub const STATIC_FLAG: [&str; 2] = ["-C", "target-feature=+crt-static"];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The enclave package to build.
    #[arg(short = 'p', long = "package")]
    package: String,
    /// The binary of the package, when it has more than one.
    #[arg(long)]
    bin: Option<String>,
    /// The RSA-3072, e = 3 private key (PEM).
    #[arg(long)]
    key: PathBuf,
    /// The enclave configuration (enclave.toml).
    #[arg(long)]
    config: PathBuf,
    /// SIGSTRUCT DATE, YYYYMMDD (default: today, UTC).
    #[arg(long, value_parser = coffer_abi::SigstructDate::parse)]
    date: Option<coffer_abi::SigstructDate>,
    /// Where to write the bundle.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// Replace the output file if it exists.
    #[arg(long)]
    force: bool,
    /// Cargo's target directory (default: the workspace's, or CARGO_TARGET_DIR).
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// The Cargo.toml of the workspace or package (default: found from the current directory).
    #[arg(long)]
    manifest_path: Option<PathBuf>,
}

/// Errors of `coffer build`.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot run {cargo}: {source}")]
    Spawn {
        cargo: String,
        source: std::io::Error,
    },
    #[error("reading cargo's output failed: {0}")]
    Output(#[source] std::io::Error),
    #[error("cargo build failed ({0})")]
    CargoFailed(std::process::ExitStatus),
    #[error("cargo built no executable for package {package}")]
    NoExecutable { package: String },
    #[error("package {package} has several executables ({names}); choose one with --bin")]
    SeveralExecutables { package: String, names: String },
    #[error(transparent)]
    Sign(#[from] SignCmdError),
}

/// The flags to pass in `CARGO_ENCODED_RUSTFLAGS`: the ones already set, then the static flag
/// (unless already there).
pub fn encoded_rustflags(encoded: Option<&str>, plain: Option<&str>) -> String {
    let mut flags: Vec<String> = match (encoded, plain) {
        (Some(e), _) if !e.is_empty() => e.split('\x1f').map(str::to_owned).collect(),
        (_, Some(p)) => p.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    let has_static = flags
        .windows(2)
        .any(|w| w[0] == STATIC_FLAG[0] && w[1] == STATIC_FLAG[1])
        || flags.iter().any(|f| f == "-Ctarget-feature=+crt-static");
    if !has_static {
        flags.extend(STATIC_FLAG.iter().map(|s| (*s).to_owned()));
    }
    flags.join("\x1f")
}

/// One executable cargo reported.
#[derive(Debug, PartialEq, Eq)]
struct Executable {
    name: String,
    path: PathBuf,
}

/// Picks the executables out of cargo's JSON messages (`compiler-artifact` of a `bin` target).
fn executable_of(line: &str) -> Option<Executable> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v.get("reason")?.as_str()? != "compiler-artifact" {
        return None;
    }
    let target = v.get("target")?;
    let is_bin = target
        .get("kind")?
        .as_array()?
        .iter()
        .any(|k| k.as_str() == Some("bin"));
    if !is_bin {
        return None;
    }
    Some(Executable {
        name: target.get("name")?.as_str()?.to_owned(),
        path: PathBuf::from(v.get("executable")?.as_str()?),
    })
}

pub fn run(a: Args) -> Result<(), BuildError> {
    // Read the key and configuration first: fail before a long build.
    let key = sign::load_key(&a.key)?;
    let config = sign::load_config(&a.config)?;

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let flags = encoded_rustflags(
        std::env::var("CARGO_ENCODED_RUSTFLAGS").ok().as_deref(),
        std::env::var("RUSTFLAGS").ok().as_deref(),
    );
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--release", "--target", TARGET])
        .args(["--message-format", "json-render-diagnostics"])
        .args(["-p", &a.package]);
    if let Some(bin) = &a.bin {
        cmd.args(["--bin", bin]);
    }
    if let Some(dir) = &a.target_dir {
        cmd.arg("--target-dir").arg(dir);
    }
    if let Some(m) = &a.manifest_path {
        cmd.arg("--manifest-path").arg(m);
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", &flags)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let spawn_err = |source| BuildError::Spawn {
        cargo: cargo.to_string_lossy().into_owned(),
        source,
    };
    eprintln!(
        "building {} for {TARGET} with -C target-feature=+crt-static",
        a.package
    );
    let mut child = cmd.spawn().map_err(spawn_err)?;
    let mut executables = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(BuildError::Output)?;
            if let Some(e) = executable_of(&line) {
                executables.push(e);
            }
        }
    }
    let status = child.wait().map_err(BuildError::Output)?;
    if !status.success() {
        return Err(BuildError::CargoFailed(status));
    }
    let exe = match executables.len() {
        0 => {
            return Err(BuildError::NoExecutable { package: a.package });
        }
        1 => executables.remove(0),
        _ => {
            return Err(BuildError::SeveralExecutables {
                package: a.package,
                names: executables
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    };
    eprintln!("signing {}", exe.path.display());
    sign_built(&key, config, &exe.path, a.date, &a.output, a.force)
}

fn sign_built(
    key: &coffer_sign::SigningKey,
    config: coffer_sign::EnclaveConfig,
    elf: &Path,
    date: Option<coffer_abi::SigstructDate>,
    output: &Path,
    force: bool,
) -> Result<(), BuildError> {
    let image = crate::util::read_capped(elf, coffer_sign::bundle::MAX_IMAGE_SIZE)
        .map_err(SignCmdError::from)?;
    let loaded = sign::Loaded {
        config,
        image,
        elf: elf.to_owned(),
        date: date.unwrap_or_else(coffer_sign::bundle::today),
    };
    Ok(sign::sign_and_write(key, loaded, output, force)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_existing_flags_and_adds_the_static_one_once() {
        assert_eq!(
            encoded_rustflags(None, None),
            "-C\x1ftarget-feature=+crt-static"
        );
        assert_eq!(
            encoded_rustflags(None, Some("  -g  -Copt-level=2 ")),
            "-g\x1f-Copt-level=2\x1f-C\x1ftarget-feature=+crt-static"
        );
        assert_eq!(
            encoded_rustflags(Some("--cfg\x1ffoo bar"), Some("-g")),
            "--cfg\x1ffoo bar\x1f-C\x1ftarget-feature=+crt-static"
        );
        let once = encoded_rustflags(None, None);
        assert_eq!(encoded_rustflags(Some(&once), None), once);
    }

    #[test]
    fn finds_executables_in_cargo_messages() {
        let bin = r#"{"reason":"compiler-artifact","package_id":"x","target":{"kind":["bin"],"name":"tiny"},"executable":"/t/tiny"}"#;
        let lib = r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"dep"},"executable":null}"#;
        assert_eq!(
            executable_of(bin),
            Some(Executable {
                name: "tiny".into(),
                path: "/t/tiny".into()
            })
        );
        assert_eq!(executable_of(lib), None);
        assert_eq!(executable_of("not json"), None);
        assert_eq!(
            executable_of(r#"{"reason":"build-finished","success":true}"#),
            None
        );
    }
}
