//! ELF files for tests: where a real one keeps its code, and two minimal static x86-64 builders:
//! [`static_elf`], three PT_LOAD segments (headers R, code R|X at 0x1000, data R|W after it with an
//! optional bss) and PT_GNU_STACK, which only has to be an ELF the layout accepts; and
//! [`runnable_elf`], one R|X segment that the platform's tests really run.

pub const PT_LOAD: u32 = 1;
pub const PT_DYNAMIC: u32 = 2;
pub const PT_INTERP: u32 = 3;
pub const PT_GNU_STACK: u32 = 0x6474_e551;
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;

#[derive(Debug, Clone, Copy)]
pub struct Phdr {
    pub p_type: u32,
    pub p_flags: u32,
    pub p_offset: u64,
    pub p_vaddr: u64,
    pub p_filesz: u64,
    pub p_memsz: u64,
}

/// A non-executable stack.
const GNU_STACK: Phdr = Phdr {
    p_type: PT_GNU_STACK,
    p_flags: PF_R | PF_W,
    p_offset: 0,
    p_vaddr: 0,
    p_filesz: 0,
    p_memsz: 0,
};

fn page_up(v: u64) -> u64 {
    v.div_ceil(4096) * 4096
}

/// Writes an ELF file with these program headers and the given file contents placed at their
/// offsets (`contents`: (offset, bytes)).
#[allow(clippy::cast_possible_truncation)] // test sizes are small
pub fn write_elf(e_type: u16, entry: u64, phdrs: &[Phdr], contents: &[(u64, &[u8])]) -> Vec<u8> {
    let phoff = 64u64;
    let mut len = phoff + 56 * phdrs.len() as u64;
    for (off, b) in contents {
        len = len.max(off + b.len() as u64);
    }
    let mut f = vec![0u8; len as usize];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2; // ELFCLASS64
    f[5] = 1; // little-endian
    f[6] = 1; // EV_CURRENT
    f[16..18].copy_from_slice(&e_type.to_le_bytes());
    f[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[24..32].copy_from_slice(&entry.to_le_bytes());
    f[32..40].copy_from_slice(&phoff.to_le_bytes());
    f[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    f[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    f[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
    f[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
    for (i, p) in phdrs.iter().enumerate() {
        let o = 64 + 56 * i;
        f[o..o + 4].copy_from_slice(&p.p_type.to_le_bytes());
        f[o + 4..o + 8].copy_from_slice(&p.p_flags.to_le_bytes());
        f[o + 8..o + 16].copy_from_slice(&p.p_offset.to_le_bytes());
        f[o + 16..o + 24].copy_from_slice(&p.p_vaddr.to_le_bytes());
        f[o + 24..o + 32].copy_from_slice(&p.p_vaddr.to_le_bytes());
        f[o + 32..o + 40].copy_from_slice(&p.p_filesz.to_le_bytes());
        f[o + 40..o + 48].copy_from_slice(&p.p_memsz.to_le_bytes());
        f[o + 48..o + 56].copy_from_slice(&4096u64.to_le_bytes());
    }
    for (off, b) in contents {
        f[*off as usize..*off as usize + b.len()].copy_from_slice(b);
    }
    f
}

/// The usual static-pie shape: headers (R), `code` (R|X at 0x1000), `data` (R|W) followed by
/// `bss` zero bytes.
pub fn static_elf(code: &[u8], data: &[u8], bss: u64) -> Vec<u8> {
    let code_off = 0x1000u64;
    let data_off = code_off + page_up(code.len().max(1) as u64);
    let headers = 64 + 56 * 4;
    let phdrs = [
        Phdr {
            p_type: PT_LOAD,
            p_flags: PF_R,
            p_offset: 0,
            p_vaddr: 0,
            p_filesz: headers,
            p_memsz: headers,
        },
        Phdr {
            p_type: PT_LOAD,
            p_flags: PF_R | PF_X,
            p_offset: code_off,
            p_vaddr: code_off,
            p_filesz: code.len() as u64,
            p_memsz: code.len() as u64,
        },
        Phdr {
            p_type: PT_LOAD,
            p_flags: PF_R | PF_W,
            p_offset: data_off,
            p_vaddr: data_off,
            p_filesz: data.len() as u64,
            p_memsz: data.len() as u64 + bss,
        },
        GNU_STACK,
    ];
    write_elf(3, code_off, &phdrs, &[(code_off, code), (data_off, data)])
}

/// A static-pie ELF that runs: one R|X `PT_LOAD` segment holding the headers and `code`, entry at
/// the first code byte. The platform's tests run such few-instruction programs as "enclaves".
pub fn runnable_elf(code: &[u8]) -> Vec<u8> {
    let headers = 64 + 56 * 2;
    let len = headers + code.len() as u64;
    let phdrs = [
        Phdr {
            p_type: PT_LOAD,
            p_flags: PF_R | PF_X,
            p_offset: 0,
            p_vaddr: 0,
            p_filesz: len,
            p_memsz: len,
        },
        GNU_STACK,
    ];
    write_elf(3, headers, &phdrs, &[(headers, code)])
}

/// The file offset of a byte in the middle of the first executable `PT_LOAD` segment of the
/// ELF64 file `elf`. Fails the test when there is none (test input is trusted).
pub fn executable_byte(elf: &[u8]) -> usize {
    let u16_at = |o: usize| usize::from(u16::from_le_bytes([elf[o], elf[o + 1]]));
    let u64_at = |o: usize| {
        let bytes: [u8; 8] = elf[o..o + 8].try_into().expect("8 bytes");
        usize::try_from(u64::from_le_bytes(bytes)).expect("an offset fits usize")
    };
    let (phoff, phnum) = (u64_at(32), u16_at(56));
    (0..phnum)
        .map(|i| phoff + 56 * i)
        .find(|&ph| {
            u32::from_le_bytes(elf[ph..ph + 4].try_into().expect("4 bytes")) == 1
                && elf[ph + 4] & 1 == 1
        })
        .map(|ph| u64_at(ph + 8) + u64_at(ph + 32) / 2)
        .expect("an executable PT_LOAD segment")
}
