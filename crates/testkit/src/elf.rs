//! Where an ELF file keeps its code, for tests that change one byte of it.

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
