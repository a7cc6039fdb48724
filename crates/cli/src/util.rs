//! Small helpers shared by the commands: reading inputs with a size cap, writing outputs atomically,
//! parsing numbers and hex.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors of the shared input and output helpers.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is {size} bytes, more than the {limit} bytes this command accepts")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} already exists; remove it first or choose another name")]
    Exists { path: PathBuf },
}

/// Boxes a command's error for printing in `main`.
pub fn boxed<E: std::error::Error + 'static>(e: E) -> Box<dyn std::error::Error> {
    Box::new(e)
}

/// Reads a whole file, refusing files larger than `limit` bytes (checked before and while reading, so
/// a huge or growing file cannot exhaust memory).
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, IoError> {
    use std::io::Read;
    let read_err = |source| IoError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut buf = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(read_err)?;
    if buf.len() as u64 > limit {
        return Err(IoError::TooLarge {
            path: path.to_owned(),
            size: buf.len() as u64,
            limit,
        });
    }
    Ok(buf)
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so the target
/// is never half-written. With `mode`, the file gets those permissions from its creation on.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32, overwrite: bool) -> Result<(), IoError> {
    write_atomic_with(path, mode, overwrite, |w| {
        w.write_all(bytes)?;
        Ok(((), true))
    })
}

/// Writes `path` through a temporary file in the same folder, streaming through `f`, then moves it
/// into place: without `overwrite` the move itself refuses an existing target (no check-then-rename
/// race). `f` returns its result and whether to keep the file: the file takes the name only when
/// `f` says so and every write and the sync succeeded; otherwise the temporary file is removed.
pub fn write_atomic_with<R>(
    path: &Path,
    mode: u32,
    overwrite: bool,
    f: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<(R, bool)>,
) -> Result<R, IoError> {
    use std::os::unix::fs::PermissionsExt;
    let write_err = |source| IoError::Write {
        path: path.to_owned(),
        source,
    };
    if !overwrite && path.exists() {
        // Early and friendly; the move below is what makes it exact.
        return Err(IoError::Exists {
            path: path.to_owned(),
        });
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".coffer-")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(&dir)
        .map_err(write_err)?;
    let file = tmp.as_file().try_clone().map_err(write_err)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let (r, keep) = f(&mut w).map_err(write_err)?;
    if !keep {
        return Ok(r);
    }
    let file = w.into_inner().map_err(|e| write_err(e.into_error()))?;
    file.sync_all().map_err(write_err)?;
    drop(file);
    let persisted = if overwrite {
        tmp.persist(path).map(drop)
    } else {
        tmp.persist_noclobber(path).map(drop)
    };
    match persisted {
        Ok(()) => Ok(r),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Err(IoError::Exists {
            path: path.to_owned(),
        }),
        Err(e) => Err(write_err(e.error)),
    }
}

/// Parses a number written in decimal or with a `0x` prefix in hex.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse::<u64>(),
    };
    r.map_err(|_| format!("{s:?} is not a number (decimal, or hex with 0x)"))
}

pub fn parse_u32(s: &str) -> Result<u32, String> {
    let v = parse_u64(s)?;
    u32::try_from(v).map_err(|_| format!("{s} does not fit in 32 bits"))
}

pub fn parse_u16(s: &str) -> Result<u16, String> {
    let v = parse_u64(s)?;
    u16::try_from(v).map_err(|_| format!("{s} does not fit in 16 bits"))
}

/// Parses exactly 32 bytes of hex (64 characters).
pub fn parse_hash(s: &str) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut out)
        .map_err(|_| format!("{s:?} is not 64 hexadecimal characters"))?;
    Ok(out)
}

/// `0x` followed by 16 lowercase hex digits.
pub fn hex64(v: u64) -> String {
    format!("0x{v:016x}")
}

/// Prints a JSON value on one line.
pub fn print_json(v: &serde_json::Value) {
    println!("{v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_decimal_and_hex_numbers() {
        assert_eq!(parse_u64("12").unwrap(), 12);
        assert_eq!(parse_u64("0x1F").unwrap(), 31);
        assert_eq!(parse_u16("0xffff").unwrap(), 65535);
        assert!(parse_u16("65536").is_err());
        assert!(parse_u64("x").is_err());
        assert!(parse_hash("00").is_err());
    }

    #[test]
    fn rejects_overwriting_without_permission() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomic(&p, b"one", 0o600, false).unwrap();
        assert!(matches!(
            write_atomic(&p, b"two", 0o600, false),
            Err(IoError::Exists { .. })
        ));
        write_atomic(&p, b"two", 0o600, true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
    }

    #[test]
    fn never_clobbers_a_file_that_appears_while_writing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        let e = write_atomic_with(&p, 0o600, false, |w| {
            // Another process creates the target after the early check.
            std::fs::write(&p, b"theirs")?;
            w.write_all(b"ours")?;
            Ok(((), true))
        })
        .unwrap_err();
        assert!(matches!(e, IoError::Exists { .. }), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"theirs");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "the temporary file is gone");
        std::fs::remove_file(&p).unwrap();
        write_atomic(&p, b"key", 0o600, false).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn leaves_nothing_when_the_writer_gives_up_or_fails() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        write_atomic_with(&p, 0o644, false, |w| {
            w.write_all(b"half")?;
            Ok(((), false))
        })
        .unwrap();
        let e = write_atomic_with(&p, 0o644, false, |w| -> std::io::Result<((), bool)> {
            w.write_all(b"half")?;
            Err(std::io::Error::other("input ended early"))
        })
        .unwrap_err();
        assert!(e.to_string().contains("input ended early"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
