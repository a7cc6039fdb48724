//! An enclave's global allocator, serving every allocation from one [`SecretRegion`].
//!
//! [`SecretHeap`] is meant for `#[global_allocator]` in an enclave binary. Until
//! [`SecretHeap::install`] gives it its arena (first thing in `main`, before lockdown), it
//! forwards to the system allocator, because Rust's runtime allocates before `main` runs. Once
//! installed, every new allocation comes from the arena, managed by the `talc` allocator under a
//! spin lock; an allocation that does not fit fails (out of memory) rather than falling back to
//! ordinary memory, and the arena never grows: no `mmap` is needed after lockdown.
//!
//! Blocks allocated before the arena was installed are never freed afterwards (freeing them
//! could make glibc's `free` call `brk`, `madvise` or `munmap`, which the sandbox forbids); a
//! block reallocated afterwards moves into the arena. They hold the runtime's start-up data,
//! never enclave secrets, which do not exist yet.
//!
//! This module must never return memory outside the arena once it is installed.

use std::sync::atomic::{AtomicUsize, Ordering};

use spinning_top::RawSpinlock;
use talc::TalcLock;
use talc::source::Manual;
use thiserror::Error;

use crate::secret_mem::{MemoryKind, SecretRegion};

/// Why an arena could not be installed.
#[derive(Debug, Error)]
pub enum HeapError {
    /// The heap already has its arena.
    #[error("the secret heap already has an arena")]
    AlreadyInstalled,
    /// The region is too small for the allocator's own bookkeeping.
    #[error("an arena of {len} bytes is too small; the allocator needs at least {min} bytes")]
    TooSmall { len: usize, min: usize },
}

/// A global allocator over one fixed arena of secret memory. See the module documentation.
pub struct SecretHeap {
    talc: TalcLock<RawSpinlock, Manual>,
    /// First byte of the arena; zero until installed.
    start: AtomicUsize,
    /// One past the last byte of the arena.
    end: AtomicUsize,
    /// 0 until installed, then 1 for secret memory or 2 for ordinary (DEBUG) memory.
    kind: AtomicUsize,
}

impl SecretHeap {
    /// A heap without an arena, forwarding to the system allocator until [`Self::install`].
    pub const fn new() -> Self {
        Self {
            talc: TalcLock::new(Manual),
            start: AtomicUsize::new(0),
            end: AtomicUsize::new(0),
            kind: AtomicUsize::new(0),
        }
    }

    /// Makes `region` the arena of every later allocation, for the rest of the process's life.
    pub fn install(&self, region: SecretRegion) -> Result<(), HeapError> {
        let min = talc::min_first_heap_size::<talc::DefaultBinning>();
        if region.len() < min {
            return Err(HeapError::TooSmall {
                len: region.len(),
                min,
            });
        }
        let mut talc = self.talc.lock();
        if self.start.load(Ordering::Acquire) != 0 {
            return Err(HeapError::AlreadyInstalled);
        }
        let kind = region.kind();
        let arena = region.leak();
        let (start, len) = (arena.as_mut_ptr(), arena.len());
        if !sys::claim(&mut talc, start, len) {
            // Unreachable with `len >= min`, but a lost arena beats a panic in an allocator.
            return Err(HeapError::TooSmall { len, min });
        }
        self.kind.store(
            match kind {
                MemoryKind::Secret => 1,
                MemoryKind::Ordinary => 2,
            },
            Ordering::Release,
        );
        self.end.store(start as usize + len, Ordering::Release);
        self.start.store(start as usize, Ordering::Release);
        Ok(())
    }

    /// The arena's address range and memory kind, once installed.
    pub fn arena(&self) -> Option<(std::ops::Range<usize>, MemoryKind)> {
        let start = self.start.load(Ordering::Acquire);
        if start == 0 {
            return None;
        }
        let kind = match self.kind.load(Ordering::Acquire) {
            1 => MemoryKind::Secret,
            _ => MemoryKind::Ordinary,
        };
        Some((start..self.end.load(Ordering::Acquire), kind))
    }

    fn installed(&self) -> bool {
        self.start.load(Ordering::Acquire) != 0
    }

    fn in_arena(&self, ptr: *mut u8) -> bool {
        let start = self.start.load(Ordering::Acquire);
        start != 0 && (start..self.end.load(Ordering::Acquire)).contains(&(ptr as usize))
    }
}

impl std::fmt::Debug for SecretHeap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretHeap")
            .field("arena", &self.arena())
            .finish_non_exhaustive()
    }
}

impl Default for SecretHeap {
    fn default() -> Self {
        Self::new()
    }
}

/// The `GlobalAlloc` glue and the arena hand-over to `talc`.
#[allow(unsafe_code)]
mod sys {
    use std::alloc::{GlobalAlloc, Layout, System};

    use spinning_top::RawSpinlock;
    use talc::lock_api::MutexGuard;
    use talc::source::Manual;

    use super::SecretHeap;

    type Talc = talc::base::Talc<Manual, talc::DefaultBinning>;

    pub(super) fn claim(
        talc: &mut MutexGuard<'_, RawSpinlock, Talc>,
        start: *mut u8,
        len: usize,
    ) -> bool {
        // SAFETY: `start..start+len` is a leaked, committed, read-write mapping that nothing
        // else refers to, and it stays mapped for the rest of the process's life.
        unsafe { talc.claim(start, len) }.is_some()
    }

    // SAFETY: every block is served by exactly one allocator and returned to the one that served
    // it: arena addresses go to `talc`, which owns the arena; other addresses were served by
    // `System` before installation and go back to it only while no arena is installed (later
    // they are leaked, which is sound). `talc` and `System` honour size and alignment.
    unsafe impl GlobalAlloc for SecretHeap {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if self.installed() {
                // SAFETY: the caller's contract (non-zero size) is passed on unchanged.
                unsafe { self.talc.alloc(layout) }
            } else {
                // SAFETY: as above.
                unsafe { System.alloc(layout) }
            }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            if self.in_arena(ptr) {
                // SAFETY: `ptr` is in the arena, so `talc` served it with this `layout`.
                unsafe { self.talc.dealloc(ptr, layout) }
            } else if !self.installed() {
                // SAFETY: no arena exists, so `System` served `ptr` with this `layout`.
                unsafe { System.dealloc(ptr, layout) }
            }
            // Otherwise a pre-arena block: leaked on purpose (see the module documentation).
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            if self.in_arena(ptr) {
                // SAFETY: `ptr` is in the arena, so `talc` served it with `layout`; the caller
                // guarantees `new_size` is valid for `layout.align()`.
                return unsafe { self.talc.realloc(ptr, layout, new_size) };
            }
            if !self.installed() {
                // SAFETY: no arena exists, so `System` served `ptr`; contract passed on.
                return unsafe { System.realloc(ptr, layout, new_size) };
            }
            // A pre-arena block grows into the arena; the old block is leaked.
            // SAFETY: the caller guarantees `new_size`, rounded up to `layout.align()`, does
            // not overflow `isize`, which is what `Layout` requires.
            let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
            // SAFETY: `new_size` is non-zero (caller's contract).
            let new = unsafe { self.talc.alloc(new_layout) };
            if !new.is_null() {
                // SAFETY: both blocks are valid for the smaller of the two sizes and distinct
                // (the new one is in the arena, the old one is not).
                unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            }
            new
        }
    }

    #[cfg(test)]
    #[allow(clippy::unwrap_used)]
    mod tests {
        use std::alloc::{GlobalAlloc, Layout};

        use crate::secret_heap::SecretHeap;
        use crate::secret_mem::{MemoryKind, SecretRegion};

        #[test]
        fn accepts_allocations_in_the_arena_once_installed() {
            let heap = SecretHeap::new();
            let layout = Layout::from_size_align(64, 16).unwrap();
            // SAFETY: non-zero size.
            let before = unsafe { heap.alloc(layout) };
            assert!(!before.is_null());
            assert!(!heap.in_arena(before));

            heap.install(SecretRegion::new(1 << 20, MemoryKind::Secret).unwrap())
                .unwrap();
            let (range, kind) = heap.arena().unwrap();
            assert_eq!(kind, MemoryKind::Secret);

            // SAFETY: non-zero size.
            let inside = unsafe { heap.alloc(layout) };
            assert!(range.contains(&(inside as usize)));
            assert_eq!(inside as usize % 16, 0);
            // SAFETY: `inside` is a live 64-byte block.
            unsafe { inside.write_bytes(7, 64) };

            // SAFETY: `before` is a live 64-byte block served before installation.
            unsafe { before.write_bytes(9, 64) };
            // SAFETY: `before` came from this heap with `layout`; it moves into the arena.
            let moved = unsafe { heap.realloc(before, layout, 128) };
            assert!(range.contains(&(moved as usize)));
            // SAFETY: `moved` holds at least the 64 copied bytes.
            assert_eq!(unsafe { *moved.add(63) }, 9);

            // SAFETY: both blocks came from this heap with these layouts.
            unsafe {
                heap.dealloc(inside, layout);
                heap.dealloc(moved, Layout::from_size_align(128, 16).unwrap());
            }
        }

        #[test]
        fn rejects_a_second_arena() {
            let heap = SecretHeap::new();
            heap.install(SecretRegion::new(1 << 16, MemoryKind::Ordinary).unwrap())
                .unwrap();
            assert!(matches!(
                heap.install(SecretRegion::new(1 << 16, MemoryKind::Ordinary).unwrap()),
                Err(super::super::HeapError::AlreadyInstalled)
            ));
        }

        #[test]
        fn rejects_allocations_larger_than_the_arena() {
            let heap = SecretHeap::new();
            heap.install(SecretRegion::new(1 << 16, MemoryKind::Secret).unwrap())
                .unwrap();
            let layout = Layout::from_size_align(1 << 20, 8).unwrap();
            // SAFETY: non-zero size.
            assert!(unsafe { heap.alloc(layout) }.is_null());
        }
    }
}
