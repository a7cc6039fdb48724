//! REPORT BODY (384 bytes): the part of a REPORT that a quote carries and a verifier reads.

use crate::attributes::{Attributes, Miscselect};
use crate::codec::{Codec, DecodeError, FixedSize, Reader};

/// The measured identity of an enclave as EREPORT writes it (SDM Vol. 3D §38.15).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReportBody {
    /// Security version of the CPU (or the soft platform).
    pub cpusvn: [u8; 16],
    pub miscselect: Miscselect,
    pub _reserved1: [u8; 12],
    /// ISV-assigned extended product ID (KSS).
    pub isvextprodid: [u8; 16],
    pub attributes: Attributes,
    pub mrenclave: [u8; 32],
    pub _reserved2: [u8; 32],
    pub mrsigner: [u8; 32],
    pub _reserved3: [u8; 32],
    /// CONFIGID (KSS).
    pub configid: [u8; 64],
    pub isvprodid: u16,
    pub isvsvn: u16,
    pub configsvn: u16,
    pub _reserved4: [u8; 42],
    /// ISV-assigned family ID (KSS).
    pub isvfamilyid: [u8; 16],
    /// Data the enclave binds into the report (commonly a hash of a public key and a nonce).
    pub reportdata: [u8; 64],
}

impl Default for ReportBody {
    fn default() -> Self {
        ReportBody {
            cpusvn: [0; 16],
            miscselect: Miscselect::empty(),
            _reserved1: [0; 12],
            isvextprodid: [0; 16],
            attributes: Attributes::default(),
            mrenclave: [0; 32],
            _reserved2: [0; 32],
            mrsigner: [0; 32],
            _reserved3: [0; 32],
            configid: [0; 64],
            isvprodid: 0,
            isvsvn: 0,
            configsvn: 0,
            _reserved4: [0; 42],
            isvfamilyid: [0; 16],
            reportdata: [0; 64],
        }
    }
}

impl Codec for ReportBody {
    const NAME: &'static str = "REPORT BODY";

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.cpusvn);
        self.miscselect.encode(out);
        out.extend_from_slice(&self._reserved1);
        out.extend_from_slice(&self.isvextprodid);
        self.attributes.encode(out);
        out.extend_from_slice(&self.mrenclave);
        out.extend_from_slice(&self._reserved2);
        out.extend_from_slice(&self.mrsigner);
        out.extend_from_slice(&self._reserved3);
        out.extend_from_slice(&self.configid);
        out.extend_from_slice(&self.isvprodid.to_le_bytes());
        out.extend_from_slice(&self.isvsvn.to_le_bytes());
        out.extend_from_slice(&self.configsvn.to_le_bytes());
        out.extend_from_slice(&self._reserved4);
        out.extend_from_slice(&self.isvfamilyid);
        out.extend_from_slice(&self.reportdata);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ReportBody {
            cpusvn: r.array("REPORT BODY.CPUSVN")?,
            miscselect: Miscselect::read(r)?,
            _reserved1: r.array("REPORT BODY.RESERVED1")?,
            isvextprodid: r.array("REPORT BODY.ISVEXTPRODID")?,
            attributes: Attributes::read(r)?,
            mrenclave: r.array("REPORT BODY.MRENCLAVE")?,
            _reserved2: r.array("REPORT BODY.RESERVED2")?,
            mrsigner: r.array("REPORT BODY.MRSIGNER")?,
            _reserved3: r.array("REPORT BODY.RESERVED3")?,
            configid: r.array("REPORT BODY.CONFIGID")?,
            isvprodid: r.u16("REPORT BODY.ISVPRODID")?,
            isvsvn: r.u16("REPORT BODY.ISVSVN")?,
            configsvn: r.u16("REPORT BODY.CONFIGSVN")?,
            _reserved4: r.array("REPORT BODY.RESERVED4")?,
            isvfamilyid: r.array("REPORT BODY.ISVFAMILYID")?,
            reportdata: r.array("REPORT BODY.REPORTDATA")?,
        })
    }
}

impl FixedSize for ReportBody {
    const SIZE: usize = 384;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..384u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn accepts_a_report_body_at_the_sdm_offsets() {
        let bytes = sample();
        let b = ReportBody::from_bytes(&bytes).unwrap();
        assert_eq!(&b.mrenclave[..], &bytes[64..96]);
        assert_eq!(&b.mrsigner[..], &bytes[128..160]);
        assert_eq!(b.isvprodid, u16::from_le_bytes([bytes[256], bytes[257]]));
        assert_eq!(b.isvsvn, u16::from_le_bytes([bytes[258], bytes[259]]));
        assert_eq!(&b.reportdata[..], &bytes[320..384]);
        assert_eq!(b.to_bytes(), bytes);
        assert_eq!(ReportBody::default().to_bytes().len(), ReportBody::SIZE);
    }

    #[test]
    fn rejects_truncated_and_padded_report_bodies() {
        let mut bytes = sample();
        assert!(matches!(
            ReportBody::from_bytes(&bytes[..383]),
            Err(DecodeError::Truncated { .. })
        ));
        bytes.push(0);
        assert!(matches!(
            ReportBody::from_bytes(&bytes),
            Err(DecodeError::TrailingBytes { .. })
        ));
    }
}
