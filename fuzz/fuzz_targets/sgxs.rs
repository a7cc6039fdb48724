//! SGXS streams: the reader never panics. Whatever it accepts re-writes to a canonical stream (a
//! TCS page's permissions measured as zero) whose SHA-256 is the MRENCLAVE, which reads back to the
//! same MRENCLAVE; a canonical input re-writes to the same bytes.
#![no_main]

use coffer_abi::sgxs::{SgxsReader, SgxsWriter, measure_sgxs};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let mut reader = SgxsReader::new(data);
    let mut out = Vec::new();
    let mut writer = SgxsWriter::new(&mut out);
    loop {
        match reader.next_record() {
            Ok(Some(rec)) => {
                if writer.write_record(&rec).is_err() {
                    return;
                }
            }
            Ok(None) => break,
            Err(_) => return,
        }
    }
    let Ok(mrenclave) = reader.finish() else {
        return;
    };
    let digest: [u8; 32] = Sha256::digest(&out).into();
    assert_eq!(digest, mrenclave, "canonical SGXS hash differs from MRENCLAVE");
    assert_eq!(measure_sgxs(out.as_slice()).ok(), Some(mrenclave), "canonical SGXS does not read back");
    if Sha256::digest(data).as_slice() == mrenclave {
        assert_eq!(out, data, "canonical SGXS did not round-trip");
    }
});
