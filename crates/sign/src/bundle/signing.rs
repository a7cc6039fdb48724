//! What Coffer signs for an enclave: its attributes and the masks over them, the SIGSTRUCT
//! fields taken from the configuration, the date; signing in one step with a key at hand, or in
//! two (the 256 bytes to sign, then a signature made elsewhere, checked before it is attached).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use coffer_abi::{Attributes, AttributesFlags, Miscselect, SigstructDate};
use thiserror::Error;

use super::Bundle;
use crate::config::EnclaveConfig;
use crate::key::{SigningKey, VerifyingKey};
use crate::layout::{self, LayoutError, Measured};
use crate::sigstruct::{SigstructBody, SigstructSignError};

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

/// Why a bundle could not be made.
#[derive(Debug, Error)]
pub enum BundleSignError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Sign(#[from] SigstructSignError),
}

impl Bundle {
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
