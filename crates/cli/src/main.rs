//! `coffer`: the command line for developers and operators.
//!
//! Every command writes its result to stdout and its errors to stderr, exits non-zero on failure, and
//! never panics on any input.

#![forbid(unsafe_code)]

mod cmd;
mod util;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "coffer",
    version,
    about = "Coffer: SGX-compatible enclaves on any Linux machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a new RSA-3072 signing key with public exponent 3 (PEM, mode 0600).
    Keygen(cmd::keygen::Args),
    /// Work with SIGSTRUCTs: inspect or sign.
    #[command(subcommand)]
    Sigstruct(cmd::sigstruct::Command),
    /// Print an enclave's MRENCLAVE: of an SGXS stream, or of a bundle (optionally writing its SGXS).
    Measure(cmd::measure::Args),
    /// Work with DCAP quotes: inspect or verify.
    #[command(subcommand)]
    Quote(cmd::quote::Command),
    /// Sign an enclave ELF into a .coffer bundle (or the two-step gendata / catsig flow).
    Sign(cmd::sign::Args),
    /// Show a .coffer bundle's identity, configuration and whether it verifies.
    Inspect(cmd::inspect::Args),
    /// Build an enclave package statically and sign it into a .coffer bundle.
    Build(cmd::build::Args),
    /// Run the node's platform daemon, or show what it runs.
    #[command(subcommand)]
    Platform(cmd::platform::Command),
    /// A deployment's certificate authority: create it, publish collateral, revoke nodes.
    #[command(subcommand)]
    Ca(cmd::ca::Command),
    /// Run the attestation service (Azure Attestation's API).
    #[command(subcommand)]
    Attest(cmd::attest::Command),
    /// Run the key broker, or manage its keys.
    #[command(subcommand)]
    Kbs(cmd::kbs::Command),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COFFER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keygen(a) => cmd::keygen::run(a).map_err(util::boxed),
        Command::Sigstruct(c) => cmd::sigstruct::run(c).map_err(util::boxed),
        Command::Measure(a) => cmd::measure::run(a).map_err(util::boxed),
        Command::Quote(c) => cmd::quote::run(c).map_err(util::boxed),
        Command::Sign(a) => cmd::sign::run(a).map_err(util::boxed),
        Command::Inspect(a) => cmd::inspect::run(a).map_err(util::boxed),
        Command::Build(a) => cmd::build::run(a).map_err(util::boxed),
        Command::Platform(c) => cmd::platform::run(c).map_err(util::boxed),
        Command::Ca(c) => cmd::ca::run(c).map_err(util::boxed),
        Command::Attest(c) => cmd::attest::run(c).map_err(util::boxed),
        Command::Kbs(c) => cmd::kbs::run(c).map_err(util::boxed),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
