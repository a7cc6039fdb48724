//! Regions of `memfd_secret(2)` memory: where every byte an enclave computes with lives.
//!
//! The kernel removes secret memory from its direct map, so `/proc/PID/mem`, `ptrace(PEEKDATA)`
//! and `process_vm_readv` cannot read it, for root too; it is never swapped or dumped. A
//! [`SecretRegion`] is mapped read-write and shared, never executable (the kernel refuses
//! executable mappings of secret memory anyway), commits every page when it is created, and is
//! zeroized and unmapped when dropped.
//!
//! [`MemoryKind::Ordinary`] gives the same region in ordinary anonymous memory instead. It is for
//! DEBUG enclaves only, whose memory a debugger may read as SGX's DEBUG attribute allows.
//!
//! Secret memory is charged to `RLIMIT_MEMLOCK` (hard limit 8 MiB on Coffer's machines, where
//! root lacks `CAP_SYS_RESOURCE`); a process with `CAP_IPC_LOCK` is not limited. The platform
//! daemon gives each enclave process `CAP_IPC_LOCK` as its one ambient capability for this
//! ([`crate::process`]).
//!
//! This module must never map anything executable, and never hand out a region whose pages are
//! not committed.

use std::os::fd::OwnedFd;
use std::ptr::NonNull;

use rustix::io::Errno;
use thiserror::Error;

/// Which memory a region is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    /// `memfd_secret(2)` memory: unreadable from outside the process.
    Secret,
    /// Ordinary anonymous memory, readable by a debugger: DEBUG enclaves only.
    Ordinary,
}

impl MemoryKind {
    /// The kind for an enclave with or without the DEBUG attribute.
    pub fn for_debug(debug: bool) -> Self {
        if debug { Self::Ordinary } else { Self::Secret }
    }
}

impl std::fmt::Display for MemoryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Secret => "secret",
            Self::Ordinary => "ordinary",
        })
    }
}

/// Why a secret region could not be created.
#[derive(Debug, Error)]
pub enum SecretMemError {
    /// A region must hold at least one byte.
    #[error("a memory region must hold at least one byte")]
    Empty,
    /// The size does not fit the address space once rounded up to whole pages.
    #[error("a region of {len} bytes is too large to map")]
    TooLarge { len: usize },
    /// The kernel has no `memfd_secret(2)` (older than 5.14, or `secretmem.enable=0`).
    #[error(
        "memfd_secret(2) is not available on this kernel ({0}); enclave memory cannot be secret"
    )]
    Unavailable(Errno),
    /// `memfd_secret(2)` failed for another reason (file-descriptor limits, for one).
    #[error("memfd_secret(2) failed: {0}")]
    Create(Errno),
    /// Sizing the secret memory file failed.
    #[error("sizing the secret memory file to {len} bytes failed: {source}")]
    Resize { len: usize, source: Errno },
    /// Mapping the region failed; for secret memory usually the locked-memory limit.
    #[error(
        "mapping {len} bytes of {kind} memory failed: {source} (secret memory is charged to \
         RLIMIT_MEMLOCK, here soft {soft} and hard {hard}, unless the process has CAP_IPC_LOCK)"
    )]
    Map {
        len: usize,
        kind: MemoryKind,
        source: Errno,
        soft: Limit,
        hard: Limit,
    },
    /// Making the guard page inaccessible failed.
    #[error("protecting the guard page of a {kind} region failed: {0}", kind = .1)]
    Guard(Errno, MemoryKind),
}

/// A resource limit as the error message shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub Option<u64>);

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(bytes) => write!(f, "{bytes} bytes"),
            None => f.write_str("unlimited"),
        }
    }
}

/// A committed, read-write, non-executable region of secret (or, for DEBUG, ordinary) memory.
///
/// Dropping it overwrites every byte with zeros and unmaps it. It owns its mapping like a
/// `Box<[u8]>` owns its allocation.
#[derive(Debug)]
pub struct SecretRegion {
    /// Start of the whole mapping, guard page included.
    map: NonNull<u8>,
    /// Length of the whole mapping.
    map_len: usize,
    /// Offset of the usable bytes in the mapping: one page with a guard page, else zero.
    offset: usize,
    /// Number of usable bytes (a multiple of the page size).
    len: usize,
    kind: MemoryKind,
}

impl SecretRegion {
    /// Maps at least `len` bytes (rounded up to whole pages) of `kind` memory and commits every
    /// page, so that later accesses cannot fail for lack of memory.
    pub fn new(len: usize, kind: MemoryKind) -> Result<Self, SecretMemError> {
        Self::create(len, kind, false)
    }

    /// Like [`SecretRegion::new`], with one inaccessible guard page below the usable bytes, so that
    /// a stack growing down out of the region faults instead of overwriting other memory.
    pub fn with_guard_page(len: usize, kind: MemoryKind) -> Result<Self, SecretMemError> {
        Self::create(len, kind, true)
    }

    fn create(len: usize, kind: MemoryKind, guard: bool) -> Result<Self, SecretMemError> {
        if len == 0 {
            return Err(SecretMemError::Empty);
        }
        let page = rustix::param::page_size();
        let len = len
            .checked_next_multiple_of(page)
            .ok_or(SecretMemError::TooLarge { len })?;
        let offset = if guard { page } else { 0 };
        let map_len = len
            .checked_add(offset)
            .filter(|l| isize::try_from(*l).is_ok())
            .ok_or(SecretMemError::TooLarge { len })?;

        let map = match kind {
            MemoryKind::Secret => {
                let fd = open_secret_memory()?;
                rustix::fs::ftruncate(&fd, map_len as u64).map_err(|source| {
                    SecretMemError::Resize {
                        len: map_len,
                        source,
                    }
                })?;
                sys::map_shared(&fd, map_len)
                // `fd` closes here; the mapping keeps the memory alive.
            }
            MemoryKind::Ordinary => sys::map_anonymous(map_len),
        }
        .map_err(|source| map_error(map_len, kind, source))?;

        let region = Self {
            map,
            map_len,
            offset,
            len,
            kind,
        };
        if guard {
            sys::protect_guard(region.map, page).map_err(|e| SecretMemError::Guard(e, kind))?;
        }
        sys::commit(region.start(), len, page);
        Ok(region)
    }

    /// Number of usable bytes (a multiple of the page size).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: regions hold at least one page.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What memory the region is made of.
    pub fn kind(&self) -> MemoryKind {
        self.kind
    }

    /// Address of the first usable byte (page-aligned).
    pub fn as_ptr(&self) -> *mut u8 {
        self.start().as_ptr()
    }

    /// Whether `addr` lies within the usable bytes.
    pub fn contains(&self, addr: usize) -> bool {
        let start = self.start().as_ptr() as usize;
        addr >= start && addr - start < self.len
    }

    /// The usable bytes.
    pub fn as_slice(&self) -> &[u8] {
        sys::slice(self.start(), self.len)
    }

    /// The usable bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        sys::slice_mut(self.start(), self.len)
    }

    /// Gives the region up for the rest of the process's life (a global heap's arena, for one):
    /// it is then never zeroized nor unmapped.
    pub fn leak(self) -> &'static mut [u8] {
        let region = std::mem::ManuallyDrop::new(self);
        sys::slice_mut(region.start(), region.len)
    }

    fn start(&self) -> NonNull<u8> {
        // `offset` is within the mapping (0 or one page of `map_len = len + offset`).
        self.map.map_addr(|a| a.saturating_add(self.offset))
    }
}

impl Drop for SecretRegion {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(self.as_mut_slice());
        if let Err(e) = sys::unmap(self.map, self.map_len) {
            tracing::error!(len = self.map_len, error = %e, "unmapping a secret region failed");
        }
    }
}

/// Whether this kernel offers `memfd_secret(2)` (part of the platform's TCB status).
pub fn secret_memory_available() -> bool {
    open_secret_memory().is_ok()
}

fn open_secret_memory() -> Result<OwnedFd, SecretMemError> {
    sys::memfd_secret().map_err(|e| match e {
        Errno::NOSYS => SecretMemError::Unavailable(e),
        other => SecretMemError::Create(other),
    })
}

fn map_error(len: usize, kind: MemoryKind, source: Errno) -> SecretMemError {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Memlock);
    SecretMemError::Map {
        len,
        kind,
        source,
        soft: Limit(limit.current),
        hard: Limit(limit.maximum),
    }
}

/// The system calls and raw-pointer views behind [`SecretRegion`].
#[allow(unsafe_code)]
mod sys {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::ptr::NonNull;

    use rustix::io::Errno;
    use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};

    use super::SecretRegion;

    // SAFETY: a `SecretRegion` exclusively owns its mapping, like `Box<[u8]>` owns its
    // allocation; the raw pointer is only an address, with no thread affinity.
    unsafe impl Send for SecretRegion {}
    // SAFETY: shared access only hands out `&[u8]`, which is `Sync`; writing needs `&mut`.
    unsafe impl Sync for SecretRegion {}

    pub(super) fn memfd_secret() -> Result<OwnedFd, Errno> {
        // SAFETY: memfd_secret(2) takes one integer flag and touches no memory of ours; on
        // success it returns a new descriptor that nothing else owns.
        let ret = unsafe { libc::syscall(libc::SYS_memfd_secret, libc::O_CLOEXEC) };
        if ret < 0 {
            return Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO));
        }
        let fd = i32::try_from(ret).map_err(|_| Errno::BADF)?;
        // SAFETY: `fd` was just returned by the kernel as a new open descriptor owned by no one.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    pub(super) fn map_shared(fd: &OwnedFd, len: usize) -> Result<NonNull<u8>, Errno> {
        // SAFETY: a new mapping at an address the kernel chooses (no MAP_FIXED) cannot alias
        // any existing Rust object; the file was sized to `len` bytes beforehand.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )
        }?;
        NonNull::new(ptr.cast()).ok_or(Errno::FAULT)
    }

    pub(super) fn map_anonymous(len: usize) -> Result<NonNull<u8>, Errno> {
        // SAFETY: as in `map_shared`, a fresh mapping at a kernel-chosen address aliases nothing.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }?;
        NonNull::new(ptr.cast()).ok_or(Errno::FAULT)
    }

    pub(super) fn protect_guard(map: NonNull<u8>, page: usize) -> Result<(), Errno> {
        // SAFETY: the first page of a mapping this region owns and has not handed out; no
        // reference to it exists, so removing access cannot invalidate one.
        unsafe { rustix::mm::mprotect(map.as_ptr().cast(), page, MprotectFlags::empty()) }
    }

    /// Faults every page in by writing a zero to it (the pages are zero already).
    pub(super) fn commit(start: NonNull<u8>, len: usize, page: usize) {
        for offset in (0..len).step_by(page) {
            // SAFETY: `start + offset` is inside the usable, writable part of the mapping
            // (`offset < len`), and nothing else refers to it yet.
            unsafe { start.as_ptr().add(offset).write_volatile(0) };
        }
    }

    pub(super) fn slice<'a>(start: NonNull<u8>, len: usize) -> &'a [u8] {
        // SAFETY: `start..start+len` is mapped readable for as long as the region lives, and
        // the callers tie the lifetime to a borrow of the region (or leak it).
        unsafe { std::slice::from_raw_parts(start.as_ptr(), len) }
    }

    pub(super) fn slice_mut<'a>(start: NonNull<u8>, len: usize) -> &'a mut [u8] {
        // SAFETY: as in `slice`, and the callers hold the region mutably (or by value), so this
        // is the only reference to the bytes.
        unsafe { std::slice::from_raw_parts_mut(start.as_ptr(), len) }
    }

    pub(super) fn unmap(map: NonNull<u8>, len: usize) -> Result<(), Errno> {
        // SAFETY: called once, from `Drop`, on the whole mapping the region owns; no reference
        // to its bytes outlives the region.
        unsafe { rustix::mm::munmap(map.as_ptr().cast(), len) }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_secret_region_and_round_trips_bytes() {
        let mut region = SecretRegion::new(10_000, MemoryKind::Secret).unwrap();
        assert_eq!(region.len(), 12_288);
        assert_eq!(region.kind(), MemoryKind::Secret);
        assert!(region.as_slice().iter().all(|b| *b == 0));
        region.as_mut_slice()[..5].copy_from_slice(b"hello");
        assert_eq!(&region.as_slice()[..5], b"hello");
        assert!(region.contains(region.as_ptr() as usize));
        assert!(!region.contains(region.as_ptr() as usize + region.len()));
    }

    #[test]
    fn accepts_ordinary_region_for_debug() {
        let region = SecretRegion::new(1, MemoryKind::for_debug(true)).unwrap();
        assert_eq!(region.kind(), MemoryKind::Ordinary);
        assert_eq!(region.len(), rustix::param::page_size());
    }

    #[test]
    fn rejects_empty_and_oversized_regions() {
        assert!(matches!(
            SecretRegion::new(0, MemoryKind::Secret),
            Err(SecretMemError::Empty)
        ));
        assert!(matches!(
            SecretRegion::new(usize::MAX - 1, MemoryKind::Secret),
            Err(SecretMemError::TooLarge { .. })
        ));
    }

    #[test]
    fn secret_memory_is_available_here() {
        assert!(secret_memory_available(), "memfd_secret(2) is missing");
    }

    #[test]
    fn secret_region_is_not_readable_through_proc_self_mem() {
        use std::os::unix::fs::FileExt;
        let mut region = SecretRegion::new(4096, MemoryKind::Secret).unwrap();
        region.as_mut_slice()[0] = 0xAA;
        let mem = std::fs::File::open("/proc/self/mem").unwrap();
        let mut buf = [0u8; 16];
        assert!(mem.read_at(&mut buf, region.as_ptr() as u64).is_err());

        let mut ordinary = SecretRegion::new(4096, MemoryKind::Ordinary).unwrap();
        ordinary.as_mut_slice()[0] = 0xAA;
        mem.read_at(&mut buf, ordinary.as_ptr() as u64).unwrap();
        assert_eq!(buf[0], 0xAA);
    }
}
