//! TARGETINFO (512 bytes): names the enclave a REPORT is meant for (SDM Vol. 3D §38.16).

use crate::attributes::{Attributes, Miscselect};
use crate::codec::{Codec, DecodeError, FixedSize, Reader};
use crate::report_body::ReportBody;

/// TARGETINFO, field by field at the SDM's offsets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Targetinfo {
    /// Offset 0: MRENCLAVE of the target enclave.
    pub measurement: [u8; 32],
    /// Offset 32.
    pub attributes: Attributes,
    /// Offset 48.
    pub _reserved1: [u8; 2],
    /// Offset 50 (KSS).
    pub configsvn: u16,
    /// Offset 52.
    pub miscselect: Miscselect,
    /// Offset 56.
    pub _reserved2: [u8; 8],
    /// Offset 64 (KSS).
    pub configid: [u8; 64],
    /// Offset 128.
    pub _reserved3: [u8; 384],
}

impl Default for Targetinfo {
    fn default() -> Self {
        Targetinfo {
            measurement: [0; 32],
            attributes: Attributes::default(),
            _reserved1: [0; 2],
            configsvn: 0,
            miscselect: Miscselect::empty(),
            _reserved2: [0; 8],
            configid: [0; 64],
            _reserved3: [0; 384],
        }
    }
}

impl Targetinfo {
    /// The TARGETINFO of the enclave that produced `body`, as the SDK's `sgx_self_target` builds
    /// it: its MRENCLAVE, ATTRIBUTES, CONFIGSVN, MISCSELECT and CONFIGID, reserved bytes zero.
    pub fn from_report_body(body: &ReportBody) -> Self {
        Targetinfo {
            measurement: body.mrenclave,
            attributes: body.attributes,
            configsvn: body.configsvn,
            miscselect: body.miscselect,
            configid: body.configid,
            ..Targetinfo::default()
        }
    }
}

impl From<&ReportBody> for Targetinfo {
    fn from(body: &ReportBody) -> Self {
        Targetinfo::from_report_body(body)
    }
}

impl Codec for Targetinfo {
    const NAME: &'static str = "TARGETINFO";

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.measurement);
        self.attributes.encode(out);
        out.extend_from_slice(&self._reserved1);
        out.extend_from_slice(&self.configsvn.to_le_bytes());
        self.miscselect.encode(out);
        out.extend_from_slice(&self._reserved2);
        out.extend_from_slice(&self.configid);
        out.extend_from_slice(&self._reserved3);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Targetinfo {
            measurement: r.array("TARGETINFO.MEASUREMENT")?,
            attributes: Attributes::read(r)?,
            _reserved1: r.array("TARGETINFO.RESERVED1")?,
            configsvn: r.u16("TARGETINFO.CONFIGSVN")?,
            miscselect: Miscselect::read(r)?,
            _reserved2: r.array("TARGETINFO.RESERVED2")?,
            configid: r.array("TARGETINFO.CONFIGID")?,
            _reserved3: r.array("TARGETINFO.RESERVED3")?,
        })
    }
}

impl FixedSize for Targetinfo {
    const SIZE: usize = 512;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::AttributesFlags;

    fn sample() -> Vec<u8> {
        (0..512u32).map(|i| (i * 11 % 251) as u8).collect()
    }

    #[test]
    fn accepts_a_targetinfo_at_the_sdm_offsets() {
        let bytes = sample();
        let t = Targetinfo::from_bytes(&bytes).unwrap();
        assert_eq!(&t.measurement[..], &bytes[..32]);
        assert_eq!(t.attributes.to_array()[..], bytes[32..48]);
        assert_eq!(t.configsvn, u16::from_le_bytes([bytes[50], bytes[51]]));
        assert_eq!(t.miscselect.bits().to_le_bytes()[..], bytes[52..56]);
        assert_eq!(&t.configid[..], &bytes[64..128]);
        assert_eq!(t.to_bytes(), bytes);
        assert_eq!(Targetinfo::default().to_bytes().len(), Targetinfo::SIZE);
        assert_eq!(Targetinfo::SIZE, 512);
    }

    #[test]
    fn builds_the_self_target_from_a_report_body() {
        let body = ReportBody {
            mrenclave: [0xaa; 32],
            mrsigner: [0xbb; 32],
            attributes: Attributes {
                flags: AttributesFlags::INIT | AttributesFlags::MODE64BIT,
                xfrm: 3,
            },
            miscselect: Miscselect::EXINFO,
            configsvn: 7,
            configid: [0xcc; 64],
            isvsvn: 9,
            ..ReportBody::default()
        };
        let t = Targetinfo::from(&body);
        assert_eq!(t.measurement, body.mrenclave);
        assert_eq!(t.attributes, body.attributes);
        assert_eq!(t.miscselect, body.miscselect);
        assert_eq!(t.configsvn, 7);
        assert_eq!(t.configid, body.configid);
        let bytes = t.to_bytes();
        assert!(bytes[128..].iter().all(|b| *b == 0));
        assert_eq!(&bytes[48..50], &[0, 0]);
    }

    #[test]
    fn rejects_truncated_and_padded_targetinfo() {
        let mut bytes = sample();
        assert!(matches!(
            Targetinfo::from_bytes(&bytes[..511]),
            Err(DecodeError::Truncated { .. })
        ));
        bytes.push(0);
        assert!(matches!(
            Targetinfo::from_bytes(&bytes),
            Err(DecodeError::TrailingBytes { count: 1, .. })
        ));
    }
}
