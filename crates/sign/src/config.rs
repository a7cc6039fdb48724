//! `enclave.toml`: the configuration an enclave is built, measured and launched with.
//!
//! ```toml
//! isv_prod_id = 1
//! isv_svn = 3
//! heap_size = 16777216      # bytes, a multiple of 4096
//! stack_size = 262144       # bytes per thread, a multiple of 4096
//! tcs_count = 4             # threads (TCS pages), 1..=256
//! debug = false
//! # isv_family_id = "00112233445566778899aabbccddeeff"    # optional, 16 bytes hex (KSS)
//! # isv_ext_prod_id = "00112233445566778899aabbccddeeff"  # optional, 16 bytes hex (KSS)
//! # max_call_size = 4194304 # per-thread ECALL buffer, default 4 MiB, not measured
//! ```
//!
//! `heap_size`, `stack_size` and `tcs_count` shape the enclave layout and so are bound by
//! MRENCLAVE (see [`crate::layout`]); `isv_prod_id`, `isv_svn`, `debug` and the KSS identifiers go
//! into the SIGSTRUCT and are checked against it when a bundle is verified. `max_call_size` only
//! sizes the untrusted call buffers and is not measured.
//!
//! Parsing is strict: unknown fields, zero or unaligned sizes and absurd values are refused with a
//! message that names the field.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The page size every size must be a multiple of.
pub const PAGE_SIZE: u64 = 4096;
/// The largest heap: 64 GiB. Every heap page is measured (one EADD each), so this bounds the work
/// and memory one configuration can make a verifier spend.
pub const MAX_HEAP_SIZE: u64 = 64 << 30;
/// The largest stack per thread: 256 MiB.
pub const MAX_STACK_SIZE: u64 = 256 << 20;
/// The largest heap plus all thread stacks: 64 GiB (same reason as [`MAX_HEAP_SIZE`]).
pub const MAX_MEMORY_SIZE: u64 = 64 << 30;
/// The most threads (TCS pages).
pub const MAX_TCS_COUNT: u32 = 256;
/// The per-thread call buffer when `max_call_size` is not given: 4 MiB.
pub const DEFAULT_MAX_CALL_SIZE: u64 = 4 << 20;
/// The largest per-thread call buffer: 64 MiB.
pub const MAX_MAX_CALL_SIZE: u64 = 64 << 20;
/// The longest configuration text accepted: 64 KiB (a real one is a few hundred bytes; the cap
/// keeps a hostile bundle from making the TOML parser chew on megabytes).
pub const MAX_CONFIG_LEN: usize = 64 * 1024;

/// A checked enclave configuration. Build one with [`EnclaveConfig::from_toml`] or, when filling
/// the fields by hand, call [`EnclaveConfig::validate`] before use (the layout does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnclaveConfig {
    /// ISVPRODID of the SIGSTRUCT.
    pub isv_prod_id: u16,
    /// ISVSVN of the SIGSTRUCT.
    pub isv_svn: u16,
    /// Heap size in bytes (measured).
    pub heap_size: u64,
    /// Stack size of each thread in bytes (measured).
    pub stack_size: u64,
    /// Number of threads, each with a TCS (measured).
    pub tcs_count: u32,
    /// Whether the enclave is signed and launched with the DEBUG attribute.
    pub debug: bool,
    /// ISVFAMILYID (KSS); setting it or `isv_ext_prod_id` sets the KSS attribute.
    pub isv_family_id: Option<[u8; 16]>,
    /// ISVEXTPRODID (KSS).
    pub isv_ext_prod_id: Option<[u8; 16]>,
    /// Size of each thread's ECALL/OCALL buffer in bytes (not measured).
    pub max_call_size: u64,
}

/// Why an `enclave.toml` was refused. Every message names the field at fault.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The text is longer than [`MAX_CONFIG_LEN`].
    #[error("enclave configuration is {len} bytes, more than the {limit} bytes accepted")]
    TooLarge { len: usize, limit: usize },
    /// The bytes are not UTF-8.
    #[error("enclave configuration is not UTF-8 text")]
    NotUtf8,
    /// TOML syntax, a missing or unknown field, or a value of the wrong type or range.
    #[error("enclave configuration, line {line} column {column}{}: {message}",
        .key.as_ref().map(|k| format!(" ({k})")).unwrap_or_default())]
    Syntax {
        line: usize,
        column: usize,
        /// The key on that line, if the line has one.
        key: Option<String>,
        message: String,
    },
    /// A size is zero.
    #[error("enclave configuration: {field} is 0; it must be at least one page (4096 bytes)")]
    Zero { field: &'static str },
    /// A size is not a multiple of the page size.
    #[error(
        "enclave configuration: {field} = {value} is not a multiple of the page size (4096 bytes)"
    )]
    NotPageMultiple { field: &'static str, value: u64 },
    /// A size is above its cap.
    #[error("enclave configuration: {field} = {value} exceeds the limit of {limit} bytes")]
    TooBig {
        field: &'static str,
        value: u64,
        limit: u64,
    },
    /// `tcs_count` is 0 or above 256.
    #[error("enclave configuration: tcs_count = {0}; it must be between 1 and 256")]
    TcsCount(u32),
    /// A KSS identifier is not 16 bytes of hex.
    #[error("enclave configuration: {field} must be 32 hexadecimal characters (16 bytes)")]
    BadId { field: &'static str },
}

/// The TOML form, field for field.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Toml {
    isv_prod_id: u16,
    isv_svn: u16,
    heap_size: u64,
    stack_size: u64,
    tcs_count: u32,
    debug: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    isv_family_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    isv_ext_prod_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_call_size: Option<u64>,
}

/// A TOML error on one line: its message and where it starts.
fn syntax(text: &str, e: &toml::de::Error) -> ConfigError {
    let at = e.span().map_or(0, |s| s.start).min(text.len());
    let before = text.get(..at).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let key = text
        .lines()
        .nth(line - 1)
        .and_then(|l| l.split_once('='))
        .map(|(k, _)| k.trim())
        .filter(|k| !k.is_empty() && k.len() <= 64)
        .map(str::to_owned);
    let message = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    ConfigError::Syntax {
        line,
        column,
        key,
        message,
    }
}

fn parse_id(field: &'static str, s: Option<String>) -> Result<Option<[u8; 16]>, ConfigError> {
    let Some(s) = s else { return Ok(None) };
    let mut out = [0u8; 16];
    hex::decode_to_slice(s.trim(), &mut out).map_err(|_| ConfigError::BadId { field })?;
    Ok(Some(out))
}

fn check_size(field: &'static str, value: u64, limit: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::Zero { field });
    }
    if !value.is_multiple_of(PAGE_SIZE) {
        return Err(ConfigError::NotPageMultiple { field, value });
    }
    if value > limit {
        return Err(ConfigError::TooBig {
            field,
            value,
            limit,
        });
    }
    Ok(())
}

impl EnclaveConfig {
    /// Parses and checks `enclave.toml` text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        if text.len() > MAX_CONFIG_LEN {
            return Err(ConfigError::TooLarge {
                len: text.len(),
                limit: MAX_CONFIG_LEN,
            });
        }
        let t: Toml = toml::from_str(text).map_err(|e| syntax(text, &e))?;
        let config = EnclaveConfig {
            isv_prod_id: t.isv_prod_id,
            isv_svn: t.isv_svn,
            heap_size: t.heap_size,
            stack_size: t.stack_size,
            tcs_count: t.tcs_count,
            debug: t.debug,
            isv_family_id: parse_id("isv_family_id", t.isv_family_id)?,
            isv_ext_prod_id: parse_id("isv_ext_prod_id", t.isv_ext_prod_id)?,
            max_call_size: t.max_call_size.unwrap_or(DEFAULT_MAX_CALL_SIZE),
        };
        config.validate()?;
        Ok(config)
    }

    /// Parses and checks `enclave.toml` bytes (size capped before decoding).
    pub fn from_toml_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        if bytes.len() > MAX_CONFIG_LEN {
            return Err(ConfigError::TooLarge {
                len: bytes.len(),
                limit: MAX_CONFIG_LEN,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| ConfigError::NotUtf8)?;
        Self::from_toml(text)
    }

    /// Checks every rule `from_toml` checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_size("heap_size", self.heap_size, MAX_HEAP_SIZE)?;
        check_size("stack_size", self.stack_size, MAX_STACK_SIZE)?;
        if self.tcs_count == 0 || self.tcs_count > MAX_TCS_COUNT {
            return Err(ConfigError::TcsCount(self.tcs_count));
        }
        check_size("max_call_size", self.max_call_size, MAX_MAX_CALL_SIZE)?;
        // Both factors are capped above, so this cannot overflow; saturate anyway.
        let total = u64::from(self.tcs_count)
            .saturating_mul(self.stack_size)
            .saturating_add(self.heap_size);
        if total > MAX_MEMORY_SIZE {
            return Err(ConfigError::TooBig {
                field: "heap_size + tcs_count × stack_size",
                value: total,
                limit: MAX_MEMORY_SIZE,
            });
        }
        Ok(())
    }

    /// The canonical TOML text of this configuration: fixed field order, every field that has a
    /// value (`max_call_size` always), so that equal configurations give equal bytes.
    pub fn to_canonical_toml(&self) -> String {
        let t = Toml {
            isv_prod_id: self.isv_prod_id,
            isv_svn: self.isv_svn,
            heap_size: self.heap_size,
            stack_size: self.stack_size,
            tcs_count: self.tcs_count,
            debug: self.debug,
            isv_family_id: self.isv_family_id.map(hex::encode),
            isv_ext_prod_id: self.isv_ext_prod_id.map(hex::encode),
            max_call_size: Some(self.max_call_size),
        };
        // Serialising a struct of integers, booleans and hex strings cannot fail.
        toml::to_string(&t).unwrap_or_default()
    }

    /// Whether the KSS attribute is needed (a family or extended product ID is set).
    pub fn kss(&self) -> bool {
        self.isv_family_id.is_some() || self.isv_ext_prod_id.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "isv_prod_id = 1\nisv_svn = 2\nheap_size = 0x100000\n\
                        stack_size = 65536\ntcs_count = 2\ndebug = false\n";

    fn with(extra: &str) -> String {
        format!("{GOOD}{extra}\n")
    }

    fn err(text: &str) -> String {
        EnclaveConfig::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn accepts_a_minimal_config_with_defaults() {
        let c = EnclaveConfig::from_toml(GOOD).unwrap();
        assert_eq!(c.isv_prod_id, 1);
        assert_eq!(c.isv_svn, 2);
        assert_eq!(c.heap_size, 0x100000);
        assert_eq!(c.stack_size, 65536);
        assert_eq!(c.tcs_count, 2);
        assert!(!c.debug);
        assert_eq!(c.isv_family_id, None);
        assert_eq!(c.max_call_size, DEFAULT_MAX_CALL_SIZE);
        assert!(!c.kss());
    }

    #[test]
    fn accepts_kss_ids_and_round_trips_canonically() {
        let c = EnclaveConfig::from_toml(&with(
            "isv_family_id = \"00112233445566778899aabbccddeeff\"\nmax_call_size = 8192",
        ))
        .unwrap();
        assert_eq!(c.isv_family_id.unwrap()[15], 0xff);
        assert_eq!(c.max_call_size, 8192);
        assert!(c.kss());
        let canon = c.to_canonical_toml();
        assert_eq!(EnclaveConfig::from_toml(&canon).unwrap(), c);
        assert_eq!(
            EnclaveConfig::from_toml(&canon)
                .unwrap()
                .to_canonical_toml(),
            canon
        );
    }

    #[test]
    fn rejects_unknown_and_missing_fields_on_one_line() {
        let e = err(&with("heap = 4096"));
        assert!(
            e.contains("unknown field `heap`") && e.contains("line 7"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
        let missing = GOOD.replace("tcs_count = 2\n", "");
        let e = err(&missing);
        assert!(e.contains("tcs_count"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
        let e = err("isv_prod_id = \n");
        assert!(e.starts_with("enclave configuration, line 1"), "{e}");
    }

    #[test]
    fn rejects_zero_unaligned_and_absurd_sizes() {
        let sub = |from: &str, to: &str| GOOD.replace(from, to);
        let e = err(&sub("heap_size = 0x100000", "heap_size = 0"));
        assert!(e.contains("heap_size is 0"), "{e}");
        let e = err(&sub("stack_size = 65536", "stack_size = 65537"));
        assert!(e.contains("stack_size = 65537 is not a multiple"), "{e}");
        let e = err(&sub("heap_size = 0x100000", "heap_size = 0x1000000000000"));
        assert!(e.contains("heap_size") && e.contains("exceeds"), "{e}");
        let e = err(&sub("stack_size = 65536", "stack_size = 0x40000000"));
        assert!(e.contains("stack_size") && e.contains("exceeds"), "{e}");
        let e = err(&with("max_call_size = 100"));
        assert!(e.contains("max_call_size"), "{e}");
        let e = err(&with("max_call_size = 0x8000000"));
        assert!(e.contains("max_call_size") && e.contains("exceeds"), "{e}");
        let e = err(&sub("heap_size = 0x100000", "heap_size = -4096"));
        assert!(e.contains("heap_size"), "{e}");
        let e = err(&sub(
            "heap_size = 0x100000\nstack_size = 65536\ntcs_count = 2",
            "heap_size = 0x1000000000\nstack_size = 0x10000000\ntcs_count = 256",
        ));
        assert!(e.contains("tcs_count × stack_size"), "{e}");
    }

    #[test]
    fn rejects_a_bad_tcs_count() {
        for n in ["0", "257", "-1", "4294967296"] {
            let e = err(&GOOD.replace("tcs_count = 2", &format!("tcs_count = {n}")));
            assert!(e.contains("tcs_count"), "{n}: {e}");
        }
        assert!(
            EnclaveConfig::from_toml(&GOOD.replace("tcs_count = 2", "tcs_count = 256")).is_ok()
        );
    }

    #[test]
    fn rejects_bad_ids_and_bad_bytes() {
        let e = err(&with("isv_ext_prod_id = \"0011\""));
        assert!(e.contains("isv_ext_prod_id"), "{e}");
        let e = err(&with(
            "isv_family_id = \"zz112233445566778899aabbccddeeff\"",
        ));
        assert!(e.contains("isv_family_id"), "{e}");
        assert!(matches!(
            EnclaveConfig::from_toml_bytes(&[0xff, 0xfe]),
            Err(ConfigError::NotUtf8)
        ));
        let big = vec![b' '; MAX_CONFIG_LEN + 1];
        assert!(matches!(
            EnclaveConfig::from_toml_bytes(&big),
            Err(ConfigError::TooLarge { .. })
        ));
        assert!(EnclaveConfig::from_toml("isv_prod_id = ").is_err());
    }
}
