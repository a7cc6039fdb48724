//! REPORT (432 bytes): what EREPORT writes, a REPORT BODY with its key ID and CMAC
//! (SDM Vol. 3D §38.15).
//!
//! This module owns the layout only. Computing and checking the MAC belong to `coffer-cpu`.

use crate::codec::{Codec, DecodeError, FixedSize, Reader, to_array};
use crate::report_body::ReportBody;

/// REPORT: BODY (384) @0, KEYID (32) @384, MAC (16) @416.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Report {
    /// Offset 0.
    pub body: ReportBody,
    /// Offset 384: the value the report key was derived with.
    pub keyid: [u8; 32],
    /// Offset 416: AES-128-CMAC over the body with the target enclave's report key.
    pub mac: [u8; 16],
}

impl Report {
    /// The 384 bytes the MAC covers: the encoded body.
    pub fn mac_data(&self) -> [u8; 384] {
        to_array::<ReportBody, 384>(&self.body)
    }
}

impl Codec for Report {
    const NAME: &'static str = "REPORT";

    fn encode(&self, out: &mut Vec<u8>) {
        self.body.encode(out);
        out.extend_from_slice(&self.keyid);
        out.extend_from_slice(&self.mac);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Report {
            body: ReportBody::read(r)?,
            keyid: r.array("REPORT.KEYID")?,
            mac: r.array("REPORT.MAC")?,
        })
    }
}

impl FixedSize for Report {
    const SIZE: usize = 432;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..432u32).map(|i| (i * 13 % 251) as u8).collect()
    }

    #[test]
    fn accepts_a_report_at_the_sdm_offsets() {
        let bytes = sample();
        let r = Report::from_bytes(&bytes).unwrap();
        assert_eq!(&r.body.mrenclave[..], &bytes[64..96]);
        assert_eq!(&r.keyid[..], &bytes[384..416]);
        assert_eq!(&r.mac[..], &bytes[416..432]);
        assert_eq!(&r.mac_data()[..], &bytes[..384]);
        assert_eq!(r.to_bytes(), bytes);
        assert_eq!(Report::default().to_bytes().len(), Report::SIZE);
        assert_eq!(Report::SIZE, 432);
    }

    #[test]
    fn rejects_truncated_and_padded_reports() {
        let mut bytes = sample();
        assert!(matches!(
            Report::from_bytes(&bytes[..431]),
            Err(DecodeError::Truncated { .. })
        ));
        bytes.push(0);
        assert!(matches!(
            Report::from_bytes(&bytes),
            Err(DecodeError::TrailingBytes { count: 1, .. })
        ));
    }
}
