//! VM sizes and their EPC capacities (DESIGN §4): Azure's published figures, as data.

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A node's VM size: vCPUs, memory and the EPC capacity every enclave is charged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmSize {
    /// Azure's name, e.g. `Standard_DC2s_v2`.
    pub name: &'static str,
    pub vcpus: u32,
    pub memory_bytes: u64,
    /// The EPC capacity in bytes.
    pub epc_bytes: u64,
}

const fn size(name: &'static str, vcpus: u32, memory_gib: u64, epc_bytes: u64) -> VmSize {
    VmSize {
        name,
        vcpus,
        memory_bytes: memory_gib * GIB,
        epc_bytes,
    }
}

/// Every known VM size: DCsv2 (EPC in MiB), DCsv3 and DCdsv3 (EPC in GiB).
pub const VM_SIZES: &[VmSize] = &[
    size("Standard_DC1s_v2", 1, 4, 28 * MIB),
    size("Standard_DC2s_v2", 2, 8, 56 * MIB),
    size("Standard_DC4s_v2", 4, 16, 112 * MIB),
    size("Standard_DC8_v2", 8, 32, 168 * MIB),
    size("Standard_DC1s_v3", 1, 8, 4 * GIB),
    size("Standard_DC2s_v3", 2, 16, 8 * GIB),
    size("Standard_DC4s_v3", 4, 32, 16 * GIB),
    size("Standard_DC8s_v3", 8, 64, 32 * GIB),
    size("Standard_DC16s_v3", 16, 128, 64 * GIB),
    size("Standard_DC24s_v3", 24, 192, 128 * GIB),
    size("Standard_DC32s_v3", 32, 256, 192 * GIB),
    size("Standard_DC48s_v3", 48, 384, 256 * GIB),
    size("Standard_DC1ds_v3", 1, 8, 4 * GIB),
    size("Standard_DC2ds_v3", 2, 16, 8 * GIB),
    size("Standard_DC4ds_v3", 4, 32, 16 * GIB),
    size("Standard_DC8ds_v3", 8, 64, 32 * GIB),
    size("Standard_DC16ds_v3", 16, 128, 64 * GIB),
    size("Standard_DC24ds_v3", 24, 192, 128 * GIB),
    size("Standard_DC32ds_v3", 32, 256, 192 * GIB),
    size("Standard_DC48ds_v3", 48, 384, 256 * GIB),
];

/// The VM size name is not one Coffer knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown VM size {name:?}; known sizes: {}", known_names())]
pub struct UnknownVmSize {
    pub name: String,
}

fn known_names() -> String {
    VM_SIZES
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl VmSize {
    /// Looks a size up by its exact name (Azure's spelling; case-insensitive).
    pub fn from_name(name: &str) -> Result<VmSize, UnknownVmSize> {
        VM_SIZES
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
            .copied()
            .ok_or_else(|| UnknownVmSize {
                name: name.to_owned(),
            })
    }
}

impl std::str::FromStr for VmSize {
    type Err = UnknownVmSize;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VmSize::from_name(s)
    }
}

impl std::fmt::Display for VmSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_design_table() {
        let dc1 = VmSize::from_name("Standard_DC1s_v2").unwrap();
        assert_eq!(
            (dc1.vcpus, dc1.memory_bytes, dc1.epc_bytes),
            (1, 4 * GIB, 28 * MIB)
        );
        let dc8 = VmSize::from_name("Standard_DC8_v2").unwrap();
        assert_eq!((dc8.vcpus, dc8.epc_bytes), (8, 168 * MIB));
        let dc48 = VmSize::from_name("standard_dc48s_v3").unwrap();
        assert_eq!(
            (dc48.name, dc48.vcpus, dc48.memory_bytes, dc48.epc_bytes),
            ("Standard_DC48s_v3", 48, 384 * GIB, 256 * GIB)
        );
        assert_eq!(
            VmSize::from_name("Standard_DC2ds_v3").unwrap().epc_bytes,
            8 * GIB
        );
    }

    #[test]
    fn sizes_grow_with_their_vcpus_within_a_family() {
        for family in [&VM_SIZES[..4], &VM_SIZES[4..12], &VM_SIZES[12..]] {
            for pair in family.windows(2) {
                assert!(pair[0].vcpus < pair[1].vcpus, "{pair:?}");
                assert!(pair[0].epc_bytes < pair[1].epc_bytes, "{pair:?}");
            }
        }
    }

    #[test]
    fn rejects_an_unknown_size_listing_the_known_ones() {
        let err = VmSize::from_name("Standard_D2s_v5").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("Standard_D2s_v5"), "{msg}");
        for s in VM_SIZES {
            assert!(msg.contains(s.name), "{msg} lacks {}", s.name);
        }
    }
}
