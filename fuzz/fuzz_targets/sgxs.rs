//! SGXS streams: the reader never panics; a stream it accepts re-writes to the same bytes and its
//! MRENCLAVE is the SHA-256 of the stream.
#![no_main]

use coffer_abi::sgxs::{SgxsReader, SgxsWriter};
use libfuzzer_sys::fuzz_target;

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
    if reader.finish().is_ok() {
        assert_eq!(out, data, "SGXS did not round-trip");
    }
});
