//! `coffer sign --key KEY.pem --config enclave.toml ENCLAVE_ELF -o APP.coffer`, and the two-step
//! flow for keys held elsewhere: `coffer sign gendata …` then `coffer sign catsig …`.

use std::path::{Path, PathBuf};

use coffer_abi::SigstructDate;
use coffer_sign::bundle::{self, Bundle, BundleSignError, MAX_IMAGE_SIZE};
use coffer_sign::config::{ConfigError, EnclaveConfig, MAX_CONFIG_LEN};
use coffer_sign::layout::LayoutError;
use coffer_sign::{KeyError, SigningKey, VerifyingKey};

use crate::util::{self, IoError};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    step: Option<Step>,
    /// The RSA-3072, e = 3 private key (PEM).
    #[arg(long, required = true)]
    key: Option<PathBuf>,
    #[command(flatten)]
    input: Input,
    /// Where to write the bundle.
    #[arg(short = 'o', long = "output", required = true)]
    output: Option<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(long)]
    force: bool,
}

/// What every signing step reads.
#[derive(Debug, clap::Args)]
pub struct Input {
    /// The enclave configuration (enclave.toml).
    #[arg(long, required = true)]
    config: Option<PathBuf>,
    /// SIGSTRUCT DATE, YYYYMMDD or YYYY-MM-DD (default: today, UTC). The two-step flow must use
    /// the same date in both steps.
    #[arg(long, value_parser = SigstructDate::parse)]
    date: Option<SigstructDate>,
    /// The statically linked x86-64 enclave ELF.
    #[arg(value_name = "ENCLAVE_ELF", required = true)]
    elf: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Step {
    /// Write the 256 bytes to sign (sign them with e.g. `openssl dgst -sha256 -sign key.pem`).
    Gendata {
        #[command(flatten)]
        input: Input,
        /// Where to write the 256 bytes.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        #[arg(long)]
        force: bool,
    },
    /// Attach a signature made elsewhere (big-endian PKCS#1 v1.5 / SHA-256 over the gendata
    /// bytes), check it, and write the bundle.
    Catsig {
        /// The 384-byte signature.
        #[arg(long)]
        signature: PathBuf,
        /// The signer's public key (PEM: SPKI or PKCS#1).
        #[arg(long)]
        public_key: PathBuf,
        #[command(flatten)]
        input: Input,
        /// Where to write the bundle.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        #[arg(long)]
        force: bool,
    },
}

/// Errors of `coffer sign`.
#[derive(Debug, thiserror::Error)]
pub enum SignCmdError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{path}: {source}")]
    Config { path: PathBuf, source: ConfigError },
    #[error("{path}: {source}")]
    Layout { path: PathBuf, source: LayoutError },
    #[error("{path} is not a usable key: {source}")]
    Key { path: PathBuf, source: KeyError },
    #[error("{path}: {source}")]
    Sign {
        path: PathBuf,
        source: BundleSignError,
    },
    #[error("missing argument {0}")]
    Missing(&'static str),
}

/// Key and signature files are small; anything larger is not one.
const SMALL_FILE_LIMIT: u64 = 64 * 1024;

/// What [`Input`] names, read and checked.
pub struct Loaded {
    pub config: EnclaveConfig,
    pub image: Vec<u8>,
    pub elf: PathBuf,
    pub date: SigstructDate,
}

impl Input {
    fn load(self) -> Result<Loaded, SignCmdError> {
        let config = self.config.ok_or(SignCmdError::Missing("--config"))?;
        let elf = self.elf.ok_or(SignCmdError::Missing("ENCLAVE_ELF"))?;
        Ok(Loaded {
            config: load_config(&config)?,
            image: util::read_capped(&elf, MAX_IMAGE_SIZE)?,
            elf,
            date: self.date.unwrap_or_else(bundle::today),
        })
    }
}

/// Reads and checks `enclave.toml`.
pub fn load_config(path: &Path) -> Result<EnclaveConfig, SignCmdError> {
    let bytes = util::read_capped(path, MAX_CONFIG_LEN as u64)?;
    EnclaveConfig::from_toml_bytes(&bytes).map_err(|source| SignCmdError::Config {
        path: path.to_owned(),
        source,
    })
}

/// Reads a signing key.
pub fn load_key(path: &Path) -> Result<SigningKey, SignCmdError> {
    let pem = util::read_capped(path, SMALL_FILE_LIMIT)?;
    SigningKey::from_pem(&String::from_utf8_lossy(&pem)).map_err(|source| SignCmdError::Key {
        path: path.to_owned(),
        source,
    })
}

pub fn run(a: Args) -> Result<(), SignCmdError> {
    match a.step {
        None => {
            let key = a.key.ok_or(SignCmdError::Missing("--key"))?;
            let output = a.output.ok_or(SignCmdError::Missing("--output"))?;
            let key = load_key(&key)?;
            sign_and_write(&key, a.input.load()?, &output, a.force)
        }
        Some(Step::Gendata {
            input,
            output,
            force,
        }) => gendata(input.load()?, &output, force),
        Some(Step::Catsig {
            signature,
            public_key,
            input,
            output,
            force,
        }) => catsig(&signature, &public_key, input.load()?, &output, force),
    }
}

/// Signs `input` with `key` and writes the bundle (shared with `coffer build`).
pub fn sign_and_write(
    key: &SigningKey,
    input: Loaded,
    output: &Path,
    force: bool,
) -> Result<(), SignCmdError> {
    let Loaded {
        config,
        image,
        elf,
        date,
    } = input;
    let b = Bundle::sign(key, &config, image, date)
        .map_err(|source| SignCmdError::Sign { path: elf, source })?;
    write_bundle(&b, output, force)
}

fn write_bundle(b: &Bundle, output: &Path, force: bool) -> Result<(), SignCmdError> {
    util::write_atomic(output, &b.to_bytes(), 0o644, force)?;
    let s = b.sigstruct();
    println!(
        "wrote {} (date {}, MRSIGNER {})",
        output.display(),
        s.date,
        hex::encode(s.mrsigner())
    );
    println!("{}", hex::encode(s.enclavehash));
    Ok(())
}

fn gendata(input: Loaded, output: &Path, force: bool) -> Result<(), SignCmdError> {
    let (data, measured) =
        bundle::signing_data(&input.config, &input.image, input.date).map_err(|source| {
            SignCmdError::Layout {
                path: input.elf.clone(),
                source,
            }
        })?;
    util::write_atomic(output, &data, 0o644, force)?;
    println!(
        "wrote {} ({} bytes to sign, date {}; give catsig --date {})",
        output.display(),
        data.len(),
        input.date,
        input.date
    );
    println!("{}", hex::encode(measured.mrenclave));
    Ok(())
}

fn catsig(
    signature: &Path,
    public_key: &Path,
    input: Loaded,
    output: &Path,
    force: bool,
) -> Result<(), SignCmdError> {
    let sig = util::read_capped(signature, SMALL_FILE_LIMIT)?;
    let pem = util::read_capped(public_key, SMALL_FILE_LIMIT)?;
    let key = VerifyingKey::from_pem(&String::from_utf8_lossy(&pem)).map_err(|source| {
        SignCmdError::Key {
            path: public_key.to_owned(),
            source,
        }
    })?;
    let b =
        Bundle::assemble(&key, &sig, &input.config, input.image, input.date).map_err(|source| {
            SignCmdError::Sign {
                path: signature.to_owned(),
                source,
            }
        })?;
    write_bundle(&b, output, force)
}
