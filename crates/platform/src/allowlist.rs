//! The signer allowlist: which MRSIGNERs may launch enclaves on this node.
//!
//! The file holds one MRSIGNER per line as 64 hex characters; `#` starts a comment, blank lines
//! are ignored. A malformed line is refused with its number, so an operator's typo never widens
//! or silently narrows the policy.

use std::collections::BTreeSet;
use std::path::Path;

/// Caps the file at 1 MiB (some 15,000 signers), so a wrong path (a device, a huge file) cannot
/// make the daemon read without end.
pub const MAX_ALLOWLIST_LEN: u64 = 1 << 20;

/// Why an allowlist could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AllowlistError {
    #[error("cannot read the signer allowlist {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the signer allowlist {path} is larger than {MAX_ALLOWLIST_LEN} bytes")]
    TooLarge { path: String },
    #[error("the signer allowlist is not UTF-8 text")]
    NotText,
    #[error(
        "signer allowlist line {line}: {text:?} is not an MRSIGNER (64 hex characters, optionally followed by a # comment)"
    )]
    Malformed { line: usize, text: String },
}

/// The MRSIGNERs allowed to launch enclaves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignerAllowlist {
    signers: BTreeSet<[u8; 32]>,
}

impl SignerAllowlist {
    /// Reads and parses an allowlist file.
    pub fn load(path: &Path) -> Result<Self, AllowlistError> {
        use std::io::Read;
        let shown = path.display().to_string();
        let read = |source| AllowlistError::Read {
            path: shown.clone(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read)?;
        let mut bytes = Vec::new();
        file.take(MAX_ALLOWLIST_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        if bytes.len() as u64 > MAX_ALLOWLIST_LEN {
            return Err(AllowlistError::TooLarge { path: shown });
        }
        let text = String::from_utf8(bytes).map_err(|_| AllowlistError::NotText)?;
        Self::parse(&text)
    }

    /// Parses the allowlist text.
    pub fn parse(text: &str) -> Result<Self, AllowlistError> {
        let mut signers = BTreeSet::new();
        for (i, raw) in text.lines().enumerate() {
            let content = raw.split_once('#').map_or(raw, |(before, _)| before).trim();
            if content.is_empty() {
                continue;
            }
            let malformed = || AllowlistError::Malformed {
                line: i + 1,
                text: raw.chars().take(100).collect(),
            };
            if content.len() != 64 {
                return Err(malformed());
            }
            let mut mrsigner = [0u8; 32];
            hex::decode_to_slice(content, &mut mrsigner).map_err(|_| malformed())?;
            signers.insert(mrsigner);
        }
        Ok(SignerAllowlist { signers })
    }

    pub fn allows(&self, mrsigner: &[u8; 32]) -> bool {
        self.signers.contains(mrsigner)
    }

    pub fn len(&self) -> usize {
        self.signers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.signers.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const A: &str = "aa00000000000000000000000000000000000000000000000000000000000001";
    const B: &str = "BB00000000000000000000000000000000000000000000000000000000000002";

    #[test]
    fn accepts_signers_comments_and_blank_lines() {
        let text = format!("# production signers\n\n{A}\n  {B}  # release key 2026\n");
        let list = SignerAllowlist::parse(&text).unwrap();
        assert_eq!(list.len(), 2);
        let mut a = [0u8; 32];
        hex::decode_to_slice(A, &mut a).unwrap();
        assert!(list.allows(&a));
        a[31] ^= 1;
        assert!(!list.allows(&a));
    }

    #[test]
    fn accepts_an_empty_list_that_allows_nobody() {
        let list = SignerAllowlist::parse("# nobody yet\n").unwrap();
        assert!(list.is_empty());
        assert!(!list.allows(&[0; 32]));
    }

    #[test]
    fn rejects_malformed_lines_naming_the_line() {
        for (text, line) in [
            (format!("{A}\n{}\n", &B[..63]), 2),
            (format!("{A}\n\n{B}0\n"), 3),
            (format!("zz{}\n", &A[2..]), 1),
            (format!("{A} {B}\n"), 1),
            ("mrsigner = x\n".to_string(), 1),
        ] {
            match SignerAllowlist::parse(&text) {
                Err(AllowlistError::Malformed { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text:?} gave {other:?}"),
            }
        }
        let msg = SignerAllowlist::parse("x\n").unwrap_err().to_string();
        assert!(msg.contains("line 1"), "{msg}");
    }

    #[test]
    fn loads_a_file_and_rejects_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signers");
        std::fs::write(&path, format!("{A}\n")).unwrap();
        assert_eq!(SignerAllowlist::load(&path).unwrap().len(), 1);
        assert!(matches!(
            SignerAllowlist::load(&dir.path().join("absent")),
            Err(AllowlistError::Read { .. })
        ));
    }
}
