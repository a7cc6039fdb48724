//! `seal-upgrade`: the host side of the seal-upgrade example. Each run creates one version of
//! the enclave and asks it to make, open or re-seal a secret kept in a sealed file.
//!
//! ```text
//! seal-upgrade --socket PATH --bundle v1.coffer create --out secret.sealed
//! seal-upgrade --socket PATH --bundle v2.coffer open secret.sealed
//! seal-upgrade --socket PATH --bundle v2.coffer reseal secret.sealed --out secret.v2.sealed
//! ```
//!
//! Exit status: 0 on success, 1 on a usage or platform error, 2 when the enclave refused the
//! sealed file (another product or platform, a newer version's seal, a changed byte), 3 when
//! the enclave was lost.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use coffer_host::interface::TransportError;
use coffer_host::{EnclaveOptions, Platform};
use seal_upgrade_common::{Sealed, VAULT_INTERFACE, VaultProxy};

#[derive(Debug, Parser)]
#[command(
    name = "seal-upgrade",
    about = "Seal a secret in one enclave version, open it in another"
)]
struct Args {
    /// The platform daemon's socket.
    #[arg(long)]
    socket: PathBuf,
    /// The signed seal-upgrade-enclave bundle (v1.coffer, v2.coffer).
    #[arg(long)]
    bundle: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make a new secret inside the enclave and write it, sealed, to OUT.
    Create {
        #[arg(long)]
        out: PathBuf,
    },
    /// Open the sealed secret in FILE inside the enclave and print its fingerprint.
    Open { file: PathBuf },
    /// Open the sealed secret in FILE and seal it again at this enclave's version into OUT.
    Reseal {
        file: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

enum Failure {
    Other(String),
    Refused(String),
    Lost(String),
}

impl From<TransportError> for Failure {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::EnclaveLost(_) => Failure::Lost(e.to_string()),
            other => Failure::Other(other.to_string()),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Other(format!("reading {}: {e}", path.display())))
}

fn write(path: &Path, sealed: &Sealed) -> Result<(), Failure> {
    std::fs::write(path, &sealed.blob)
        .map_err(|e| Failure::Other(format!("writing {}: {e}", path.display())))
}

fn run(args: Args) -> Result<(), Failure> {
    let platform = Platform::connect(&args.socket).map_err(|e| Failure::Other(e.to_string()))?;
    let enclave = platform
        .create_enclave_with(&args.bundle, EnclaveOptions::typed(&VAULT_INTERFACE))
        .map_err(|e| Failure::Other(e.to_string()))?;
    let vault = VaultProxy::new(&enclave);
    let version = vault.version()?;
    let refused = |e: String| Failure::Refused(format!("enclave v{version} refused it: {e}"));
    match args.command {
        Command::Create { out } => {
            let sealed = vault.create_secret()?.map_err(Failure::Other)?;
            write(&out, &sealed)?;
            println!(
                "enclave v{version} sealed a new secret into {} ({} bytes); fingerprint {}",
                out.display(),
                sealed.blob.len(),
                hex::encode(sealed.fingerprint)
            );
        }
        Command::Open { file } => {
            let opened = vault.open_secret(read(&file)?)?.map_err(refused)?;
            println!(
                "enclave v{version} opened the secret sealed by v{}; fingerprint {}",
                opened.sealed_by,
                hex::encode(opened.fingerprint)
            );
        }
        Command::Reseal { file, out } => {
            let sealed = vault.reseal(read(&file)?)?.map_err(refused)?;
            write(&out, &sealed)?;
            println!(
                "enclave v{version} sealed the secret again into {} (only v{version} and later \
                 can open it); fingerprint {}",
                out.display(),
                hex::encode(sealed.fingerprint)
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Other(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
        Err(Failure::Refused(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(2)
        }
        Err(Failure::Lost(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(3)
        }
    }
}
