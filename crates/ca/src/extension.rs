//! The one writer of Intel's SGX extension of a PCK certificate (OID 1.2.840.113741.1.13.1),
//! in Intel's ASN.1 structure (SGX PCK Certificate and CRL Profile, section 1.5) so that existing
//! DCAP tools read it: a SEQUENCE of (OID, value) pairs for PPID, TCB (the sixteen SGX TCB
//! components, PCESVN and CPUSVN), PCE-ID, FMSPC and SGX type.

/// 1.2.840.113741.1.13.1 (Intel SGX extensions).
pub const SGX_EXTENSION_OID: &[u64] = &[1, 2, 840, 113_741, 1, 13, 1];

/// What a PCK certificate's SGX extension says about its platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SgxExtension {
    /// Platform Provisioning ID (16 bytes).
    pub ppid: [u8; 16],
    /// The sixteen SGX TCB component SVNs.
    pub tcb_components: [u8; 16],
    pub pcesvn: u16,
    /// CPUSVN: Intel's certificates carry the components again in it.
    pub cpusvn: [u8; 16],
    pub pce_id: [u8; 2],
    /// The platform family the TCB Info is issued for.
    pub fmspc: [u8; 6],
    /// SGX type: 0 Standard, 1 Scalable (Intel's ENUMERATED).
    pub sgx_type: i64,
}

impl SgxExtension {
    /// The extension's value (DER), as `extnValue` carries it.
    pub fn to_der(&self) -> Vec<u8> {
        let oid = |tail: &[u64]| {
            let arcs: Vec<u64> = SGX_EXTENSION_OID.iter().chain(tail).copied().collect();
            yasna::models::ObjectIdentifier::from_slice(&arcs)
        };
        yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_sequence(|w| {
                    w.next().write_oid(&oid(&[1]));
                    w.next().write_bytes(&self.ppid);
                });
                w.next().write_sequence(|w| {
                    w.next().write_oid(&oid(&[2]));
                    w.next().write_sequence(|w| {
                        for (i, svn) in (1u64..).zip(self.tcb_components) {
                            w.next().write_sequence(|w| {
                                w.next().write_oid(&oid(&[2, i]));
                                w.next().write_u8(svn);
                            });
                        }
                        w.next().write_sequence(|w| {
                            w.next().write_oid(&oid(&[2, 17]));
                            w.next().write_u16(self.pcesvn);
                        });
                        w.next().write_sequence(|w| {
                            w.next().write_oid(&oid(&[2, 18]));
                            w.next().write_bytes(&self.cpusvn);
                        });
                    });
                });
                w.next().write_sequence(|w| {
                    w.next().write_oid(&oid(&[3]));
                    w.next().write_bytes(&self.pce_id);
                });
                w.next().write_sequence(|w| {
                    w.next().write_oid(&oid(&[4]));
                    w.next().write_bytes(&self.fmspc);
                });
                w.next().write_sequence(|w| {
                    w.next().write_oid(&oid(&[5]));
                    w.next().write_enum(self.sgx_type);
                });
            })
        })
    }

    /// The extension as rcgen adds it to a certificate (not critical, as Intel's).
    pub fn to_custom_extension(&self) -> rcgen::CustomExtension {
        rcgen::CustomExtension::from_oid_content(SGX_EXTENSION_OID, self.to_der())
    }
}
