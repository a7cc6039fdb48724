//! Checking the daemon's [`Boot`] message before anything is mapped.
//!
//! The daemon is trusted (it is the soft backend's CPU), but a mistake in it must stop the
//! enclave with a message that names the field, not make it map a terabyte or run with a
//! geometry the host does not share.

use coffer_abi::{Codec, DecodeError, ReportBody};
use coffer_channel::{ChannelLayout, LayoutError};
use coffer_proto::enclave::{
    Boot, MAX_INTERFACE_NAME, MAX_INTERFACE_NAMES, MAX_SWITCHLESS_SPIN_NS,
};
use thiserror::Error;

/// The page size every size must be a multiple of.
const PAGE: u64 = 4096;
/// The largest heap, as `coffer-sign`'s configuration allows: 64 GiB.
const MAX_HEAP: u64 = 64 << 30;
/// The largest stack per worker, as `coffer-sign`'s configuration allows: 256 MiB.
const MAX_STACK: u64 = 256 << 20;

/// Why the boot parameters were refused. Each names the field at fault.
#[derive(Debug, Error)]
pub enum BootError {
    /// `identity` is not a 384-byte REPORT BODY.
    #[error("boot identity is not a REPORT BODY: {0}")]
    Identity(#[from] DecodeError),
    /// `debug` disagrees with the identity's ATTRIBUTES.DEBUG.
    #[error("boot says debug = {boot} but the identity's ATTRIBUTES.DEBUG is {identity}")]
    DebugMismatch { boot: bool, identity: bool },
    /// A size is zero, unaligned or above its cap.
    #[error(
        "boot {field} = {value} is not a non-zero multiple of {PAGE} bytes up to {limit} bytes"
    )]
    Size {
        field: &'static str,
        value: u64,
        limit: u64,
    },
    /// The channel has a slot count other than the enclave's thread count.
    #[error(
        "boot gives {slots} channel slots for {tcs} enclave threads (TCS); there must be one \
         slot per thread"
    )]
    SlotCount { slots: u32, tcs: u32 },
    /// The channel geometry is invalid.
    #[error("boot channel geometry: {0}")]
    Layout(#[from] LayoutError),
    /// An OCALL interface id came without an ECALL interface id.
    #[error("boot gives an OCALL interface id ({0} bytes in all) without an ECALL interface id")]
    InterfaceId(usize),
    /// Too many interface names, or one too long.
    #[error(
        "boot interface names: at most {MAX_INTERFACE_NAMES} of {MAX_INTERFACE_NAME} bytes each"
    )]
    InterfaceNames,
    /// The switchless spin is above its cap.
    #[error("boot switchless spin of {0} ns exceeds {MAX_SWITCHLESS_SPIN_NS} ns")]
    SwitchlessSpin(u64),
}

/// What the enclave runs with, checked.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub identity: ReportBody,
    pub heap_size: usize,
    pub stack_size: usize,
    pub workers: u32,
    pub debug: bool,
    pub layout: ChannelLayout,
    /// Checked against the enclave's own interfaces by a typed enclave (`crate::typed`).
    pub interface_id: Vec<u8>,
    /// The host's names for the interfaces in `interface_id`.
    pub interface_names: Vec<String>,
    /// Switchless calls: how long workers poll their slot; `None` when off.
    pub switchless_spin: Option<std::time::Duration>,
}

impl Settings {
    pub fn from_boot(boot: Boot) -> Result<Self, BootError> {
        let identity = ReportBody::from_bytes(&boot.identity)?;
        if identity.attributes.debug() != boot.debug {
            return Err(BootError::DebugMismatch {
                boot: boot.debug,
                identity: identity.attributes.debug(),
            });
        }
        let heap_size = size("heap_size", boot.heap_size, MAX_HEAP)?;
        let stack_size = size("stack_size", boot.stack_size, MAX_STACK)?;
        if boot.slot_count != boot.tcs_count {
            return Err(BootError::SlotCount {
                slots: boot.slot_count,
                tcs: boot.tcs_count,
            });
        }
        let layout = ChannelLayout::new(boot.slot_count, boot.slot_size)?;
        // The ECALL interface's id, then the OCALL interface's: what `crate::typed` compares.
        let interface_id: Vec<u8> = boot
            .ecall_interface
            .iter()
            .chain(boot.ocall_interface.iter())
            .flatten()
            .copied()
            .collect();
        if boot.ocall_interface.is_some() && boot.ecall_interface.is_none() {
            return Err(BootError::InterfaceId(interface_id.len()));
        }
        if boot.interface_names.len() > MAX_INTERFACE_NAMES
            || boot
                .interface_names
                .iter()
                .any(|n| n.len() > MAX_INTERFACE_NAME)
        {
            return Err(BootError::InterfaceNames);
        }
        if boot.switchless_spin_ns > MAX_SWITCHLESS_SPIN_NS {
            return Err(BootError::SwitchlessSpin(boot.switchless_spin_ns));
        }
        Ok(Settings {
            identity,
            heap_size,
            stack_size,
            workers: boot.tcs_count,
            debug: boot.debug,
            layout,
            interface_id,
            interface_names: boot.interface_names,
            switchless_spin: (boot.switchless_spin_ns != 0)
                .then(|| std::time::Duration::from_nanos(boot.switchless_spin_ns)),
        })
    }
}

fn size(field: &'static str, value: u64, limit: u64) -> Result<usize, BootError> {
    let bad = BootError::Size {
        field,
        value,
        limit,
    };
    if value == 0 || value > limit || !value.is_multiple_of(PAGE) {
        return Err(bad);
    }
    usize::try_from(value).map_err(|_| bad)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use coffer_abi::AttributesFlags;

    use super::*;

    fn boot(debug: bool) -> Boot {
        let mut identity = ReportBody::default();
        identity.attributes.flags = AttributesFlags::INIT | AttributesFlags::MODE64BIT;
        if debug {
            identity.attributes.flags |= AttributesFlags::DEBUG;
        }
        Boot {
            identity: identity.to_bytes(),
            heap_size: 4 << 20,
            stack_size: 256 << 10,
            tcs_count: 2,
            debug,
            slot_count: 2,
            slot_size: 65536,
            ecall_interface: Some([7; 32]),
            ocall_interface: None,
            interface_names: vec!["Seven".into()],
            switchless_spin_ns: 0,
        }
    }

    #[test]
    fn accepts_a_well_formed_boot() {
        let s = Settings::from_boot(boot(false)).unwrap();
        assert_eq!(
            (s.heap_size, s.stack_size, s.workers),
            (4 << 20, 256 << 10, 2)
        );
        assert_eq!(s.layout, ChannelLayout::new(2, 65536).unwrap());
        assert_eq!(s.interface_id, vec![7; 32]);
        assert_eq!(s.interface_names, ["Seven"]);
        assert_eq!(s.switchless_spin, None);
        assert!(!s.debug);
        assert!(Settings::from_boot(boot(true)).unwrap().debug);
    }

    #[test]
    fn rejects_a_truncated_identity() {
        let mut b = boot(false);
        b.identity.pop();
        let err = Settings::from_boot(b).unwrap_err();
        assert!(matches!(err, BootError::Identity(_)), "{err}");
    }

    #[test]
    fn rejects_a_debug_flag_that_disagrees_with_the_identity() {
        let mut b = boot(false);
        b.debug = true;
        let err = Settings::from_boot(b).unwrap_err();
        assert_eq!(
            err.to_string(),
            "boot says debug = true but the identity's ATTRIBUTES.DEBUG is false"
        );
    }

    #[test]
    fn rejects_bad_sizes() {
        for (heap, stack) in [(0, 4096), (4097, 4096), (128 << 30, 4096), (4096, 1 << 30)] {
            let mut b = boot(false);
            b.heap_size = heap;
            b.stack_size = stack;
            let err = Settings::from_boot(b).unwrap_err();
            assert!(
                matches!(err, BootError::Size { .. }),
                "{heap} {stack}: {err}"
            );
        }
    }

    #[test]
    fn rejects_a_channel_that_does_not_match_the_threads() {
        let mut b = boot(false);
        b.slot_count = 3;
        let err = Settings::from_boot(b).unwrap_err();
        assert!(err.to_string().contains("3 channel slots for 2"), "{err}");
        let mut b = boot(false);
        b.slot_size = 1000;
        assert!(matches!(
            Settings::from_boot(b).unwrap_err(),
            BootError::Layout(_)
        ));
        let mut b = boot(false);
        b.ecall_interface = None;
        b.ocall_interface = Some([0; 32]);
        assert!(matches!(
            Settings::from_boot(b).unwrap_err(),
            BootError::InterfaceId(32)
        ));
    }

    #[test]
    fn rejects_oversized_interface_names_and_switchless_spins() {
        let mut b = boot(false);
        b.interface_names = vec!["a".into(), "b".into(), "c".into()];
        assert!(matches!(
            Settings::from_boot(b).unwrap_err(),
            BootError::InterfaceNames
        ));
        let mut b = boot(false);
        b.interface_names = vec!["x".repeat(129)];
        assert!(matches!(
            Settings::from_boot(b).unwrap_err(),
            BootError::InterfaceNames
        ));
        let mut b = boot(false);
        b.switchless_spin_ns = 10_000_001;
        assert_eq!(
            Settings::from_boot(b).unwrap_err().to_string(),
            "boot switchless spin of 10000001 ns exceeds 10000000 ns"
        );
        let mut b = boot(false);
        b.switchless_spin_ns = 50_000;
        assert_eq!(
            Settings::from_boot(b).unwrap().switchless_spin,
            Some(std::time::Duration::from_micros(50))
        );
    }
}
