//! `coffer ca init|collateral|revoke`: a deployment's certificate authority (coffer-ca).

use std::path::PathBuf;
use std::time::SystemTime;

use coffer_ca::{Authority, CaError};
use sha2::{Digest, Sha256};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a deployment CA in DIR: a root CA, a PCK CA and a TCB signer (ECDSA P-256; keys
    /// 0600). Verifiers pin DIR/root.pem (`coffer quote verify --root`).
    Init(InitArgs),
    /// Sign and publish collateral into DIR: TCB Info v3, QE Identity v2, the CRLs, and
    /// collateral.json (what `coffer quote verify --collateral` reads).
    Collateral(CollateralArgs),
    /// Revoke a node's PCK certificate: the next collateral's PCK CRL lists it.
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The CA directory (created 0700; refused if it already holds a CA).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct CollateralArgs {
    /// The CA directory made by `coffer ca init`.
    #[arg(long)]
    ca: PathBuf,
    /// Where to write the collateral (created when missing; earlier collateral is replaced).
    #[arg(long)]
    out: PathBuf,
    /// Days until the collateral's nextUpdate (verifiers refuse it after that).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    next_update: u32,
}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// The CA directory made by `coffer ca init`.
    #[arg(long)]
    ca: PathBuf,
    /// The PCK certificate's serial number in hex, as `coffer platform provision` printed it.
    #[arg(long)]
    serial: String,
}

pub fn run(c: Command) -> Result<(), CaError> {
    let now = SystemTime::now();
    match c {
        Command::Init(a) => {
            let ca = Authority::init(&a.out, now)?;
            println!("deployment CA created in {}", a.out.display());
            println!(
                "root certificate: {} (SHA-256 {})",
                a.out.join("root.pem").display(),
                hex::encode(Sha256::digest(ca.root()))
            );
        }
        Command::Collateral(a) => {
            let ca = Authority::open(&a.ca)?;
            let s = ca.publish_collateral(&a.out, now, a.next_update)?;
            let levels = ca.tcb_levels()?;
            println!(
                "collateral for FMSPC {} written to {} ({} TCB levels, valid {} days); verifiers read {}",
                hex::encode_upper(ca.fmspc()),
                a.out.display(),
                levels.len(),
                a.next_update,
                a.out.join("collateral.json").display()
            );
            tracing::debug!(tcb_info = %s.collateral.tcb_info, "TCB Info signed");
        }
        Command::Revoke(a) => {
            let ca = Authority::open(&a.ca)?;
            ca.revoke(&a.serial, now)?;
            println!(
                "revoked PCK certificate {}; publish new collateral (`coffer ca collateral`) so verifiers see it",
                a.serial.trim()
            );
        }
    }
    Ok(())
}
