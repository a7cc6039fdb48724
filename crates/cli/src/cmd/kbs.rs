//! `coffer kbs serve` (the key broker) and `coffer kbs key …` (its key API, JSON output).

use std::net::SocketAddr;
use std::path::PathBuf;

use coffer_kbs::auth::{AuthFileError, AuthTable};
use coffer_kbs::client::{Client, ClientError, KeySpec};
use coffer_kbs::service::{Config, Service, StartError};
use coffer_kbs::trust::TrustedIssuer;
use std::io::Write;

use crate::util;

/// The largest policy or key file read.
const MAX_INPUT: u64 = 64 * 1024;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the key broker: Key Vault's key API and secure key release to attested enclaves.
    Serve(ServeArgs),
    /// Manage keys on a running broker.
    #[command(subcommand)]
    Key(KeyCommand),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Where to listen (plain HTTP). The bound address is printed as `listening on ADDR`.
    #[arg(long)]
    listen: SocketAddr,
    /// The data directory: the SQLite database and the master key by default.
    #[arg(long)]
    data_dir: PathBuf,
    /// A database URL (`postgres://…` for replicas sharing one database); default: an SQLite
    /// file in the data directory.
    #[arg(long)]
    database: Option<String>,
    /// The master key file (created with mode 0600 when missing); default: DATA_DIR/master.key.
    #[arg(long)]
    master_key_file: Option<PathBuf>,
    /// Callers: one `ROLE TOKEN` a line, ROLE administrator or releaser.
    #[arg(long)]
    auth_file: PathBuf,
    /// A trusted token issuer: ISSUER_URL (keys from its OpenID metadata) or ISSUER_URL=JWKS_FILE.
    #[arg(long, required = true)]
    trust: Vec<TrustedIssuer>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct Conn {
    /// The broker's URL.
    #[arg(long)]
    url: String,
    /// A bearer token from the broker's auth file.
    #[arg(long)]
    token: String,
    /// A private CA to trust besides the system's roots (PEM).
    #[arg(long)]
    ca_cert: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// Create (or import) a new version of a key.
    Create {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        name: String,
        /// oct or RSA.
        #[arg(long)]
        kty: String,
        /// Key size in bits.
        #[arg(long)]
        size: Option<u32>,
        /// The release policy (JSON); the key is exportable when given.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Raw key material to import (oct).
        #[arg(long)]
        import_file: Option<PathBuf>,
        /// Make the release policy immutable.
        #[arg(long)]
        immutable: bool,
    },
    /// Show a key (the latest version, or --version).
    Show {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: Option<i64>,
    },
    /// List keys (or deleted keys).
    List {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        deleted: bool,
    },
    /// Soft-delete a key (or purge a deleted one).
    Delete {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        name: String,
        /// Purge the deleted key for good.
        #[arg(long)]
        purge: bool,
    },
    /// Recover a deleted key.
    Recover {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        name: String,
    },
    /// Replace the release policy of a key version (the latest by default).
    SetPolicy {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: Option<i64>,
        #[arg(long)]
        policy: PathBuf,
        #[arg(long)]
        immutable: bool,
    },
}

/// Why a `coffer kbs` command failed.
#[derive(Debug, thiserror::Error)]
pub enum KbsError {
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    AuthFile(#[from] AuthFileError),
    #[error("cannot start the key broker")]
    Start(#[from] StartError),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the server failed")]
    Serve(#[source] std::io::Error),
    #[error(transparent)]
    Input(#[from] util::IoError),
    #[error(transparent)]
    Client(#[from] ClientError),
}

fn runtime() -> Result<tokio::runtime::Runtime, KbsError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(KbsError::Runtime)
}

pub fn run(command: Command) -> Result<(), KbsError> {
    let rt = runtime()?;
    match command {
        Command::Serve(a) => rt.block_on(serve(a)),
        Command::Key(k) => {
            let value = rt.block_on(key(k))?;
            println!("{value}");
            Ok(())
        }
    }
}

async fn serve(a: ServeArgs) -> Result<(), KbsError> {
    let auth = AuthTable::load(&a.auth_file)?;
    let service = Service::start(Config {
        data_dir: a.data_dir,
        database: a.database,
        master_key_file: a.master_key_file,
        auth,
        trust: a.trust,
        tls: a.tls_cert.zip(a.tls_key),
    })
    .await?;
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .map_err(|source| KbsError::Listen {
            addr: a.listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| KbsError::Listen {
        addr: a.listen,
        source,
    })?;
    println!("listening on {bound}");
    let _ = std::io::stdout().flush();
    service.serve(listener).await.map_err(KbsError::Serve)
}

async fn key(k: KeyCommand) -> Result<serde_json::Value, KbsError> {
    let client = |c: &Conn| Client::new(&c.url, &c.token, c.ca_cert.as_deref());
    Ok(match k {
        KeyCommand::Create {
            conn,
            name,
            kty,
            size,
            policy,
            import_file,
            immutable,
        } => {
            let policy = policy
                .map(|p| util::read_capped(&p, MAX_INPUT))
                .transpose()?;
            let import = import_file
                .map(|p| util::read_capped(&p, MAX_INPUT))
                .transpose()?;
            client(&conn)?
                .create(
                    &name,
                    &KeySpec {
                        kty,
                        size,
                        policy,
                        immutable,
                        import,
                    },
                )
                .await?
        }
        KeyCommand::Show {
            conn,
            name,
            version,
        } => client(&conn)?.show(&name, version).await?,
        KeyCommand::List { conn, deleted } => {
            if deleted {
                client(&conn)?.list_deleted().await?
            } else {
                client(&conn)?.list().await?
            }
        }
        KeyCommand::Delete { conn, name, purge } => {
            if purge {
                client(&conn)?.purge(&name).await?
            } else {
                client(&conn)?.delete(&name).await?
            }
        }
        KeyCommand::Recover { conn, name } => client(&conn)?.recover(&name).await?,
        KeyCommand::SetPolicy {
            conn,
            name,
            version,
            policy,
            immutable,
        } => {
            let policy = util::read_capped(&policy, MAX_INPUT)?;
            client(&conn)?
                .set_policy(&name, version, &policy, immutable)
                .await?
        }
    })
}
