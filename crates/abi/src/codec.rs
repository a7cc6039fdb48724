//! The one codec every SGX structure goes through.
//!
//! `encode` appends the exact wire bytes; `read` takes a [`Reader`] and returns a typed
//! [`DecodeError`]. [`Codec::from_bytes`] rejects trailing data, so a structure parsed from a
//! buffer always accounts for every byte of it.

use thiserror::Error;

/// Why a byte string is not a valid structure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ends before the structure does.
    #[error(
        "{what}: truncated, needs {needed} more bytes at offset {offset} but only {available} remain"
    )]
    Truncated {
        what: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    /// Bytes remain after the structure ends.
    #[error("{what}: {count} trailing bytes after the end of the structure (at offset {offset})")]
    TrailingBytes {
        what: &'static str,
        offset: usize,
        count: usize,
    },
    /// A length field is larger than Coffer accepts.
    #[error("{what}: length {length} exceeds the limit of {limit} bytes")]
    TooLarge {
        what: &'static str,
        length: usize,
        limit: usize,
    },
    /// A field holds a value the structure does not allow.
    #[error("{what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    /// The input is larger than the structure's size cap, checked before parsing.
    #[error("{what}: input of {length} bytes exceeds the limit of {limit} bytes")]
    InputTooLarge {
        what: &'static str,
        length: usize,
        limit: usize,
    },
}

/// A cursor over untrusted bytes. Every read checks the remaining length first.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Offset of the next unread byte.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Number of unread bytes.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Takes the next `n` bytes, or fails naming `what` if fewer remain.
    pub fn take(&mut self, what: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated {
                what,
                offset: self.pos,
                needed: n,
                available: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.take(what, N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Takes every remaining byte.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    /// Fails if any byte is left unread.
    pub fn expect_end(&self, what: &'static str) -> Result<(), DecodeError> {
        if self.remaining() != 0 {
            return Err(DecodeError::TrailingBytes {
                what,
                offset: self.pos,
                count: self.remaining(),
            });
        }
        Ok(())
    }
}

/// A structure with an exact wire form.
pub trait Codec: Sized {
    /// Name used in error messages (the SDM's name where there is one).
    const NAME: &'static str;

    /// Appends the wire bytes of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// Reads one structure from the cursor, leaving the cursor after it.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Parses a whole buffer: one structure and nothing after it.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::read(&mut r)?;
        r.expect_end(Self::NAME)?;
        Ok(v)
    }

    /// The wire bytes of `self`.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// A structure whose wire form always has the same size.
pub trait FixedSize: Codec {
    /// Size in bytes, as the SDM states it.
    const SIZE: usize;
}

/// Writes `N` bytes of a fixed-size structure into an array.
pub fn to_array<T: FixedSize, const N: usize>(v: &T) -> [u8; N] {
    debug_assert_eq!(T::SIZE, N);
    let mut out = Vec::with_capacity(N);
    v.encode(&mut out);
    let mut a = [0u8; N];
    a.copy_from_slice(&out[..N]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_reads_past_the_end() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16("x").unwrap(), 0x0201);
        let err = r.u32("field").unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                what: "field",
                offset: 2,
                needed: 4,
                available: 1
            }
        );
        assert!(err.to_string().contains("truncated"));
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut r = Reader::new(&[1, 2, 3]);
        r.u8("x").unwrap();
        assert!(matches!(
            r.expect_end("thing"),
            Err(DecodeError::TrailingBytes { count: 2, .. })
        ));
    }
}
