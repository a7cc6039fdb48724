//! The enclave layout: determinism, what MRENCLAVE binds, and refusals.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use coffer_abi::measure::MeasurementRecord;
use coffer_abi::secinfo::{PageType, SecinfoFlags};
use coffer_abi::sgxs::{SgxsWriter, measure_sgxs};
use coffer_sign::layout::{self, LayoutError, plan};
use coffer_sign::{EnclaveConfig, measure_enclave};
use coffer_testkit::elf::{self, PF_R, PF_W, PF_X, PT_DYNAMIC, PT_INTERP, PT_LOAD, Phdr};
use sha2::{Digest, Sha256};

fn config() -> EnclaveConfig {
    EnclaveConfig::from_toml(
        "isv_prod_id = 1\nisv_svn = 2\nheap_size = 0x20000\nstack_size = 0x8000\n\
         tcs_count = 2\ndebug = false\n",
    )
    .unwrap()
}

fn image() -> Vec<u8> {
    let code: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + 3) as u8).collect();
    elf::static_elf(&code, b"initial data", 0x3000)
}

#[test]
fn accepts_a_static_elf_and_measures_it_deterministically() {
    let img = image();
    let a = measure_enclave(&img, &config()).unwrap();
    let b = measure_enclave(&img.clone(), &config()).unwrap();
    assert_eq!(a, b);
    // headers page, 3 code pages, data + bss pages (1 + 3 = 4096 + 0x3000 + 12 bytes → 4 pages),
    // heap 32 pages, 2 × (8 stack + TCS + SSA).
    let l = plan(&img, &config()).unwrap();
    assert_eq!(l.image_pages, 1 + 3 + 4);
    assert_eq!(a.epc_size, (8 + 32 + 2 * 10) * 4096);
    assert_eq!(l.threads.len(), 2);
    assert!(l.enclave_size.is_power_of_two());
    assert!(l.enclave_size >= l.threads[1].ssa + 4096);
}

#[test]
fn mrenclave_binds_code_data_and_configuration() {
    let img = image();
    let base = measure_enclave(&img, &config()).unwrap().mrenclave;
    let mut code = img.clone();
    code[0x1000 + 5] ^= 1;
    assert_ne!(measure_enclave(&code, &config()).unwrap().mrenclave, base);
    let mut c = config();
    c.heap_size += 4096;
    assert_ne!(measure_enclave(&img, &c).unwrap().mrenclave, base);
    let mut c = config();
    c.stack_size += 4096;
    assert_ne!(measure_enclave(&img, &c).unwrap().mrenclave, base);
    let mut c = config();
    c.tcs_count = 3;
    assert_ne!(measure_enclave(&img, &c).unwrap().mrenclave, base);
    // Not measured: identity, debug, the call buffer size.
    let mut c = config();
    c.isv_svn = 9;
    c.debug = true;
    c.max_call_size = 8192;
    assert_eq!(measure_enclave(&img, &c).unwrap().mrenclave, base);
}

#[test]
fn sgxs_stream_hashes_to_mrenclave() {
    let img = image();
    let mut out = Vec::new();
    let mut w = SgxsWriter::new(&mut out);
    let m = layout::measure_enclave_with_sink(&img, &config(), &mut w).unwrap();
    let digest: [u8; 32] = Sha256::digest(&out).into();
    assert_eq!(digest, m.mrenclave);
    assert_eq!(measure_sgxs(&out[..]).unwrap(), m.mrenclave);
}

#[test]
fn accepts_the_system_static_pie() {
    let Ok(img) = std::fs::read("/sbin/ldconfig") else {
        eprintln!("no /sbin/ldconfig here; skipped");
        return;
    };
    let m = measure_enclave(&img, &config()).unwrap();
    assert!(m.epc_size > img.len() as u64 / 2);
}

#[test]
fn rejects_a_dynamically_linked_elf() {
    let Ok(img) = std::fs::read("/bin/ls") else {
        return;
    };
    let e = measure_enclave(&img, &config()).unwrap_err();
    assert!(matches!(e, LayoutError::DynamicallyLinked(_)), "{e}");
    assert!(e.to_string().contains("crt-static"), "{e}");
}

fn load(flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Phdr {
    Phdr {
        p_type: PT_LOAD,
        p_flags: flags,
        p_offset: offset,
        p_vaddr: vaddr,
        p_filesz: filesz,
        p_memsz: memsz,
    }
}

fn other(p_type: u32, offset: u64, vaddr: u64, size: u64) -> Phdr {
    Phdr {
        p_type,
        p_flags: PF_R,
        p_offset: offset,
        p_vaddr: vaddr,
        p_filesz: size,
        p_memsz: size,
    }
}

/// Headers + code in one R|X segment from offset 0, plus `more` headers; file of `len` bytes.
fn elf_with(more: &[Phdr], len: u64) -> Vec<u8> {
    let mut phdrs = vec![load(PF_R | PF_X, 0, 0, len, len)];
    phdrs.extend_from_slice(more);
    let fill = vec![0x90u8; len as usize];
    elf::write_elf(3, 0x800, &phdrs, &[(0x400, &fill[0x400..])])
}

fn layout_err(img: &[u8]) -> LayoutError {
    plan(img, &config()).unwrap_err()
}

#[test]
fn rejects_files_that_are_not_x86_64_executables() {
    let good = image();
    assert!(matches!(layout_err(b""), LayoutError::NotElf(_)));
    assert!(matches!(
        layout_err(b"MZ\x90\0 not an elf at all"),
        LayoutError::NotElf(_)
    ));
    let mut e32 = good.clone();
    e32[4] = 1;
    assert!(matches!(
        layout_err(&e32),
        LayoutError::WrongArchitecture(_)
    ));
    let mut be = good.clone();
    be[5] = 2;
    assert!(matches!(layout_err(&be), LayoutError::WrongArchitecture(_)));
    let mut arm = good.clone();
    arm[18] = 183; // EM_AARCH64
    let e = layout_err(&arm);
    assert!(e.to_string().contains("EM_X86_64"), "{e}");
    let mut rel = good.clone();
    rel[16] = 1; // ET_REL
    assert!(matches!(layout_err(&rel), LayoutError::WrongType(1)));
    assert!(matches!(layout_err(&good[..40]), LayoutError::Malformed(_)));
    // Program headers past the end of the file.
    assert!(matches!(
        layout_err(&good[..100]),
        LayoutError::Malformed(_)
    ));
}

#[test]
fn rejects_dynamic_linking_but_accepts_a_static_pie() {
    let len = 0x2000;
    let e = layout_err(&elf_with(&[other(PT_INTERP, 0x400, 0x400, 0x1c)], len));
    assert!(matches!(e, LayoutError::DynamicallyLinked(_)), "{e}");
    assert!(
        e.to_string().contains("crt-static") && e.to_string().contains("--target"),
        "{e}"
    );

    // PT_DYNAMIC with DT_NEEDED (1) = shared libraries; with only DT_RELA etc. = static-pie.
    let dynamic = |tags: &[(u64, u64)]| {
        let mut phdrs = vec![
            load(PF_R | PF_X, 0, 0, len, len),
            other(PT_DYNAMIC, 0x1000, 0x1000, 16 * tags.len() as u64),
        ];
        phdrs[1].p_flags = PF_R | PF_W;
        let mut d = Vec::new();
        for (t, v) in tags {
            d.extend_from_slice(&t.to_le_bytes());
            d.extend_from_slice(&v.to_le_bytes());
        }
        elf::write_elf(3, 0x800, &phdrs, &[(0x1000, &d), (len - 1, &[0])])
    };
    let e = layout_err(&dynamic(&[(0x6ffffffb, 0), (1, 5), (0, 0)]));
    assert!(matches!(e, LayoutError::DynamicallyLinked(_)), "{e}");
    plan(&dynamic(&[(7, 0x100), (8, 0), (0, 0), (1, 5)]), &config()).unwrap();
}

#[test]
fn rejects_inconsistent_segments() {
    let len = 0x3000;
    let fill = vec![1u8; len as usize];
    let build = |phdrs: &[Phdr]| elf::write_elf(3, 0x800, phdrs, &[(0x400, &fill[0x400..])]);
    let first = load(PF_R | PF_X, 0, 0, 0x1000, 0x1000);
    let bad = |extra: Phdr| layout_err(&build(&[first, extra]));
    assert!(matches!(
        bad(load(PF_R, 0x1000, 0x1000, 0x2000, 0x1000)),
        LayoutError::BadSegment { reason, .. } if reason.contains("p_filesz")
    ));
    assert!(matches!(
        bad(load(PF_R, 0x1000, 0x1000, 0x2001, 0x3000)),
        LayoutError::BadSegment { reason, .. } if reason.contains("end of the file")
    ));
    assert!(matches!(
        bad(load(PF_R, u64::MAX, 0x1000, 2, 2)),
        LayoutError::BadSegment { .. }
    ));
    assert!(matches!(
        bad(load(PF_R, 0x1000, 0x1800, 0x100, 0x100)),
        LayoutError::BadSegment { reason, .. } if reason.contains("congruent")
    ));
    assert!(matches!(
        bad(load(PF_R, 0x800, 0x800, 0x100, 0x100)),
        LayoutError::SegmentsOverlap { .. }
    ));
    assert!(matches!(
        bad(load(PF_R, 0x1000, u64::MAX - 0xfff, 0x100, 0x100)),
        LayoutError::SpanTooLarge { .. }
    ));
    assert!(matches!(
        bad(load(PF_R | PF_W, 0x1000, 0x1000, 0x100, 3 << 30)),
        LayoutError::SpanTooLarge { .. }
    ));
    // Out of order: a later segment below the first.
    let e = layout_err(&build(&[load(PF_R, 0x2000, 0x2000, 0x100, 0x100), first]));
    assert!(matches!(e, LayoutError::SegmentsOverlap { .. }), "{e}");
    // No PT_LOAD at all.
    let e = layout_err(&build(&[other(4, 0x400, 0x400, 0x10)]));
    assert!(matches!(e, LayoutError::NoLoadSegment), "{e}");
}

#[test]
fn rejects_program_headers_outside_loaded_memory() {
    // A PT_TLS (7) past the end of every segment.
    let e = layout_err(&elf_with(&[other(7, 0x1800, 0x5000, 0x10)], 0x2000));
    assert!(
        matches!(e, LayoutError::HeaderOutsideSegment { index: 1, .. }),
        "{e}"
    );
    // Inside is fine.
    plan(
        &elf_with(&[other(7, 0x1800, 0x1800, 0x10)], 0x2000),
        &config(),
    )
    .unwrap();
    // ELF header and program headers not in any loaded file range.
    let fill = vec![0x90u8; 0x1000];
    let img = elf::write_elf(
        3,
        0x1000,
        &[load(PF_R | PF_X, 0x1000, 0x1000, 0x1000, 0x1000)],
        &[(0x1000, &fill)],
    );
    assert!(matches!(
        layout_err(&img),
        LayoutError::HeadersNotLoaded { .. }
    ));
}

#[test]
fn rejects_an_entry_point_outside_executable_code() {
    let img = image();
    let mut bad = img.clone();
    bad[24..32].copy_from_slice(&0x10u64.to_le_bytes()); // in the R-only header segment
    assert!(matches!(layout_err(&bad), LayoutError::EntryOutside(0x10)));
    bad[24..32].copy_from_slice(&0x7000_0000u64.to_le_bytes());
    assert!(matches!(layout_err(&bad), LayoutError::EntryOutside(_)));
}

#[test]
fn accepts_an_et_exec_at_a_high_address() {
    let code = vec![0xc3u8; 0x1000];
    let base = 0x40_0000u64;
    let img = elf::write_elf(
        2,
        base + 0x1000,
        &[
            load(PF_R, 0, base, 0x200, 0x200),
            load(PF_R | PF_X, 0x1000, base + 0x1000, 0x1000, 0x1000),
        ],
        &[(0x1000, &code)],
    );
    let l = plan(&img, &config()).unwrap();
    assert_eq!(l.image_base, base);
    assert_eq!(l.entry, 0x1000);
    assert_eq!(l.image_pages, 2);
}

/// The EADD records of a measurement.
fn eadds(img: &[u8]) -> Vec<(u64, PageType, SecinfoFlags)> {
    let mut out = Vec::new();
    let mut sink = |r: &MeasurementRecord| {
        if let MeasurementRecord::EAdd { offset, secinfo } = r {
            out.push((*offset, secinfo.page_type, secinfo.flags));
        }
        Ok(())
    };
    layout::measure_enclave_with_sink(img, &config(), &mut sink).unwrap();
    out
}

#[test]
fn lays_out_pages_in_the_documented_order() {
    let img = image();
    let l = plan(&img, &config()).unwrap();
    let pages = eadds(&img);
    assert_eq!(pages.len() as u64 * 4096, l.epc_size);
    let offsets: Vec<u64> = pages.iter().map(|p| p.0).collect();
    let mut sorted = offsets.clone();
    sorted.sort_unstable();
    assert_eq!(offsets, sorted, "pages are added in ascending order");
    let rw = SecinfoFlags::R | SecinfoFlags::W;
    assert_eq!(pages[0], (0, PageType::REG, SecinfoFlags::R));
    assert_eq!(
        pages[1],
        (0x1000, PageType::REG, SecinfoFlags::R | SecinfoFlags::X)
    );
    assert!(pages.contains(&(l.heap, PageType::REG, rw)));
    assert_eq!(l.heap, l.image_end + layout::GUARD_SIZE);
    for t in &l.threads {
        assert!(pages.contains(&(t.tcs, PageType::TCS, SecinfoFlags::empty())));
        assert!(pages.contains(&(t.ssa, PageType::REG, rw)));
        assert!(pages.contains(&(t.stack, PageType::REG, rw)));
        assert!(
            !pages.iter().any(|p| p.0 == t.stack - 4096),
            "guard page below the stack"
        );
        assert_eq!(t.tcs, t.stack + 0x8000);
        assert_eq!(t.ssa, t.tcs + 4096);
    }
}

#[test]
fn a_page_shared_by_two_segments_gets_both_permissions() {
    // Code ends mid-page at 0x1800; data starts at 0x1800 in the same page.
    let bytes = vec![0xccu8; 0x1000];
    let img = elf::write_elf(
        3,
        0x1000,
        &[
            load(PF_R, 0, 0, 0x200, 0x200),
            load(PF_R | PF_X, 0x1000, 0x1000, 0x800, 0x800),
            load(PF_R | PF_W, 0x1800, 0x1800, 0x800, 0x1000),
        ],
        &[(0x1000, &bytes)],
    );
    let pages = eadds(&img);
    assert_eq!(
        pages[1],
        (0x1000, PageType::REG, SecinfoFlags::RWX),
        "union of R|X and R|W"
    );
    assert_eq!(
        pages[2],
        (0x2000, PageType::REG, SecinfoFlags::R | SecinfoFlags::W)
    );
}

#[test]
fn measures_what_the_loader_maps_and_nothing_else() {
    // Data segment: 0x10 file bytes then bss; file bytes after it in the same page are zeroed by
    // the loader (bss), so they are not measured; bytes past the last segment are never mapped.
    let mut tail = vec![0u8; 0x1000];
    let build = |tail: &[u8], bss: bool| {
        let memsz = if bss { 0x2000 } else { 0x10 };
        elf::write_elf(
            3,
            0x800,
            &[
                load(PF_R | PF_X, 0, 0, 0x1000, 0x1000),
                load(PF_R | PF_W, 0x1000, 0x1000, 0x10, memsz),
            ],
            &[(0x1000, tail)],
        )
    };
    let m = |img: &[u8]| measure_enclave(img, &config()).unwrap().mrenclave;
    let base_bss = m(&build(&tail, true));
    let base_nobss = m(&build(&tail, false));
    tail[0x20] = 0xaa; // after p_filesz, inside the page
    assert_eq!(
        m(&build(&tail, true)),
        base_bss,
        "zeroed by the loader: not measured"
    );
    assert_ne!(
        m(&build(&tail, false)),
        base_nobss,
        "mapped from the file: measured"
    );
    tail[0x5] = 0xbb; // inside p_filesz
    assert_ne!(m(&build(&tail, true)), base_bss);
    // The ELF header is measured (the kernel reads it): change e_flags.
    let mut img = build(&tail, true);
    let before = m(&img);
    img[48] ^= 1;
    assert_ne!(m(&img), before);
}

#[test]
fn never_panics_on_mutated_elf_files() {
    let img = image();
    let mut rng = coffer_testkit::rng::rng(0xdead_beef_cafe_f00d);
    let mut next = || coffer_testkit::rng::Rng::next_u64(&mut rng);
    let mut accepted = 0;
    for _ in 0..2000 {
        let mut b = img.clone();
        for _ in 0..1 + next() % 3 {
            // Mostly the headers, where the structure is.
            let at = if next() % 4 == 0 {
                (next() % b.len() as u64) as usize
            } else {
                (next() % 300) as usize
            };
            b[at] = next() as u8;
        }
        if next() % 8 == 0 {
            b.truncate((next() % b.len() as u64) as usize);
        }
        // Plan every mutant; measure those of a reasonable size (a mutated p_memsz can ask for
        // up to the 1 GiB span cap, too slow to hash in a debug build).
        if let Ok(l) = plan(&b, &config())
            && l.epc_size < 8 << 20
        {
            measure_enclave(&b, &config()).unwrap();
            accepted += 1;
        }
    }
    assert!(accepted > 0);
}
