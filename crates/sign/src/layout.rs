//! The deterministic enclave layout: how an ELF image and an [`EnclaveConfig`] become the
//! sequence of ECREATE / EADD / EEXTEND records whose SHA-256 is MRENCLAVE.
//!
//! Offsets are relative to the enclave base. Every size is a multiple of the 4096-byte page.
//!
//! | offset | content | EADD | SECINFO | EEXTEND |
//! |---|---|---|---|---|
//! | `0` | ELF image: the pages of every `PT_LOAD` segment, at `p_vaddr − B` (B = lowest `PT_LOAD` `p_vaddr`, rounded down to a page) | every page a segment touches | PT_REG, R/W/X from `p_flags` | all 16 chunks |
//! | `I = ⌈image end⌉` | guard gap of [`GUARD_SIZE`] | no | — | — |
//! | `H = I + GUARD_SIZE` | heap, `heap_size` bytes | every page | PT_REG, R\|W | no (zero) |
//! | `T_i = H + heap_size + i·(GUARD_SIZE + stack_size + 2·4096)`, i = 0..tcs_count | guard gap of [`GUARD_SIZE`] | no | — | — |
//! | `T_i + GUARD_SIZE` | stack of thread i, `stack_size` bytes | every page | PT_REG, R\|W | no (zero) |
//! | `S_i = T_i + GUARD_SIZE + stack_size` | TCS of thread i | yes | PT_TCS (measured without permissions) | all 16 chunks |
//! | `S_i + 4096` | SSA of thread i (one frame, SSAFRAMESIZE 1) | yes | PT_REG, R\|W | no (zero) |
//!
//! The records are: ECREATE (SSAFRAMESIZE 1, SIZE = the next power of two ≥ the end of the last
//! SSA page, at least 8 KiB), then every page above in ascending offset order, each EADD followed
//! by its EEXTENDs in ascending chunk order.
//!
//! **Image page content** is what the Linux loader maps for that page: the file page the segment
//! maps there (`p_offset − (p_vaddr − page)`), bytes past the end of the file zero, and, when the
//! segment has a bss part (`p_memsz > p_filesz`), zero from `p_vaddr + p_filesz` on. So MRENCLAVE
//! binds every byte the loader puts in memory, including the ELF header and program headers,
//! which must lie inside a loaded segment's file range (the kernel reads them). A page touched by
//! two segments gets the union of their permissions, and the content the later segment (in
//! program-header order) maps there, as the loader's later fixed mapping replaces the page.
//!
//! **TCS content** (SDM Vol. 3D §38.8 layout, all other bytes zero): FLAGS 0 (no DBGOPTIN, so
//! the TCS does not depend on `debug`), OSSA = `S_i + 4096`, CSSA 0, NSSA 1, OENTRY = `e_entry − B`,
//! OFSBASE = OGSBASE = `S_i` (the top of the thread's stack), FSLIMIT = GSLIMIT = 0xfff. OSSA
//! differs per thread, so each TCS encodes its index.
//!
//! Because heap, stacks, TCS and SSA pages are all added, MRENCLAVE binds `heap_size`,
//! `stack_size` and `tcs_count` as well as the code and initial data. The EPC size charged for an
//! enclave is the number of pages added × 4096. `docs/enclave-layout.md` repeats this table.

use coffer_abi::measure::{MeasureError, Measurement, RecordSink};
use coffer_abi::secinfo::{PageType, Secinfo, SecinfoFlags};
use object::LittleEndian as LE;
use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use thiserror::Error;

use crate::config::{ConfigError, EnclaveConfig};

/// Page size.
pub const PAGE: u64 = 4096;
/// Unmapped gap between the image and the heap, and below each thread's stack: 64 KiB.
pub const GUARD_SIZE: u64 = 16 * PAGE;
/// The largest ELF file accepted: 1 GiB.
pub const MAX_IMAGE_FILE: u64 = 1 << 30;
/// The largest span of the loaded image in memory (first to last `PT_LOAD` page, bss included):
/// 1 GiB. Every page of it is hashed in full, so this bounds the hashing one image can demand.
pub const MAX_IMAGE_SPAN: u64 = 1 << 30;
/// The most program headers read.
pub const MAX_PROGRAM_HEADERS: usize = 256;
/// How to make an ELF Coffer accepts, quoted in the refusal of a dynamically linked one.
pub const STATIC_LINK_HINT: &str = "link it statically: RUSTFLAGS=\"-C target-feature=+crt-static\" \
     cargo build --target x86_64-unknown-linux-gnu (coffer build does this)";

/// Why an image or configuration has no layout.
#[derive(Debug, Error)]
pub enum LayoutError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The file is larger than [`MAX_IMAGE_FILE`].
    #[error("enclave image is {len} bytes, more than the {limit} bytes accepted")]
    FileTooLarge { len: u64, limit: u64 },
    /// The file does not start with an ELF header.
    #[error("enclave image is not an ELF file ({0})")]
    NotElf(&'static str),
    /// The ELF file is not 64-bit little-endian x86-64.
    #[error("enclave image is not an x86-64 ELF: {0}")]
    WrongArchitecture(String),
    /// The ELF file is not an executable (ET_EXEC or ET_DYN).
    #[error("enclave image has ELF type {0}; an enclave must be an executable (ET_EXEC or ET_DYN)")]
    WrongType(u16),
    /// The ELF structure does not parse.
    #[error("enclave image is a malformed ELF: {0}")]
    Malformed(String),
    /// The ELF needs a dynamic loader or shared libraries.
    #[error("enclave image is dynamically linked ({0}); {STATIC_LINK_HINT}")]
    DynamicallyLinked(&'static str),
    /// The ELF has no PT_LOAD segment.
    #[error("enclave image has no loadable (PT_LOAD) segment")]
    NoLoadSegment,
    /// Too many program headers.
    #[error("enclave image has {count} program headers, more than the {limit} accepted")]
    TooManyProgramHeaders { count: usize, limit: usize },
    /// A PT_LOAD segment is inconsistent.
    #[error("enclave image: PT_LOAD segment {index} (p_vaddr 0x{vaddr:x}): {reason}")]
    BadSegment {
        index: usize,
        vaddr: u64,
        reason: &'static str,
    },
    /// Two PT_LOAD segments overlap or are out of order.
    #[error(
        "enclave image: PT_LOAD segments {first} and {second} overlap or are not in ascending \
         p_vaddr order"
    )]
    SegmentsOverlap { first: usize, second: usize },
    /// A non-PT_LOAD program header names memory no PT_LOAD segment loads.
    #[error(
        "enclave image: program header {index} (type 0x{p_type:x}, p_vaddr 0x{vaddr:x}, \
         p_memsz 0x{memsz:x}) lies outside every loaded segment"
    )]
    HeaderOutsideSegment {
        index: usize,
        p_type: u32,
        vaddr: u64,
        memsz: u64,
    },
    /// The ELF header and program headers are not inside a loaded file range, so they would not
    /// be measured although the kernel reads them.
    #[error(
        "enclave image: the ELF header and program headers (file bytes 0..{end}) are not inside \
         one loaded segment, so they would not be measured"
    )]
    HeadersNotLoaded { end: u64 },
    /// The entry point is not in an executable segment.
    #[error("enclave image: the entry point 0x{0:x} is not inside an executable PT_LOAD segment")]
    EntryOutside(u64),
    /// The loaded image spans more than [`MAX_IMAGE_SPAN`].
    #[error("enclave image spans {span} bytes in memory, more than the {limit} bytes accepted")]
    SpanTooLarge { span: u64, limit: u64 },
    /// The measurement engine refused a record, or its sink failed.
    #[error("measuring the enclave: {0}")]
    Measure(#[from] MeasureError),
}

fn malformed(e: object::Error) -> LayoutError {
    LayoutError::Malformed(e.to_string())
}

/// One PT_LOAD segment, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    /// Offset of `p_vaddr` from the enclave base.
    start: u64,
    /// `start + p_memsz`.
    mem_end: u64,
    /// `start + p_filesz`.
    file_end: u64,
    /// `p_offset − p_vaddr` as a wrapping difference: file offset = enclave offset + this.
    file_delta: u64,
    /// Whether bytes past `p_filesz` in the last file page are zeroed (the segment has bss).
    has_bss: bool,
    flags: SecinfoFlags,
}

/// One thread's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadLayout {
    /// Offset of the lowest stack page.
    pub stack: u64,
    /// Offset of the TCS page (also the top of the stack).
    pub tcs: u64,
    /// Offset of the SSA page.
    pub ssa: u64,
}

/// Where everything goes, computed from the ELF headers and the configuration without hashing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Lowest PT_LOAD `p_vaddr`, rounded down to a page: the ELF address of enclave offset 0.
    pub image_base: u64,
    /// End of the image's last page (offset).
    pub image_end: u64,
    /// Offset of the entry point.
    pub entry: u64,
    /// Offset and size of the heap.
    pub heap: u64,
    pub heap_size: u64,
    pub stack_size: u64,
    pub threads: Vec<ThreadLayout>,
    /// ECREATE's SIZE.
    pub enclave_size: u64,
    /// Pages added × 4096.
    pub epc_size: u64,
    /// Image pages added.
    pub image_pages: u64,
    segments: Vec<Segment>,
}

/// The result of measuring an enclave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    pub mrenclave: [u8; 32],
    /// Committed bytes: pages added × 4096.
    pub epc_size: u64,
}

fn align_down(v: u64) -> u64 {
    v - v % PAGE
}

fn align_up(v: u64) -> Option<u64> {
    v.checked_add(PAGE - 1).map(align_down)
}

fn perms(p_flags: elf::ProgramFlags) -> SecinfoFlags {
    let p_flags = p_flags.0;
    let mut f = SecinfoFlags::empty();
    if p_flags & elf::PF_R.0 != 0 {
        f |= SecinfoFlags::R;
    }
    if p_flags & elf::PF_W.0 != 0 {
        f |= SecinfoFlags::W;
    }
    if p_flags & elf::PF_X.0 != 0 {
        f |= SecinfoFlags::X;
    }
    f
}

/// Computes the layout of `image` with `config`: checks the ELF and the configuration, hashes
/// nothing. Use it to learn the EPC size before paying for a measurement.
pub fn plan(image: &[u8], config: &EnclaveConfig) -> Result<Layout, LayoutError> {
    config.validate()?;
    let len = u64::try_from(image.len()).unwrap_or(u64::MAX);
    if len > MAX_IMAGE_FILE {
        return Err(LayoutError::FileTooLarge {
            len,
            limit: MAX_IMAGE_FILE,
        });
    }
    let ident = image
        .get(..16)
        .ok_or(LayoutError::NotElf("shorter than an ELF identification"))?;
    if ident[..4] != elf::ELFMAG {
        return Err(LayoutError::NotElf("no \\x7fELF magic"));
    }
    if ident[4] != elf::ELFCLASS64.0 {
        return Err(LayoutError::WrongArchitecture("not a 64-bit ELF".into()));
    }
    if ident[5] != elf::ELFDATA2LSB.0 {
        return Err(LayoutError::WrongArchitecture("not little-endian".into()));
    }
    let header = elf::FileHeader64::<LE>::parse(image).map_err(malformed)?;
    let e = LE;
    let machine = header.e_machine(e);
    if machine != elf::EM_X86_64 {
        return Err(LayoutError::WrongArchitecture(format!(
            "e_machine is {}, not EM_X86_64 (62)",
            machine.0
        )));
    }
    let e_type = header.e_type(e);
    if e_type != elf::ET_EXEC && e_type != elf::ET_DYN {
        return Err(LayoutError::WrongType(e_type.0));
    }
    let phnum = usize::try_from(header.phnum(e, image).map_err(malformed)?).unwrap_or(usize::MAX);
    if phnum > MAX_PROGRAM_HEADERS {
        return Err(LayoutError::TooManyProgramHeaders {
            count: phnum,
            limit: MAX_PROGRAM_HEADERS,
        });
    }
    let phdrs = header.program_headers(e, image).map_err(malformed)?;

    // Dynamic linking: a loader (PT_INTERP) or shared libraries (DT_NEEDED). A static-pie has
    // PT_DYNAMIC (for its own relocations) but neither.
    for ph in phdrs {
        match ph.p_type(e) {
            elf::PT_INTERP => {
                return Err(LayoutError::DynamicallyLinked(
                    "it names a program interpreter (PT_INTERP)",
                ));
            }
            elf::PT_DYNAMIC => {
                let dynamic = ph.dynamic(e, image).map_err(malformed)?.unwrap_or(&[]);
                for d in dynamic {
                    match d.d_tag(e) {
                        elf::DT_NULL => break,
                        elf::DT_NEEDED => {
                            return Err(LayoutError::DynamicallyLinked(
                                "it needs shared libraries (DT_NEEDED)",
                            ));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    // PT_LOAD segments.
    let loads: Vec<(usize, &elf::ProgramHeader64<LE>)> = phdrs
        .iter()
        .enumerate()
        .filter(|(_, ph)| ph.p_type(e) == elf::PT_LOAD)
        .collect();
    let Some((_, first)) = loads.first() else {
        return Err(LayoutError::NoLoadSegment);
    };
    let image_base = align_down(first.p_vaddr(e));
    let mut segments: Vec<Segment> = Vec::with_capacity(loads.len());
    let mut prev: Option<(usize, u64)> = None;
    for &(index, ph) in &loads {
        let vaddr = ph.p_vaddr(e);
        let bad = |reason| LayoutError::BadSegment {
            index,
            vaddr,
            reason,
        };
        let (offset, filesz, memsz) = (ph.p_offset(e), ph.p_filesz(e), ph.p_memsz(e));
        if filesz > memsz {
            return Err(bad("p_filesz is larger than p_memsz"));
        }
        if offset.checked_add(filesz).is_none_or(|end| end > len) {
            return Err(bad("its file bytes lie past the end of the file"));
        }
        if offset % PAGE != vaddr % PAGE {
            return Err(bad(
                "p_offset and p_vaddr are not congruent modulo the page size",
            ));
        }
        let start = vaddr
            .checked_sub(image_base)
            .ok_or(LayoutError::SegmentsOverlap {
                first: loads[0].0,
                second: index,
            })?;
        let mem_end = start
            .checked_add(memsz)
            .filter(|end| align_up(*end).is_some_and(|a| a <= MAX_IMAGE_SPAN))
            .ok_or(LayoutError::SpanTooLarge {
                span: start.saturating_add(memsz),
                limit: MAX_IMAGE_SPAN,
            })?;
        if let Some((pindex, pend)) = prev
            && start < pend
        {
            return Err(LayoutError::SegmentsOverlap {
                first: pindex,
                second: index,
            });
        }
        if memsz == 0 {
            continue;
        }
        prev = Some((index, mem_end));
        segments.push(Segment {
            start,
            mem_end,
            file_end: start + filesz,
            file_delta: offset.wrapping_sub(start),
            has_bss: memsz > filesz,
            flags: perms(ph.p_flags(e)),
        });
    }
    let image_end = segments
        .last()
        .and_then(|s| align_up(s.mem_end))
        .ok_or(LayoutError::NoLoadSegment)?;

    // The kernel reads the ELF header and program headers: they must be measured.
    let headers_end = header
        .e_phoff(e)
        .saturating_add(u64::try_from(phnum).unwrap_or(u64::MAX).saturating_mul(56))
        .max(64);
    let headers_loaded = segments.iter().any(|s| {
        // The file range the segment maps: from its first page to its last file byte.
        let file_start = align_down(s.start).wrapping_add(s.file_delta);
        let file_end = s.file_end.wrapping_add(s.file_delta);
        s.file_end > s.start && file_start == 0 && headers_end <= file_end
    });
    if !headers_loaded {
        return Err(LayoutError::HeadersNotLoaded { end: headers_end });
    }

    // Every other program header that names memory must name loaded memory.
    for (index, ph) in phdrs.iter().enumerate() {
        let p_type = ph.p_type(e);
        let (vaddr, memsz) = (ph.p_vaddr(e), ph.p_memsz(e));
        if p_type == elf::PT_LOAD || p_type == elf::PT_GNU_STACK || memsz == 0 {
            continue;
        }
        let inside = vaddr.checked_sub(image_base).is_some_and(|start| {
            start.checked_add(memsz).is_some_and(|end| {
                segments
                    .iter()
                    .any(|s| s.start <= start && end <= s.mem_end)
            })
        });
        if !inside {
            return Err(LayoutError::HeaderOutsideSegment {
                index,
                p_type: p_type.0,
                vaddr,
                memsz,
            });
        }
    }

    let entry_vaddr = header.e_entry(e);
    let entry = entry_vaddr
        .checked_sub(image_base)
        .filter(|off| {
            segments
                .iter()
                .any(|s| s.flags.contains(SecinfoFlags::X) && s.start <= *off && *off < s.mem_end)
        })
        .ok_or(LayoutError::EntryOutside(entry_vaddr))?;

    let image_pages = count_image_pages(&segments);
    // Sizes are capped (image ≤ 1 GiB, heap and stacks ≤ 64 GiB, 256 threads), so none of this
    // can overflow; checked arithmetic anyway.
    let overflow = || LayoutError::SpanTooLarge {
        span: u64::MAX,
        limit: MAX_IMAGE_SPAN,
    };
    let heap = image_end.checked_add(GUARD_SIZE).ok_or_else(overflow)?;
    let mut cursor = heap.checked_add(config.heap_size).ok_or_else(overflow)?;
    let mut threads = Vec::with_capacity(usize::try_from(config.tcs_count).unwrap_or(0));
    for _ in 0..config.tcs_count {
        let stack = cursor.checked_add(GUARD_SIZE).ok_or_else(overflow)?;
        let tcs = stack.checked_add(config.stack_size).ok_or_else(overflow)?;
        let ssa = tcs + PAGE;
        cursor = ssa + PAGE;
        threads.push(ThreadLayout { stack, tcs, ssa });
    }
    let enclave_size = cursor
        .max(coffer_abi::measure::MIN_ENCLAVE_SIZE)
        .checked_next_power_of_two()
        .ok_or_else(overflow)?;
    let pages = image_pages
        + config.heap_size / PAGE
        + u64::from(config.tcs_count) * (config.stack_size / PAGE + 2);
    Ok(Layout {
        image_base,
        image_end,
        entry,
        heap,
        heap_size: config.heap_size,
        stack_size: config.stack_size,
        threads,
        enclave_size,
        epc_size: pages * PAGE,
        image_pages,
        segments,
    })
}

/// The pages the segments touch, counted once each.
fn count_image_pages(segments: &[Segment]) -> u64 {
    let mut count = 0;
    let mut next_free = 0; // first page offset not yet counted
    for s in segments {
        let first = align_down(s.start).max(next_free);
        let end = align_up(s.mem_end).unwrap_or(u64::MAX);
        if end > first {
            count += (end - first) / PAGE;
            next_free = end;
        }
    }
    count
}

impl Layout {
    /// Measures the enclave: `image` must be the file this layout was planned from.
    pub fn measure(
        &self,
        image: &[u8],
        sink: Option<&mut dyn RecordSink>,
    ) -> Result<[u8; 32], LayoutError> {
        match sink {
            Some(s) => self.measure_into(image, Measurement::with_sink(s)),
            None => self.measure_into(image, Measurement::new()),
        }
    }

    fn measure_into(&self, image: &[u8], mut m: Measurement<'_>) -> Result<[u8; 32], LayoutError> {
        m.ecreate(1, self.enclave_size)?;
        self.measure_image(image, &mut m)?;
        let rw = Secinfo::new(PageType::REG, SecinfoFlags::R | SecinfoFlags::W);
        for page in (self.heap..self.heap + self.heap_size).step_by(4096) {
            m.eadd(page, &rw)?;
        }
        let tcs_secinfo = Secinfo::new(PageType::TCS, SecinfoFlags::empty());
        for t in &self.threads {
            for page in (t.stack..t.stack + self.stack_size).step_by(4096) {
                m.eadd(page, &rw)?;
            }
            m.add_page(t.tcs, &tcs_secinfo, &tcs_page(t, self.entry), true)?;
            m.eadd(t.ssa, &rw)?;
        }
        Ok(m.finish()?)
    }

    fn measure_image(&self, image: &[u8], m: &mut Measurement<'_>) -> Result<(), LayoutError> {
        let segs = &self.segments;
        let mut buf = [0u8; 4096];
        let mut first = 0; // first segment that may touch `page` or a later page
        let mut page = 0u64;
        loop {
            while first < segs.len() && align_up(segs[first].mem_end).unwrap_or(u64::MAX) <= page {
                first += 1;
            }
            let Some(s) = segs.get(first) else { break };
            page = page.max(align_down(s.start));
            // Permissions: the union of every segment touching the page. Content: what the last
            // of them maps (its mapping replaces the earlier ones').
            let mut flags = SecinfoFlags::empty();
            let mut last = s;
            for t in segs[first..]
                .iter()
                .take_while(|t| align_down(t.start) <= page)
                .filter(|t| align_up(t.mem_end).unwrap_or(u64::MAX) > page)
            {
                flags |= t.flags;
                last = t;
            }
            let content = match whole_file_page(image, page, last) {
                Some(p) => p,
                None => {
                    fill_page(&mut buf, page, last, image);
                    &buf
                }
            };
            m.add_page(page, &Secinfo::new(PageType::REG, flags), content, true)?;
            page += PAGE;
        }
        Ok(())
    }
}

/// The page at enclave offset `page` straight from the file, when segment `s` maps a whole file
/// page there (the common case: no copy).
fn whole_file_page<'i>(image: &'i [u8], page: u64, s: &Segment) -> Option<&'i [u8; 4096]> {
    let file_map_end = if s.has_bss {
        s.file_end
    } else {
        align_up(s.file_end)?
    };
    if file_map_end < page + PAGE {
        return None;
    }
    let from = usize::try_from(page.wrapping_add(s.file_delta)).ok()?;
    image.get(from..from.checked_add(4096)?)?.try_into().ok()
}

/// Lays down what segment `s` maps at enclave offset `page`: the file page (zero past the end of
/// the file), with zero from `p_filesz` on when the segment has bss.
fn fill_page(buf: &mut [u8; 4096], page: u64, s: &Segment, image: &[u8]) {
    let file_map_end = if s.has_bss {
        s.file_end
    } else {
        align_up(s.file_end).unwrap_or(u64::MAX)
    };
    let copy_end = (page + PAGE).min(file_map_end).max(page);
    let n = usize::try_from(copy_end - page).unwrap_or(0);
    let file_from = usize::try_from(page.wrapping_add(s.file_delta)).unwrap_or(usize::MAX);
    let src = image
        .get(file_from..)
        .map_or(&[][..], |rest| &rest[..rest.len().min(n)]);
    buf[..src.len()].copy_from_slice(src);
    buf[src.len()..].fill(0);
}

/// The TCS page of thread `t` (see the module doc).
pub fn tcs_page(t: &ThreadLayout, entry: u64) -> [u8; 4096] {
    let mut p = [0u8; 4096];
    // STATE (0) and FLAGS (8) zero.
    p[16..24].copy_from_slice(&t.ssa.to_le_bytes()); // OSSA
    // CSSA (24) zero.
    p[28..32].copy_from_slice(&1u32.to_le_bytes()); // NSSA
    p[32..40].copy_from_slice(&entry.to_le_bytes()); // OENTRY
    // AEP (40) zero.
    p[48..56].copy_from_slice(&t.tcs.to_le_bytes()); // OFSBASE
    p[56..64].copy_from_slice(&t.tcs.to_le_bytes()); // OGSBASE
    p[64..68].copy_from_slice(&0xfffu32.to_le_bytes()); // FSLIMIT
    p[68..72].copy_from_slice(&0xfffu32.to_le_bytes()); // GSLIMIT
    p
}

/// MRENCLAVE and EPC size of `image` launched with `config`.
pub fn measure_enclave(image: &[u8], config: &EnclaveConfig) -> Result<Measured, LayoutError> {
    let layout = plan(image, config)?;
    let mrenclave = layout.measure(image, None)?;
    Ok(Measured {
        mrenclave,
        epc_size: layout.epc_size,
    })
}

/// Like [`measure_enclave`], also handing every record to `sink` (an SGXS writer, say).
pub fn measure_enclave_with_sink(
    image: &[u8],
    config: &EnclaveConfig,
    sink: &mut dyn RecordSink,
) -> Result<Measured, LayoutError> {
    let layout = plan(image, config)?;
    let mrenclave = layout.measure(image, Some(sink))?;
    Ok(Measured {
        mrenclave,
        epc_size: layout.epc_size,
    })
}
