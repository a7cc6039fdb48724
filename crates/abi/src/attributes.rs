//! SECS.ATTRIBUTES and MISCSELECT (SDM Vol. 3D §38.7.1 and §38.7.2).

use bitflags::bitflags;

use crate::codec::{Codec, DecodeError, FixedSize, Reader};

bitflags! {
    /// ATTRIBUTES.FLAGS. Unknown bits are kept so that a structure round-trips.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct AttributesFlags: u64 {
        /// The enclave has been initialised by EINIT.
        const INIT = 1 << 0;
        /// The enclave may be read and changed by a debugger.
        const DEBUG = 1 << 1;
        /// The enclave runs in 64-bit mode.
        const MODE64BIT = 1 << 2;
        /// The enclave may request the provisioning key.
        const PROVISIONKEY = 1 << 4;
        /// The enclave may request the launch (EINITTOKEN) key.
        const EINITTOKEN_KEY = 1 << 5;
        /// Control-flow enforcement is enabled.
        const CET = 1 << 6;
        /// Key separation and sharing (ISVFAMILYID, ISVEXTPRODID, CONFIGID) is enabled.
        const KSS = 1 << 7;
        /// Asynchronous exit notification is enabled.
        const AEXNOTIFY = 1 << 10;
        const _ = !0;
    }
}

/// ATTRIBUTES: 16 bytes, FLAGS then XFRM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Attributes {
    pub flags: AttributesFlags,
    /// XSAVE feature request mask (XCR0 the enclave runs with).
    pub xfrm: u64,
}

impl Attributes {
    /// Whether the DEBUG flag is set.
    pub fn debug(&self) -> bool {
        self.flags.contains(AttributesFlags::DEBUG)
    }

    /// Bitwise AND, used to apply ATTRIBUTEMASK.
    pub fn masked(&self, mask: &Attributes) -> Attributes {
        Attributes {
            flags: AttributesFlags::from_bits_retain(self.flags.bits() & mask.flags.bits()),
            xfrm: self.xfrm & mask.xfrm,
        }
    }

    pub fn to_array(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[..8].copy_from_slice(&self.flags.bits().to_le_bytes());
        a[8..].copy_from_slice(&self.xfrm.to_le_bytes());
        a
    }
}

impl Codec for Attributes {
    const NAME: &'static str = "ATTRIBUTES";

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_array());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Attributes {
            flags: AttributesFlags::from_bits_retain(r.u64("ATTRIBUTES.FLAGS")?),
            xfrm: r.u64("ATTRIBUTES.XFRM")?,
        })
    }
}

impl FixedSize for Attributes {
    const SIZE: usize = 16;
}

bitflags! {
    /// MISCSELECT: which extended information is saved in the SSA frame on an exit.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Miscselect: u32 {
        /// Page-fault and general-protection exception information (EXINFO).
        const EXINFO = 1 << 0;
        /// Control-protection exception information (CPINFO).
        const CPINFO = 1 << 1;
        const _ = !0;
    }
}

impl Codec for Miscselect {
    const NAME: &'static str = "MISCSELECT";

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bits().to_le_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Miscselect::from_bits_retain(r.u32("MISCSELECT")?))
    }
}

impl FixedSize for Miscselect {
    const SIZE: usize = 4;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_attributes_and_keeps_unknown_bits() {
        let bytes = hex::decode("07000000000000801f00000000000000").unwrap();
        let a = Attributes::from_bytes(&bytes).unwrap();
        assert!(a.debug());
        assert!(
            a.flags
                .contains(AttributesFlags::MODE64BIT | AttributesFlags::INIT)
        );
        assert_eq!(a.flags.bits() >> 63, 1);
        assert_eq!(a.xfrm, 0x1f);
        assert_eq!(a.to_bytes(), bytes);
    }

    #[test]
    fn rejects_truncated_and_padded_attributes() {
        let bytes = [0u8; 16];
        assert!(matches!(
            Attributes::from_bytes(&bytes[..15]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            Attributes::from_bytes(&[0u8; 17]),
            Err(DecodeError::TrailingBytes { count: 1, .. })
        ));
    }
}
