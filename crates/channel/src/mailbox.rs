//! The key mailbox: EGETKEY through one page of memory the enclave shares with the platform
//! daemon, instead of a request and a reply on the daemon socket.
//!
//! On SGX, EGETKEY is one instruction; on the soft backend the daemon derives the key (the
//! enclave never holds the platform's root key), and a socket round trip with two 256 KiB frame
//! buffers costs some 100 µs. The mailbox takes that to a few microseconds: the enclave writes
//! its KEYREQUEST into the page and rings a futex doorbell, a daemon thread that serves this
//! enclave alone reads the request, derives the key with the same code as the socket path, and
//! writes the answer back. Each side polls for a while before it sleeps on the futex, so calls
//! in a row need no wake-up.
//!
//! ```text
//! 0     request sequence (the enclave's doorbell; the daemon sleeps on it)
//! 4     answer sequence (the daemon's doorbell: the request sequence it answered)
//! 8     the daemon sleeps (1) or polls (0)
//! 12    the enclave sleeps (1) or polls (0)
//! 16    closed: the daemon stopped serving (1)
//! 64    the request: a KEYREQUEST (512 bytes)
//! 576   the answer (64 bytes, [`KeyAnswer`])
//! ```
//!
//! The page is an ordinary memfd (a futex on `memfd_secret` memory fails), created by the
//! enclave before lockdown and handed to the daemon over the enclave's socket; only those two
//! processes map it (the host never sees it). A derived key is written into it by the daemon and
//! wiped by the enclave as soon as it has copied it into its heap.
//!
//! Neither side trusts the other's bytes more than a socket message: the daemon copies the
//! request out before it parses it (strictly, as the socket path does), never waits on the
//! enclave without a timeout and checks after each whether it should stop; the enclave checks
//! the answer's layout and gives up on a daemon whose socket has closed.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rustix::thread::futex;

use crate::shm::{SharedMapping, ShmError};

/// The mailbox's size: one page.
pub const MAILBOX_SIZE: usize = 4096;
/// The request's size (a KEYREQUEST).
pub const REQUEST_SIZE: usize = 512;
/// The answer's size.
pub const ANSWER_SIZE: usize = 64;

mod off {
    pub const REQUEST_SEQ: usize = 0;
    pub const ANSWER_SEQ: usize = 4;
    pub const DAEMON_SLEEPS: usize = 8;
    pub const ENCLAVE_SLEEPS: usize = 12;
    pub const CLOSED: usize = 16;
    pub const REQUEST: usize = 64;
    pub const ANSWER: usize = REQUEST + super::REQUEST_SIZE;
}

/// How long the enclave polls for an answer before it sleeps, and the daemon for the next
/// request after an answer. A derivation takes about a microsecond; polling a little longer
/// than a call keeps back-to-back calls free of wake-ups without burning a core when idle.
pub const POLL: Duration = Duration::from_micros(50);
/// How long one futex sleep lasts before the sleeper looks around (the daemon: whether to
/// stop; the enclave: whether the daemon is still there).
pub const NAP: Duration = Duration::from_millis(100);
/// How long the enclave waits for an answer from a daemon that is still connected.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a mailbox call did not give an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    /// The daemon stopped serving the mailbox, or its socket closed.
    #[error("the platform daemon no longer serves the key mailbox")]
    Closed,
    /// The daemon is connected but did not answer in time.
    #[error("the platform daemon did not answer in the key mailbox within {0:?}")]
    Timeout(Duration),
    /// The answer is not one [`KeyAnswer`] has.
    #[error("the key mailbox's answer is malformed: kind {kind}")]
    MalformedAnswer { kind: u32 },
}

/// The daemon's answer to a KEYREQUEST: the key, or why EGETKEY refused (the SDM's reasons, as
/// `coffer_cpu::EgetkeyError` has them).
#[derive(Clone, PartialEq, Eq)]
pub enum KeyAnswer {
    Key([u8; 16]),
    InvalidIsvsvn {
        requested: u16,
        current: u16,
    },
    InvalidCpusvn {
        requested: [u8; 16],
        current: [u8; 16],
    },
    NotAllowed {
        keyname: u16,
    },
    InvalidKeyname {
        keyname: u16,
    },
    InvalidKeypolicy {
        keypolicy: u16,
    },
    /// The request is not a KEYREQUEST (reserved bytes set, for one).
    MalformedRequest,
}

impl Drop for KeyAnswer {
    /// A key is wiped with its answer.
    fn drop(&mut self) {
        if let KeyAnswer::Key(key) = self {
            key.fill(0);
            std::hint::black_box(key);
        }
    }
}

impl std::fmt::Debug for KeyAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyAnswer::Key(_) => f.write_str("Key(<secret>)"),
            KeyAnswer::InvalidIsvsvn { requested, current } => f
                .debug_struct("InvalidIsvsvn")
                .field("requested", requested)
                .field("current", current)
                .finish(),
            KeyAnswer::InvalidCpusvn { requested, current } => f
                .debug_struct("InvalidCpusvn")
                .field("requested", requested)
                .field("current", current)
                .finish(),
            KeyAnswer::NotAllowed { keyname } => write!(f, "NotAllowed({keyname})"),
            KeyAnswer::InvalidKeyname { keyname } => write!(f, "InvalidKeyname({keyname})"),
            KeyAnswer::InvalidKeypolicy { keypolicy } => {
                write!(f, "InvalidKeypolicy({keypolicy:#x})")
            }
            KeyAnswer::MalformedRequest => f.write_str("MalformedRequest"),
        }
    }
}

mod kind {
    pub const KEY: u32 = 1;
    pub const INVALID_ISVSVN: u32 = 2;
    pub const INVALID_CPUSVN: u32 = 3;
    pub const NOT_ALLOWED: u32 = 4;
    pub const INVALID_KEYNAME: u32 = 5;
    pub const INVALID_KEYPOLICY: u32 = 6;
    pub const MALFORMED_REQUEST: u32 = 7;
}

fn u16_at(b: &[u8; ANSWER_SIZE], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn array16(b: &[u8; ANSWER_SIZE], at: usize) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&b[at..at + 16]);
    out
}

impl KeyAnswer {
    /// The answer's 64 bytes: a kind word, then the kind's fields, zero after them.
    pub fn encode(&self) -> [u8; ANSWER_SIZE] {
        let mut b = [0u8; ANSWER_SIZE];
        let k = match self {
            KeyAnswer::Key(key) => {
                b[4..20].copy_from_slice(key);
                kind::KEY
            }
            KeyAnswer::InvalidIsvsvn { requested, current } => {
                b[4..6].copy_from_slice(&requested.to_le_bytes());
                b[6..8].copy_from_slice(&current.to_le_bytes());
                kind::INVALID_ISVSVN
            }
            KeyAnswer::InvalidCpusvn { requested, current } => {
                b[4..20].copy_from_slice(requested);
                b[20..36].copy_from_slice(current);
                kind::INVALID_CPUSVN
            }
            KeyAnswer::NotAllowed { keyname } => {
                b[4..6].copy_from_slice(&keyname.to_le_bytes());
                kind::NOT_ALLOWED
            }
            KeyAnswer::InvalidKeyname { keyname } => {
                b[4..6].copy_from_slice(&keyname.to_le_bytes());
                kind::INVALID_KEYNAME
            }
            KeyAnswer::InvalidKeypolicy { keypolicy } => {
                b[4..6].copy_from_slice(&keypolicy.to_le_bytes());
                kind::INVALID_KEYPOLICY
            }
            KeyAnswer::MalformedRequest => kind::MALFORMED_REQUEST,
        };
        b[..4].copy_from_slice(&k.to_le_bytes());
        b
    }

    /// Decodes an answer; an unknown kind, or a byte set past the kind's fields, is refused.
    pub fn decode(b: &[u8; ANSWER_SIZE]) -> Result<KeyAnswer, MailboxError> {
        let k = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let (answer, used) = match k {
            kind::KEY => (KeyAnswer::Key(array16(b, 4)), 20),
            kind::INVALID_ISVSVN => (
                KeyAnswer::InvalidIsvsvn {
                    requested: u16_at(b, 4),
                    current: u16_at(b, 6),
                },
                8,
            ),
            kind::INVALID_CPUSVN => (
                KeyAnswer::InvalidCpusvn {
                    requested: array16(b, 4),
                    current: array16(b, 20),
                },
                36,
            ),
            kind::NOT_ALLOWED => (
                KeyAnswer::NotAllowed {
                    keyname: u16_at(b, 4),
                },
                6,
            ),
            kind::INVALID_KEYNAME => (
                KeyAnswer::InvalidKeyname {
                    keyname: u16_at(b, 4),
                },
                6,
            ),
            kind::INVALID_KEYPOLICY => (
                KeyAnswer::InvalidKeypolicy {
                    keypolicy: u16_at(b, 4),
                },
                6,
            ),
            kind::MALFORMED_REQUEST => (KeyAnswer::MalformedRequest, 4),
            _ => return Err(MailboxError::MalformedAnswer { kind: k }),
        };
        if b[used..].iter().any(|x| *x != 0) {
            return Err(MailboxError::MalformedAnswer { kind: k });
        }
        Ok(answer)
    }
}

/// The shared page.
#[derive(Debug)]
pub struct Mailbox {
    map: SharedMapping,
}

impl Mailbox {
    /// Creates the page (the enclave, before lockdown): a memfd sealed against resizing.
    pub fn create() -> Result<(OwnedFd, Mailbox), ShmError> {
        let (fd, map) = SharedMapping::create("coffer-key-mailbox", MAILBOX_SIZE)?;
        Ok((fd, Mailbox { map }))
    }

    /// Maps a page the enclave sent (the daemon): it must be sealed against resizing and exactly
    /// one page, so that the enclave cannot make the daemon's accesses fault.
    pub fn open(fd: BorrowedFd<'_>) -> Result<Mailbox, ShmError> {
        Ok(Mailbox {
            map: SharedMapping::map(fd, MAILBOX_SIZE)?,
        })
    }

    fn word(&self, at: usize) -> &AtomicU32 {
        self.map.u32_at(at)
    }
}

/// Sleeps on `word` while it holds `value`, for at most `timeout`.
fn nap(word: &AtomicU32, value: u32, timeout: Duration) {
    let ts = futex::Timespec {
        tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    // EAGAIN (the word changed), EINTR and ETIMEDOUT all mean: look again.
    let _ = futex::wait(word, futex::Flags::empty(), value, Some(&ts));
}

fn wake(word: &AtomicU32) {
    let _ = futex::wake(word, futex::Flags::empty(), 1);
}

/// The enclave's side: one call at a time (the workers share it).
#[derive(Debug)]
pub struct MailboxClient {
    mailbox: Mailbox,
    /// The last request sequence, held for the length of a call.
    seq: Mutex<u32>,
}

impl MailboxClient {
    pub fn new(mailbox: Mailbox) -> Self {
        MailboxClient {
            mailbox,
            seq: Mutex::new(0),
        }
    }

    /// Sends `request` and writes the answer into `answer`; `connected` tells, when a wait
    /// drags on, whether the daemon is still there. The answer is wiped from the shared page
    /// once copied.
    pub fn call(
        &self,
        request: &[u8; REQUEST_SIZE],
        answer: &mut [u8; ANSWER_SIZE],
        connected: &dyn Fn() -> bool,
    ) -> Result<(), MailboxError> {
        // A panic aborts the enclave, so the lock is never poisoned; take it even if it were.
        let mut seq = self.seq.lock().unwrap_or_else(|p| p.into_inner());
        let mb = &self.mailbox;
        if mb.word(off::CLOSED).load(Ordering::SeqCst) != 0 {
            return Err(MailboxError::Closed);
        }
        *seq = seq.wrapping_add(1);
        let me = *seq;
        mb.map.write(off::REQUEST, request);
        mb.word(off::REQUEST_SEQ).store(me, Ordering::SeqCst);
        if mb.word(off::DAEMON_SLEEPS).load(Ordering::SeqCst) != 0 {
            wake(mb.word(off::REQUEST_SEQ));
        }
        let answered = mb.word(off::ANSWER_SEQ);
        let start = Instant::now();
        let mut last_check = start;
        loop {
            let now = answered.load(Ordering::SeqCst);
            if now == me {
                break;
            }
            if mb.word(off::CLOSED).load(Ordering::SeqCst) != 0 {
                return Err(MailboxError::Closed);
            }
            if start.elapsed() < POLL {
                std::hint::spin_loop();
                continue;
            }
            if last_check.elapsed() >= NAP {
                if !connected() {
                    return Err(MailboxError::Closed);
                }
                if start.elapsed() >= ANSWER_TIMEOUT {
                    return Err(MailboxError::Timeout(ANSWER_TIMEOUT));
                }
                last_check = Instant::now();
            }
            mb.word(off::ENCLAVE_SLEEPS).store(1, Ordering::SeqCst);
            if answered.load(Ordering::SeqCst) == now {
                nap(answered, now, NAP);
            }
            mb.word(off::ENCLAVE_SLEEPS).store(0, Ordering::SeqCst);
        }
        mb.map.read(off::ANSWER, answer);
        mb.map.write(off::ANSWER, &[0; ANSWER_SIZE]);
        Ok(())
    }
}

/// The daemon's side: serves one enclave's mailbox until told to stop.
#[derive(Debug)]
pub struct MailboxServer {
    mailbox: Mailbox,
}

impl MailboxServer {
    pub fn new(mailbox: Mailbox) -> Self {
        MailboxServer { mailbox }
    }

    /// Answers each request with `answer` until `stop` is set (checked at least every
    /// [`NAP`]); then marks the mailbox closed and wakes the enclave. Whatever the enclave
    /// writes into the page, this only ever copies 512 bytes out and 64 in.
    pub fn serve(
        &self,
        stop: &AtomicBool,
        mut answer: impl FnMut(&[u8; REQUEST_SIZE]) -> KeyAnswer,
    ) {
        let mb = &self.mailbox;
        let requests = mb.word(off::REQUEST_SEQ);
        // Pending is whatever has not been answered, also a request made before this thread
        // started (starting from the request counter would take that one as served).
        let mut served = mb.word(off::ANSWER_SEQ).load(Ordering::SeqCst);
        let mut busy_until = Instant::now();
        let mut request = [0u8; REQUEST_SIZE];
        while !stop.load(Ordering::SeqCst) {
            let seq = requests.load(Ordering::SeqCst);
            if seq != served {
                mb.map.read(off::REQUEST, &mut request);
                let mut out = answer(&request).encode();
                mb.map.write(off::ANSWER, &out);
                out.fill(0);
                std::hint::black_box(&mut out);
                mb.word(off::ANSWER_SEQ).store(seq, Ordering::SeqCst);
                if mb.word(off::ENCLAVE_SLEEPS).load(Ordering::SeqCst) != 0 {
                    wake(mb.word(off::ANSWER_SEQ));
                }
                served = seq;
                busy_until = Instant::now() + POLL;
                continue;
            }
            if Instant::now() < busy_until {
                std::hint::spin_loop();
                continue;
            }
            mb.word(off::DAEMON_SLEEPS).store(1, Ordering::SeqCst);
            if requests.load(Ordering::SeqCst) == served {
                nap(requests, served, NAP);
            }
            mb.word(off::DAEMON_SLEEPS).store(0, Ordering::SeqCst);
        }
        mb.word(off::CLOSED).store(1, Ordering::SeqCst);
        let _ = futex::wake(mb.word(off::ANSWER_SEQ), futex::Flags::empty(), u32::MAX);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::fd::AsFd;
    use std::sync::Arc;

    use super::*;

    fn pair() -> (MailboxClient, MailboxServer) {
        let (fd, mb) = Mailbox::create().unwrap();
        let daemon = Mailbox::open(fd.as_fd()).unwrap();
        (MailboxClient::new(mb), MailboxServer::new(daemon))
    }

    #[test]
    fn answers_each_request_in_turn() {
        let (client, server) = pair();
        let stop = Arc::new(AtomicBool::new(false));
        std::thread::scope(|s| {
            let stop2 = Arc::clone(&stop);
            s.spawn(move || {
                server.serve(&stop2, |req| KeyAnswer::Key([req[0]; 16]));
            });
            for i in 0..200u8 {
                let mut answer = [0u8; ANSWER_SIZE];
                client
                    .call(&[i; REQUEST_SIZE], &mut answer, &|| true)
                    .unwrap();
                assert_eq!(KeyAnswer::decode(&answer).unwrap(), KeyAnswer::Key([i; 16]));
                if i % 50 == 0 {
                    // Let the daemon fall asleep: the doorbell must wake it.
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            stop.store(true, Ordering::SeqCst);
        });
        let mut answer = [0u8; ANSWER_SIZE];
        assert_eq!(
            client.call(&[0; REQUEST_SIZE], &mut answer, &|| true),
            Err(MailboxError::Closed)
        );
    }

    #[test]
    fn gives_up_when_the_daemon_is_gone() {
        let (client, _server) = pair();
        let mut answer = [0u8; ANSWER_SIZE];
        assert_eq!(
            client.call(&[0; REQUEST_SIZE], &mut answer, &|| false),
            Err(MailboxError::Closed)
        );
    }

    #[test]
    fn refuses_a_map_of_another_size() {
        let (fd, _) = SharedMapping::create("other", 8192).unwrap();
        assert!(matches!(
            Mailbox::open(fd.as_fd()),
            Err(ShmError::WrongSize { .. })
        ));
    }

    #[test]
    fn answers_round_trip_and_unknown_or_padded_ones_are_refused() {
        let all = [
            KeyAnswer::Key([7; 16]),
            KeyAnswer::InvalidIsvsvn {
                requested: 3,
                current: 2,
            },
            KeyAnswer::InvalidCpusvn {
                requested: [2; 16],
                current: [1; 16],
            },
            KeyAnswer::NotAllowed { keyname: 3 },
            KeyAnswer::InvalidKeyname { keyname: 9 },
            KeyAnswer::InvalidKeypolicy { keypolicy: 0x100 },
            KeyAnswer::MalformedRequest,
        ];
        for a in all {
            let mut b = a.encode();
            assert_eq!(KeyAnswer::decode(&b).unwrap(), a);
            b[63] = 1;
            assert!(KeyAnswer::decode(&b).is_err(), "{a:?}");
        }
        let mut b = [0u8; ANSWER_SIZE];
        b[0] = 99;
        assert_eq!(
            KeyAnswer::decode(&b),
            Err(MailboxError::MalformedAnswer { kind: 99 })
        );
    }
}
