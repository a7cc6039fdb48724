//! The launch check: a parsed bundle becomes a [`VerifiedBundle`] only when its SIGSTRUCT
//! verifies and agrees with the image and configuration it travels with.

use std::sync::Arc;

use coffer_abi::{Attributes, Miscselect, Sigstruct};
use thiserror::Error;

use super::{Bundle, enclave_attributes};
use crate::config::EnclaveConfig;
use crate::layout::{self, LayoutError, Measured};
use crate::sigstruct::SigstructVerifyError;

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

impl Bundle {
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
}
