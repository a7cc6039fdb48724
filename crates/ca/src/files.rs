//! Writing the CA's and the node's files: through a temporary file in the same folder and a
//! rename, so no file is ever half-written, with the mode set from creation on (keys 0600).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path} already exists; Coffer never overwrites it")]
    Exists { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
}

/// Mode of secret files (private keys).
pub const SECRET: u32 = 0o600;
/// Mode of public files (certificates, collateral).
pub const PUBLIC: u32 = 0o644;

/// Writes `bytes` to `path`. Without `overwrite` an existing target is refused by the rename
/// itself (`persist_noclobber`), so two writers cannot both win.
pub fn write(path: &Path, bytes: &[u8], mode: u32, overwrite: bool) -> Result<(), FileError> {
    let werr = |source| FileError::Write {
        path: path.to_owned(),
        source,
    };
    if !overwrite && path.exists() {
        return Err(FileError::Exists {
            path: path.to_owned(),
        });
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".coffer-")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(&dir)
        .map_err(werr)?;
    tmp.write_all(bytes).map_err(werr)?;
    tmp.as_file().sync_all().map_err(werr)?;
    let persisted = if overwrite {
        tmp.persist(path).map(drop)
    } else {
        tmp.persist_noclobber(path).map(drop)
    };
    match persisted {
        Ok(()) => Ok(()),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Err(FileError::Exists {
            path: path.to_owned(),
        }),
        Err(e) => Err(werr(e.error)),
    }
}

/// Creates `dir` (and its parents) with mode 0700 when missing.
pub fn create_dir(dir: &Path) -> Result<(), FileError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| FileError::Write {
            path: dir.to_owned(),
            source,
        })
}

/// Largest file of the CA read back (keys, certificates, records).
pub const MAX_READ: u64 = 1 << 20;

/// Reads a whole file of at most [`MAX_READ`] bytes.
pub fn read(path: &Path) -> Result<Vec<u8>, FileError> {
    use std::io::Read;
    let rerr = |source| FileError::Read {
        path: path.to_owned(),
        source,
    };
    let f = std::fs::File::open(path).map_err(rerr)?;
    let mut buf = Vec::new();
    f.take(MAX_READ + 1).read_to_end(&mut buf).map_err(rerr)?;
    if buf.len() as u64 > MAX_READ {
        return Err(FileError::TooLarge {
            path: path.to_owned(),
            limit: MAX_READ,
        });
    }
    Ok(buf)
}
