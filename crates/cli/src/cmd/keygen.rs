//! `coffer keygen -o FILE`

use std::path::PathBuf;

use crate::util::{IoError, write_atomic};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the private key (PEM, PKCS#1). Refuses to overwrite an existing file.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
}

/// Errors of `coffer keygen`.
#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    #[error("key generation failed: {0}")]
    Key(#[from] coffer_sign::KeyError),
    #[error(transparent)]
    Io(#[from] IoError),
}

pub fn run(a: Args) -> Result<(), KeygenError> {
    let key = coffer_sign::SigningKey::generate()?;
    let pem = key.to_pem()?;
    write_atomic(&a.output, pem.as_bytes(), 0o600, false)?;
    println!(
        "wrote {} (RSA-3072, e = 3); MRSIGNER {}",
        a.output.display(),
        hex::encode(key.verifying_key().mrsigner())
    );
    Ok(())
}
