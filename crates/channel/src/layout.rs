//! Where everything sits in the channel memfd.

/// "COFFCHN1" as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"COFFCHN1");
pub const VERSION: u32 = 1;

pub(crate) const PAGE: usize = 4096;
pub(crate) const HEADER_SIZE: usize = 512;
pub(crate) const SLOT_CONTROL_SIZE: usize = 64;

/// Header offsets.
pub(crate) mod header {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const SLOT_COUNT: usize = 12;
    pub const SLOT_SIZE: usize = 16;
    /// [`super::EnclaveState`], a futex word.
    pub const ENCLAVE_STATE: usize = 20;
    pub const LOST_CODE: usize = 24;
    pub const LOST_REASON_LEN: usize = 28;
    /// A futex word bumped on every slot release, which host threads waiting for a free slot
    /// sleep on.
    pub const FREE_SEQ: usize = 32;
    /// How many host threads sleep on `FREE_SEQ`: a release makes the wake-up system call only
    /// when some do.
    pub const FREE_WAITERS: usize = 36;
    pub const LOST_REASON: usize = 64;
    pub const LOST_REASON_MAX: usize = 256;
}

/// Slot control block offsets (relative to the block).
pub(crate) mod control {
    /// [`super::SlotState`], the futex word.
    pub const STATE: usize = 0;
    /// 0 when free, 1 when a host thread owns the slot.
    pub const OWNER: usize = 4;
    pub const CALL_ID: usize = 8;
    /// [`super::Status`] of a result.
    pub const STATUS: usize = 12;
    pub const LEN: usize = 16;
    /// Set by a side that is about to sleep on STATE, so the other side knows to wake it.
    pub const SLEEPERS: usize = 24;
}

/// Limits. A slot count and size outside them is refused at creation.
pub const MAX_SLOTS: u32 = 256;
/// The largest per-slot buffer (and so the largest single call argument or result): 64 MiB.
pub const MAX_SLOT_SIZE: u32 = 64 << 20;

/// The state of a call slot. Transitions: `Idle →(host) Ecall →(enclave) [Ocall →(host) OcallDone
/// →(enclave)]* EcallDone →(host) Idle`; the daemon can move any slot to `Lost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum SlotState {
    Idle = 0,
    Ecall = 1,
    Ocall = 2,
    OcallDone = 3,
    EcallDone = 4,
    Lost = 5,
}

impl SlotState {
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => SlotState::Idle,
            1 => SlotState::Ecall,
            2 => SlotState::Ocall,
            3 => SlotState::OcallDone,
            4 => SlotState::EcallDone,
            5 => SlotState::Lost,
            _ => return None,
        })
    }
}

/// The status word of a finished call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Status {
    Ok = 0,
    /// The callee has no function with that id.
    UnknownCall = 1,
    /// The message did not fit in the slot or was malformed.
    BadMessage = 2,
    /// The callee's handler failed; the bytes carry its error.
    Failed = 3,
}

impl Status {
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => Status::Ok,
            1 => Status::UnknownCall,
            2 => Status::BadMessage,
            3 => Status::Failed,
            _ => return None,
        })
    }
}

/// The enclave as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum EnclaveState {
    Starting = 0,
    Running = 1,
    Lost = 2,
    Destroyed = 3,
}

impl EnclaveState {
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => EnclaveState::Starting,
            1 => EnclaveState::Running,
            2 => EnclaveState::Lost,
            3 => EnclaveState::Destroyed,
            _ => return None,
        })
    }
}

/// Why a channel layout cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("slot count {0} is outside 1..={MAX_SLOTS}")]
    SlotCount(u32),
    #[error("slot size {0} is not a multiple of 4096 in 4096..={MAX_SLOT_SIZE}")]
    SlotSize(u32),
}

/// The geometry of one channel, fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelLayout {
    pub slot_count: u32,
    pub slot_size: u32,
}

impl ChannelLayout {
    pub fn new(slot_count: u32, slot_size: u32) -> Result<Self, LayoutError> {
        if slot_count == 0 || slot_count > MAX_SLOTS {
            return Err(LayoutError::SlotCount(slot_count));
        }
        if !(4096..=MAX_SLOT_SIZE).contains(&slot_size) || !slot_size.is_multiple_of(4096) {
            return Err(LayoutError::SlotSize(slot_size));
        }
        Ok(ChannelLayout {
            slot_count,
            slot_size,
        })
    }

    pub(crate) fn control_offset(&self, slot: u32) -> usize {
        HEADER_SIZE + SLOT_CONTROL_SIZE * slot as usize
    }

    pub(crate) fn data_offset(&self, slot: u32) -> usize {
        let control_end = HEADER_SIZE + SLOT_CONTROL_SIZE * self.slot_count as usize;
        control_end.div_ceil(PAGE) * PAGE + self.slot_size as usize * slot as usize
    }

    /// Total bytes of the memfd.
    pub fn total_size(&self) -> usize {
        self.data_offset(self.slot_count)
    }
}
