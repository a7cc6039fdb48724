//! `coffer measure --sgxs FILE` and `coffer measure APP.coffer [--emit-sgxs OUT.sgxs]`

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use coffer_abi::sgxs::{SgxsError, SgxsWriter, measure_sgxs};
use coffer_sign::bundle::{Bundle, BundleError, MAX_BUNDLE_SIZE};
use coffer_sign::layout::{self, LayoutError};

use crate::util::{self, IoError};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["bundle", "sgxs"])))]
pub struct Args {
    /// A `.coffer` bundle: prints the MRENCLAVE recomputed from its image and configuration.
    bundle: Option<PathBuf>,
    /// An SGXS stream: prints its MRENCLAVE (the SHA-256 of the checked stream).
    #[arg(long, conflicts_with = "bundle")]
    sgxs: Option<PathBuf>,
    /// With a bundle: also write the enclave's SGXS stream to this file.
    #[arg(long, requires = "bundle")]
    emit_sgxs: Option<PathBuf>,
    /// Replace the --emit-sgxs file if it exists.
    #[arg(long, requires = "emit_sgxs")]
    force: bool,
}

/// Errors of `coffer measure`.
#[derive(Debug, thiserror::Error)]
pub enum MeasureCmdError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Sgxs { path: PathBuf, source: SgxsError },
    #[error("{path}: {source}")]
    Bundle { path: PathBuf, source: BundleError },
    #[error("{path}: {source}")]
    Layout { path: PathBuf, source: LayoutError },
}

pub fn run(a: Args) -> Result<(), MeasureCmdError> {
    match (a.sgxs, a.bundle) {
        (Some(path), _) => sgxs(&path),
        (None, Some(path)) => bundle(&path, a.emit_sgxs.as_deref(), a.force),
        // clap's required group makes this unreachable; say so instead of panicking.
        (None, None) => Err(MeasureCmdError::Open {
            path: PathBuf::new(),
            source: std::io::Error::other("give a bundle or --sgxs FILE"),
        }),
    }
}

fn sgxs(path: &Path) -> Result<(), MeasureCmdError> {
    let file = File::open(path).map_err(|source| MeasureCmdError::Open {
        path: path.to_owned(),
        source,
    })?;
    // The reader caps the stream's length and page count itself (MAX_SGXS_LEN), streaming it.
    let mrenclave = measure_sgxs(BufReader::with_capacity(1 << 20, file)).map_err(|source| {
        MeasureCmdError::Sgxs {
            path: path.to_owned(),
            source,
        }
    })?;
    println!("{}", hex::encode(mrenclave));
    Ok(())
}

fn bundle(path: &Path, emit: Option<&Path>, force: bool) -> Result<(), MeasureCmdError> {
    let bytes = util::read_capped(path, MAX_BUNDLE_SIZE)?;
    let b = Bundle::from_bytes(&bytes).map_err(|source| MeasureCmdError::Bundle {
        path: path.to_owned(),
        source,
    })?;
    drop(bytes);
    let layout_err = |source| MeasureCmdError::Layout {
        path: path.to_owned(),
        source,
    };
    let measured = match emit {
        None => layout::measure_enclave(b.image(), b.config()).map_err(layout_err)?,
        Some(out) => {
            let (m, written) = stream_to_file(out, force, |w| {
                let mut writer = SgxsWriter::new(w);
                let m = layout::measure_enclave_with_sink(b.image(), b.config(), &mut writer);
                Ok((m, writer.bytes_written()))
            })?;
            let m = m.map_err(layout_err)?;
            eprintln!("wrote {} ({written} bytes, SGXS stream)", out.display());
            m
        }
    };
    if measured.mrenclave != b.sigstruct().enclavehash {
        eprintln!(
            "warning: the bundle's SIGSTRUCT ENCLAVEHASH is {}, not the measured value",
            hex::encode(b.sigstruct().enclavehash)
        );
    }
    println!("{}", hex::encode(measured.mrenclave));
    Ok(())
}

/// Writes `path` atomically, streaming (an SGXS stream can be far larger than the bundle); the
/// file is kept only when `f`'s own result is a success.
fn stream_to_file<T>(
    path: &Path,
    overwrite: bool,
    f: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<(Result<T, LayoutError>, u64)>,
) -> Result<(Result<T, LayoutError>, u64), IoError> {
    util::write_atomic_with(path, 0o644, overwrite, |w| {
        let (r, n) = f(w)?;
        let keep = r.is_ok();
        Ok(((r, n), keep))
    })
}
