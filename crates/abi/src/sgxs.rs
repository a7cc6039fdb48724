//! The SGXS stream: an enclave as the exact sequence of records SGX measures.
//!
//! An SGXS stream is a series of 64-byte ECREATE, EADD and EEXTEND records (see
//! [`MeasurementRecord`]), each EEXTEND record followed by its 256 data bytes. Because it is the
//! measured sequence itself, SHA-256 of a canonical SGXS stream is the enclave's MRENCLAVE, and
//! any tool can recompute it.
//!
//! [`SgxsReader`] parses a stream record by record through the validating [`Measurement`]
//! engine; [`SgxsWriter`] emits records, usually as the sink of a [`Measurement`] so that the
//! hash and the stream come from one pass. This module works over `std::io` traits and never
//! opens files; wrap files in `BufReader`/`BufWriter`.

use std::io::{self, Read, Write};

use thiserror::Error;

use crate::measure::{
    CHUNK_SIZE, MeasureError, Measurement, MeasurementRecord, PAGE_SIZE, RECORD_SIZE, RecordSink,
    TAG_EADD, TAG_ECREATE, TAG_EEXTEND,
};
use crate::secinfo::Secinfo;

/// The most pages (EADD records) an SGXS stream may add: 4 Mi pages, 16 GiB of enclave memory.
///
/// The reader remembers every page added (to reject a page added twice), so without this cap a
/// stream of nothing but 64-byte EADD records for a huge SIZE would make it hold billions of
/// offsets and exhaust the reader's memory.
pub const MAX_SGXS_PAGES: u64 = 1 << 22;

/// The longest SGXS stream read: one that adds and fully measures [`MAX_SGXS_PAGES`] pages
/// (about 20 GiB).
///
/// It bounds the time spent hashing an endless or enormous stream (a pipe, or a file that claims a
/// SIZE of 2^63 and repeats EEXTENDs) before it is rejected.
pub const MAX_SGXS_LEN: u64 =
    RECORD_SIZE_U64 + MAX_SGXS_PAGES * (RECORD_SIZE_U64 + CHUNKS_PER_PAGE_U64 * EEXTEND_LEN);

const RECORD_SIZE_U64: u64 = RECORD_SIZE as u64;
const CHUNKS_PER_PAGE_U64: u64 = PAGE_SIZE / CHUNK_SIZE;
/// An EEXTEND record with its chunk.
const EEXTEND_LEN: u64 = RECORD_SIZE_U64 + CHUNK_SIZE;

/// Why an SGXS stream was rejected.
#[derive(Debug, Error)]
pub enum SgxsError {
    /// Reading the underlying stream failed.
    #[error("reading the SGXS stream failed")]
    Io(#[source] io::Error),
    /// The stream ends inside a record.
    #[error(
        "SGXS record {index} at offset {offset}: truncated, the {part} needs {needed} bytes \
         but the stream ends after {got}"
    )]
    Truncated {
        index: u64,
        offset: u64,
        part: &'static str,
        needed: usize,
        got: usize,
    },
    /// A record starts with a tag that is not ECREATE, EADD or EEXTEND.
    #[error("SGXS record {index} at offset {offset}: unknown tag \"{}\"", .tag.escape_ascii())]
    UnknownTag {
        index: u64,
        offset: u64,
        tag: [u8; 8],
    },
    /// Bytes a record requires to be zero are not.
    #[error(
        "SGXS record {index} at offset {offset}: the padding of the {record} record is not zero"
    )]
    NonZeroPadding {
        index: u64,
        offset: u64,
        record: &'static str,
    },
    /// The stream goes past a size cap.
    #[error(
        "SGXS record {index} at offset {offset}: the stream exceeds its limit of {limit} {what}"
    )]
    TooLarge {
        index: u64,
        offset: u64,
        what: &'static str,
        limit: u64,
    },
    /// The records do not form a sequence the CPU would accept.
    #[error("SGXS record {index} at offset {offset}: {source}")]
    Measure {
        index: u64,
        offset: u64,
        #[source]
        source: MeasureError,
    },
    /// The reader was used again after it had rejected the stream.
    #[error("the SGXS stream was already rejected by an earlier error")]
    AlreadyFailed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Done,
    Failed,
}

/// Reads an SGXS stream record by record, checking and measuring each one.
///
/// Iterate it (or call [`SgxsReader::next_record`]) to see the records, then call
/// [`SgxsReader::finish`] for MRENCLAVE; `finish` reads and checks whatever is left.
/// A TCS page's EADD record is returned as it is measured, permissions cleared.
#[derive(Debug)]
pub struct SgxsReader<R> {
    inner: R,
    engine: Measurement<'static>,
    offset: u64,
    index: u64,
    state: State,
}

impl<R: Read> SgxsReader<R> {
    pub fn new(inner: R) -> Self {
        SgxsReader {
            inner,
            engine: Measurement::new(),
            offset: 0,
            index: 0,
            state: State::Open,
        }
    }

    /// The next record, or `None` at the end of the stream.
    pub fn next_record(&mut self) -> Result<Option<MeasurementRecord>, SgxsError> {
        match self.state {
            State::Open => {}
            State::Done => return Ok(None),
            State::Failed => return Err(SgxsError::AlreadyFailed),
        }
        match self.read_record() {
            Ok(Some(r)) => {
                self.index += 1;
                Ok(Some(r))
            }
            Ok(None) => {
                self.state = State::Done;
                Ok(None)
            }
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    /// Reads the rest of the stream and returns MRENCLAVE.
    pub fn finish(mut self) -> Result<[u8; 32], SgxsError> {
        while self.next_record()?.is_some() {}
        let (index, offset) = (self.index, self.offset);
        self.engine.finish().map_err(|source| SgxsError::Measure {
            index,
            offset,
            source,
        })
    }

    /// Bytes read so far.
    pub fn position(&self) -> u64 {
        self.offset
    }

    fn too_large(&self, what: &'static str, limit: u64) -> SgxsError {
        SgxsError::TooLarge {
            index: self.index,
            offset: self.offset,
            what,
            limit,
        }
    }

    fn read_record(&mut self) -> Result<Option<MeasurementRecord>, SgxsError> {
        let mut header = [0u8; RECORD_SIZE];
        let got = read_full(&mut self.inner, &mut header).map_err(SgxsError::Io)?;
        if got == 0 {
            return Ok(None);
        }
        let (index, offset) = (self.index, self.offset);
        if got < RECORD_SIZE {
            return Err(SgxsError::Truncated {
                index,
                offset,
                part: "record header",
                needed: RECORD_SIZE,
                got,
            });
        }
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&header[..8]);
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&header[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let padding = |from: usize, record| {
            if header[from..].iter().any(|b| *b != 0) {
                Err(SgxsError::NonZeroPadding {
                    index,
                    offset,
                    record,
                })
            } else {
                Ok(())
            }
        };
        let record_len = if tag == TAG_EEXTEND {
            EEXTEND_LEN
        } else {
            RECORD_SIZE_U64
        };
        if offset.saturating_add(record_len) > MAX_SGXS_LEN {
            return Err(self.too_large("bytes", MAX_SGXS_LEN));
        }
        let record = match tag {
            TAG_ECREATE => {
                padding(20, "ECREATE")?;
                let mut ssa = [0u8; 4];
                ssa.copy_from_slice(&header[8..12]);
                MeasurementRecord::ECreate {
                    ssaframesize: u32::from_le_bytes(ssa),
                    size: u64_at(12),
                }
            }
            TAG_EADD => {
                if self.engine.size().is_some()
                    && u64::try_from(self.engine.pages_added()).unwrap_or(u64::MAX)
                        >= MAX_SGXS_PAGES
                {
                    return Err(self.too_large("EADD records", MAX_SGXS_PAGES));
                }
                let (flags, page_type) = Secinfo::from_flags_word(u64_at(16));
                let mut secinfo = Secinfo::new(page_type, flags);
                secinfo._reserved[..40].copy_from_slice(&header[24..]);
                MeasurementRecord::EAdd {
                    offset: u64_at(8),
                    secinfo,
                }
            }
            TAG_EEXTEND => {
                padding(16, "EEXTEND")?;
                if let Some(size) = self.engine.size() {
                    let limit = size / CHUNK_SIZE;
                    if self.engine.eextends() >= limit {
                        return Err(self.too_large("EEXTEND records (SIZE / 256)", limit));
                    }
                }
                let mut data = [0u8; 256];
                let got = read_full(&mut self.inner, &mut data).map_err(SgxsError::Io)?;
                if got < data.len() {
                    return Err(SgxsError::Truncated {
                        index,
                        offset,
                        part: "EEXTEND data",
                        needed: data.len(),
                        got,
                    });
                }
                MeasurementRecord::EExtend {
                    offset: u64_at(8),
                    data,
                }
            }
            _ => {
                return Err(SgxsError::UnknownTag { index, offset, tag });
            }
        };
        self.engine
            .push(&record)
            .map_err(|source| SgxsError::Measure {
                index,
                offset,
                source,
            })?;
        self.offset = offset.saturating_add(record_len);
        let mut record = record;
        record.canonicalize();
        Ok(Some(record))
    }
}

impl<R: Read> Iterator for SgxsReader<R> {
    type Item = Result<MeasurementRecord, SgxsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state == State::Failed {
            return None;
        }
        self.next_record().transpose()
    }
}

/// Reads `buf.len()` bytes unless the stream ends first; returns how many were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let len = buf.len() as u64;
    let mut dst = buf;
    let got = io::copy(&mut r.take(len), &mut dst)?;
    Ok(usize::try_from(got).unwrap_or(usize::MAX))
}

/// Reads and checks a whole SGXS stream and returns its MRENCLAVE.
pub fn measure_sgxs(r: impl Read) -> Result<[u8; 32], SgxsError> {
    SgxsReader::new(r).finish()
}

/// Writes records to an SGXS stream. It does not check them: use it as the sink of a
/// [`Measurement`] (or through [`write_sgxs`]) so that only a valid sequence is written.
#[derive(Debug)]
pub struct SgxsWriter<W> {
    inner: W,
    written: u64,
}

impl<W: Write> SgxsWriter<W> {
    pub fn new(inner: W) -> Self {
        SgxsWriter { inner, written: 0 }
    }

    /// Appends one record (and its chunk, for EEXTEND).
    pub fn write_record(&mut self, record: &MeasurementRecord) -> io::Result<()> {
        self.inner.write_all(&record.header())?;
        if let Some(data) = record.data() {
            self.inner.write_all(data)?;
        }
        self.written += u64::try_from(record.encoded_len()).unwrap_or(u64::MAX);
        Ok(())
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> RecordSink for SgxsWriter<W> {
    fn record(&mut self, record: &MeasurementRecord) -> io::Result<()> {
        self.write_record(record)
    }
}

/// Checks and measures `records`, writes them to `out` as an SGXS stream, flushes it and returns
/// MRENCLAVE.
pub fn write_sgxs<'r>(
    records: impl IntoIterator<Item = &'r MeasurementRecord>,
    out: impl Write,
) -> Result<[u8; 32], MeasureError> {
    let mut writer = SgxsWriter::new(out);
    let mut engine = Measurement::with_sink(&mut writer);
    for r in records {
        engine.push(r)?;
    }
    let mrenclave = engine.finish()?;
    writer.flush().map_err(MeasureError::Sink)?;
    Ok(mrenclave)
}
