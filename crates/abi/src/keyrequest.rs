//! KEYREQUEST (512 bytes): which key EGETKEY derives and what it is bound to
//! (SDM Vol. 3D §38.18).
//!
//! This module owns the layout only. Key derivation belongs to `coffer-cpu`.

use bitflags::bitflags;

use crate::attributes::Attributes;
use crate::codec::{Codec, DecodeError, FixedSize, Reader};

/// KEYREQUEST.KEYNAME, an open enum: values the SDM does not name survive a round trip.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KeyName(pub u16);

impl KeyName {
    /// The launch key, for EINITTOKENs.
    pub const EINITTOKEN_KEY: KeyName = KeyName(0);
    /// The provisioning key.
    pub const PROVISION_KEY: KeyName = KeyName(1);
    /// The provisioning seal key.
    pub const PROVISION_SEAL_KEY: KeyName = KeyName(2);
    /// The report key, for checking REPORT MACs.
    pub const REPORT_KEY: KeyName = KeyName(3);
    /// The seal key, for sealing data to the enclave or its signer.
    pub const SEAL_KEY: KeyName = KeyName(4);

    /// The SDM's name, if it has one.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            KeyName::EINITTOKEN_KEY => "EINITTOKEN_KEY",
            KeyName::PROVISION_KEY => "PROVISION_KEY",
            KeyName::PROVISION_SEAL_KEY => "PROVISION_SEAL_KEY",
            KeyName::REPORT_KEY => "REPORT_KEY",
            KeyName::SEAL_KEY => "SEAL_KEY",
            _ => return None,
        })
    }
}

impl std::fmt::Debug for KeyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "KeyName(0x{:04x})", self.0),
        }
    }
}

impl std::fmt::Display for KeyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

bitflags! {
    /// KEYREQUEST.KEYPOLICY: which identities the derived key is bound to.
    /// Unknown bits are kept so that a structure round-trips.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct KeyPolicy: u16 {
        /// Bind to the enclave's MRENCLAVE.
        const MRENCLAVE = 1 << 0;
        /// Bind to the enclave's MRSIGNER.
        const MRSIGNER = 1 << 1;
        /// Leave ISVPRODID out of the derivation (KSS).
        const NOISVPRODID = 1 << 2;
        /// Bind to CONFIGID (KSS).
        const CONFIGID = 1 << 3;
        /// Bind to ISVFAMILYID (KSS).
        const ISVFAMILYID = 1 << 4;
        /// Bind to ISVEXTPRODID (KSS).
        const ISVEXTPRODID = 1 << 5;
        const _ = !0;
    }
}

/// KEYREQUEST, field by field at the SDM's offsets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Keyrequest {
    /// Offset 0.
    pub keyname: KeyName,
    /// Offset 2.
    pub keypolicy: KeyPolicy,
    /// Offset 4: the ISVSVN to derive the key for (at most the enclave's own).
    pub isvsvn: u16,
    /// Offset 6.
    pub _reserved1: [u8; 2],
    /// Offset 8: the CPUSVN to derive the key for (at most the platform's own).
    pub cpusvn: [u8; 16],
    /// Offset 24: which ATTRIBUTES bits enter the derivation.
    pub attributemask: Attributes,
    /// Offset 40: caller-chosen diversifier.
    pub keyid: [u8; 32],
    /// Offset 72: which MISCSELECT bits enter the derivation.
    pub miscmask: u32,
    /// Offset 76 (KSS).
    pub configsvn: u16,
    /// Offset 78.
    pub _reserved2: [u8; 434],
}

impl Default for Keyrequest {
    fn default() -> Self {
        Keyrequest {
            keyname: KeyName::EINITTOKEN_KEY,
            keypolicy: KeyPolicy::empty(),
            isvsvn: 0,
            _reserved1: [0; 2],
            cpusvn: [0; 16],
            attributemask: Attributes::default(),
            keyid: [0; 32],
            miscmask: 0,
            configsvn: 0,
            _reserved2: [0; 434],
        }
    }
}

impl Codec for Keyrequest {
    const NAME: &'static str = "KEYREQUEST";

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.keyname.0.to_le_bytes());
        out.extend_from_slice(&self.keypolicy.bits().to_le_bytes());
        out.extend_from_slice(&self.isvsvn.to_le_bytes());
        out.extend_from_slice(&self._reserved1);
        out.extend_from_slice(&self.cpusvn);
        self.attributemask.encode(out);
        out.extend_from_slice(&self.keyid);
        out.extend_from_slice(&self.miscmask.to_le_bytes());
        out.extend_from_slice(&self.configsvn.to_le_bytes());
        out.extend_from_slice(&self._reserved2);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Keyrequest {
            keyname: KeyName(r.u16("KEYREQUEST.KEYNAME")?),
            keypolicy: KeyPolicy::from_bits_retain(r.u16("KEYREQUEST.KEYPOLICY")?),
            isvsvn: r.u16("KEYREQUEST.ISVSVN")?,
            _reserved1: r.array("KEYREQUEST.RESERVED1")?,
            cpusvn: r.array("KEYREQUEST.CPUSVN")?,
            attributemask: Attributes::read(r)?,
            keyid: r.array("KEYREQUEST.KEYID")?,
            miscmask: r.u32("KEYREQUEST.MISCMASK")?,
            configsvn: r.u16("KEYREQUEST.CONFIGSVN")?,
            _reserved2: r.array("KEYREQUEST.RESERVED2")?,
        })
    }
}

impl FixedSize for Keyrequest {
    const SIZE: usize = 512;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..512u32).map(|i| (i * 17 % 251) as u8).collect()
    }

    #[test]
    fn accepts_a_keyrequest_at_the_sdm_offsets() {
        let bytes = sample();
        let k = Keyrequest::from_bytes(&bytes).unwrap();
        assert_eq!(k.keyname.0, u16::from_le_bytes([bytes[0], bytes[1]]));
        assert_eq!(k.keypolicy.bits(), u16::from_le_bytes([bytes[2], bytes[3]]));
        assert_eq!(k.isvsvn, u16::from_le_bytes([bytes[4], bytes[5]]));
        assert_eq!(&k.cpusvn[..], &bytes[8..24]);
        assert_eq!(k.attributemask.to_array()[..], bytes[24..40]);
        assert_eq!(&k.keyid[..], &bytes[40..72]);
        assert_eq!(k.miscmask.to_le_bytes()[..], bytes[72..76]);
        assert_eq!(k.configsvn, u16::from_le_bytes([bytes[76], bytes[77]]));
        assert_eq!(k.to_bytes(), bytes);
        assert_eq!(Keyrequest::default().to_bytes().len(), Keyrequest::SIZE);
        assert_eq!(Keyrequest::SIZE, 512);
    }

    #[test]
    fn accepts_unknown_key_names_and_policy_bits_and_keeps_them() {
        let mut bytes = vec![0u8; 512];
        bytes[0] = 0x34;
        bytes[1] = 0x12;
        bytes[2] = 0x03;
        bytes[3] = 0x80;
        let k = Keyrequest::from_bytes(&bytes).unwrap();
        assert_eq!(k.keyname, KeyName(0x1234));
        assert_eq!(format!("{:?}", k.keyname), "KeyName(0x1234)");
        assert!(
            k.keypolicy
                .contains(KeyPolicy::MRENCLAVE | KeyPolicy::MRSIGNER)
        );
        assert_eq!(k.keypolicy.bits(), 0x8003);
        assert_eq!(k.to_bytes(), bytes);
        assert_eq!(KeyName::SEAL_KEY.to_string(), "SEAL_KEY");
    }

    #[test]
    fn rejects_truncated_and_padded_keyrequests() {
        let mut bytes = sample();
        assert!(matches!(
            Keyrequest::from_bytes(&bytes[..511]),
            Err(DecodeError::Truncated { .. })
        ));
        bytes.push(0);
        assert!(matches!(
            Keyrequest::from_bytes(&bytes),
            Err(DecodeError::TrailingBytes { count: 1, .. })
        ));
    }
}
