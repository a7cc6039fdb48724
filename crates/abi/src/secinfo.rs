//! SECINFO (64 bytes): the type and permissions of an enclave page (SDM Vol. 3D §38.11).

use bitflags::bitflags;

use crate::codec::{Codec, DecodeError, FixedSize, Reader};

/// Bits 8..16 of SECINFO.FLAGS hold the page type, not flags.
const PAGE_TYPE_SHIFT: u32 = 8;
const PAGE_TYPE_MASK: u64 = 0xff << PAGE_TYPE_SHIFT;

bitflags! {
    /// SECINFO.FLAGS without the page type (bits 8..16, see [`PageType`]).
    /// Unknown bits are kept so that a structure round-trips.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct SecinfoFlags: u64 {
        /// The page can be read from inside the enclave.
        const R = 1 << 0;
        /// The page can be written from inside the enclave.
        const W = 1 << 1;
        /// The page can be executed from inside the enclave.
        const X = 1 << 2;
        /// The page is in the PENDING state (EAUG'd, not yet EACCEPTed).
        const PENDING = 1 << 3;
        /// The page is in the MODIFIED state (EMODT'd, not yet EACCEPTed).
        const MODIFIED = 1 << 4;
        /// A permission restriction (EMODPR) is in progress.
        const PR = 1 << 5;
        const _ = !PAGE_TYPE_MASK;
    }
}

impl SecinfoFlags {
    /// The three permission bits.
    pub const RWX: SecinfoFlags = SecinfoFlags::R
        .union(SecinfoFlags::W)
        .union(SecinfoFlags::X);
}

/// SECINFO.FLAGS.PAGE_TYPE, an open enum: values the SDM does not name survive a round trip.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PageType(pub u8);

impl PageType {
    /// The page holds the SECS.
    pub const SECS: PageType = PageType(0);
    /// The page holds a TCS (a thread entry point).
    pub const TCS: PageType = PageType(1);
    /// A regular page of code or data.
    pub const REG: PageType = PageType(2);
    /// A version-array page.
    pub const VA: PageType = PageType(3);
    /// A page being removed (trimmed).
    pub const TRIM: PageType = PageType(4);
    /// The first page of a CET shadow stack.
    pub const SS_FIRST: PageType = PageType(5);
    /// A later page of a CET shadow stack.
    pub const SS_REST: PageType = PageType(6);

    /// The SDM's name, if it has one.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            PageType::SECS => "PT_SECS",
            PageType::TCS => "PT_TCS",
            PageType::REG => "PT_REG",
            PageType::VA => "PT_VA",
            PageType::TRIM => "PT_TRIM",
            PageType::SS_FIRST => "PT_SS_FIRST",
            PageType::SS_REST => "PT_SS_REST",
            _ => return None,
        })
    }
}

impl std::fmt::Debug for PageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "PageType(0x{:02x})", self.0),
        }
    }
}

impl std::fmt::Display for PageType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// SECINFO: FLAGS (u64, page type in bits 8..16) then 56 reserved bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Secinfo {
    /// FLAGS bits 0..8 and 16..64. Bits 8..16 of this value are ignored: they are [`Self::page_type`].
    pub flags: SecinfoFlags,
    /// FLAGS bits 8..16.
    pub page_type: PageType,
    /// Offset 8. EADD measures only bytes 0..48 of SECINFO, that is `_reserved[..40]`.
    pub _reserved: [u8; 56],
}

impl Default for Secinfo {
    fn default() -> Self {
        Secinfo {
            flags: SecinfoFlags::empty(),
            page_type: PageType::SECS,
            _reserved: [0; 56],
        }
    }
}

impl Secinfo {
    /// A SECINFO of the given type and flags, reserved bytes zero.
    pub fn new(page_type: PageType, flags: SecinfoFlags) -> Self {
        Secinfo {
            flags,
            page_type,
            _reserved: [0; 56],
        }
    }

    /// The whole FLAGS word as it is stored.
    pub fn flags_word(&self) -> u64 {
        (self.flags.bits() & !PAGE_TYPE_MASK) | (u64::from(self.page_type.0) << PAGE_TYPE_SHIFT)
    }

    /// Splits a stored FLAGS word into flags and page type.
    pub fn from_flags_word(word: u64) -> (SecinfoFlags, PageType) {
        let pt = (word & PAGE_TYPE_MASK) >> PAGE_TYPE_SHIFT;
        (
            SecinfoFlags::from_bits_retain(word & !PAGE_TYPE_MASK),
            PageType(u8::try_from(pt).unwrap_or(u8::MAX)),
        )
    }

    /// Clears R, W and X of a TCS page: the CPU measures (and maps) a TCS page with no
    /// permissions, whatever EADD was given.
    pub fn canonicalize_for_eadd(&mut self) {
        if self.page_type == PageType::TCS {
            self.flags.remove(SecinfoFlags::RWX);
        }
    }

    /// The first 48 bytes: what EADD measures.
    pub fn measured_bytes(&self) -> [u8; 48] {
        let mut a = [0u8; 48];
        a[..8].copy_from_slice(&self.flags_word().to_le_bytes());
        a[8..].copy_from_slice(&self._reserved[..40]);
        a
    }
}

impl Codec for Secinfo {
    const NAME: &'static str = "SECINFO";

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.flags_word().to_le_bytes());
        out.extend_from_slice(&self._reserved);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let (flags, page_type) = Secinfo::from_flags_word(r.u64("SECINFO.FLAGS")?);
        Ok(Secinfo {
            flags,
            page_type,
            _reserved: r.array("SECINFO.RESERVED")?,
        })
    }
}

impl FixedSize for Secinfo {
    const SIZE: usize = 64;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_secinfo_and_splits_the_page_type() {
        let mut bytes = vec![0u8; 64];
        bytes[0] = 0x05; // R | X
        bytes[1] = 0x02; // PT_REG
        let s = Secinfo::from_bytes(&bytes).unwrap();
        assert_eq!(s.flags, SecinfoFlags::R | SecinfoFlags::X);
        assert_eq!(s.page_type, PageType::REG);
        assert_eq!(s.to_bytes(), bytes);
        assert_eq!(
            Secinfo::new(PageType::TCS, SecinfoFlags::empty()).to_bytes()[1],
            1
        );
        assert_eq!(Secinfo::default().to_bytes().len(), Secinfo::SIZE);
        assert_eq!(Secinfo::SIZE, 64);
    }

    #[test]
    fn accepts_unknown_page_types_and_bits_and_keeps_them() {
        let mut bytes: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
        bytes[1] = 0xee;
        bytes[7] = 0x80;
        let s = Secinfo::from_bytes(&bytes).unwrap();
        assert_eq!(s.page_type, PageType(0xee));
        assert_eq!(s.page_type.name(), None);
        assert_eq!(format!("{:?}", s.page_type), "PageType(0xee)");
        assert_eq!(s.flags.bits() >> 63, 1);
        assert_eq!(s.to_bytes(), bytes);
        assert_eq!(&s.measured_bytes()[..], &bytes[..48]);
    }

    #[test]
    fn flags_never_overwrite_the_page_type() {
        let s = Secinfo::new(PageType::REG, SecinfoFlags::from_bits_retain(0xff07));
        assert_eq!(s.flags_word(), 0x0207);
    }

    #[test]
    fn rejects_truncated_and_padded_secinfo() {
        assert!(matches!(
            Secinfo::from_bytes(&[0u8; 63]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            Secinfo::from_bytes(&[0u8; 65]),
            Err(DecodeError::TrailingBytes { count: 1, .. })
        ));
    }
}
