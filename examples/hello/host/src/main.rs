//! `hello`: the host side of the hello example.
//!
//! ```text
//! hello --socket PATH --bundle hello.coffer --probe NONCE_HEX [--hold]
//! hello --socket PATH --bundle hello.coffer --try-open PATH
//! hello --socket PATH --bundle hello.coffer --echo TEXT
//! ```
//!
//! Exit status: 0 on success, 1 on a usage or platform error, 3 when the enclave was lost.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Parser};
use coffer_host::interface::TransportError;
use coffer_host::{Enclave, EnclaveOptions, Platform};
use hello_common::{
    HELLO_HOST_INTERFACE, HELLO_INTERFACE, HelloHost, HelloProxy, hello_host_dispatch,
};

#[derive(Debug, Parser)]
#[command(name = "hello", about = "Create the hello enclave and call into it")]
#[command(group(ArgGroup::new("action").required(true).args(["probe", "try_open", "echo"])))]
struct Args {
    /// The platform daemon's socket.
    #[arg(long)]
    socket: PathBuf,
    /// The signed hello enclave bundle.
    #[arg(long)]
    bundle: PathBuf,
    /// Ask the enclave to compute SHA-256("coffer-probe" ‖ NONCE) and keep it inside.
    #[arg(long, value_name = "NONCE_HEX", value_parser = parse_hex)]
    probe: Option<Nonce>,
    /// After the probe, print the enclave's pid and wait until standard input closes.
    #[arg(long, requires = "probe")]
    hold: bool,
    /// Ask the enclave to open PATH itself (its sandbox must stop it).
    #[arg(long, value_name = "PATH")]
    try_open: Option<String>,
    /// Round-trip TEXT through an ECALL and an OCALL.
    #[arg(long, value_name = "TEXT")]
    echo: Option<String>,
}

/// The probe's nonce. Spelled as an alias because clap's derive reads `Option<Vec<_>>` as an
/// option given several values (here: one `u8` per value), not as one value of bytes.
type Nonce = Vec<u8>;

fn parse_hex(s: &str) -> Result<Nonce, String> {
    hex::decode(s).map_err(|e| format!("not hex: {e}"))
}

enum Failure {
    Lost(String),
    Other(String),
}

impl From<TransportError> for Failure {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::EnclaveLost(_) => Failure::Lost(e.to_string()),
            other => Failure::Other(other.to_string()),
        }
    }
}

/// The host's side of the OCALLs: `echo` answers with the text it was given.
struct Host;

impl HelloHost for Host {
    fn echo(&self, text: String) -> String {
        text
    }
}

fn run(args: Args) -> Result<(), Failure> {
    let platform = Platform::connect(&args.socket).map_err(|e| Failure::Other(e.to_string()))?;
    let options = EnclaveOptions::typed(&HELLO_INTERFACE).serving(
        &HELLO_HOST_INTERFACE,
        Host,
        hello_host_dispatch,
    );
    let enclave = platform
        .create_enclave_with(&args.bundle, options)
        .map_err(|e| Failure::Other(e.to_string()))?;
    let hello = HelloProxy::new(&enclave);
    if let Some(nonce) = &args.probe {
        hello.probe(nonce.clone())?;
        println!("enclave pid: {}", enclave.pid());
        if args.hold {
            hold(&enclave)?;
        }
    } else if let Some(path) = &args.try_open {
        // The sandbox must stop the enclave; an answer means it did not.
        return Err(Failure::Other(match hello.try_open(path.clone())? {
            Ok(()) => format!("the enclave opened {path}: its sandbox did not stop it"),
            Err(e) => {
                format!("the enclave's open of {path} returned ({e}): its sandbox did not stop it")
            }
        }));
    } else if let Some(text) = &args.echo {
        let out = hello.echo(text.clone())?.map_err(Failure::Other)?;
        println!("{out}");
    }
    Ok(())
}

/// Waits until standard input closes, keeping the enclave (and its secrets) alive.
fn hold(_enclave: &Enclave) -> Result<(), Failure> {
    std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink())
        .map(drop)
        .map_err(|e| Failure::Other(format!("reading standard input: {e}")))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Lost(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(3)
        }
        Err(Failure::Other(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
