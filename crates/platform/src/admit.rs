//! Admission: reading a bundle from the descriptor a client attached, verifying it, and applying
//! the node's launch policy.
//!
//! The bundle is read once into the daemon's memory and every check runs on that copy, so a
//! client that changes the file while the daemon reads it cannot make the daemon launch something
//! other than what it verified.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;

use coffer_abi::{AttributesFlags, ReportBody};
use coffer_proto::client::PlatformError;
use coffer_sign::bundle::MAX_BUNDLE_SIZE;
use coffer_sign::{Bundle, BundleVerifyError, VerifiedBundle};

use crate::allowlist::SignerAllowlist;

/// The node's launch policy.
#[derive(Debug, Clone, Default)]
pub struct LaunchPolicy {
    /// Launch enclaves with the DEBUG attribute (a development node).
    pub allow_debug: bool,
    /// When set, only these signers may launch enclaves.
    pub signer_allowlist: Option<SignerAllowlist>,
}

/// A bundle that passed every check, with the identity the enclave will have.
#[derive(Debug)]
pub struct Admitted {
    pub bundle: VerifiedBundle,
    /// The enclave's SECS as EREPORT reports it (REPORTDATA zero).
    pub identity: ReportBody,
}

/// Reads a whole bundle from a client's descriptor: a regular file of at most
/// [`MAX_BUNDLE_SIZE`] bytes, read from offset 0 whatever the descriptor's position.
pub fn read_bundle(fd: OwnedFd) -> Result<Vec<u8>, PlatformError> {
    let file = File::from(fd);
    let bad = |what: String| PlatformError::BadBundle(what);
    let meta = file
        .metadata()
        .map_err(|e| bad(format!("cannot inspect the bundle descriptor: {e}")))?;
    if !meta.is_file() {
        return Err(bad(
            "the attached descriptor is not a regular file (pipes, sockets and devices are refused)"
                .into(),
        ));
    }
    if meta.len() > MAX_BUNDLE_SIZE {
        return Err(bad(format!(
            "the bundle is {} bytes, more than the limit of {MAX_BUNDLE_SIZE}",
            meta.len()
        )));
    }
    let len = usize::try_from(meta.len()).map_err(|_| bad("the bundle is too large".into()))?;
    let mut bytes = vec![0u8; len];
    let changed = |got: &str| {
        bad(format!(
            "the bundle changed size while it was read ({len} bytes announced, {got} read)"
        ))
    };
    file.read_exact_at(&mut bytes, 0).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            changed("fewer")
        } else {
            bad(format!("reading the bundle failed: {e}"))
        }
    })?;
    // One byte more than announced would mean a file that grew while it was read.
    let mut more = [0u8; 1];
    match file.read_at(&mut more, meta.len()) {
        Ok(0) => Ok(bytes),
        Ok(_) => Err(changed("more")),
        Err(e) => Err(bad(format!("reading the bundle failed: {e}"))),
    }
}

/// Maps a verification failure to the refusal a client sees.
pub fn verify_error(e: BundleVerifyError) -> PlatformError {
    match e {
        BundleVerifyError::Signature(_) => PlatformError::BadSignature(e.to_string()),
        BundleVerifyError::MeasurementMismatch { signed, computed } => {
            PlatformError::MeasurementMismatch {
                expected: signed,
                actual: computed,
            }
        }
        BundleVerifyError::AttributesOutsideMask {
            enclave,
            signed,
            mask,
        } => PlatformError::AttributesMismatch {
            attributes: enclave.to_array(),
            required: signed.to_array(),
            mask: mask.to_array(),
        },
        other => PlatformError::BadBundle(other.to_string()),
    }
}

/// Parses and verifies a bundle, applies the launch policy and builds the enclave's identity
/// with the platform's CPUSVN. `fits` sees the EPC size the layout gives before the (costly)
/// measurement, so a request that cannot fit is refused without hashing the whole image; the
/// binding charge comes later, under the table lock.
pub fn admit(
    bytes: &[u8],
    policy: &LaunchPolicy,
    cpusvn: [u8; 16],
    fits: impl FnOnce(u64) -> Result<(), PlatformError>,
) -> Result<Admitted, PlatformError> {
    let bundle = Bundle::from_bytes(bytes).map_err(|e| PlatformError::BadBundle(e.to_string()))?;
    let planned = bundle
        .epc_size()
        .map_err(|e| PlatformError::BadBundle(e.to_string()))?;
    fits(planned)?;
    let verified = bundle.verify().map_err(verify_error)?;
    if verified.debug() && !policy.allow_debug {
        return Err(PlatformError::DebugNotAllowed);
    }
    if let Some(list) = &policy.signer_allowlist
        && !list.allows(&verified.mrsigner())
    {
        return Err(PlatformError::SignerNotAllowed {
            mrsigner: verified.mrsigner(),
        });
    }
    let identity = identity(&verified, cpusvn);
    Ok(Admitted {
        bundle: verified,
        identity,
    })
}

/// The REPORT BODY the CPU would report for this enclave after EINIT (REPORTDATA zero).
pub fn identity(b: &VerifiedBundle, cpusvn: [u8; 16]) -> ReportBody {
    let mut attributes = b.attributes();
    attributes.flags |= AttributesFlags::INIT;
    ReportBody {
        cpusvn,
        miscselect: b.miscselect(),
        isvextprodid: b.isv_ext_prod_id(),
        attributes,
        mrenclave: b.mrenclave(),
        mrsigner: b.mrsigner(),
        isvprodid: b.isv_prod_id(),
        isvsvn: b.isv_svn(),
        isvfamilyid: b.isv_family_id(),
        ..ReportBody::default()
    }
}
