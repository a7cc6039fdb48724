//! The `.coffer` bundle: everything needed to launch one signed enclave, in one file.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "COFFERB\0"
//!      8     4  format version (1), little-endian like every integer here
//!     12     4  reserved, zero
//!     16     4  SIGSTRUCT length (1808)
//!     20     4  configuration length (≤ 64 KiB): canonical enclave.toml text
//!     24     8  image length (≤ 1 GiB): the ELF file, unchanged
//!     32        SIGSTRUCT ‖ configuration ‖ image, nothing after
//! ```
//!
//! Parsing ([`Bundle::from_bytes`], [`Bundle::read_from`]) checks the form only and gives an
//! *unverified* bundle. [`Bundle::verify`] is the launch check: the SIGSTRUCT's signature, its
//! ENCLAVEHASH against the MRENCLAVE recomputed from image and configuration, its identity fields
//! and attributes against the configuration. Only it makes a [`VerifiedBundle`].

use std::io::Read;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use coffer_abi::{
    Attributes, AttributesFlags, Codec, DecodeError, FixedSize, Miscselect, Sigstruct,
    SigstructDate,
};
use thiserror::Error;

use crate::config::{ConfigError, EnclaveConfig, MAX_CONFIG_LEN};
use crate::key::{SigningKey, VerifyingKey};
use crate::layout::{self, LayoutError, MAX_IMAGE_FILE, Measured};
use crate::sigstruct::{SigstructBody, SigstructSignError, SigstructVerifyError};

/// First bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"COFFERB\0";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// SIGSTRUCT's length as the header stores it.
const SIGSTRUCT_LEN: u32 = 1808;
/// Size of the fixed header.
pub const HEADER_SIZE: usize = 32;
/// The largest image a bundle may carry (1 GiB): bounds the memory a bundle can make a reader
/// allocate and the hashing it can make a verifier do.
pub const MAX_IMAGE_SIZE: u64 = MAX_IMAGE_FILE;
/// The largest configuration a bundle may carry.
pub const MAX_CONFIG_SIZE: usize = MAX_CONFIG_LEN;
/// The largest bundle.
pub const MAX_BUNDLE_SIZE: u64 =
    HEADER_SIZE as u64 + 1808 + MAX_CONFIG_SIZE as u64 + MAX_IMAGE_SIZE;

/// ATTRIBUTES.XFRM every Coffer enclave is signed and launched with: x87 and SSE.
pub const XFRM: u64 = 0x3;
/// ATTRIBUTEMASK Coffer signs with: every flag (DEBUG included, so a debug SIGSTRUCT cannot launch
/// a production enclave or the reverse), and the SDK's XFRM mask.
pub const ATTRIBUTE_MASK: Attributes = Attributes {
    flags: AttributesFlags::from_bits_retain(!0),
    xfrm: !0xe4,
};
/// MISCMASK Coffer signs with.
pub const MISC_MASK: u32 = 0xffff_ffff;

/// Why bytes are not a well-formed bundle.
#[derive(Debug, Error)]
pub enum BundleError {
    /// Reading the bundle failed.
    #[error("reading the bundle failed: {0}")]
    Io(#[source] std::io::Error),
    /// The input ends early.
    #[error("bundle truncated: the {part} needs {needed} bytes but only {available} remain")]
    Truncated {
        part: &'static str,
        needed: u64,
        available: u64,
    },
    /// No magic.
    #[error("not a Coffer bundle (the file does not start with \"COFFERB\\0\")")]
    BadMagic,
    /// A format version this code does not know.
    #[error("bundle format version {0} is not supported (this coffer reads version 1)")]
    UnsupportedVersion(u32),
    /// Reserved header bytes are not zero.
    #[error("bundle header: reserved field is 0x{0:08x}, must be 0")]
    ReservedNotZero(u32),
    /// The SIGSTRUCT length is not 1808.
    #[error("bundle header: SIGSTRUCT length is {0}, must be 1808")]
    SigstructLength(u32),
    /// A part is longer than its cap.
    #[error("bundle header: the {part} length {len} exceeds the limit of {limit} bytes")]
    TooLarge {
        part: &'static str,
        len: u64,
        limit: u64,
    },
    /// Bytes follow the image.
    #[error("bundle has trailing bytes after the image (at least {0})")]
    TrailingBytes(u64),
    /// The SIGSTRUCT does not decode.
    #[error("bundle SIGSTRUCT: {0}")]
    Sigstruct(#[source] DecodeError),
    /// The configuration does not parse.
    #[error("bundle configuration: {0}")]
    Config(#[source] ConfigError),
}

/// Why a bundle cannot be launched. Each check has its own variant.
#[derive(Debug, Error)]
pub enum BundleVerifyError {
    /// The SIGSTRUCT's signature (or exponent, Q1, Q2) does not verify.
    #[error("bad signature: {0}")]
    Signature(#[source] SigstructVerifyError),
    /// The image or configuration has no layout.
    #[error("enclave layout: {0}")]
    Layout(#[source] LayoutError),
    /// ENCLAVEHASH differs from the MRENCLAVE of the image and configuration.
    #[error(
        "measurement mismatch: SIGSTRUCT ENCLAVEHASH is {} but the image and configuration \
         measure {}", hex::encode(.signed), hex::encode(.computed)
    )]
    MeasurementMismatch {
        signed: [u8; 32],
        computed: [u8; 32],
    },
    /// The DEBUG attribute disagrees with the configuration.
    #[error(
        "debug mismatch: the configuration says debug = {config} but the SIGSTRUCT says {signed}"
    )]
    DebugMismatch { config: bool, signed: bool },
    /// An identity field disagrees with the configuration.
    #[error(
        "identity mismatch: the configuration's {field} is {config} but the SIGSTRUCT's is {signed}"
    )]
    IdentityMismatch {
        field: &'static str,
        config: String,
        signed: String,
    },
    /// The enclave's attributes are not the ones the SIGSTRUCT allows.
    #[error(
        "attributes outside the SIGSTRUCT mask: the enclave runs with flags 0x{:x} xfrm 0x{:x}, \
         the SIGSTRUCT signs flags 0x{:x} xfrm 0x{:x} under mask flags 0x{:x} xfrm 0x{:x}",
        .enclave.flags.bits(), .enclave.xfrm, .signed.flags.bits(), .signed.xfrm,
        .mask.flags.bits(), .mask.xfrm
    )]
    AttributesOutsideMask {
        enclave: Attributes,
        signed: Attributes,
        mask: Attributes,
    },
    /// MISCSELECT 0 is not what the SIGSTRUCT allows.
    #[error(
        "MISCSELECT outside the SIGSTRUCT mask: the enclave runs with 0, the SIGSTRUCT signs \
         0x{signed:08x} under mask 0x{mask:08x}"
    )]
    MiscselectOutsideMask { signed: u32, mask: u32 },
}

/// Why a bundle could not be made.
#[derive(Debug, Error)]
pub enum BundleSignError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Sign(#[from] SigstructSignError),
}

/// A parsed, unverified bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    sigstruct: Sigstruct,
    config_bytes: Vec<u8>,
    config: EnclaveConfig,
    image: Arc<[u8]>,
}

/// The header fields, checked.
struct Header {
    config_len: usize,
    image_len: u64,
}

fn parse_header(h: &[u8; HEADER_SIZE]) -> Result<Header, BundleError> {
    let u32_at = |at: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&h[at..at + 4]);
        u32::from_le_bytes(b)
    };
    if h[..8] != MAGIC {
        return Err(BundleError::BadMagic);
    }
    let version = u32_at(8);
    if version != FORMAT_VERSION {
        return Err(BundleError::UnsupportedVersion(version));
    }
    let reserved = u32_at(12);
    if reserved != 0 {
        return Err(BundleError::ReservedNotZero(reserved));
    }
    let sig_len = u32_at(16);
    if sig_len != SIGSTRUCT_LEN {
        return Err(BundleError::SigstructLength(sig_len));
    }
    let config_len = u32_at(20);
    let config_len = usize::try_from(config_len)
        .ok()
        .filter(|l| *l <= MAX_CONFIG_SIZE)
        .ok_or(BundleError::TooLarge {
            part: "configuration",
            len: u64::from(config_len),
            limit: MAX_CONFIG_SIZE as u64,
        })?;
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[24..32]);
    let image_len = u64::from_le_bytes(b);
    if image_len > MAX_IMAGE_SIZE {
        return Err(BundleError::TooLarge {
            part: "image",
            len: image_len,
            limit: MAX_IMAGE_SIZE,
        });
    }
    Ok(Header {
        config_len,
        image_len,
    })
}

/// Takes `n` bytes from `buf` at `*pos`, or reports the truncated part.
fn take<'a>(
    buf: &'a [u8],
    pos: &mut usize,
    n: usize,
    part: &'static str,
) -> Result<&'a [u8], BundleError> {
    let available = buf.len().saturating_sub(*pos);
    if n > available {
        return Err(BundleError::Truncated {
            part,
            needed: n as u64,
            available: available as u64,
        });
    }
    let s = &buf[*pos..*pos + n];
    *pos += n;
    Ok(s)
}

impl Bundle {
    /// A bundle of these parts (unverified). The configuration is stored as canonical TOML.
    pub fn new(sigstruct: Sigstruct, config: EnclaveConfig, image: impl Into<Arc<[u8]>>) -> Self {
        Bundle {
            sigstruct,
            config_bytes: config.to_canonical_toml().into_bytes(),
            config,
            image: image.into(),
        }
    }

    /// Parses a whole bundle held in memory.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BundleError> {
        let mut pos = 0;
        let mut h = [0u8; HEADER_SIZE];
        h.copy_from_slice(take(bytes, &mut pos, HEADER_SIZE, "header")?);
        let header = parse_header(&h)?;
        let sig = take(bytes, &mut pos, Sigstruct::SIZE, "SIGSTRUCT")?;
        let config = take(bytes, &mut pos, header.config_len, "configuration")?;
        let image_len = usize::try_from(header.image_len).unwrap_or(usize::MAX);
        let image = take(bytes, &mut pos, image_len, "image")?;
        if pos != bytes.len() {
            return Err(BundleError::TrailingBytes((bytes.len() - pos) as u64));
        }
        Self::from_parts(sig, config.to_vec(), Arc::from(image))
    }

    /// Reads a bundle from a stream (a file, a descriptor): the header first, then exactly the
    /// lengths it announces, within the caps, then checks that the stream ends.
    pub fn read_from(mut r: impl Read) -> Result<Self, BundleError> {
        let mut h = [0u8; HEADER_SIZE];
        read_exact(&mut r, &mut h, "header")?;
        let header = parse_header(&h)?;
        let mut sig = vec![0u8; Sigstruct::SIZE];
        read_exact(&mut r, &mut sig, "SIGSTRUCT")?;
        let mut config = vec![0u8; header.config_len];
        read_exact(&mut r, &mut config, "configuration")?;
        let mut image = Vec::new();
        (&mut r)
            .take(header.image_len)
            .read_to_end(&mut image)
            .map_err(BundleError::Io)?;
        if image.len() as u64 != header.image_len {
            return Err(BundleError::Truncated {
                part: "image",
                needed: header.image_len,
                available: image.len() as u64,
            });
        }
        let mut extra = [0u8; 1];
        loop {
            match r.read(&mut extra) {
                Ok(0) => break,
                Ok(n) => return Err(BundleError::TrailingBytes(n as u64)),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(BundleError::Io(e)),
            }
        }
        Self::from_parts(&sig, config, Arc::from(image))
    }

    fn from_parts(
        sig: &[u8],
        config_bytes: Vec<u8>,
        image: Arc<[u8]>,
    ) -> Result<Self, BundleError> {
        let sigstruct = Sigstruct::from_bytes(sig).map_err(BundleError::Sigstruct)?;
        let config = EnclaveConfig::from_toml_bytes(&config_bytes).map_err(BundleError::Config)?;
        Ok(Bundle {
            sigstruct,
            config_bytes,
            config,
            image,
        })
    }

    /// The bundle file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            HEADER_SIZE + Sigstruct::SIZE + self.config_bytes.len() + self.image.len(),
        );
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&SIGSTRUCT_LEN.to_le_bytes());
        out.extend_from_slice(
            &u32::try_from(self.config_bytes.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        out.extend_from_slice(&(self.image.len() as u64).to_le_bytes());
        self.sigstruct.encode(&mut out);
        out.extend_from_slice(&self.config_bytes);
        out.extend_from_slice(&self.image);
        out
    }

    pub fn sigstruct(&self) -> &Sigstruct {
        &self.sigstruct
    }

    pub fn config(&self) -> &EnclaveConfig {
        &self.config
    }

    /// The configuration text as stored.
    pub fn config_bytes(&self) -> &[u8] {
        &self.config_bytes
    }

    /// The ELF image as stored.
    pub fn image(&self) -> &[u8] {
        &self.image
    }

    /// The EPC size the enclave will be charged, from the layout alone (no hashing): check a
    /// budget with this before paying for [`Bundle::verify`].
    pub fn epc_size(&self) -> Result<u64, LayoutError> {
        Ok(layout::plan(&self.image, &self.config)?.epc_size)
    }

    /// Makes and signs a bundle for `image` with `config`, dated `date`.
    pub fn sign(
        key: &SigningKey,
        config: &EnclaveConfig,
        image: impl Into<Arc<[u8]>>,
        date: SigstructDate,
    ) -> Result<Self, BundleSignError> {
        let image = image.into();
        let measured = layout::measure_enclave(&image, config)?;
        let body = sigstruct_body(config, measured.mrenclave, date);
        let sigstruct = crate::sigstruct::sign(key, &body)?;
        Ok(Bundle::new(sigstruct, config.clone(), image))
    }

    /// Assembles a bundle from a signature made elsewhere (big-endian PKCS#1 v1.5, SHA-256) over
    /// [`signing_data`] of the same image, configuration and date; refuses a signature that does
    /// not verify with `key`.
    pub fn assemble(
        key: &VerifyingKey,
        signature_be: &[u8],
        config: &EnclaveConfig,
        image: impl Into<Arc<[u8]>>,
        date: SigstructDate,
    ) -> Result<Self, BundleSignError> {
        let image = image.into();
        let measured = layout::measure_enclave(&image, config)?;
        let body = sigstruct_body(config, measured.mrenclave, date);
        let sigstruct = crate::sigstruct::assemble(&body, key, signature_be)?;
        Ok(Bundle::new(sigstruct, config.clone(), image))
    }

    /// The launch check. In order: the SIGSTRUCT signature; the identity fields (ISVPRODID,
    /// ISVSVN, ISVFAMILYID, ISVEXTPRODID) and DEBUG against the configuration; the enclave's
    /// attributes and MISCSELECT within the SIGSTRUCT's masks; ENCLAVEHASH against the
    /// MRENCLAVE recomputed from image and configuration.
    pub fn verify(&self) -> Result<VerifiedBundle, BundleVerifyError> {
        let s = &self.sigstruct;
        let verified = crate::sigstruct::verify(s).map_err(BundleVerifyError::Signature)?;
        let c = &self.config;
        let ids = [
            (
                "isv_prod_id",
                c.isv_prod_id.to_string(),
                s.isvprodid.to_string(),
            ),
            ("isv_svn", c.isv_svn.to_string(), s.isvsvn.to_string()),
            (
                "isv_family_id",
                hex::encode(c.isv_family_id.unwrap_or_default()),
                hex::encode(s.isvfamilyid),
            ),
            (
                "isv_ext_prod_id",
                hex::encode(c.isv_ext_prod_id.unwrap_or_default()),
                hex::encode(s.isvextprodid),
            ),
        ];
        for (field, config, signed) in ids {
            if config != signed {
                return Err(BundleVerifyError::IdentityMismatch {
                    field,
                    config,
                    signed,
                });
            }
        }
        if s.attributes.debug() != c.debug {
            return Err(BundleVerifyError::DebugMismatch {
                config: c.debug,
                signed: s.attributes.debug(),
            });
        }
        let enclave = enclave_attributes(c);
        if enclave.masked(&s.attributemask) != s.attributes.masked(&s.attributemask) {
            return Err(BundleVerifyError::AttributesOutsideMask {
                enclave,
                signed: s.attributes,
                mask: s.attributemask,
            });
        }
        if s.miscselect.bits() & s.miscmask != 0 {
            return Err(BundleVerifyError::MiscselectOutsideMask {
                signed: s.miscselect.bits(),
                mask: s.miscmask,
            });
        }
        let Measured {
            mrenclave,
            epc_size,
        } = layout::measure_enclave(&self.image, c).map_err(BundleVerifyError::Layout)?;
        if mrenclave != s.enclavehash {
            return Err(BundleVerifyError::MeasurementMismatch {
                signed: s.enclavehash,
                computed: mrenclave,
            });
        }
        Ok(VerifiedBundle {
            mrenclave,
            mrsigner: verified.mrsigner(),
            attributes: enclave,
            epc_size,
            sigstruct: s.clone(),
            config: c.clone(),
            image: Arc::clone(&self.image),
        })
    }
}

fn read_exact(r: &mut impl Read, buf: &mut [u8], part: &'static str) -> Result<(), BundleError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(BundleError::Truncated {
                    part,
                    needed: buf.len() as u64,
                    available: got as u64,
                });
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(BundleError::Io(e)),
        }
    }
    Ok(())
}

/// A bundle that passed [`Bundle::verify`]: what a launcher may rely on.
#[derive(Debug, Clone)]
pub struct VerifiedBundle {
    mrenclave: [u8; 32],
    mrsigner: [u8; 32],
    attributes: Attributes,
    epc_size: u64,
    sigstruct: Sigstruct,
    config: EnclaveConfig,
    image: Arc<[u8]>,
}

impl VerifiedBundle {
    pub fn mrenclave(&self) -> [u8; 32] {
        self.mrenclave
    }

    pub fn mrsigner(&self) -> [u8; 32] {
        self.mrsigner
    }

    pub fn isv_prod_id(&self) -> u16 {
        self.sigstruct.isvprodid
    }

    pub fn isv_svn(&self) -> u16 {
        self.sigstruct.isvsvn
    }

    pub fn isv_family_id(&self) -> [u8; 16] {
        self.sigstruct.isvfamilyid
    }

    pub fn isv_ext_prod_id(&self) -> [u8; 16] {
        self.sigstruct.isvextprodid
    }

    pub fn debug(&self) -> bool {
        self.config.debug
    }

    /// The attributes the enclave runs with (SECS.ATTRIBUTES before EINIT sets INIT).
    pub fn attributes(&self) -> Attributes {
        self.attributes
    }

    /// MISCSELECT the enclave runs with (always 0).
    pub fn miscselect(&self) -> Miscselect {
        Miscselect::empty()
    }

    pub fn config(&self) -> &EnclaveConfig {
        &self.config
    }

    /// Committed bytes: pages added × 4096.
    pub fn epc_size(&self) -> u64 {
        self.epc_size
    }

    pub fn sigstruct(&self) -> &Sigstruct {
        &self.sigstruct
    }

    /// The ELF image, exactly as measured.
    pub fn image(&self) -> &[u8] {
        &self.image
    }

    /// A shared handle on the image.
    pub fn image_arc(&self) -> Arc<[u8]> {
        Arc::clone(&self.image)
    }
}

/// The attributes an enclave with `config` runs with: MODE64BIT, DEBUG if `debug`, KSS if a KSS
/// identifier is set; XFRM [`XFRM`].
pub fn enclave_attributes(config: &EnclaveConfig) -> Attributes {
    let mut flags = AttributesFlags::MODE64BIT;
    if config.debug {
        flags |= AttributesFlags::DEBUG;
    }
    if config.kss() {
        flags |= AttributesFlags::KSS;
    }
    Attributes { flags, xfrm: XFRM }
}

/// The SIGSTRUCT fields Coffer signs for an enclave with `config` and MRENCLAVE `mrenclave`.
pub fn sigstruct_body(
    config: &EnclaveConfig,
    mrenclave: [u8; 32],
    date: SigstructDate,
) -> SigstructBody {
    SigstructBody {
        vendor: 0,
        date,
        swdefined: 0,
        miscselect: Miscselect::empty(),
        miscmask: MISC_MASK,
        isvfamilyid: config.isv_family_id.unwrap_or_default(),
        attributes: enclave_attributes(config),
        attributemask: ATTRIBUTE_MASK,
        enclavehash: mrenclave,
        isvextprodid: config.isv_ext_prod_id.unwrap_or_default(),
        isvprodid: config.isv_prod_id,
        isvsvn: config.isv_svn,
    }
}

/// The 256 bytes to sign for `image` with `config` on `date` (the two-step flow's first step),
/// and the measurement they cover.
pub fn signing_data(
    config: &EnclaveConfig,
    image: &[u8],
    date: SigstructDate,
) -> Result<(Vec<u8>, Measured), LayoutError> {
    let measured = layout::measure_enclave(image, config)?;
    let body = sigstruct_body(config, measured.mrenclave, date);
    Ok((crate::sigstruct::signing_data(&body), measured))
}

/// The UTC calendar date of `t` as a SIGSTRUCT DATE.
pub fn date_of(t: SystemTime) -> SigstructDate {
    let date = time::OffsetDateTime::from(t.max(UNIX_EPOCH)).date();
    let year = u32::try_from(date.year()).unwrap_or(0);
    SigstructDate::from_ymd(
        year,
        u32::from(u8::from(date.month())),
        u32::from(date.day()),
    )
    .unwrap_or_default()
}

/// Today's UTC date.
pub fn today() -> SigstructDate {
    date_of(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_utc_calendar_days() {
        let at = |secs| date_of(UNIX_EPOCH + Duration::from_secs(secs)).to_string();
        assert_eq!(at(0), "1970-01-01");
        assert_eq!(at(951_782_400), "2000-02-29");
        assert_eq!(at(1_767_225_599), "2025-12-31");
        assert_eq!(at(1_767_225_600), "2026-01-01");
    }
}
