//! [`SecretBytes`]: a byte buffer wiped at memset speed when dropped.
//!
//! `zeroize` wipes a slice with one volatile write per byte (about 300–500 µs for 1 MiB on the
//! reference machine) so that the compiler cannot drop the writes. Here the buffer is wiped
//! with `fill(0)`, which compiles to `memset`, and the compiler is then made to assume that the
//! zeroed bytes are read: the slice is passed to [`std::hint::black_box`], which the optimiser
//! must treat as an opaque use of the memory behind it, and a compiler fence keeps the stores
//! before whatever follows (the deallocation). A store that may be read is not a dead store, so
//! it is not elided. `docs/benchmarks.md` compares the wipe with a plain `memset` and with
//! `zeroize`.

use std::mem::MaybeUninit;
use std::sync::atomic::{Ordering, compiler_fence};

/// Overwrites `bytes` with zeros in a way the compiler keeps (see the module documentation).
pub fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(&mut *bytes);
    compiler_fence(Ordering::SeqCst);
}

/// Bytes that hold a secret (plaintext, keys): the whole allocation, spare capacity included,
/// is wiped when dropped.
///
/// It dereferences to a slice, never to the `Vec` underneath, so a caller cannot grow it and
/// leave an unwiped copy behind in a freed allocation.
#[derive(Default)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> Self {
        SecretBytes(vec![0; len])
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// The vector, for building the buffer inside this crate (within its reserved capacity).
    pub(crate) fn vec_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }

    /// Gives the bytes up as an ordinary vector, once they are no longer secret (encrypted). The
    /// allocation moves out; nothing is left behind to wipe.
    pub(crate) fn into_public(mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

impl std::ops::Deref for SecretBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::DerefMut for SecretBytes {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes(<{} bytes>)", self.0.len())
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        wipe(&mut self.0);
        let spare = self.0.spare_capacity_mut();
        spare.fill(MaybeUninit::new(0));
        std::hint::black_box(&mut *spare);
        compiler_fence(Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wipes_the_bytes() {
        let mut b = vec![0xa5u8; 4096];
        wipe(&mut b);
        assert!(b.iter().all(|x| *x == 0));
    }

    #[test]
    fn derefs_to_its_bytes_and_hides_them_in_debug() {
        let mut s = SecretBytes::zeroed(3);
        s.copy_from_slice(b"abc");
        assert_eq!(&*s, b"abc");
        assert_eq!(format!("{s:?}"), "SecretBytes(<3 bytes>)");
    }
}
