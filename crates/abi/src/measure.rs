//! The MRENCLAVE measurement engine (SDM Vol. 3D §39.1 ECREATE, EADD, EEXTEND).
//!
//! SGX measures an enclave as it is built: SHA-256 over a sequence of 64-byte records, one per
//! ECREATE, EADD and EEXTEND, each EEXTEND record followed by the 256 bytes it measures.
//! MRENCLAVE is the digest of the whole sequence.
//!
//! [`Measurement`] takes the records as typed values ([`MeasurementRecord`]), checks that the
//! sequence is one the CPU would accept, feeds SHA-256 incrementally (no allocation per record)
//! and hands each accepted record to an optional [`RecordSink`], so that an SGXS stream and the
//! hash come out of one pass.
//!
//! Every record is a whole number of 64-byte SHA-256 blocks, so `sha2` never buffers a partial
//! block: each `update` runs the compression function straight over the bytes given, and a page's
//! chunks are hashed where they lie (copying them next to their headers, to hash a page in one
//! call, was measured slower: the copy waits for memory that the in-place hash reads while the
//! hardware prefetches). Without a sink, [`Measurement::add_page`] builds no record values and
//! checks the page once for its 17 records. The pages added are remembered as runs of
//! consecutive pages, so adding pages in ascending order (what a layout does) costs a few
//! comparisons and no allocation per page.

use std::collections::BTreeMap;
use std::io;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::secinfo::{PageType, Secinfo, SecinfoFlags};

/// Size of an enclave page.
pub const PAGE_SIZE: u64 = 4096;
/// Size of the chunk one EEXTEND measures.
pub const CHUNK_SIZE: u64 = 256;
/// Size of one record header.
pub const RECORD_SIZE: usize = 64;
/// The smallest enclave SIZE: two pages.
pub const MIN_ENCLAVE_SIZE: u64 = 2 * PAGE_SIZE;
/// Number of EEXTEND chunks in a page.
pub const CHUNKS_PER_PAGE: usize = 16;

/// Tag of an ECREATE record.
pub const TAG_ECREATE: [u8; 8] = *b"ECREATE\0";
/// Tag of an EADD record.
pub const TAG_EADD: [u8; 8] = *b"EADD\0\0\0\0";
/// Tag of an EEXTEND record.
pub const TAG_EEXTEND: [u8; 8] = *b"EEXTEND\0";

/// One measured step of building an enclave.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MeasurementRecord {
    /// `"ECREATE\0"` ‖ SSAFRAMESIZE u32 ‖ SIZE u64 ‖ 44 zero bytes.
    ECreate {
        /// Size of one SSA frame, in pages.
        ssaframesize: u32,
        /// Size of the enclave's address range, in bytes.
        size: u64,
    },
    /// `"EADD\0\0\0\0"` ‖ page offset u64 ‖ SECINFO bytes 0..48.
    EAdd {
        /// Offset of the page from the enclave base.
        offset: u64,
        /// Type and permissions of the page. Only its first 48 bytes are measured.
        secinfo: Secinfo,
    },
    /// `"EEXTEND\0"` ‖ chunk offset u64 ‖ 48 zero bytes, then the 256 bytes of the chunk.
    EExtend {
        /// Offset of the chunk from the enclave base.
        offset: u64,
        /// The measured bytes.
        data: [u8; 256],
    },
}

impl MeasurementRecord {
    /// The SDM's name of the instruction.
    pub fn name(&self) -> &'static str {
        match self {
            MeasurementRecord::ECreate { .. } => "ECREATE",
            MeasurementRecord::EAdd { .. } => "EADD",
            MeasurementRecord::EExtend { .. } => "EEXTEND",
        }
    }

    /// The 64-byte record header.
    pub fn header(&self) -> [u8; RECORD_SIZE] {
        match self {
            MeasurementRecord::ECreate { ssaframesize, size } => {
                ecreate_header(*ssaframesize, *size)
            }
            MeasurementRecord::EAdd { offset, secinfo } => eadd_header(*offset, secinfo),
            MeasurementRecord::EExtend { offset, .. } => eextend_header(*offset),
        }
    }

    /// The chunk measured after the header, for EEXTEND.
    pub fn data(&self) -> Option<&[u8; 256]> {
        match self {
            MeasurementRecord::EExtend { data, .. } => Some(data),
            _ => None,
        }
    }

    /// Puts the record in the form the CPU measures: a TCS page's R, W and X bits cleared.
    pub fn canonicalize(&mut self) {
        if let MeasurementRecord::EAdd { secinfo, .. } = self {
            secinfo.canonicalize_for_eadd();
        }
    }

    /// Size of the record in an SGXS stream: 64, or 320 for EEXTEND.
    pub fn encoded_len(&self) -> usize {
        RECORD_SIZE + self.data().map_or(0, |d| d.len())
    }

    /// Appends the record as it appears in an SGXS stream.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.header());
        if let Some(d) = self.data() {
            out.extend_from_slice(d);
        }
    }
}

fn ecreate_header(ssaframesize: u32, size: u64) -> [u8; RECORD_SIZE] {
    let mut h = [0u8; RECORD_SIZE];
    h[..8].copy_from_slice(&TAG_ECREATE);
    h[8..12].copy_from_slice(&ssaframesize.to_le_bytes());
    h[12..20].copy_from_slice(&size.to_le_bytes());
    h
}

fn eadd_header(offset: u64, secinfo: &Secinfo) -> [u8; RECORD_SIZE] {
    let mut h = [0u8; RECORD_SIZE];
    h[..8].copy_from_slice(&TAG_EADD);
    h[8..16].copy_from_slice(&offset.to_le_bytes());
    h[16..].copy_from_slice(&secinfo.measured_bytes());
    h
}

fn eextend_header(offset: u64) -> [u8; RECORD_SIZE] {
    let mut h = [0u8; RECORD_SIZE];
    h[..8].copy_from_slice(&TAG_EEXTEND);
    h[8..16].copy_from_slice(&offset.to_le_bytes());
    h
}

/// Receives every record a [`Measurement`] accepts, in order, as it was measured (a TCS page's
/// permissions already cleared).
pub trait RecordSink {
    fn record(&mut self, record: &MeasurementRecord) -> io::Result<()>;
}

impl<F: FnMut(&MeasurementRecord) -> io::Result<()>> RecordSink for F {
    fn record(&mut self, record: &MeasurementRecord) -> io::Result<()> {
        self(record)
    }
}

/// A record sequence the CPU would refuse. Each variant names the rule it breaks.
#[derive(Debug, Error)]
pub enum MeasureError {
    /// A record came before ECREATE.
    #[error("{record} before ECREATE: ECREATE must be the first record")]
    NotCreated { record: &'static str },
    /// The measurement ended without any record.
    #[error("no ECREATE: a measurement must start with ECREATE")]
    NoEcreate,
    /// ECREATE came a second time.
    #[error("a second ECREATE: ECREATE must appear exactly once")]
    CreatedTwice,
    /// ECREATE with SSAFRAMESIZE 0.
    #[error("ECREATE: SSAFRAMESIZE is 0, it must be at least 1 page")]
    SsaFrameSizeZero,
    /// ECREATE with a SIZE that is not a power of two, or smaller than two pages.
    #[error("ECREATE: SIZE 0x{size:x} is not a power of two of at least 0x2000 bytes")]
    InvalidSize { size: u64 },
    /// EADD at an offset that is not a multiple of 4096.
    #[error("EADD at 0x{offset:x}: the offset is not a multiple of the page size (0x1000)")]
    UnalignedPage { offset: u64 },
    /// EADD past the end of the enclave.
    #[error("EADD at 0x{offset:x}: the page lies outside the enclave (SIZE 0x{size:x})")]
    PageOutsideEnclave { offset: u64, size: u64 },
    /// EADD of a page that was already added.
    #[error("EADD at 0x{offset:x}: the page was already added")]
    PageAddedTwice { offset: u64 },
    /// EADD of a page type that EADD does not create.
    #[error(
        "EADD at 0x{offset:x}: page type {page_type} cannot be added \
         (only PT_REG, PT_TCS, PT_SS_FIRST and PT_SS_REST)"
    )]
    PageTypeNotAddable { offset: u64, page_type: PageType },
    /// EADD with reserved SECINFO bits or bytes set.
    #[error("EADD at 0x{offset:x}: reserved SECINFO bits or bytes are not zero")]
    SecinfoReserved { offset: u64 },
    /// EEXTEND at an offset that is not a multiple of 256.
    #[error("EEXTEND at 0x{offset:x}: the offset is not a multiple of 256")]
    UnalignedChunk { offset: u64 },
    /// EEXTEND of a chunk in no page added so far.
    #[error("EEXTEND at 0x{offset:x}: the chunk is not inside a page added by EADD")]
    ChunkOutsideAddedPage { offset: u64 },
    /// The record sink failed; the record was not measured.
    #[error("the measurement record sink failed")]
    Sink(#[source] io::Error),
}

/// SECINFO.FLAGS bits that EADD allows: the defined flags (the page type is kept apart).
const SECINFO_DEFINED: SecinfoFlags = SecinfoFlags::R
    .union(SecinfoFlags::W)
    .union(SecinfoFlags::X)
    .union(SecinfoFlags::PENDING)
    .union(SecinfoFlags::MODIFIED)
    .union(SecinfoFlags::PR);

/// A set of page offsets, kept as runs of consecutive pages (start → end, exclusive): one entry
/// for a whole layout region, however large, and a constant-time append for ascending pages.
#[derive(Debug, Default)]
struct PageSet {
    runs: BTreeMap<u64, u64>,
    len: u64,
}

impl PageSet {
    fn len(&self) -> u64 {
        self.len
    }

    fn contains(&self, page: u64) -> bool {
        self.runs
            .range(..=page)
            .next_back()
            .is_some_and(|(_, end)| page < *end)
    }

    /// Adds `page`, a page offset not in the set.
    fn insert(&mut self, page: u64) {
        let end = page.saturating_add(PAGE_SIZE);
        self.len += 1;
        // Ascending pages extend the last run.
        if let Some(mut last) = self.runs.last_entry()
            && *last.get() == page
        {
            *last.get_mut() = end;
            return;
        }
        let end = self.runs.remove(&end).unwrap_or(end);
        match self.runs.range_mut(..page).next_back() {
            Some((_, prev_end)) if *prev_end == page => *prev_end = end,
            _ => {
                self.runs.insert(page, end);
            }
        }
    }
}

/// The running measurement of one enclave.
///
/// Every method checks its record first: on an error nothing was measured or passed to the sink,
/// and the measurement can go on.
pub struct Measurement<'s> {
    hasher: Sha256,
    /// SSAFRAMESIZE and SIZE, once ECREATE has been measured.
    created: Option<(u32, u64)>,
    /// Offsets of the pages added so far.
    pages: PageSet,
    /// The page most recently checked for an EEXTEND (EEXTENDs follow their EADD).
    last_page: Option<u64>,
    eextends: u64,
    sink: Option<&'s mut dyn RecordSink>,
}

impl std::fmt::Debug for Measurement<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Measurement")
            .field("created", &self.created)
            .field("pages", &self.pages.len())
            .field("eextends", &self.eextends)
            .field("sink", &self.sink.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Measurement<'static> {
    fn default() -> Self {
        Measurement::new()
    }
}

impl Measurement<'static> {
    /// A measurement that only computes MRENCLAVE.
    pub fn new() -> Self {
        Measurement {
            hasher: Sha256::new(),
            created: None,
            pages: PageSet::default(),
            last_page: None,
            eextends: 0,
            sink: None,
        }
    }
}

impl<'s> Measurement<'s> {
    /// A measurement that also hands every accepted record to `sink`.
    pub fn with_sink(sink: &'s mut dyn RecordSink) -> Self {
        Measurement {
            sink: Some(sink),
            ..Measurement::new()
        }
    }

    /// SIZE from ECREATE, once measured.
    pub fn size(&self) -> Option<u64> {
        self.created.map(|(_, s)| s)
    }

    /// SSAFRAMESIZE from ECREATE, once measured.
    pub fn ssaframesize(&self) -> Option<u32> {
        self.created.map(|(s, _)| s)
    }

    /// Number of pages added so far.
    pub fn pages_added(&self) -> usize {
        usize::try_from(self.pages.len()).unwrap_or(usize::MAX)
    }

    /// Number of EEXTENDs measured so far.
    pub fn eextends(&self) -> u64 {
        self.eextends
    }

    /// Measures one record.
    pub fn push(&mut self, record: &MeasurementRecord) -> Result<(), MeasureError> {
        match record {
            MeasurementRecord::ECreate { ssaframesize, size } => self.ecreate(*ssaframesize, *size),
            MeasurementRecord::EAdd { offset, secinfo } => self.eadd(*offset, secinfo),
            MeasurementRecord::EExtend { offset, data } => self.eextend(*offset, data),
        }
    }

    fn emit(&mut self, record: impl FnOnce() -> MeasurementRecord) -> Result<(), MeasureError> {
        match self.sink.as_mut() {
            Some(sink) => sink.record(&record()).map_err(MeasureError::Sink),
            None => Ok(()),
        }
    }

    /// ECREATE: starts the enclave. Must come first, exactly once.
    pub fn ecreate(&mut self, ssaframesize: u32, size: u64) -> Result<(), MeasureError> {
        if self.created.is_some() {
            return Err(MeasureError::CreatedTwice);
        }
        if ssaframesize == 0 {
            return Err(MeasureError::SsaFrameSizeZero);
        }
        if !size.is_power_of_two() || size < MIN_ENCLAVE_SIZE {
            return Err(MeasureError::InvalidSize { size });
        }
        self.emit(|| MeasurementRecord::ECreate { ssaframesize, size })?;
        self.hasher.update(ecreate_header(ssaframesize, size));
        self.created = Some((ssaframesize, size));
        Ok(())
    }

    /// EADD: adds the page at `offset`. For a TCS page the R, W and X bits are measured as zero,
    /// whatever `secinfo` says, as the CPU does.
    pub fn eadd(&mut self, offset: u64, secinfo: &Secinfo) -> Result<(), MeasureError> {
        let secinfo = self.check_eadd(offset, secinfo)?;
        let header = eadd_header(offset, &secinfo);
        self.emit(|| MeasurementRecord::EAdd { offset, secinfo })?;
        self.hasher.update(header);
        self.pages.insert(offset);
        Ok(())
    }

    /// Checks an EADD without measuring it; returns the SECINFO as measured.
    fn check_eadd(&self, offset: u64, secinfo: &Secinfo) -> Result<Secinfo, MeasureError> {
        let (_, size) = self
            .created
            .ok_or(MeasureError::NotCreated { record: "EADD" })?;
        if !offset.is_multiple_of(PAGE_SIZE) {
            return Err(MeasureError::UnalignedPage { offset });
        }
        if offset >= size {
            return Err(MeasureError::PageOutsideEnclave { offset, size });
        }
        if !matches!(
            secinfo.page_type,
            PageType::REG | PageType::TCS | PageType::SS_FIRST | PageType::SS_REST
        ) {
            return Err(MeasureError::PageTypeNotAddable {
                offset,
                page_type: secinfo.page_type,
            });
        }
        if !SECINFO_DEFINED.contains(secinfo.flags) || secinfo._reserved.iter().any(|b| *b != 0) {
            return Err(MeasureError::SecinfoReserved { offset });
        }
        if self.pages.contains(offset) {
            return Err(MeasureError::PageAddedTwice { offset });
        }
        let mut secinfo = secinfo.clone();
        secinfo.canonicalize_for_eadd();
        Ok(secinfo)
    }

    /// EEXTEND: measures the 256 bytes at `offset`, inside a page already added.
    pub fn eextend(&mut self, offset: u64, data: &[u8; 256]) -> Result<(), MeasureError> {
        if self.created.is_none() {
            return Err(MeasureError::NotCreated { record: "EEXTEND" });
        }
        if !offset.is_multiple_of(CHUNK_SIZE) {
            return Err(MeasureError::UnalignedChunk { offset });
        }
        let page = offset - offset % PAGE_SIZE;
        if self.last_page != Some(page) {
            if !self.pages.contains(page) {
                return Err(MeasureError::ChunkOutsideAddedPage { offset });
            }
            self.last_page = Some(page);
        }
        self.emit(|| MeasurementRecord::EExtend {
            offset,
            data: *data,
        })?;
        self.hasher.update(eextend_header(offset));
        self.hasher.update(data);
        self.eextends += 1;
        Ok(())
    }

    /// EADDs the page at `offset` and, if `measure`, EEXTENDs its 16 chunks in order.
    ///
    /// The page is checked before anything is measured; only a sink error can stop it part-way.
    pub fn add_page(
        &mut self,
        offset: u64,
        secinfo: &Secinfo,
        data: &[u8; 4096],
        measure: bool,
    ) -> Result<(), MeasureError> {
        if !measure || self.sink.is_some() {
            // Record by record, so that the sink sees each one as it is measured.
            self.eadd(offset, secinfo)?;
            if measure {
                let (chunks, _) = data.as_chunks::<256>();
                let mut chunk_offset = offset;
                for chunk in chunks {
                    self.eextend(chunk_offset, chunk)?;
                    chunk_offset += CHUNK_SIZE;
                }
            }
            return Ok(());
        }
        // No sink: no record values. The EADD's checks cover the EEXTENDs' (the chunks are
        // aligned and inside the page just added), and the chunks are hashed where they lie.
        let secinfo = self.check_eadd(offset, secinfo)?;
        self.hasher.update(eadd_header(offset, &secinfo));
        let mut header = eextend_header(offset);
        let (chunks, _) = data.as_chunks::<256>();
        let mut chunk_offset = offset;
        for chunk in chunks {
            header[8..16].copy_from_slice(&chunk_offset.to_le_bytes());
            self.hasher.update(header);
            self.hasher.update(chunk);
            chunk_offset += CHUNK_SIZE;
        }
        self.pages.insert(offset);
        self.last_page = Some(offset);
        self.eextends += CHUNKS_PER_PAGE as u64;
        Ok(())
    }

    /// MRENCLAVE: SHA-256 of every record measured.
    pub fn finish(self) -> Result<[u8; 32], MeasureError> {
        if self.created.is_none() {
            return Err(MeasureError::NoEcreate);
        }
        Ok(self.hasher.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: u64 = 0x10000;

    fn created() -> Measurement<'static> {
        let mut m = Measurement::new();
        m.ecreate(1, SIZE).unwrap();
        m
    }

    fn reg() -> Secinfo {
        Secinfo::new(PageType::REG, SecinfoFlags::R | SecinfoFlags::W)
    }

    #[test]
    fn hashes_the_records_byte_for_byte() {
        let page = [0x42u8; 4096];
        let mut m = created();
        m.add_page(0x1000, &reg(), &page, true).unwrap();
        m.add_page(0x2000, &reg(), &page, false).unwrap();
        let got = m.finish().unwrap();

        let mut stream = Vec::new();
        stream.extend_from_slice(b"ECREATE\0");
        stream.extend_from_slice(&1u32.to_le_bytes());
        stream.extend_from_slice(&SIZE.to_le_bytes());
        stream.extend_from_slice(&[0; 44]);
        let eadd = |stream: &mut Vec<u8>, offset: u64| {
            stream.extend_from_slice(b"EADD\0\0\0\0");
            stream.extend_from_slice(&offset.to_le_bytes());
            stream.extend_from_slice(&0x203u64.to_le_bytes()); // PT_REG, R | W
            stream.extend_from_slice(&[0; 40]);
        };
        eadd(&mut stream, 0x1000);
        for i in 0..16u64 {
            stream.extend_from_slice(b"EEXTEND\0");
            stream.extend_from_slice(&(0x1000 + i * 256).to_le_bytes());
            stream.extend_from_slice(&[0; 48]);
            stream.extend_from_slice(&[0x42; 256]);
        }
        eadd(&mut stream, 0x2000);
        assert_eq!(stream.len(), 64 + 64 + 16 * 320 + 64);
        let want: [u8; 32] = Sha256::digest(&stream).into();
        assert_eq!(got, want);
    }

    #[test]
    fn feeds_the_sink_the_records_it_measures() {
        let mut seen = Vec::new();
        let mut sink = |r: &MeasurementRecord| {
            seen.push(r.clone());
            Ok(())
        };
        let mut m = Measurement::with_sink(&mut sink);
        m.ecreate(2, SIZE).unwrap();
        m.add_page(
            0,
            &Secinfo::new(PageType::TCS, SecinfoFlags::RWX),
            &[7; 4096],
            true,
        )
        .unwrap();
        assert!(m.eextend(0x1000, &[0; 256]).is_err());
        let mrenclave = m.finish().unwrap();
        assert_eq!(seen.len(), 18);
        let mut again = Measurement::new();
        let mut stream = Vec::new();
        for r in &seen {
            again.push(r).unwrap();
            r.encode(&mut stream);
        }
        assert_eq!(again.finish().unwrap(), mrenclave);
        let want: [u8; 32] = Sha256::digest(&stream).into();
        assert_eq!(want, mrenclave);
        // The sink saw the TCS page as measured: permissions cleared.
        let MeasurementRecord::EAdd { secinfo, .. } = &seen[1] else {
            panic!("second record is {:?}", seen[1].name());
        };
        assert_eq!(secinfo.flags, SecinfoFlags::empty());
    }

    #[test]
    fn measures_a_tcs_page_without_its_permissions() {
        let mrenclave = |secinfo: Secinfo| {
            let mut m = created();
            m.add_page(0x3000, &secinfo, &[1; 4096], true).unwrap();
            m.finish().unwrap()
        };
        let tcs_rwx = mrenclave(Secinfo::new(PageType::TCS, SecinfoFlags::RWX));
        let tcs = mrenclave(Secinfo::new(PageType::TCS, SecinfoFlags::empty()));
        let tcs_r = mrenclave(Secinfo::new(PageType::TCS, SecinfoFlags::R));
        let reg = mrenclave(Secinfo::new(PageType::REG, SecinfoFlags::empty()));
        let reg_rwx = mrenclave(Secinfo::new(PageType::REG, SecinfoFlags::RWX));
        assert_eq!(tcs_rwx, tcs);
        assert_eq!(tcs_r, tcs);
        assert_ne!(tcs, reg);
        assert_ne!(reg, reg_rwx);
    }

    #[test]
    fn measures_each_byte_and_the_order() {
        let base = {
            let mut m = created();
            m.add_page(0, &reg(), &[0; 4096], true).unwrap();
            m.add_page(0x1000, &reg(), &[0; 4096], true).unwrap();
            m.finish().unwrap()
        };
        let mut page = [0; 4096];
        page[4095] = 1;
        let mut m = created();
        m.add_page(0, &reg(), &page, true).unwrap();
        m.add_page(0x1000, &reg(), &[0; 4096], true).unwrap();
        assert_ne!(m.finish().unwrap(), base);
        let mut m = created();
        m.add_page(0x1000, &reg(), &[0; 4096], true).unwrap();
        m.add_page(0, &reg(), &[0; 4096], true).unwrap();
        assert_ne!(m.finish().unwrap(), base);
    }

    #[test]
    fn rejects_records_before_ecreate_and_a_second_ecreate() {
        let mut m = Measurement::new();
        assert!(matches!(
            m.eadd(0, &reg()),
            Err(MeasureError::NotCreated { record: "EADD" })
        ));
        assert!(matches!(
            m.eextend(0, &[0; 256]),
            Err(MeasureError::NotCreated { record: "EEXTEND" })
        ));
        m.ecreate(1, SIZE).unwrap();
        assert!(matches!(
            m.ecreate(1, SIZE),
            Err(MeasureError::CreatedTwice)
        ));
        assert!(matches!(
            Measurement::new().finish(),
            Err(MeasureError::NoEcreate)
        ));
    }

    #[test]
    fn rejects_a_bad_ecreate() {
        for size in [0, 0x1000, 0x3000, 0x10001, u64::MAX] {
            let err = Measurement::new().ecreate(1, size).unwrap_err();
            assert!(matches!(err, MeasureError::InvalidSize { size: s } if s == size));
            assert!(err.to_string().contains("power of two"));
        }
        assert!(matches!(
            Measurement::new().ecreate(0, SIZE),
            Err(MeasureError::SsaFrameSizeZero)
        ));
        assert!(Measurement::new().ecreate(1, 0x2000).is_ok());
        assert!(Measurement::new().ecreate(1, 1 << 63).is_ok());
    }

    #[test]
    fn rejects_a_bad_eadd() {
        let mut m = created();
        assert!(matches!(
            m.eadd(0x800, &reg()),
            Err(MeasureError::UnalignedPage { offset: 0x800 })
        ));
        assert!(matches!(
            m.eadd(SIZE, &reg()),
            Err(MeasureError::PageOutsideEnclave {
                offset: SIZE,
                size: SIZE
            })
        ));
        assert!(matches!(
            m.eadd(u64::MAX - 0xfff, &reg()),
            Err(MeasureError::PageOutsideEnclave { .. })
        ));
        for pt in [
            PageType::SECS,
            PageType::VA,
            PageType::TRIM,
            PageType(7),
            PageType(0xff),
        ] {
            assert!(matches!(
                m.eadd(0, &Secinfo::new(pt, SecinfoFlags::R)),
                Err(MeasureError::PageTypeNotAddable { page_type, .. }) if page_type == pt
            ));
        }
        let mut s = reg();
        s.flags = SecinfoFlags::from_bits_retain(1 << 6);
        assert!(matches!(
            m.eadd(0, &s),
            Err(MeasureError::SecinfoReserved { offset: 0 })
        ));
        let mut s = reg();
        s._reserved[55] = 1;
        assert!(matches!(
            m.eadd(0, &s),
            Err(MeasureError::SecinfoReserved { .. })
        ));
        m.eadd(SIZE - 0x1000, &reg()).unwrap();
        let err = m.eadd(SIZE - 0x1000, &reg()).unwrap_err();
        assert!(matches!(
            err,
            MeasureError::PageAddedTwice { offset: 0xf000 }
        ));
        assert!(err.to_string().contains("already added"));
        assert_eq!(m.pages_added(), 1);
    }

    #[test]
    fn rejects_a_page_added_twice_in_any_order() {
        let mut m = created();
        // Out of order: 3, then 1, then 2 joins both runs.
        for page in [3, 1, 2] {
            m.eadd(page * 0x1000, &reg()).unwrap();
        }
        for page in [1, 2, 3] {
            assert!(matches!(
                m.eadd(page * 0x1000, &reg()),
                Err(MeasureError::PageAddedTwice { offset }) if offset == page * 0x1000
            ));
            assert!(matches!(
                m.add_page(page * 0x1000, &reg(), &[0; 4096], true),
                Err(MeasureError::PageAddedTwice { .. })
            ));
        }
        assert_eq!(m.pages.runs.len(), 1);
        m.eextend(0x1000, &[0; 256]).unwrap();
        m.eextend(0x3f00, &[0; 256]).unwrap();
        for offset in [0, 0x4000] {
            assert!(matches!(
                m.eextend(offset, &[0; 256]),
                Err(MeasureError::ChunkOutsideAddedPage { .. })
            ));
        }
        m.add_page(0, &reg(), &[0; 4096], true).unwrap();
        m.add_page(0x4000, &reg(), &[0; 4096], false).unwrap();
        assert_eq!(m.pages_added(), 5);
        assert_eq!(m.pages.runs.len(), 1);
    }

    #[test]
    fn remembers_pages_like_a_set_whatever_the_order() {
        let size: u64 = 1 << 20;
        let mut m = Measurement::new();
        m.ecreate(1, size).unwrap();
        let mut model = std::collections::HashSet::new();
        let mut rng = coffer_testkit::rng::rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..2000 {
            let x = coffer_testkit::rng::Rng::next_u64(&mut rng);
            let offset = (x % (size / PAGE_SIZE)) * PAGE_SIZE;
            let result = if x & (1 << 40) == 0 {
                m.eadd(offset, &reg())
            } else {
                m.add_page(offset, &reg(), &[0; 4096], true)
            };
            match result {
                Ok(()) => assert!(model.insert(offset), "0x{offset:x} accepted twice"),
                Err(MeasureError::PageAddedTwice { .. }) => {
                    assert!(model.contains(&offset), "0x{offset:x} refused, never added")
                }
                Err(e) => panic!("0x{offset:x}: {e}"),
            }
            assert_eq!(m.pages_added(), model.len());
        }
        for page in (0..size).step_by(4096) {
            assert_eq!(m.pages.contains(page), model.contains(&page), "0x{page:x}");
        }
        // Runs are merged: no two runs touch.
        let runs: Vec<_> = m.pages.runs.iter().collect();
        assert!(runs.windows(2).all(|w| w[0].1 < w[1].0));
    }

    #[test]
    fn add_page_hashes_the_same_with_or_without_a_sink() {
        let pages: Vec<(u64, Secinfo, [u8; 4096], bool)> = vec![
            (0x3000, reg(), [5; 4096], true),
            (
                0x1000,
                Secinfo::new(PageType::TCS, SecinfoFlags::RWX),
                [6; 4096],
                true,
            ),
            (0x2000, reg(), [7; 4096], false),
            (
                0x4000,
                Secinfo::new(PageType::REG, SecinfoFlags::X),
                [8; 4096],
                true,
            ),
        ];
        let mut plain = created();
        let mut records = 0;
        let mut sink = |_: &MeasurementRecord| {
            records += 1;
            Ok(())
        };
        let mut with_sink = Measurement::with_sink(&mut sink);
        with_sink.ecreate(1, SIZE).unwrap();
        let mut by_record = created();
        for (offset, secinfo, data, measure) in &pages {
            plain.add_page(*offset, secinfo, data, *measure).unwrap();
            with_sink
                .add_page(*offset, secinfo, data, *measure)
                .unwrap();
            by_record.eadd(*offset, secinfo).unwrap();
            if *measure {
                for (i, chunk) in data.as_chunks::<256>().0.iter().enumerate() {
                    by_record.eextend(offset + i as u64 * 256, chunk).unwrap();
                }
            }
        }
        assert_eq!(plain.eextends(), 48);
        assert_eq!(plain.pages_added(), 4);
        let plain = plain.finish().unwrap();
        assert_eq!(with_sink.finish().unwrap(), plain);
        assert_eq!(by_record.finish().unwrap(), plain);
        assert_eq!(records, 1 + 4 + 48);
    }

    #[test]
    fn rejects_a_bad_eextend() {
        let mut m = created();
        m.eadd(0x2000, &reg()).unwrap();
        assert!(matches!(
            m.eextend(0x2010, &[0; 256]),
            Err(MeasureError::UnalignedChunk { offset: 0x2010 })
        ));
        for offset in [0x1f00, 0x3000, 0, SIZE, u64::MAX - 0xff] {
            assert!(matches!(
                m.eextend(offset, &[0; 256]),
                Err(MeasureError::ChunkOutsideAddedPage { offset: o }) if o == offset
            ));
        }
        m.eextend(0x2f00, &[0; 256]).unwrap();
        m.eextend(0x2000, &[0; 256]).unwrap();
        assert_eq!(m.eextends(), 2);
    }

    #[test]
    fn rejected_records_leave_the_measurement_unchanged() {
        let good = {
            let mut m = created();
            m.add_page(0, &reg(), &[3; 4096], true).unwrap();
            m.finish().unwrap()
        };
        let mut m = created();
        assert!(m.eadd(0x10, &reg()).is_err());
        assert!(m.eextend(0, &[0; 256]).is_err());
        m.add_page(0, &reg(), &[3; 4096], true).unwrap();
        assert!(m.add_page(0, &reg(), &[3; 4096], true).is_err());
        assert!(m.ecreate(1, SIZE).is_err());
        assert_eq!(m.finish().unwrap(), good);
    }

    #[test]
    fn reports_a_failing_sink_and_measures_nothing_for_it() {
        let mut calls = 0;
        let mut sink = |_: &MeasurementRecord| {
            calls += 1;
            if calls == 2 {
                Err(io::Error::other("disk full"))
            } else {
                Ok(())
            }
        };
        let mut m = Measurement::with_sink(&mut sink);
        m.ecreate(1, SIZE).unwrap();
        assert!(matches!(m.eadd(0, &reg()), Err(MeasureError::Sink(_))));
        assert_eq!(m.pages_added(), 0);
        m.eadd(0, &reg()).unwrap();
        let mut plain = created();
        plain.eadd(0, &reg()).unwrap();
        assert_eq!(m.finish().unwrap(), plain.finish().unwrap());
    }
}
