//! Call slots: claiming, ECALLs with nested OCALLs, results, and the lost state.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rustix::thread::futex;

use crate::layout::{
    ChannelLayout, EnclaveState, MAGIC, SlotState, Status, VERSION, control, header,
};
use crate::shm::{SharedMapping, ShmError};

/// How long a waiter spins before it sleeps on the futex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    pub spin: Duration,
}

impl Default for WaitPolicy {
    /// 20 µs. Waking a sleeping thread takes about 13 µs on the reference machine (a 2-vCPU VM),
    /// so a caller that polls that long for its result is not itself asleep when a peer that had
    /// to be woken answers: an ECALL to a sleeping worker took a median of 17 µs with this spin
    /// and 34 µs without. The spin costs CPU only while a call is in flight.
    fn default() -> Self {
        WaitPolicy {
            spin: Duration::from_micros(20),
        }
    }
}

/// Why a call did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The enclave is lost: it crashed, was killed by its sandbox, saw a debugger, or was destroyed.
    #[error("EnclaveLost: {reason}")]
    EnclaveLost { code: u32, reason: String },
    /// Every TCS of the enclave is busy.
    #[error("OutOfTcs: all {slots} enclave threads are busy")]
    OutOfTcs { slots: u32 },
    /// The message does not fit the slot.
    #[error("message of {len} bytes exceeds the channel's {limit}-byte call buffer")]
    MessageTooLarge { len: usize, limit: usize },
    /// The peer broke the channel protocol.
    #[error("channel protocol violation")]
    Protocol(#[source] ProtocolViolation),
    /// The channel memory could not be created or mapped.
    #[error("channel memory")]
    Shm(#[from] ShmError),
}

/// How the peer broke the channel protocol. Everything in shared memory is untrusted, so each
/// is a clear refusal, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolViolation {
    /// The header's magic, version or geometry is not the one this side expects.
    #[error("the channel header does not match the expected layout")]
    HeaderMismatch,
    /// A slot is in a state the call cannot continue from (`state` is the raw word: the peer
    /// may have written anything).
    #[error("slot {slot} is in state {state}, expected one of {expected:?}")]
    SlotState {
        slot: u32,
        state: u32,
        expected: Vec<SlotState>,
    },
    /// A message's length word exceeds the slot.
    #[error("message length {len} exceeds the {limit}-byte slot")]
    MessageLength { len: u64, limit: u32 },
    /// A status word that is no [`Status`].
    #[error("unknown call status {0}")]
    UnknownStatus(u32),
}

/// The channel memory as one side sees it.
#[derive(Debug)]
pub struct Channel {
    map: SharedMapping,
    layout: ChannelLayout,
    policy: WaitPolicy,
}

impl Channel {
    /// Creates and initialises a channel (the platform daemon does this).
    pub fn create(layout: ChannelLayout) -> Result<(OwnedFd, Channel), CallError> {
        let (fd, map) = SharedMapping::create("coffer-channel", layout.total_size())?;
        map.u64_at(header::MAGIC).store(MAGIC, Ordering::Relaxed);
        map.u32_at(header::VERSION)
            .store(VERSION, Ordering::Relaxed);
        map.u32_at(header::SLOT_COUNT)
            .store(layout.slot_count, Ordering::Relaxed);
        map.u32_at(header::SLOT_SIZE)
            .store(layout.slot_size, Ordering::Relaxed);
        map.u32_at(header::ENCLAVE_STATE)
            .store(EnclaveState::Starting as u32, Ordering::SeqCst);
        Ok((
            fd,
            Channel {
                map,
                layout,
                policy: WaitPolicy::default(),
            },
        ))
    }

    /// Maps a channel whose geometry the caller learned from a trusted source (the daemon), and
    /// checks the header against it.
    pub fn open(fd: BorrowedFd<'_>, layout: ChannelLayout) -> Result<Channel, CallError> {
        let map = SharedMapping::map(fd, layout.total_size())?;
        let ch = Channel {
            map,
            layout,
            policy: WaitPolicy::default(),
        };
        let m = &ch.map;
        if m.u64_at(header::MAGIC).load(Ordering::Relaxed) != MAGIC
            || m.u32_at(header::VERSION).load(Ordering::Relaxed) != VERSION
            || m.u32_at(header::SLOT_COUNT).load(Ordering::Relaxed) != layout.slot_count
            || m.u32_at(header::SLOT_SIZE).load(Ordering::Relaxed) != layout.slot_size
        {
            return Err(CallError::Protocol(ProtocolViolation::HeaderMismatch));
        }
        Ok(ch)
    }

    pub fn layout(&self) -> ChannelLayout {
        self.layout
    }

    /// The wait policy of calls that do not name their own.
    pub fn set_wait_policy(&mut self, policy: WaitPolicy) {
        self.policy = policy;
    }

    pub fn wait_policy(&self) -> WaitPolicy {
        self.policy
    }

    pub fn enclave_state(&self) -> Option<EnclaveState> {
        EnclaveState::from_u32(
            self.map
                .u32_at(header::ENCLAVE_STATE)
                .load(Ordering::SeqCst),
        )
    }

    /// Marks the enclave running (the daemon, once the enclave reported ready).
    pub fn set_running(&self) {
        let w = self.map.u32_at(header::ENCLAVE_STATE);
        let _ = w.compare_exchange(
            EnclaveState::Starting as u32,
            EnclaveState::Running as u32,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        let _ = futex::wake(w, futex::Flags::empty(), u32::MAX);
    }

    /// Marks the enclave lost (or destroyed) with a reason, and wakes every waiter on every slot.
    pub fn mark_lost(&self, state: EnclaveState, code: u32, reason: &str) {
        let m = &self.map;
        let bytes = reason.as_bytes();
        let n = bytes.len().min(header::LOST_REASON_MAX);
        m.write(header::LOST_REASON, &bytes[..n]);
        m.u32_at(header::LOST_REASON_LEN)
            .store(u32::try_from(n).unwrap_or(0), Ordering::Relaxed);
        m.u32_at(header::LOST_CODE).store(code, Ordering::Relaxed);
        let w = m.u32_at(header::ENCLAVE_STATE);
        w.store(state as u32, Ordering::SeqCst);
        let _ = futex::wake(w, futex::Flags::empty(), u32::MAX);
        for i in 0..self.layout.slot_count {
            let st = self.control(i, control::STATE);
            st.store(SlotState::Lost as u32, Ordering::SeqCst);
            let _ = futex::wake(st, futex::Flags::empty(), u32::MAX);
        }
        let seq = m.u32_at(header::FREE_SEQ);
        seq.fetch_add(1, Ordering::SeqCst);
        let _ = futex::wake(seq, futex::Flags::empty(), u32::MAX);
    }

    fn lost_error(&self) -> CallError {
        let m = &self.map;
        let n = (m.u32_at(header::LOST_REASON_LEN).load(Ordering::Relaxed) as usize)
            .min(header::LOST_REASON_MAX);
        let mut buf = vec![0u8; n];
        m.read(header::LOST_REASON, &mut buf);
        let reason = String::from_utf8_lossy(&buf).into_owned();
        CallError::EnclaveLost {
            code: m.u32_at(header::LOST_CODE).load(Ordering::Relaxed),
            reason: if reason.is_empty() {
                "the enclave was lost".into()
            } else {
                reason
            },
        }
    }

    fn is_lost(&self) -> bool {
        matches!(
            self.enclave_state(),
            Some(EnclaveState::Lost | EnclaveState::Destroyed)
        )
    }

    fn control(&self, slot: u32, field: usize) -> &AtomicU32 {
        self.map.u32_at(self.layout.control_offset(slot) + field)
    }

    fn len_word(&self, slot: u32) -> &std::sync::atomic::AtomicU64 {
        self.map
            .u64_at(self.layout.control_offset(slot) + control::LEN)
    }

    /// Spins for `policy.spin`, then sleeps, while `keep_waiting(state)` holds; returns the state
    /// that ended the wait.
    fn wait_while(&self, slot: u32, policy: WaitPolicy, keep_waiting: impl Fn(u32) -> bool) -> u32 {
        let word = self.control(slot, control::STATE);
        let start = Instant::now();
        let mut i = 0u32;
        loop {
            let v = word.load(Ordering::Acquire);
            if !keep_waiting(v) {
                return v;
            }
            i = i.wrapping_add(1);
            if !i.is_multiple_of(64) || start.elapsed() < policy.spin {
                std::hint::spin_loop();
                continue;
            }
            let sleepers = self.control(slot, control::SLEEPERS);
            sleepers.fetch_add(1, Ordering::SeqCst);
            let v = word.load(Ordering::SeqCst);
            if keep_waiting(v) {
                // EAGAIN (the word changed) and EINTR both just mean: look again.
                let _ = futex::wait(word, futex::Flags::empty(), v, None);
            }
            sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Moves a slot from one of `from` to `to` and wakes the peer if it sleeps. Fails without
    /// changing anything if the slot is in another state — in particular `Lost`, which nothing but
    /// the daemon may leave.
    fn transition(&self, slot: u32, from: &[SlotState], to: SlotState) -> Result<(), CallError> {
        let word = self.control(slot, control::STATE);
        let mut cur = word.load(Ordering::SeqCst);
        loop {
            if !from.iter().any(|f| *f as u32 == cur) {
                return Err(if cur == SlotState::Lost as u32 || self.is_lost() {
                    self.lost_error()
                } else {
                    CallError::Protocol(ProtocolViolation::SlotState {
                        slot,
                        state: cur,
                        expected: from.to_vec(),
                    })
                });
            }
            match word.compare_exchange(cur, to as u32, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        // Nobody waits for `Idle` (the enclave worker waits for `Ecall`): a worker that went to
        // sleep after answering is left asleep until the next call instead of woken for nothing.
        if to != SlotState::Idle
            && self.control(slot, control::SLEEPERS).load(Ordering::SeqCst) != 0
        {
            let _ = futex::wake(word, futex::Flags::empty(), u32::MAX);
        }
        Ok(())
    }

    fn put_message(
        &self,
        slot: u32,
        id_or_status: (usize, u32),
        data: &[u8],
    ) -> Result<(), CallError> {
        let limit = self.layout.slot_size as usize;
        if data.len() > limit {
            return Err(CallError::MessageTooLarge {
                len: data.len(),
                limit,
            });
        }
        self.map.write(self.layout.data_offset(slot), data);
        self.control(slot, id_or_status.0)
            .store(id_or_status.1, Ordering::Relaxed);
        self.len_word(slot)
            .store(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Copies the slot's message out; its length is checked against the trusted slot size.
    fn take_message(&self, slot: u32) -> Result<Vec<u8>, CallError> {
        let len = self.len_word(slot).load(Ordering::Relaxed);
        let limit = self.layout.slot_size;
        let len = match usize::try_from(len) {
            Ok(n) if n <= limit as usize => n,
            _ => {
                return Err(CallError::Protocol(ProtocolViolation::MessageLength {
                    len,
                    limit,
                }));
            }
        };
        let mut buf = vec![0u8; len];
        self.map.read(self.layout.data_offset(slot), &mut buf);
        Ok(buf)
    }

    /// Host side: claims a free slot. With `wait`, sleeps until one is free; without, returns
    /// [`CallError::OutOfTcs`].
    pub fn claim(&self, wait: bool) -> Result<SlotClaim<'_>, CallError> {
        loop {
            if self.is_lost() {
                return Err(self.lost_error());
            }
            let seq = self.map.u32_at(header::FREE_SEQ).load(Ordering::SeqCst);
            for slot in 0..self.layout.slot_count {
                let owner = self.control(slot, control::OWNER);
                if owner
                    .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    return Ok(SlotClaim { ch: self, slot });
                }
            }
            if !wait {
                return Err(CallError::OutOfTcs {
                    slots: self.layout.slot_count,
                });
            }
            // Announce the sleep before it: a release that bumped the sequence before this
            // increment is seen by the futex (the word is no longer `seq`), one after it sees
            // the waiter and wakes it.
            let waiters = self.map.u32_at(header::FREE_WAITERS);
            waiters.fetch_add(1, Ordering::SeqCst);
            let _ = futex::wait(
                self.map.u32_at(header::FREE_SEQ),
                futex::Flags::empty(),
                seq,
                None,
            );
            waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Enclave side: the worker end of slot `slot`.
    pub fn enclave_slot(&self, slot: u32) -> Option<EnclaveSlot<'_>> {
        (slot < self.layout.slot_count).then_some(EnclaveSlot { ch: self, slot })
    }
}

/// A host function that serves an OCALL: id and input in, status and output out.
pub type OcallHandler<'a> = dyn FnMut(u32, &[u8]) -> (Status, Vec<u8>) + 'a;

/// The result of an ECALL as the host receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCall {
    pub status: Status,
    pub output: Vec<u8>,
}

/// A slot the host owns until this is dropped.
#[derive(Debug)]
pub struct SlotClaim<'a> {
    ch: &'a Channel,
    slot: u32,
}

impl SlotClaim<'_> {
    pub fn slot(&self) -> u32 {
        self.slot
    }

    /// Makes an ECALL on this slot and serves its OCALLs on the calling thread, waiting as the
    /// channel's policy says.
    pub fn ecall(
        &mut self,
        call_id: u32,
        input: &[u8],
        ocall: &mut OcallHandler<'_>,
    ) -> Result<HostCall, CallError> {
        let policy = self.ch.policy;
        self.ecall_with_policy(call_id, input, policy, ocall)
    }

    /// [`SlotClaim::ecall`] with this call's own wait policy: a switchless call spins for its
    /// result and for the enclave's OCALL requests as long as `policy` says before it sleeps.
    pub fn ecall_with_policy(
        &mut self,
        call_id: u32,
        input: &[u8],
        policy: WaitPolicy,
        ocall: &mut OcallHandler<'_>,
    ) -> Result<HostCall, CallError> {
        let ch = self.ch;
        let s = self.slot;
        ch.put_message(s, (control::CALL_ID, call_id), input)?;
        ch.transition(s, &[SlotState::Idle], SlotState::Ecall)?;
        loop {
            let v = ch.wait_while(s, policy, |v| {
                v == SlotState::Ecall as u32 || v == SlotState::OcallDone as u32
            });
            match SlotState::from_u32(v) {
                Some(SlotState::Ocall) => {
                    let id = ch.control(s, control::CALL_ID).load(Ordering::Relaxed);
                    let (status, out) = match ch.take_message(s) {
                        Ok(input) => ocall(id, &input),
                        Err(_) => (Status::BadMessage, Vec::new()),
                    };
                    if ch
                        .put_message(s, (control::STATUS, status as u32), &out)
                        .is_err()
                    {
                        // The host's answer does not fit: the enclave gets a refusal instead.
                        ch.put_message(s, (control::STATUS, Status::BadMessage as u32), &[])?;
                    }
                    ch.transition(s, &[SlotState::Ocall], SlotState::OcallDone)?;
                }
                Some(SlotState::EcallDone) => {
                    let word = ch.control(s, control::STATUS).load(Ordering::Relaxed);
                    let status = Status::from_u32(word)
                        .ok_or(CallError::Protocol(ProtocolViolation::UnknownStatus(word)))?;
                    let output = ch.take_message(s)?;
                    ch.transition(s, &[SlotState::EcallDone], SlotState::Idle)?;
                    return Ok(HostCall { status, output });
                }
                Some(SlotState::Lost) => return Err(ch.lost_error()),
                _ => {
                    if ch.is_lost() {
                        return Err(ch.lost_error());
                    }
                    return Err(CallError::Protocol(ProtocolViolation::SlotState {
                        slot: s,
                        state: v,
                        expected: vec![SlotState::Ocall, SlotState::EcallDone],
                    }));
                }
            }
        }
    }
}

impl Drop for SlotClaim<'_> {
    fn drop(&mut self) {
        let ch = self.ch;
        ch.control(self.slot, control::OWNER)
            .store(0, Ordering::Release);
        let seq = ch.map.u32_at(header::FREE_SEQ);
        seq.fetch_add(1, Ordering::SeqCst);
        // Most releases have nobody waiting: no system call for them.
        if ch.map.u32_at(header::FREE_WAITERS).load(Ordering::SeqCst) != 0 {
            let _ = futex::wake(seq, futex::Flags::empty(), 1);
        }
    }
}

/// An ECALL as the enclave worker receives it, already copied out of shared memory.
#[derive(Debug)]
pub struct Incoming {
    pub call_id: u32,
    pub input: Vec<u8>,
}

/// The states in which the enclave side owns a slot (serving an ECALL).
const ACTIVE: &[SlotState] = &[SlotState::Ecall, SlotState::OcallDone];

/// The enclave worker's end of one slot.
#[derive(Debug, Clone, Copy)]
pub struct EnclaveSlot<'a> {
    ch: &'a Channel,
    slot: u32,
}

impl EnclaveSlot<'_> {
    /// Waits for the next ECALL. Returns `Err(EnclaveLost)` when the daemon marked the enclave
    /// lost or destroyed, after which the worker should stop.
    pub fn wait_ecall(&self) -> Result<Incoming, CallError> {
        self.wait_ecall_with_policy(self.ch.policy)
    }

    /// [`EnclaveSlot::wait_ecall`], spinning as long as `policy` says before it sleeps (a
    /// switchless worker polls its slot for a while after each call).
    pub fn wait_ecall_with_policy(&self, policy: WaitPolicy) -> Result<Incoming, CallError> {
        let ch = self.ch;
        loop {
            let v = ch.wait_while(self.slot, policy, |v| {
                v != SlotState::Ecall as u32 && v != SlotState::Lost as u32
            });
            if v == SlotState::Lost as u32 {
                return Err(ch.lost_error());
            }
            let call_id = ch
                .control(self.slot, control::CALL_ID)
                .load(Ordering::Relaxed);
            match ch.take_message(self.slot) {
                Ok(input) => return Ok(Incoming { call_id, input }),
                Err(_) => {
                    // A host that lies about the length gets a refusal, not a read past the slot.
                    self.respond(Status::BadMessage, &[])?;
                }
            }
        }
    }

    /// Makes an OCALL from inside the current ECALL and waits for the host's answer.
    pub fn ocall(&self, id: u32, input: &[u8]) -> Result<HostCall, CallError> {
        self.ocall_with_policy(id, input, self.ch.policy)
    }

    /// [`EnclaveSlot::ocall`], spinning for the answer as long as `policy` says before it sleeps.
    pub fn ocall_with_policy(
        &self,
        id: u32,
        input: &[u8],
        policy: WaitPolicy,
    ) -> Result<HostCall, CallError> {
        let ch = self.ch;
        ch.put_message(self.slot, (control::CALL_ID, id), input)?;
        ch.transition(self.slot, ACTIVE, SlotState::Ocall)?;
        let v = ch.wait_while(self.slot, policy, |v| v == SlotState::Ocall as u32);
        match SlotState::from_u32(v) {
            Some(SlotState::OcallDone) => {
                let word = ch
                    .control(self.slot, control::STATUS)
                    .load(Ordering::Relaxed);
                let status = Status::from_u32(word)
                    .ok_or(CallError::Protocol(ProtocolViolation::UnknownStatus(word)))?;
                let output = ch.take_message(self.slot)?;
                Ok(HostCall { status, output })
            }
            Some(SlotState::Lost) => Err(ch.lost_error()),
            _ => Err(CallError::Protocol(ProtocolViolation::SlotState {
                slot: self.slot,
                state: v,
                expected: vec![SlotState::OcallDone],
            })),
        }
    }

    /// Sends the ECALL's result.
    pub fn respond(&self, status: Status, output: &[u8]) -> Result<(), CallError> {
        let ch = self.ch;
        match ch.put_message(self.slot, (control::STATUS, status as u32), output) {
            Ok(()) => {}
            Err(e @ CallError::MessageTooLarge { .. }) => {
                ch.put_message(self.slot, (control::STATUS, Status::BadMessage as u32), &[])?;
                ch.transition(self.slot, ACTIVE, SlotState::EcallDone)?;
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        ch.transition(self.slot, ACTIVE, SlotState::EcallDone)
    }
}
