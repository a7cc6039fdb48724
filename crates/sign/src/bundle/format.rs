//! The bundle's bytes: the fixed header, the caps on each part, parsing (from memory or a
//! stream) and writing. Parsing checks the form only; see `verify` for the launch check.

use std::io::Read;
use std::sync::Arc;

use coffer_abi::{Codec, DecodeError, FixedSize, Sigstruct};
use thiserror::Error;

use super::Bundle;
use crate::config::{ConfigError, EnclaveConfig, MAX_CONFIG_LEN};
use crate::layout::MAX_IMAGE_FILE;

/// First bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"COFFERB\0";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// SIGSTRUCT's length as the header stores it.
const SIGSTRUCT_LEN: u32 = 1808;
/// Size of the fixed header.
pub const HEADER_SIZE: usize = 32;
/// The largest image a bundle may carry (1 GiB): bounds the memory a bundle can make a reader
/// allocate and the hashing it can make a verifier do.
pub const MAX_IMAGE_SIZE: u64 = MAX_IMAGE_FILE;
/// The largest configuration a bundle may carry.
pub const MAX_CONFIG_SIZE: usize = MAX_CONFIG_LEN;
/// The largest bundle.
pub const MAX_BUNDLE_SIZE: u64 =
    HEADER_SIZE as u64 + 1808 + MAX_CONFIG_SIZE as u64 + MAX_IMAGE_SIZE;

/// Why bytes are not a well-formed bundle.
#[derive(Debug, Error)]
pub enum BundleError {
    /// Reading the bundle failed.
    #[error("reading the bundle failed: {0}")]
    Io(#[source] std::io::Error),
    /// The input ends early.
    #[error("bundle truncated: the {part} needs {needed} bytes but only {available} remain")]
    Truncated {
        part: &'static str,
        needed: u64,
        available: u64,
    },
    /// No magic.
    #[error("not a Coffer bundle (the file does not start with \"COFFERB\\0\")")]
    BadMagic,
    /// A format version this code does not know.
    #[error("bundle format version {0} is not supported (this coffer reads version 1)")]
    UnsupportedVersion(u32),
    /// Reserved header bytes are not zero.
    #[error("bundle header: reserved field is 0x{0:08x}, must be 0")]
    ReservedNotZero(u32),
    /// The SIGSTRUCT length is not 1808.
    #[error("bundle header: SIGSTRUCT length is {0}, must be 1808")]
    SigstructLength(u32),
    /// A part is longer than its cap.
    #[error("bundle header: the {part} length {len} exceeds the limit of {limit} bytes")]
    TooLarge {
        part: &'static str,
        len: u64,
        limit: u64,
    },
    /// Bytes follow the image.
    #[error("bundle has trailing bytes after the image (at least {0})")]
    TrailingBytes(u64),
    /// The SIGSTRUCT does not decode.
    #[error("bundle SIGSTRUCT: {0}")]
    Sigstruct(#[source] DecodeError),
    /// The configuration does not parse.
    #[error("bundle configuration: {0}")]
    Config(#[source] ConfigError),
}

/// The header fields, checked.
struct Header {
    config_len: usize,
    image_len: u64,
}

fn parse_header(h: &[u8; HEADER_SIZE]) -> Result<Header, BundleError> {
    let u32_at = |at: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&h[at..at + 4]);
        u32::from_le_bytes(b)
    };
    if h[..8] != MAGIC {
        return Err(BundleError::BadMagic);
    }
    let version = u32_at(8);
    if version != FORMAT_VERSION {
        return Err(BundleError::UnsupportedVersion(version));
    }
    let reserved = u32_at(12);
    if reserved != 0 {
        return Err(BundleError::ReservedNotZero(reserved));
    }
    let sig_len = u32_at(16);
    if sig_len != SIGSTRUCT_LEN {
        return Err(BundleError::SigstructLength(sig_len));
    }
    let config_len = u32_at(20);
    let config_len = usize::try_from(config_len)
        .ok()
        .filter(|l| *l <= MAX_CONFIG_SIZE)
        .ok_or(BundleError::TooLarge {
            part: "configuration",
            len: u64::from(config_len),
            limit: MAX_CONFIG_SIZE as u64,
        })?;
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[24..32]);
    let image_len = u64::from_le_bytes(b);
    if image_len > MAX_IMAGE_SIZE {
        return Err(BundleError::TooLarge {
            part: "image",
            len: image_len,
            limit: MAX_IMAGE_SIZE,
        });
    }
    Ok(Header {
        config_len,
        image_len,
    })
}

/// Takes `n` bytes from `buf` at `*pos`, or reports the truncated part.
fn take<'a>(
    buf: &'a [u8],
    pos: &mut usize,
    n: usize,
    part: &'static str,
) -> Result<&'a [u8], BundleError> {
    let available = buf.len().saturating_sub(*pos);
    if n > available {
        return Err(BundleError::Truncated {
            part,
            needed: n as u64,
            available: available as u64,
        });
    }
    let s = &buf[*pos..*pos + n];
    *pos += n;
    Ok(s)
}

/// Reads exactly `len` bytes of `part` from `r` (interrupted reads are retried by
/// `read_to_end`), or reports how many were there.
fn read_part(r: &mut impl Read, len: u64, part: &'static str) -> Result<Vec<u8>, BundleError> {
    let mut buf = Vec::new();
    r.take(len).read_to_end(&mut buf).map_err(BundleError::Io)?;
    if buf.len() as u64 != len {
        return Err(BundleError::Truncated {
            part,
            needed: len,
            available: buf.len() as u64,
        });
    }
    Ok(buf)
}

impl Bundle {
    /// Parses a whole bundle held in memory.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BundleError> {
        let mut pos = 0;
        let mut h = [0u8; HEADER_SIZE];
        h.copy_from_slice(take(bytes, &mut pos, HEADER_SIZE, "header")?);
        let header = parse_header(&h)?;
        let sig = take(bytes, &mut pos, Sigstruct::SIZE, "SIGSTRUCT")?;
        let config = take(bytes, &mut pos, header.config_len, "configuration")?;
        let image_len = usize::try_from(header.image_len).unwrap_or(usize::MAX);
        let image = take(bytes, &mut pos, image_len, "image")?;
        if pos != bytes.len() {
            return Err(BundleError::TrailingBytes((bytes.len() - pos) as u64));
        }
        Self::from_parts(sig, config.to_vec(), Arc::from(image))
    }

    /// Reads a bundle from a stream (a file, a descriptor): the header first, then exactly the
    /// lengths it announces, within the caps, then checks that the stream ends.
    pub fn read_from(mut r: impl Read) -> Result<Self, BundleError> {
        let h = read_part(&mut r, HEADER_SIZE as u64, "header")?;
        let mut fixed = [0u8; HEADER_SIZE];
        fixed.copy_from_slice(&h);
        let header = parse_header(&fixed)?;
        let sig = read_part(&mut r, Sigstruct::SIZE as u64, "SIGSTRUCT")?;
        let config = read_part(&mut r, header.config_len as u64, "configuration")?;
        let image = read_part(&mut r, header.image_len, "image")?;
        let mut extra = Vec::new();
        r.take(1).read_to_end(&mut extra).map_err(BundleError::Io)?;
        if !extra.is_empty() {
            return Err(BundleError::TrailingBytes(extra.len() as u64));
        }
        Self::from_parts(&sig, config, Arc::from(image))
    }

    fn from_parts(
        sig: &[u8],
        config_bytes: Vec<u8>,
        image: Arc<[u8]>,
    ) -> Result<Self, BundleError> {
        let sigstruct = Sigstruct::from_bytes(sig).map_err(BundleError::Sigstruct)?;
        let config = EnclaveConfig::from_toml_bytes(&config_bytes).map_err(BundleError::Config)?;
        Ok(Bundle {
            sigstruct,
            config_bytes,
            config,
            image,
        })
    }

    /// The bundle file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            HEADER_SIZE + Sigstruct::SIZE + self.config_bytes.len() + self.image.len(),
        );
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&SIGSTRUCT_LEN.to_le_bytes());
        out.extend_from_slice(
            &u32::try_from(self.config_bytes.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        out.extend_from_slice(&(self.image.len() as u64).to_le_bytes());
        self.sigstruct.encode(&mut out);
        out.extend_from_slice(&self.config_bytes);
        out.extend_from_slice(&self.image);
        out
    }
}
