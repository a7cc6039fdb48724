//! `coffer attest serve --listen ADDR --roots DIR [--issuer URL] [--collateral DIR]
//! [--data-dir DIR] [--admin-token-file F] [--intel-root] [--tls-cert PEM --tls-key PEM]`: the
//! attestation service (`coffer-attest`), Azure Attestation's API over HTTP or HTTPS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use coffer_attest::{ServiceConfig, StartError, TlsConfigError};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve the attestation API until interrupted; prints `listening on http(s)://ADDR` first.
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long)]
    listen: SocketAddr,
    /// Directory of root CA certificates (as `coffer ca init` makes): every self-signed CA
    /// certificate in it is a pinned root for the PCK chains.
    #[arg(long)]
    roots: PathBuf,
    /// Every token's `iss` and the base of its `jku` (default: http://ADDR).
    #[arg(long)]
    issuer: Option<String>,
    /// Directory of collateral files (the JSON of dcap-qvl's QuoteCollateralV3), one per FMSPC:
    /// tokens then carry the TCB status and advisory ids, and quotes of a platform without
    /// collateral are refused.
    #[arg(long)]
    collateral: Option<PathBuf>,
    /// Where the token-signing key (made at first start, mode 0600) and the policy database live.
    #[arg(long, default_value = "/var/lib/coffer/attest")]
    data_dir: PathBuf,
    /// File holding the bearer token the policy calls require (without it they are refused).
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
    /// Also trust Intel's SGX Root CA key (built in), for quotes of real SGX machines.
    #[arg(long)]
    intel_root: bool,
    /// Serve HTTPS with this PEM certificate chain (rustls); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Token lifetime in seconds.
    #[arg(long, default_value_t = 8 * 3600)]
    token_lifetime: u64,
}

/// Errors of `coffer attest`.
#[derive(Debug, thiserror::Error)]
pub enum AttestCmdError {
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("attestation service: {0}")]
    Start(#[from] StartError),
    #[error("attestation service: {0}")]
    Tls(#[from] TlsConfigError),
    #[error("attestation service stopped: {0}")]
    Serve(#[source] std::io::Error),
}

pub fn run(c: Command) -> Result<(), AttestCmdError> {
    match c {
        Command::Serve(a) => serve(a),
    }
}

fn serve(a: ServeArgs) -> Result<(), AttestCmdError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(AttestCmdError::Runtime)?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .map_err(|source| AttestCmdError::Listen {
                addr: a.listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| AttestCmdError::Listen {
                addr: a.listen,
                source,
            })?;
        let tls = match (&a.tls_cert, &a.tls_key) {
            (Some(c), Some(k)) => Some(coffer_attest::tls_config(c, k)?),
            _ => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let cfg = ServiceConfig {
            issuer: a.issuer.unwrap_or_else(|| format!("{scheme}://{addr}")),
            roots_dir: a.roots,
            intel_root: a.intel_root,
            collateral_dir: a.collateral,
            data_dir: a.data_dir,
            admin_token_file: a.admin_token_file,
            token_lifetime: Duration::from_secs(a.token_lifetime),
        };
        let state = coffer_attest::start(&cfg).await?;
        println!("listening on {scheme}://{addr}");
        tracing::info!(%addr, issuer = %cfg.issuer, "attestation service started");
        let served = async {
            match tls {
                Some(tls) => coffer_attest::serve_tls(listener, tls, state).await,
                None => coffer_attest::serve(listener, state).await,
            }
        };
        tokio::select! {
            r = served => r.map_err(AttestCmdError::Serve),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}
