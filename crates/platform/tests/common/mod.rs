//! Shared test support: a daemon on a temporary socket, signed bundles of tiny hand-made enclave
//! programs, and a client.
//!
//! The "fake enclaves" are static-pie ELF files of a few machine instructions. They do not link
//! the trusted runtime; they only speak the start-up protocol's last word (`Ready`) so the
//! daemon's launch, lifecycle and accounting can be tested on real processes.

#![allow(dead_code, clippy::cast_possible_truncation, clippy::unwrap_used)]

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use coffer_platform::LaunchPolicy;
use coffer_proto::client::{CreateOptions, PlatformError, PlatformStatus, Request, Response};
use coffer_sign::{Bundle, EnclaveConfig, SigningKey};
pub use coffer_testkit::{Daemon, MIB, vector_key};

/// A static-pie ELF that runs `code`.
pub fn elf(code: &[u8]) -> Vec<u8> {
    coffer_testkit::elf::runnable_elf(code)
}

/// Exits with status 3 at once.
pub const EXIT_3: &[u8] = &[
    0xbf, 0x03, 0x00, 0x00, 0x00, // mov edi, 3
    0xb8, 0x3c, 0x00, 0x00, 0x00, // mov eax, 60 (exit)
    0x0f, 0x05, // syscall
];

/// Never answers.
pub const SPIN: &[u8] = &[0xeb, 0xfe]; // jmp .

/// One step of a hand-made enclave program.
pub enum Step<'a> {
    /// `read(3, stack, 4096)`: take the daemon's next message (first of all `Boot`).
    Receive,
    /// `write(3, msg, len)`: send a postcard-encoded `EnclaveMessage`.
    Send(&'a [u8]),
    /// `write(4, stack, n)`: copy the last received message to the start of the channel memfd,
    /// where a test can read it.
    Forward,
}

/// Assembles `steps`, then `after`; messages are placed after the code.
pub fn program(steps: &[Step<'_>], after: &[u8]) -> Vec<u8> {
    let mut code = vec![0x48, 0x81, 0xec, 0x00, 0x10, 0x00, 0x00]; // sub rsp, 4096
    let mut fixups = Vec::new();
    for step in steps {
        match step {
            Step::Receive => code.extend_from_slice(&[
                0xbf, 0x03, 0x00, 0x00, 0x00, // mov edi, 3
                0x48, 0x89, 0xe6, // mov rsi, rsp
                0xba, 0x00, 0x10, 0x00, 0x00, // mov edx, 4096
                0x31, 0xc0, // xor eax, eax (read)
                0x0f, 0x05, // syscall
            ]),
            Step::Send(msg) => {
                code.extend_from_slice(&[0xbf, 0x03, 0x00, 0x00, 0x00]); // mov edi, 3
                fixups.push((code.len(), *msg));
                code.extend_from_slice(&[0x48, 0x8d, 0x35, 0, 0, 0, 0]); // lea rsi, [rip + msg]
                code.push(0xba); // mov edx, len
                code.extend_from_slice(&(msg.len() as u32).to_le_bytes());
                code.extend_from_slice(&[0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x05]); // write
            }
            Step::Forward => code.extend_from_slice(&[
                0x89, 0xc2, // mov edx, eax (the length read)
                0xbf, 0x04, 0x00, 0x00, 0x00, // mov edi, 4
                0x48, 0x89, 0xe6, // mov rsi, rsp
                0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x05, // write
            ]),
        }
    }
    code.extend_from_slice(after);
    for (at, msg) in fixups {
        let rel = (code.len() - (at + 7)) as u32;
        code[at + 3..at + 7].copy_from_slice(&rel.to_le_bytes());
        code.extend_from_slice(msg);
    }
    code
}

/// Reads `Boot`, sends `msg`, then runs `after`.
fn say_then(msg: &[u8], after: &[u8]) -> Vec<u8> {
    program(&[Step::Receive, Step::Send(msg)], after)
}

/// `pause()` forever.
pub const PAUSE_LOOP: &[u8] = &[0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7];
/// `kill(getpid(), SIGSYS)`, as a seccomp kill would end it.
const KILL_SIGSYS: &[u8] = &[
    0xb8, 0x27, 0x00, 0x00, 0x00, 0x0f, 0x05, // getpid
    0x89, 0xc7, // mov edi, eax
    0xbe, 0x1f, 0x00, 0x00, 0x00, // mov esi, 31
    0xb8, 0x3e, 0x00, 0x00, 0x00, 0x0f, 0x05, // kill
    0xeb, 0xfe, // jmp .
];

/// postcard of `EnclaveMessage::Ready { secret_memory: false }`.
pub const READY: &[u8] = &[0x00, 0x00];

/// Reports `Ready`, then waits to be killed.
pub fn ready_then_wait() -> Vec<u8> {
    say_then(READY, PAUSE_LOOP)
}

/// Reports `Ready`, then dies of SIGSYS.
pub fn ready_then_sigsys() -> Vec<u8> {
    say_then(READY, KILL_SIGSYS)
}

/// Reports `Failed { reason: "no" }` instead of `Ready`.
pub fn refuses() -> Vec<u8> {
    say_then(&[0x01, 0x02, b'n', b'o'], PAUSE_LOOP)
}

pub fn config(heap_size: u64, debug: bool) -> EnclaveConfig {
    EnclaveConfig {
        isv_prod_id: 7,
        isv_svn: 2,
        heap_size,
        stack_size: 64 * 1024,
        debug,
        max_call_size: 8192,
        ..coffer_testkit::enclave::config()
    }
}

pub fn bundle(key: &SigningKey, config: &EnclaveConfig, code: &[u8]) -> Bundle {
    coffer_testkit::enclave::sign(key, config, elf(code))
}

/// Writes `bytes` to a file in `dir`.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A daemon serving on a temporary socket until it is dropped.
pub fn start(vm_size: &str, policy: LaunchPolicy, ready_timeout: Duration) -> Daemon {
    Daemon::start(vm_size, policy, ready_timeout)
}

/// One client connection.
pub struct Client {
    pub sock: OwnedFd,
}

impl Client {
    pub fn connect(d: &Daemon) -> Client {
        Client::at(&d.socket)
    }

    /// A connection to the daemon on `socket`.
    pub fn at(socket: &Path) -> Client {
        Client {
            sock: coffer_proto::connect(socket).unwrap(),
        }
    }

    pub fn call(
        &self,
        req: &Request,
        fds: &[std::os::fd::BorrowedFd<'_>],
    ) -> (Response, Vec<OwnedFd>) {
        coffer_proto::send(self.sock.as_fd(), req, fds).unwrap();
        coffer_proto::recv(self.sock.as_fd()).unwrap()
    }

    /// Creates from bundle file `path`: the response and the channel descriptor, if any.
    pub fn create(&self, path: &Path) -> (Response, Option<OwnedFd>) {
        let file = std::fs::File::open(path).unwrap();
        let (resp, mut fds) =
            self.call(&Request::Create(CreateOptions::default()), &[file.as_fd()]);
        (resp, fds.pop())
    }

    pub fn create_err(&self, path: &Path) -> PlatformError {
        match self.create(path).0 {
            Response::Error(e) => e,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    pub fn status(&self) -> PlatformStatus {
        match self.call(&Request::Status, &[]).0 {
            Response::Status(s) => s,
            other => panic!("{other:?}"),
        }
    }

    pub fn destroy(&self, id: u64) -> Response {
        self.call(&Request::Destroy { id }, &[]).0
    }

    /// Polls the status until `check` holds (5 s at most).
    pub fn wait_for(&self, what: &str, check: impl Fn(&PlatformStatus) -> bool) -> PlatformStatus {
        let (timeout, interval) = (Duration::from_secs(5), Duration::from_millis(20));
        coffer_testkit::wait_until(what, timeout, interval, || {
            let s = self.status();
            if check(&s) { Ok(s) } else { Err(s) }
        })
    }
}
