//! SIGSTRUCT (1808 bytes): the enclave author's signature over the enclave's identity
//! (SDM Vol. 3D §38.13; the SGX SDK's `enclave_css_t`).
//!
//! This module owns the layout only. Signing and verification live in `coffer-sign`.

use crate::attributes::{Attributes, Miscselect};
use crate::codec::{Codec, DecodeError, FixedSize, Reader};

/// The fixed HEADER bytes (the last four, bytes 12..16, are the type: 0, or bit 31 for a debug launch).
pub const SIGSTRUCT_HEADER: [u8; 16] = [
    0x06, 0x00, 0x00, 0x00, 0xe1, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
];
/// The fixed HEADER2 bytes.
pub const SIGSTRUCT_HEADER2: [u8; 16] = [
    0x01, 0x01, 0x00, 0x00, 0x60, 0x00, 0x00, 0x00, 0x60, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
];
/// VENDOR value for Intel-signed enclaves; everyone else uses 0.
pub const VENDOR_INTEL: u32 = 0x8086;

/// Byte ranges of SIGSTRUCT that the RSA signature covers: `[0..128) ‖ [900..1028)`.
pub const SIGNED_RANGES: [std::ops::Range<usize>; 2] = [0..128, 900..1028];

/// A date as SIGSTRUCT stores it: BCD `0xYYYYMMDD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SigstructDate(pub u32);

impl SigstructDate {
    /// Builds a date from its parts; fails on a month or day out of range or a year past 9999.
    pub fn from_ymd(year: u32, month: u32, day: u32) -> Result<Self, DecodeError> {
        if year > 9999 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return Err(DecodeError::Invalid {
                what: "SIGSTRUCT.DATE",
                reason: format!("{year:04}-{month:02}-{day:02} is not a valid date"),
            });
        }
        let bcd = |v: u32, digits: u32| {
            (0..digits).fold(0u32, |acc, i| acc | (((v / 10u32.pow(i)) % 10) << (4 * i)))
        };
        Ok(SigstructDate(
            (bcd(year, 4) << 16) | (bcd(month, 2) << 8) | bcd(day, 2),
        ))
    }

    /// Parses `YYYYMMDD` or `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Self, DecodeError> {
        let digits: String = s.chars().filter(|c| *c != '-').collect();
        let bad = || DecodeError::Invalid {
            what: "SIGSTRUCT.DATE",
            reason: format!("{s:?} is not a date of the form YYYYMMDD or YYYY-MM-DD"),
        };
        if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if s.contains('-') && (s.len() != 10 || &s[4..5] != "-" || &s[7..8] != "-") {
            return Err(bad());
        }
        let n = |r: std::ops::Range<usize>| digits[r].parse::<u32>().map_err(|_| bad());
        Self::from_ymd(n(0..4)?, n(4..6)?, n(6..8)?)
    }

    /// The year, month and day, if every nibble is a decimal digit.
    pub fn ymd(&self) -> Option<(u32, u32, u32)> {
        let v = self.0;
        let mut out = 0u32;
        for i in (0..8).rev() {
            let d = (v >> (4 * i)) & 0xf;
            if d > 9 {
                return None;
            }
            out = out * 10 + d;
        }
        Some((out / 10000, out / 100 % 100, out % 100))
    }
}

impl std::fmt::Display for SigstructDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ymd() {
            Some((y, m, d)) => write!(f, "{y:04}-{m:02}-{d:02}"),
            None => write!(f, "0x{:08x}", self.0),
        }
    }
}

/// SIGSTRUCT, field by field at the SDM's offsets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sigstruct {
    /// Offset 0: must be [`SIGSTRUCT_HEADER`] (bytes 12..16 are the launch type).
    pub header: [u8; 16],
    /// Offset 16: 0, or [`VENDOR_INTEL`].
    pub vendor: u32,
    /// Offset 20: BCD date.
    pub date: SigstructDate,
    /// Offset 24: must be [`SIGSTRUCT_HEADER2`].
    pub header2: [u8; 16],
    /// Offset 40: software-defined (the SDK calls it `hw_version`).
    pub swdefined: u32,
    /// Offset 44.
    pub _reserved1: [u8; 84],
    /// Offset 128: RSA-3072 modulus, little-endian.
    pub modulus: [u8; 384],
    /// Offset 512: RSA public exponent, must be 3.
    pub exponent: u32,
    /// Offset 516: RSA signature, little-endian.
    pub signature: [u8; 384],
    /// Offset 900.
    pub miscselect: Miscselect,
    /// Offset 904.
    pub miscmask: u32,
    /// Offset 908 (CET attributes and reserved bytes).
    pub _reserved2: [u8; 4],
    /// Offset 912 (KSS).
    pub isvfamilyid: [u8; 16],
    /// Offset 928.
    pub attributes: Attributes,
    /// Offset 944.
    pub attributemask: Attributes,
    /// Offset 960: the MRENCLAVE the enclave must have.
    pub enclavehash: [u8; 32],
    /// Offset 992.
    pub _reserved3: [u8; 16],
    /// Offset 1008 (KSS).
    pub isvextprodid: [u8; 16],
    /// Offset 1024.
    pub isvprodid: u16,
    /// Offset 1026.
    pub isvsvn: u16,
    /// Offset 1028.
    pub _reserved4: [u8; 12],
    /// Offset 1040: Q1 = floor(signature² / modulus), little-endian.
    pub q1: [u8; 384],
    /// Offset 1424: Q2 = floor((signature³ − Q1·signature·modulus) / modulus), little-endian.
    pub q2: [u8; 384],
}

impl Default for Sigstruct {
    fn default() -> Self {
        Sigstruct {
            header: SIGSTRUCT_HEADER,
            vendor: 0,
            date: SigstructDate::default(),
            header2: SIGSTRUCT_HEADER2,
            swdefined: 0,
            _reserved1: [0; 84],
            modulus: [0; 384],
            exponent: 3,
            signature: [0; 384],
            miscselect: Miscselect::empty(),
            miscmask: 0,
            _reserved2: [0; 4],
            isvfamilyid: [0; 16],
            attributes: Attributes::default(),
            attributemask: Attributes::default(),
            enclavehash: [0; 32],
            _reserved3: [0; 16],
            isvextprodid: [0; 16],
            isvprodid: 0,
            isvsvn: 0,
            _reserved4: [0; 12],
            q1: [0; 384],
            q2: [0; 384],
        }
    }
}

impl Sigstruct {
    /// The 256 bytes the RSA signature covers: `[0..128) ‖ [900..1028)`.
    pub fn signed_data(&self) -> Vec<u8> {
        let bytes = self.to_bytes();
        let mut out = Vec::with_capacity(256);
        for r in SIGNED_RANGES {
            out.extend_from_slice(&bytes[r]);
        }
        out
    }

    /// MRSIGNER: SHA-256 of the little-endian modulus (whether or not the signature is valid).
    pub fn mrsigner(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        Sha256::digest(self.modulus).into()
    }
}

impl Codec for Sigstruct {
    const NAME: &'static str = "SIGSTRUCT";

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.header);
        out.extend_from_slice(&self.vendor.to_le_bytes());
        out.extend_from_slice(&self.date.0.to_le_bytes());
        out.extend_from_slice(&self.header2);
        out.extend_from_slice(&self.swdefined.to_le_bytes());
        out.extend_from_slice(&self._reserved1);
        out.extend_from_slice(&self.modulus);
        out.extend_from_slice(&self.exponent.to_le_bytes());
        out.extend_from_slice(&self.signature);
        self.miscselect.encode(out);
        out.extend_from_slice(&self.miscmask.to_le_bytes());
        out.extend_from_slice(&self._reserved2);
        out.extend_from_slice(&self.isvfamilyid);
        self.attributes.encode(out);
        self.attributemask.encode(out);
        out.extend_from_slice(&self.enclavehash);
        out.extend_from_slice(&self._reserved3);
        out.extend_from_slice(&self.isvextprodid);
        out.extend_from_slice(&self.isvprodid.to_le_bytes());
        out.extend_from_slice(&self.isvsvn.to_le_bytes());
        out.extend_from_slice(&self._reserved4);
        out.extend_from_slice(&self.q1);
        out.extend_from_slice(&self.q2);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let header: [u8; 16] = r.array("SIGSTRUCT.HEADER")?;
        // Bytes 12..16 of HEADER are the launch type; the first twelve are fixed.
        if header[..12] != SIGSTRUCT_HEADER[..12] {
            return Err(DecodeError::Invalid {
                what: "SIGSTRUCT.HEADER",
                reason: "does not hold the fixed SIGSTRUCT header bytes".into(),
            });
        }
        let vendor = r.u32("SIGSTRUCT.VENDOR")?;
        let date = SigstructDate(r.u32("SIGSTRUCT.DATE")?);
        let header2: [u8; 16] = r.array("SIGSTRUCT.HEADER2")?;
        if header2 != SIGSTRUCT_HEADER2 {
            return Err(DecodeError::Invalid {
                what: "SIGSTRUCT.HEADER2",
                reason: "does not hold the fixed SIGSTRUCT header2 bytes".into(),
            });
        }
        Ok(Sigstruct {
            header,
            vendor,
            date,
            header2,
            swdefined: r.u32("SIGSTRUCT.SWDEFINED")?,
            _reserved1: r.array("SIGSTRUCT.RESERVED1")?,
            modulus: r.array("SIGSTRUCT.MODULUS")?,
            exponent: r.u32("SIGSTRUCT.EXPONENT")?,
            signature: r.array("SIGSTRUCT.SIGNATURE")?,
            miscselect: Miscselect::read(r)?,
            miscmask: r.u32("SIGSTRUCT.MISCMASK")?,
            _reserved2: r.array("SIGSTRUCT.RESERVED2")?,
            isvfamilyid: r.array("SIGSTRUCT.ISVFAMILYID")?,
            attributes: Attributes::read(r)?,
            attributemask: Attributes::read(r)?,
            enclavehash: r.array("SIGSTRUCT.ENCLAVEHASH")?,
            _reserved3: r.array("SIGSTRUCT.RESERVED3")?,
            isvextprodid: r.array("SIGSTRUCT.ISVEXTPRODID")?,
            isvprodid: r.u16("SIGSTRUCT.ISVPRODID")?,
            isvsvn: r.u16("SIGSTRUCT.ISVSVN")?,
            _reserved4: r.array("SIGSTRUCT.RESERVED4")?,
            q1: r.array("SIGSTRUCT.Q1")?,
            q2: r.array("SIGSTRUCT.Q2")?,
        })
    }
}

impl FixedSize for Sigstruct {
    const SIZE: usize = 1808;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dates_in_both_forms() {
        let d = SigstructDate::parse("20161214").unwrap();
        assert_eq!(d.0, 0x2016_1214);
        assert_eq!(SigstructDate::parse("2016-12-14").unwrap(), d);
        assert_eq!(d.to_string(), "2016-12-14");
    }

    #[test]
    fn rejects_malformed_dates() {
        for s in [
            "2016121",
            "2016-1214",
            "20161314",
            "20161200",
            "2016x214",
            "201612145",
        ] {
            assert!(SigstructDate::parse(s).is_err(), "{s}");
        }
        assert_eq!(SigstructDate(0x2016_121f).to_string(), "0x2016121f");
    }

    #[test]
    fn accepts_the_default_layout_at_1808_bytes() {
        let s = Sigstruct::default();
        let b = s.to_bytes();
        assert_eq!(b.len(), Sigstruct::SIZE);
        assert_eq!(u32::from_le_bytes(b[512..516].try_into().unwrap()), 3);
        assert_eq!(Sigstruct::from_bytes(&b).unwrap(), s);
        assert_eq!(s.signed_data().len(), 256);
    }
}
