//! The enclave's executable image in a sealed memfd, executed by descriptor.
//!
//! SGX guarantees that the code in an enclave is exactly the code that was measured. The soft
//! backend gets the same by copying the measured image into a memfd, sealing it with
//! `F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL` (so no one, the daemon included, can
//! change it again, nor remove the seals), and executing the enclave process from that memfd
//! with `execveat(fd, "", …, AT_EMPTY_PATH)`: there is no path on disk to swap the file under.
//!
//! The memfd's mode is `--x--x--x`: the enclave's uid may execute it but not read it, so the
//! kernel starts the enclave process non-dumpable (`suid_dumpable`, 0 here) from its first
//! instruction, before the enclave runtime gets to `PR_SET_DUMPABLE` itself.
//!
//! This module must never hand out an image whose seals it has not verified.

use std::ffi::{CStr, CString};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{MemfdFlags, Mode, SealFlags};
use rustix::io::Errno;
use thiserror::Error;

/// The seals every image carries.
pub const REQUIRED_SEALS: SealFlags = SealFlags::WRITE
    .union(SealFlags::GROW)
    .union(SealFlags::SHRINK)
    .union(SealFlags::SEAL);

/// Caps an image at 1 GiB, so a huge bundle cannot make the daemon fill memory with memfds.
pub const MAX_IMAGE_LEN: usize = 1 << 30;

/// Why an image could not be sealed, verified or executed.
#[derive(Debug, Error)]
pub enum SealedImageError {
    /// The image is empty.
    #[error("the executable image is empty")]
    Empty,
    /// The image is larger than [`MAX_IMAGE_LEN`].
    #[error("the executable image has {len} bytes, more than the limit of {MAX_IMAGE_LEN}")]
    TooLarge { len: usize },
    /// The memfd name holds a NUL byte.
    #[error("the image name {0:?} contains a NUL byte")]
    BadName(String),
    /// `memfd_create(2)` failed.
    #[error("memfd_create(2) failed: {0}")]
    Create(Errno),
    /// Copying the image into the memfd failed.
    #[error("writing the image into its memfd failed: {0}")]
    Write(std::io::Error),
    /// Making the memfd execute-only failed.
    #[error("setting the image's mode to execute-only failed: {0}")]
    Mode(Errno),
    /// Adding the seals failed.
    #[error("sealing the image failed: {0}")]
    Seal(Errno),
    /// Reading the seals or the size back failed.
    #[error("reading the image's seals back failed: {0}")]
    Inspect(Errno),
    /// The memfd lacks one of [`REQUIRED_SEALS`].
    #[error("the image is missing seals: it has {found:?}, it needs {REQUIRED_SEALS:?}")]
    MissingSeals { found: SealFlags },
    /// The memfd's size is not the image's.
    #[error("the sealed image has {found} bytes, the image has {expected}")]
    SizeMismatch { expected: u64, found: u64 },
    /// An argument or environment string holds a NUL byte.
    #[error("argument or environment string {0:?} contains a NUL byte")]
    BadString(String),
    /// `execveat(2)` failed.
    #[error("executing the sealed image failed: {0}")]
    Exec(Errno),
}

/// An executable image in a sealed memfd. See the module documentation.
#[derive(Debug)]
pub struct SealedImage {
    fd: OwnedFd,
    len: u64,
}

impl SealedImage {
    /// Copies `image` into a new memfd named `name` (shown in `/proc/PID/exe` as
    /// `/memfd:NAME`), makes it execute-only, seals it and verifies the seals.
    pub fn new(name: &str, image: &[u8]) -> Result<Self, SealedImageError> {
        if image.is_empty() {
            return Err(SealedImageError::Empty);
        }
        if image.len() > MAX_IMAGE_LEN {
            return Err(SealedImageError::TooLarge { len: image.len() });
        }
        let cname = CString::new(name).map_err(|_| SealedImageError::BadName(name.to_owned()))?;
        let fd = create_memfd(&cname)?;
        let mut file = std::fs::File::from(fd);
        file.write_all(image).map_err(SealedImageError::Write)?;
        let fd = OwnedFd::from(file);
        rustix::fs::fchmod(&fd, Mode::XUSR | Mode::XGRP | Mode::XOTH)
            .map_err(SealedImageError::Mode)?;
        rustix::fs::fcntl_add_seals(&fd, REQUIRED_SEALS).map_err(SealedImageError::Seal)?;
        let sealed = Self {
            fd,
            len: image.len() as u64,
        };
        sealed.verify()?;
        Ok(sealed)
    }

    /// Checks that the memfd still carries every required seal and has the image's size.
    pub fn verify(&self) -> Result<(), SealedImageError> {
        let found = rustix::fs::fcntl_get_seals(&self.fd).map_err(SealedImageError::Inspect)?;
        if !found.contains(REQUIRED_SEALS) {
            return Err(SealedImageError::MissingSeals { found });
        }
        let size = rustix::fs::fstat(&self.fd)
            .map_err(SealedImageError::Inspect)?
            .st_size;
        let size = u64::try_from(size).unwrap_or(0);
        if size != self.len {
            return Err(SealedImageError::SizeMismatch {
                expected: self.len,
                found: size,
            });
        }
        Ok(())
    }

    /// The image's size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Always false: empty images are refused.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Replaces the calling process with the image (`execveat(fd, "", argv, envp,
    /// AT_EMPTY_PATH)`); returns only on failure. The platform daemon uses
    /// [`crate::process::spawn_enclave_process`] instead, which does this in a child.
    pub fn exec(&self, argv: &[&str], envp: &[&str]) -> SealedImageError {
        let argv = match c_strings(argv) {
            Ok(v) => v,
            Err(e) => return e,
        };
        let envp = match c_strings(envp) {
            Ok(v) => v,
            Err(e) => return e,
        };
        let argv_ptrs = NullTerminated::new(&argv);
        let envp_ptrs = NullTerminated::new(&envp);
        SealedImageError::Exec(sys::execveat(
            self.fd.as_fd(),
            argv_ptrs.as_ptr(),
            envp_ptrs.as_ptr(),
        ))
    }
}

impl AsFd for SealedImage {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn create_memfd(name: &CStr) -> Result<OwnedFd, SealedImageError> {
    let flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3) keeps the image executable where `vm.memfd_noexec` would otherwise
    // seal it non-executable; older kernels reject the flag, and do not need it.
    match rustix::fs::memfd_create(name, flags | MemfdFlags::EXEC) {
        Err(Errno::INVAL) => rustix::fs::memfd_create(name, flags),
        other => other,
    }
    .map_err(SealedImageError::Create)
}

pub(crate) fn c_strings(strings: &[&str]) -> Result<Vec<CString>, SealedImageError> {
    strings
        .iter()
        .map(|s| CString::new(*s).map_err(|_| SealedImageError::BadString((*s).to_owned())))
        .collect()
}

/// A NULL-terminated array of pointers into C strings that it borrows, as `execve` wants.
#[derive(Debug)]
pub(crate) struct NullTerminated<'a> {
    ptrs: Vec<*const libc::c_char>,
    _strings: std::marker::PhantomData<&'a CStr>,
}

impl<'a> NullTerminated<'a> {
    pub(crate) fn new(strings: &'a [CString]) -> Self {
        let mut ptrs: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Self {
            ptrs,
            _strings: std::marker::PhantomData,
        }
    }

    pub(crate) fn as_ptr(&self) -> *const *const libc::c_char {
        self.ptrs.as_ptr()
    }
}

/// `execveat(2)` by descriptor.
#[allow(unsafe_code)]
pub(crate) mod sys {
    use std::os::fd::{AsRawFd, BorrowedFd};

    use rustix::io::Errno;

    use super::NullTerminated;

    // SAFETY: the pointers only refer to the borrowed C strings, which are immutable and
    // `Sync`; sending the array to another thread (a forked child's closure) is like sending
    // `&[&CStr]`.
    unsafe impl Send for NullTerminated<'_> {}
    // SAFETY: as above; the array is never written after construction.
    unsafe impl Sync for NullTerminated<'_> {}

    /// Executes the file behind `fd`. Async-signal-safe: one system call, no allocation.
    /// Returns only on failure.
    pub(crate) fn execveat(
        fd: BorrowedFd<'_>,
        argv: *const *const libc::c_char,
        envp: *const *const libc::c_char,
    ) -> Errno {
        // SAFETY: `argv` and `envp` come from `NullTerminated::as_ptr`, NULL-terminated arrays of
        // pointers to NUL-terminated strings that outlive this call; the path is the empty C
        // string that AT_EMPTY_PATH requires. On success the call does not return.
        unsafe {
            libc::execveat(
                fd.as_raw_fd(),
                c"".as_ptr(),
                argv.cast(),
                envp.cast(),
                libc::AT_EMPTY_PATH,
            )
        };
        Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn image() -> SealedImage {
        SealedImage::new("coffer-test", b"\x7fELF not really an executable").unwrap()
    }

    #[test]
    fn accepts_an_image_and_seals_it() {
        let image = image();
        image.verify().unwrap();
        assert_eq!(image.len(), 29);
        let seals = rustix::fs::fcntl_get_seals(&image).unwrap();
        assert!(seals.contains(REQUIRED_SEALS), "{seals:?}");
        let mode = rustix::fs::fstat(&image).unwrap().st_mode & 0o777;
        assert_eq!(mode, 0o111);
    }

    #[test]
    fn rejects_write_after_sealing() {
        let image = image();
        assert_eq!(rustix::io::write(&image, b"x"), Err(Errno::PERM));
        assert_eq!(rustix::io::pwrite(&image, b"x", 0), Err(Errno::PERM));
    }

    #[test]
    fn rejects_resizing_after_sealing() {
        let image = image();
        assert_eq!(rustix::fs::ftruncate(&image, 0), Err(Errno::PERM));
        assert_eq!(rustix::fs::ftruncate(&image, 1 << 20), Err(Errno::PERM));
        image.verify().unwrap();
    }

    #[test]
    fn rejects_removing_or_adding_seals() {
        let image = image();
        assert_eq!(
            rustix::fs::fcntl_add_seals(&image, SealFlags::FUTURE_WRITE),
            Err(Errno::PERM)
        );
    }

    #[test]
    fn rejects_writable_shared_mapping_after_sealing() {
        let image = image();
        assert_eq!(sys_test::map_shared_writable(&image), Err(Errno::PERM));
        // A read-only shared mapping is still allowed: the image stays readable.
        sys_test::map_shared_read_only(&image).unwrap();
    }

    #[test]
    fn rejects_empty_and_misnamed_images() {
        assert!(matches!(
            SealedImage::new("x", b""),
            Err(SealedImageError::Empty)
        ));
        assert!(matches!(
            SealedImage::new("a\0b", b"x"),
            Err(SealedImageError::BadName(_))
        ));
    }

    /// Mappings for the seal tests.
    #[allow(unsafe_code)]
    mod sys_test {
        use std::os::fd::AsFd;

        use rustix::io::Errno;
        use rustix::mm::{MapFlags, ProtFlags};

        pub(super) fn map_shared_writable(fd: impl AsFd) -> Result<(), Errno> {
            // SAFETY: a fresh mapping at a kernel-chosen address; unmapped before returning.
            let ptr = unsafe {
                rustix::mm::mmap(
                    std::ptr::null_mut(),
                    4096,
                    ProtFlags::READ | ProtFlags::WRITE,
                    MapFlags::SHARED,
                    fd,
                    0,
                )
            }?;
            // SAFETY: the mapping made just above, referenced by nothing.
            unsafe { rustix::mm::munmap(ptr, 4096) }
        }

        pub(super) fn map_shared_read_only(fd: impl AsFd) -> Result<(), Errno> {
            // SAFETY: as above.
            let ptr = unsafe {
                rustix::mm::mmap(
                    std::ptr::null_mut(),
                    4096,
                    ProtFlags::READ,
                    MapFlags::SHARED,
                    fd,
                    0,
                )
            }?;
            // SAFETY: as above.
            unsafe { rustix::mm::munmap(ptr, 4096) }
        }
    }
}
