//! The platform's state directory: the root key every EGETKEY derivation starts from, the owner
//! epoch and the CPUSVN.
//!
//! ```text
//! DIR/            0700, owned by the daemon's user (root)
//!   root.key      16 random bytes, 0600, created once and never rewritten
//!   owner-epoch   32 hex characters, 0600 (zero when created; change it to revoke every seal key)
//!   cpusvn        32 hex characters, 0600 (the platform's security version, one byte per component)
//! ```
//!
//! The root key is made on the first start and loaded on every later one, so sealing keys survive
//! a daemon restart and differ between platforms. Files are created under a temporary name and
//! hard-linked into place, which fails if another daemon got there first: two daemons on one
//! directory agree on one key. A directory or file that another user could read or write is
//! refused, as are symbolic links and files of the wrong size.
//!
//! This module must never log or return the root key other than inside a [`PlatformRoot`].

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use coffer_cpu::PlatformRoot;
use zeroize::Zeroizing;

pub const ROOT_KEY_FILE: &str = "root.key";
pub const OWNER_EPOCH_FILE: &str = "owner-epoch";
pub const CPUSVN_FILE: &str = "cpusvn";

/// The CPUSVN of a freshly created platform.
pub const DEFAULT_CPUSVN: [u8; 16] = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create the state directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a {expected} (symbolic links are refused)")]
    WrongType {
        path: PathBuf,
        expected: &'static str,
    },
    #[error("{path} is owned by uid {owner}, not by the daemon's uid {expected}")]
    WrongOwner {
        path: PathBuf,
        owner: u32,
        expected: u32,
    },
    #[error(
        "{path} has mode {mode:04o}: other users could read or change it; run `chmod go-rwx {path}` if it was never exposed, or start over with a new state directory"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("{path} holds {found} bytes, {expected} expected")]
    WrongSize {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error("{path} does not hold 32 hex characters")]
    NotHex { path: PathBuf },
    #[error("no randomness for the root key: {0}")]
    Random(#[source] getrandom::Error),
}

/// The platform identity loaded from (or first created in) a state directory.
#[derive(Debug)]
pub struct PlatformState {
    pub root: PlatformRoot,
    pub owner_epoch: [u8; 16],
    pub cpusvn: [u8; 16],
}

/// Opens the state directory, creating it and its files on the first start.
pub fn open_state_dir(dir: &Path) -> Result<PlatformState, StateError> {
    let uid = rustix::process::geteuid().as_raw();
    if std::fs::symlink_metadata(dir).is_err() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| StateError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        tracing::info!(dir = %dir.display(), "created the platform state directory");
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|source| StateError::Io {
        path: dir.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(StateError::WrongType {
            path: dir.to_owned(),
            expected: "directory",
        });
    }
    check_private(dir, &meta, uid)?;

    let mut root_key = Zeroizing::new([0u8; 16]);
    let key_path = dir.join(ROOT_KEY_FILE);
    if !exists(&key_path) {
        getrandom::fill(&mut root_key[..]).map_err(StateError::Random)?;
        create_once(dir, ROOT_KEY_FILE, &root_key[..])?;
        tracing::info!("created a new platform root key");
    }
    read_exact_file(&key_path, uid, &mut root_key[..])?;

    let owner_epoch = hex_file(dir, OWNER_EPOCH_FILE, [0; 16], uid)?;
    let cpusvn = hex_file(dir, CPUSVN_FILE, DEFAULT_CPUSVN, uid)?;
    Ok(PlatformState {
        root: PlatformRoot::new(*root_key, owner_epoch, cpusvn),
        owner_epoch,
        cpusvn,
    })
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

fn check_private(path: &Path, meta: &std::fs::Metadata, uid: u32) -> Result<(), StateError> {
    if meta.uid() != uid {
        return Err(StateError::WrongOwner {
            path: path.to_owned(),
            owner: meta.uid(),
            expected: uid,
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(StateError::Exposed {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Writes `name` with `content` (mode 0600) unless it exists; a concurrent creator wins cleanly.
fn create_once(dir: &Path, name: &str, content: &[u8]) -> Result<(), StateError> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(StateError::Random)?;
    let tmp = dir.join(format!(".{name}.{}", hex::encode(nonce)));
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StateError::Io { path, source }
    };
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(o_nofollow())
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(content).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        let target = dir.join(name);
        match std::fs::hard_link(&tmp, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(StateError::Io {
                    path: target,
                    source: e,
                });
            }
        }
        File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

fn o_nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// Reads a private regular file of exactly `buf.len()` bytes.
fn read_exact_file(path: &Path, uid: u32, buf: &mut [u8]) -> Result<(), StateError> {
    let io = |source| StateError::Io {
        path: path.to_owned(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(o_nofollow())
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                StateError::WrongType {
                    path: path.to_owned(),
                    expected: "regular file",
                }
            } else {
                io(e)
            }
        })?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(StateError::WrongType {
            path: path.to_owned(),
            expected: "regular file",
        });
    }
    check_private(path, &meta, uid)?;
    let expected = buf.len() as u64;
    let mut content = Zeroizing::new(Vec::with_capacity(buf.len() + 1));
    file.take(expected + 1)
        .read_to_end(&mut content)
        .map_err(io)?;
    if content.len() != buf.len() {
        return Err(StateError::WrongSize {
            path: path.to_owned(),
            found: meta.len(),
            expected,
        });
    }
    buf.copy_from_slice(&content);
    Ok(())
}

/// Reads (creating with `default`) a file of 32 hex characters and an optional newline.
fn hex_file(dir: &Path, name: &str, default: [u8; 16], uid: u32) -> Result<[u8; 16], StateError> {
    let path = dir.join(name);
    if !exists(&path) {
        create_once(dir, name, format!("{}\n", hex::encode(default)).as_bytes())?;
    }
    let meta = std::fs::symlink_metadata(&path).map_err(|source| StateError::Io {
        path: path.clone(),
        source,
    })?;
    let len = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    if len != 32 && len != 33 {
        return Err(StateError::NotHex { path });
    }
    let mut text = vec![0u8; len];
    read_exact_file(&path, uid, &mut text)?;
    let digits = text.strip_suffix(b"\n").unwrap_or(&text);
    let mut out = [0u8; 16];
    hex::decode_to_slice(digits, &mut out).map_err(|_| StateError::NotHex { path })?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use coffer_abi::keyrequest::{KeyName, Keyrequest};
    use coffer_abi::{Attributes, AttributesFlags, ReportBody};

    use super::*;

    fn seal_key(state: &PlatformState) -> [u8; 16] {
        let secs = ReportBody {
            attributes: Attributes {
                flags: AttributesFlags::INIT | AttributesFlags::MODE64BIT,
                xfrm: 3,
            },
            cpusvn: state.cpusvn,
            ..ReportBody::default()
        };
        let req = Keyrequest {
            keyname: KeyName::SEAL_KEY,
            cpusvn: state.cpusvn,
            ..Keyrequest::default()
        };
        *state.root.egetkey(&secs, &req).unwrap()
    }

    #[test]
    fn creates_a_private_state_dir_and_keeps_its_root_key_across_restarts() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("state");
        let first = open_state_dir(&dir).unwrap();
        let meta = std::fs::metadata(&dir).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        for f in [ROOT_KEY_FILE, OWNER_EPOCH_FILE, CPUSVN_FILE] {
            let m = std::fs::metadata(dir.join(f)).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o600, "{f}");
        }
        assert_eq!(
            std::fs::metadata(dir.join(ROOT_KEY_FILE)).unwrap().len(),
            16
        );
        assert_eq!(first.cpusvn, DEFAULT_CPUSVN);
        assert_eq!(first.owner_epoch, [0; 16]);
        let second = open_state_dir(&dir).unwrap();
        assert_eq!(seal_key(&first), seal_key(&second));
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3);
    }

    #[test]
    fn gives_two_platforms_different_keys() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let ka = seal_key(&open_state_dir(&a.path().join("s")).unwrap());
        let kb = seal_key(&open_state_dir(&b.path().join("s")).unwrap());
        assert_ne!(ka, kb);
    }

    #[test]
    fn changing_the_owner_epoch_changes_seal_keys() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("state");
        let before = seal_key(&open_state_dir(&dir).unwrap());
        std::fs::write(dir.join(OWNER_EPOCH_FILE), format!("{}\n", "01".repeat(16))).unwrap();
        let after = open_state_dir(&dir).unwrap();
        assert_eq!(after.owner_epoch, [1; 16]);
        assert_ne!(before, seal_key(&after));
    }

    #[test]
    fn rejects_a_state_dir_or_key_readable_by_others() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("state");
        open_state_dir(&dir).unwrap();
        let key = dir.join(ROOT_KEY_FILE);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = open_state_dir(&dir).unwrap_err();
        assert!(
            matches!(err, StateError::Exposed { mode: 0o644, .. }),
            "{err}"
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        let err = open_state_dir(&dir).unwrap_err();
        assert!(
            matches!(err, StateError::Exposed { mode: 0o750, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod go-rwx"), "{err}");
    }

    #[test]
    fn rejects_a_symlinked_or_truncated_key() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("state");
        open_state_dir(&dir).unwrap();
        let key = dir.join(ROOT_KEY_FILE);
        std::fs::write(&key, [0u8; 15]).unwrap();
        assert!(matches!(
            open_state_dir(&dir),
            Err(StateError::WrongSize { found: 15, .. })
        ));
        std::fs::remove_file(&key).unwrap();
        let elsewhere = parent.path().join("elsewhere.key");
        std::fs::write(&elsewhere, [7u8; 16]).unwrap();
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &key).unwrap();
        assert!(matches!(
            open_state_dir(&dir),
            Err(StateError::WrongType { .. })
        ));
    }

    #[test]
    fn rejects_a_malformed_cpusvn() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("state");
        open_state_dir(&dir).unwrap();
        std::fs::write(dir.join(CPUSVN_FILE), format!("{}\n", "zz".repeat(16))).unwrap();
        assert!(matches!(
            open_state_dir(&dir),
            Err(StateError::NotHex { .. })
        ));
    }
}
