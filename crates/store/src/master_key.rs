//! The master key: 32 random bytes in a file of its own, created with mode 0600 on first use and
//! never written to the database. Key material in the database is sealed under it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// The length of the master key file: one AES-256 key.
pub const MASTER_KEY_LEN: usize = 32;

/// The key that seals key material at rest.
pub struct MasterKey {
    bytes: Zeroizing<[u8; MASTER_KEY_LEN]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Why the master key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("cannot read the master key file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create the master key file {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the master key file {path} holds {len} bytes or more, not {MASTER_KEY_LEN}")]
    Length { path: PathBuf, len: usize },
    #[error(
        "the master key file {path} has mode {mode:o}: group or others may access it (want 0600)"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("the system's random number generator failed")]
    Random(#[source] getrandom::Error),
}

impl MasterKey {
    /// Loads the master key from `path`, creating it (mode 0600, fresh random bytes) when the file
    /// does not exist. A file that others may read, or of the wrong length, is refused.
    pub fn load_or_create(path: &Path) -> Result<MasterKey, MasterKeyError> {
        match MasterKey::load(path) {
            Err(MasterKeyError::Read { source, .. })
                if source.kind() == io::ErrorKind::NotFound =>
            {
                MasterKey::create(path)
            }
            other => other,
        }
    }

    /// Loads an existing master key file.
    pub fn load(path: &Path) -> Result<MasterKey, MasterKeyError> {
        let read = |source| MasterKeyError::Read {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(read)?;
        let mode = file.metadata().map_err(read)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(MasterKeyError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        // One byte more than a key, to tell a long file from a key.
        let mut buf = Zeroizing::new([0u8; MASTER_KEY_LEN + 1]);
        let mut len = 0;
        loop {
            let n = file.read(&mut buf[len..]).map_err(read)?;
            if n == 0 {
                break;
            }
            len += n;
            if len == buf.len() {
                break;
            }
        }
        if len != MASTER_KEY_LEN {
            return Err(MasterKeyError::Length {
                path: path.to_owned(),
                len,
            });
        }
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        bytes.copy_from_slice(&buf[..MASTER_KEY_LEN]);
        Ok(MasterKey { bytes })
    }

    /// Creates the key file: written in full and synced under a temporary name, then linked into
    /// place, so that a crash never leaves a short key behind and two processes starting at once
    /// agree on one key (the second link fails and that process loads the first one's key).
    fn create(path: &Path) -> Result<MasterKey, MasterKeyError> {
        let create = |source| MasterKeyError::Create {
            path: path.to_owned(),
            source,
        };
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        getrandom::fill(&mut bytes[..]).map_err(MasterKeyError::Random)?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp.{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = fs::remove_file(&tmp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(create)?;
        let written = file.write_all(&bytes[..]).and_then(|()| file.sync_all());
        drop(file);
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(create(e));
        }
        let linked = fs::hard_link(&tmp, path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    File::open(dir).and_then(|d| d.sync_all()).map_err(create)?;
                }
                tracing::info!(path = %path.display(), "created a new master key");
                Ok(MasterKey { bytes })
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => MasterKey::load(path),
            Err(e) => Err(create(e)),
        }
    }

    pub(crate) fn bytes(&self) -> &[u8; MASTER_KEY_LEN] {
        &self.bytes
    }
}
