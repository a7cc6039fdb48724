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
//! | module | owns |
//! |---|---|
//! | `format` | the byte layout: header, caps, parsing and writing |
//! | `signing` | what Coffer signs: attributes, masks, SIGSTRUCT fields, dates; one-step and two-step signing |
//! | `verify` | the launch check and the [`VerifiedBundle`] it yields |
//!
//! Parsing ([`Bundle::from_bytes`], [`Bundle::read_from`]) checks the form only and gives an
//! *unverified* bundle. [`Bundle::verify`] is the launch check: the SIGSTRUCT's signature, its
//! ENCLAVEHASH against the MRENCLAVE recomputed from image and configuration, its identity fields
//! and attributes against the configuration. Only it makes a [`VerifiedBundle`].

use std::sync::Arc;

use coffer_abi::Sigstruct;

use crate::config::EnclaveConfig;
use crate::layout::{self, LayoutError};

mod format;
mod signing;
mod verify;

pub use format::{
    BundleError, FORMAT_VERSION, HEADER_SIZE, MAGIC, MAX_BUNDLE_SIZE, MAX_CONFIG_SIZE,
    MAX_IMAGE_SIZE,
};
pub use signing::{
    ATTRIBUTE_MASK, BundleSignError, MISC_MASK, XFRM, date_of, enclave_attributes, signing_data,
    sigstruct_body, today,
};
pub use verify::{BundleVerifyError, VerifiedBundle};

/// A parsed, unverified bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    sigstruct: Sigstruct,
    config_bytes: Vec<u8>,
    config: EnclaveConfig,
    image: Arc<[u8]>,
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
}
