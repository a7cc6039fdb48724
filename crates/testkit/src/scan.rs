//! A root process looking for bytes in another process's memory: every readable mapping of
//! `/proc/PID/maps`, read through `/proc/PID/mem`, the way a debugger or a memory-dumping
//! attacker reads it.

use std::os::unix::fs::FileExt;

/// How much is read at once.
const CHUNK: usize = 1 << 20;

/// What a scan found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemoryScan {
    /// How often each needle occurs, in the order the needles were given.
    pub hits: Vec<usize>,
    /// Bytes read in all.
    pub bytes_read: u64,
    /// Readable mappings read to their end.
    pub ranges_read: usize,
    /// Readable mappings the kernel refused to read (EIO or EFAULT): secret memory
    /// (`memfd_secret`), and special mappings such as `[vvar]`.
    pub ranges_refused: usize,
}

/// How often `needle` occurs in the readable memory of process `pid`.
pub fn scan_process_memory(pid: u32, needle: &[u8]) -> usize {
    scan_process_memory_for(pid, &[needle]).hits[0]
}

/// Reads every readable mapping of `pid` through `/proc/PID/mem`, counting where each of
/// `needles` occurs (overlapping occurrences included). A range the kernel refuses is counted
/// and skipped; any other failure fails the test.
pub fn scan_process_memory_for(pid: u32, needles: &[&[u8]]) -> MemoryScan {
    assert!(
        needles.iter().all(|n| !n.is_empty()),
        "cannot scan for an empty needle"
    );
    // Chunks overlap by one byte less than the longest needle, so that a needle across a chunk
    // boundary is still seen; only occurrences that end in the new bytes are counted.
    let overlap = needles.iter().map(|n| n.len()).max().unwrap_or(1) - 1;
    let maps_path = format!("/proc/{pid}/maps");
    let maps =
        std::fs::read_to_string(&maps_path).unwrap_or_else(|e| panic!("reading {maps_path}: {e}"));
    let mem_path = format!("/proc/{pid}/mem");
    let mem = std::fs::File::open(&mem_path).unwrap_or_else(|e| panic!("opening {mem_path}: {e}"));
    let mut result = MemoryScan {
        hits: vec![0; needles.len()],
        ..MemoryScan::default()
    };
    let mut buf = vec![0u8; CHUNK + overlap];
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !perms.starts_with('r') {
            continue;
        }
        let (start, end) = range
            .split_once('-')
            .unwrap_or_else(|| panic!("a range in {maps_path}: {line}"));
        let address = |s: &str| {
            u64::from_str_radix(s, 16).unwrap_or_else(|e| panic!("{line} in {maps_path}: {e}"))
        };
        let (start, end) = (address(start), address(end));
        let (mut at, mut carried, mut refused) = (start, 0usize, false);
        while at < end {
            let want = usize::try_from(end - at).unwrap_or(CHUNK).min(CHUNK);
            match mem.read_at(&mut buf[carried..carried + want], at) {
                Ok(0) => break,
                Ok(n) => {
                    result.bytes_read += n as u64;
                    let window = &buf[..carried + n];
                    for (hits, needle) in result.hits.iter_mut().zip(needles) {
                        *hits += count(window, needle, carried);
                    }
                    let keep = window.len().min(overlap);
                    let tail = window.len() - keep;
                    buf.copy_within(tail..tail + keep, 0);
                    carried = keep;
                    at += n as u64;
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EIO | libc::EFAULT)) => {
                    refused = true;
                    break;
                }
                Err(e) => panic!("reading {range} of {pid}: {e}"),
            }
        }
        if refused {
            result.ranges_refused += 1;
        } else {
            result.ranges_read += 1;
        }
    }
    result
}

/// A scan for a secret and a marker that reached the process by an ordinary-memory path:
/// finding the marker proves that the scan read the process's ordinary memory in this very run,
/// so not finding the secret means something.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SecretScan {
    pub secret_hits: usize,
    pub marker_hits: usize,
    pub bytes_read: u64,
    pub ranges_read: usize,
    pub ranges_refused: usize,
}

/// Scans `pid` for `secret` and `marker` (see [`scan_process_memory_for`]).
pub fn scan_for_secret(pid: u32, secret: &[u8], marker: &[u8]) -> SecretScan {
    let scan = scan_process_memory_for(pid, &[secret, marker]);
    SecretScan {
        secret_hits: scan.hits[0],
        marker_hits: scan.hits[1],
        bytes_read: scan.bytes_read,
        ranges_read: scan.ranges_read,
        ranges_refused: scan.ranges_refused,
    }
}

impl SecretScan {
    /// The boundary held: the scan read ordinary memory and found the marker there, the kernel
    /// refused at least `min_refused` mappings (the secret memory), and no copy of the secret
    /// was seen.
    pub fn assert_secret_hidden(&self, min_refused: usize) {
        assert!(self.bytes_read > 0 && self.ranges_read > 0, "{self:?}");
        assert!(
            self.marker_hits >= 1,
            "the scan must see the process's ordinary memory: {self:?}"
        );
        assert!(self.ranges_refused >= min_refused, "{self:?}");
        assert_eq!(
            self.secret_hits, 0,
            "the secret was found in the process's memory: {self:?}"
        );
    }

    /// The control, where the secret is in ordinary memory: the scan found the marker and at
    /// least `copies` copies of the secret.
    pub fn assert_secret_found(&self, copies: usize) {
        assert!(self.marker_hits >= 1, "{self:?}");
        assert!(self.secret_hits >= copies, "{self:?}");
    }
}

/// Occurrences of `needle` in `window` that end after its first `carried` bytes (those were
/// counted with the previous chunk).
fn count(window: &[u8], needle: &[u8], carried: usize) -> usize {
    window
        .windows(needle.len())
        .enumerate()
        .filter(|(start, w)| start + needle.len() > carried && w == &needle)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_occurrence_once_across_a_carried_tail() {
        // "abab" carried 3 bytes ("bab"), then new bytes "ab": only matches ending in the new
        // part count.
        assert_eq!(count(b"babab", b"ab", 3), 1);
        assert_eq!(count(b"babab", b"ab", 0), 2);
        assert_eq!(count(b"aaaa", b"aa", 0), 3);
    }

    #[test]
    fn finds_a_needle_in_this_process() {
        let pid = std::process::id();
        // Built at run time so that only the heap copy (and the copies the scan itself makes
        // while reading) exist, not one in the binary's data.
        let needle: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
        let held = needle.repeat(3);
        let scan = scan_process_memory_for(pid, &[&needle]);
        assert!(scan.hits[0] >= 3, "{scan:?}");
        assert!(scan.bytes_read > 0 && scan.ranges_read > 0, "{scan:?}");
        drop(held);
    }
}
