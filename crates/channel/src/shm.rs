//! The shared mapping of the channel memfd. The only module of this crate with `unsafe` code.
//!
//! The memory is shared with a process Coffer does not trust (the host application, from the
//! enclave's side). It is therefore never turned into `&[u8]` or `&mut [u8]`: words that change
//! hands are atomics, and payloads are copied in and out with raw copies bounded by the mapping's
//! length.
#![allow(unsafe_code)]

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};

use rustix::fs::{MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};

/// Why the channel memory could not be created or mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShmError {
    #[error("memfd_create failed: {0}")]
    Create(rustix::io::Errno),
    #[error("sizing the channel memfd to {len} bytes failed: {source}")]
    Size {
        len: usize,
        source: rustix::io::Errno,
    },
    #[error("sealing the channel memfd failed: {0}")]
    Seal(rustix::io::Errno),
    #[error("the channel memfd is not sealed against shrinking and growing (seals {0:?})")]
    NotSealed(SealFlags),
    #[error("the channel memfd is {actual} bytes, {expected} expected")]
    WrongSize { expected: usize, actual: u64 },
    #[error("mapping the channel failed: {0}")]
    Map(rustix::io::Errno),
}

/// A read-write `MAP_SHARED` mapping of a memfd, unmapped on drop.
#[derive(Debug)]
pub struct SharedMapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory with no thread affinity; every access goes through
// atomics or bounded raw copies, which are sound from any thread.
unsafe impl Send for SharedMapping {}
// SAFETY: as above; `&SharedMapping` only hands out atomics and performs raw copies.
unsafe impl Sync for SharedMapping {}

impl SharedMapping {
    /// Creates a memfd of `len` bytes, seals its size (so no peer can shrink it under the other and
    /// make its accesses fault), and maps it.
    pub fn create(name: &str, len: usize) -> Result<(OwnedFd, Self), ShmError> {
        let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .map_err(ShmError::Create)?;
        rustix::fs::ftruncate(&fd, len as u64).map_err(|source| ShmError::Size { len, source })?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
            .map_err(ShmError::Seal)?;
        let map = Self::map(fd.as_fd(), len)?;
        Ok((fd, map))
    }

    /// Maps an existing channel memfd after checking that its size is sealed and equals `len`.
    pub fn map(fd: BorrowedFd<'_>, len: usize) -> Result<Self, ShmError> {
        let seals = rustix::fs::fcntl_get_seals(fd).map_err(ShmError::Seal)?;
        if !seals.contains(SealFlags::SHRINK | SealFlags::GROW) {
            return Err(ShmError::NotSealed(seals));
        }
        let st = rustix::fs::fstat(fd).map_err(ShmError::Map)?;
        if st.st_size < 0 || st.st_size as u64 != len as u64 {
            return Err(ShmError::WrongSize {
                expected: len,
                actual: st.st_size.max(0) as u64,
            });
        }
        // SAFETY: we ask the kernel for a fresh mapping at an address of its choosing (null hint),
        // so no existing Rust object is aliased; the length equals the sealed file size, so every
        // page of the mapping is backed and cannot become unbacked (SHRINK is sealed).
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )
        }
        .map_err(ShmError::Map)?;
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(ShmError::Map(rustix::io::Errno::FAULT))?;
        Ok(SharedMapping { ptr, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, off: usize, size: usize, align: usize) {
        assert!(
            off.checked_add(size).is_some_and(|end| end <= self.len) && off.is_multiple_of(align),
            "channel offset {off}+{size} outside the {} byte mapping (internal layout bug)",
            self.len
        );
    }

    /// The 32-bit word at `off`, which the layout places 4-byte aligned inside the mapping.
    pub fn u32_at(&self, off: usize) -> &AtomicU32 {
        self.check(off, 4, 4);
        // SAFETY: `check` proved that `off..off+4` lies inside the live mapping and is 4-aligned
        // (the mapping itself is page-aligned); AtomicU32 has the size and alignment of u32 and
        // any bit pattern is valid; the reference lives no longer than `self`, which keeps the
        // mapping alive. Other processes only ever access these words atomically too.
        unsafe { &*self.ptr.as_ptr().add(off).cast::<AtomicU32>() }
    }

    /// The 64-bit word at `off` (8-byte aligned).
    pub fn u64_at(&self, off: usize) -> &AtomicU64 {
        self.check(off, 8, 8);
        // SAFETY: as for `u32_at`, with 8 bytes and 8-byte alignment.
        unsafe { &*self.ptr.as_ptr().add(off).cast::<AtomicU64>() }
    }

    /// Copies `dst.len()` bytes starting at `off` out of the mapping.
    pub fn read(&self, off: usize, dst: &mut [u8]) {
        self.check(off, dst.len(), 1);
        // SAFETY: the source range is inside the mapping (checked); the destination is a
        // distinct, exclusively borrowed Rust buffer, so the ranges do not overlap. A peer may
        // write the source concurrently: the copy then yields some mix of old and new bytes,
        // which callers treat as untrusted input in any case.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), dst.as_mut_ptr(), dst.len())
        }
    }

    /// Copies `src` into the mapping at `off`.
    pub fn write(&self, off: usize, src: &[u8]) {
        self.check(off, src.len(), 1);
        // SAFETY: the destination range is inside the mapping (checked) and no Rust reference to
        // it exists; the source is a distinct Rust buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr().add(off), src.len())
        }
    }
}

impl Drop for SharedMapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe exactly the mapping made in `map`, and every reference
        // handed out borrows `self`, so none outlives this call.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
