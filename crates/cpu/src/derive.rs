//! EGETKEY: key derivation from the platform root key.

use aes::Aes128;
use cmac::{Cmac, KeyInit, Mac};

/// AES-128-CMAC of `data` under `key`: EGETKEY's derivation and EREPORT's MAC.
pub(crate) fn cmac(key: &[u8; 16], data: &[u8]) -> [u8; 16] {
    let mut mac = <Cmac<Aes128> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("a 16-byte key is the AES-128 key size"));
    mac.update(data);
    mac.finalize().into_bytes().into()
}
use coffer_abi::keyrequest::{KeyName, KeyPolicy, Keyrequest};
use coffer_abi::{Attributes, AttributesFlags, ReportBody};
use zeroize::{Zeroize, Zeroizing};

/// Attribute bits always bound into seal and provisioning keys, whatever ATTRIBUTEMASK says, so a
/// DEBUG enclave never derives a production enclave's keys (the SDM's SEAL_KEY fixed mask).
const ALWAYS_BOUND: AttributesFlags = AttributesFlags::INIT.union(AttributesFlags::DEBUG);

/// Why EGETKEY refused a request. Each is a distinct SGX error code on hardware.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgetkeyError {
    /// The request asks for a key at an ISVSVN above the enclave's own (SGX_INVALID_ISVSVN).
    #[error("key request ISVSVN {requested} is above the enclave's ISVSVN {current}")]
    InvalidIsvsvn { requested: u16, current: u16 },
    /// The request asks for a key at a CPUSVN above the platform's (SGX_INVALID_CPUSVN).
    #[error(
        "key request CPUSVN {} is above the platform's CPUSVN {}",
        hex::encode(.requested), hex::encode(.current)
    )]
    InvalidCpusvn {
        requested: [u8; 16],
        current: [u8; 16],
    },
    /// The request asks for a key the enclave's attributes do not allow (SGX_INVALID_ATTRIBUTE).
    #[error("{0} requires an enclave attribute this enclave does not have")]
    NotAllowed(KeyName),
    /// The key name is not one EGETKEY knows (SGX_INVALID_KEYNAME).
    #[error("unknown key name {0}")]
    InvalidKeyname(KeyName),
    /// The request has reserved bits set in KEYPOLICY, or KSS bits without KSS (SGX_INVALID_KEYPOLICY... ).
    #[error("key policy {0:?} is not valid for this enclave")]
    InvalidKeypolicy(KeyPolicy),
}

/// The 128-bit platform root key and the platform's identity that every derivation binds.
pub struct PlatformRoot {
    root: Zeroizing<[u8; 16]>,
    /// The owner epoch: changing it (as on a platform ownership change) changes every seal key.
    owner_epoch: [u8; 16],
    /// The platform's current CPUSVN (one security version per byte).
    cpusvn: [u8; 16],
}

impl std::fmt::Debug for PlatformRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformRoot")
            .field("root", &"<secret>")
            .field("owner_epoch", &self.owner_epoch)
            .field("cpusvn", &self.cpusvn)
            .finish()
    }
}

/// The identity of the enclave asking, as the platform knows it from its SECS (never from the
/// enclave's say-so).
pub type KeyDependencies = ReportBody;

impl PlatformRoot {
    pub fn new(root: [u8; 16], owner_epoch: [u8; 16], cpusvn: [u8; 16]) -> Self {
        PlatformRoot {
            root: Zeroizing::new(root),
            owner_epoch,
            cpusvn,
        }
    }

    /// The platform's current CPUSVN.
    pub fn cpusvn(&self) -> [u8; 16] {
        self.cpusvn
    }

    /// EGETKEY for `secs` (the asking enclave's identity) and `req`.
    pub fn egetkey(
        &self,
        secs: &KeyDependencies,
        req: &Keyrequest,
    ) -> Result<Zeroizing<[u8; 16]>, EgetkeyError> {
        let deps = match req.keyname {
            KeyName::SEAL_KEY | KeyName::PROVISION_SEAL_KEY | KeyName::PROVISION_KEY => {
                if req.keyname != KeyName::SEAL_KEY
                    && !secs
                        .attributes
                        .flags
                        .contains(AttributesFlags::PROVISIONKEY)
                {
                    return Err(EgetkeyError::NotAllowed(req.keyname));
                }
                self.seal_dependencies(secs, req)?
            }
            KeyName::REPORT_KEY => self.report_dependencies(secs, &req.keyid),
            KeyName::EINITTOKEN_KEY => {
                if !secs
                    .attributes
                    .flags
                    .contains(AttributesFlags::EINITTOKEN_KEY)
                {
                    return Err(EgetkeyError::NotAllowed(req.keyname));
                }
                self.seal_dependencies(secs, req)?
            }
            other => return Err(EgetkeyError::InvalidKeyname(other)),
        };
        Ok(self.cmac(&deps))
    }

    /// The report key of the enclave described by `target` (its MRENCLAVE, ATTRIBUTES, MISCSELECT,
    /// CONFIGID, CONFIGSVN), for `keyid`. EREPORT uses it for the target; EGETKEY(REPORT_KEY) gives
    /// the same key to the target itself.
    pub(crate) fn report_key(
        &self,
        target: &KeyDependencies,
        keyid: &[u8; 32],
    ) -> Zeroizing<[u8; 16]> {
        self.cmac(&self.report_dependencies(target, keyid))
    }

    fn seal_dependencies(
        &self,
        secs: &KeyDependencies,
        req: &Keyrequest,
    ) -> Result<Dependencies, EgetkeyError> {
        if req.isvsvn > secs.isvsvn {
            return Err(EgetkeyError::InvalidIsvsvn {
                requested: req.isvsvn,
                current: secs.isvsvn,
            });
        }
        if req
            .cpusvn
            .iter()
            .zip(self.cpusvn.iter())
            .any(|(r, c)| r > c)
        {
            return Err(EgetkeyError::InvalidCpusvn {
                requested: req.cpusvn,
                current: self.cpusvn,
            });
        }
        let known = KeyPolicy::MRENCLAVE
            | KeyPolicy::MRSIGNER
            | KeyPolicy::NOISVPRODID
            | KeyPolicy::CONFIGID
            | KeyPolicy::ISVFAMILYID
            | KeyPolicy::ISVEXTPRODID;
        let kss = KeyPolicy::NOISVPRODID
            | KeyPolicy::CONFIGID
            | KeyPolicy::ISVFAMILYID
            | KeyPolicy::ISVEXTPRODID;
        let p = req.keypolicy;
        if !known.contains(p)
            || (p.intersects(kss) && !secs.attributes.flags.contains(AttributesFlags::KSS))
        {
            return Err(EgetkeyError::InvalidKeypolicy(p));
        }
        let masked = secs.attributes.masked(&req.attributemask);
        let mut d = Dependencies::zeroed(req.keyname);
        d.keypolicy = p.bits();
        d.isvprodid = if p.contains(KeyPolicy::NOISVPRODID) {
            0
        } else {
            secs.isvprodid
        };
        d.isvsvn = req.isvsvn;
        d.attributes = Attributes {
            flags: masked.flags | (secs.attributes.flags & ALWAYS_BOUND),
            xfrm: masked.xfrm,
        };
        d.attributemask = req.attributemask;
        if p.contains(KeyPolicy::MRENCLAVE) {
            d.mrenclave = secs.mrenclave;
        }
        if p.contains(KeyPolicy::MRSIGNER) {
            d.mrsigner = secs.mrsigner;
        }
        d.keyid = req.keyid;
        d.cpusvn = req.cpusvn;
        d.owner_epoch = self.owner_epoch;
        d.miscselect = secs.miscselect.bits() & req.miscmask;
        d.miscmask = req.miscmask;
        if p.contains(KeyPolicy::CONFIGID) {
            d.configid = secs.configid;
            d.configsvn = secs.configsvn;
        }
        if p.contains(KeyPolicy::ISVFAMILYID) {
            d.isvfamilyid = secs.isvfamilyid;
        }
        if p.contains(KeyPolicy::ISVEXTPRODID) {
            d.isvextprodid = secs.isvextprodid;
        }
        Ok(d)
    }

    fn report_dependencies(&self, target: &KeyDependencies, keyid: &[u8; 32]) -> Dependencies {
        let mut d = Dependencies::zeroed(KeyName::REPORT_KEY);
        d.attributes = target.attributes;
        d.mrenclave = target.mrenclave;
        d.keyid = *keyid;
        d.cpusvn = self.cpusvn;
        d.owner_epoch = self.owner_epoch;
        d.miscselect = target.miscselect.bits();
        d.configid = target.configid;
        d.configsvn = target.configsvn;
        d
    }

    fn cmac(&self, d: &Dependencies) -> Zeroizing<[u8; 16]> {
        let mut bytes = d.encode();
        let key = Zeroizing::new(cmac(&self.root, &bytes));
        bytes.zeroize();
        key
    }
}

/// The SDM's key dependencies, in its order.
struct Dependencies {
    keyname: KeyName,
    isvprodid: u16,
    isvsvn: u16,
    owner_epoch: [u8; 16],
    attributes: Attributes,
    attributemask: Attributes,
    mrenclave: [u8; 32],
    mrsigner: [u8; 32],
    keyid: [u8; 32],
    cpusvn: [u8; 16],
    miscselect: u32,
    miscmask: u32,
    keypolicy: u16,
    configid: [u8; 64],
    configsvn: u16,
    isvfamilyid: [u8; 16],
    isvextprodid: [u8; 16],
}

impl Dependencies {
    fn zeroed(keyname: KeyName) -> Self {
        Dependencies {
            keyname,
            isvprodid: 0,
            isvsvn: 0,
            owner_epoch: [0; 16],
            attributes: Attributes::default(),
            attributemask: Attributes::default(),
            mrenclave: [0; 32],
            mrsigner: [0; 32],
            keyid: [0; 32],
            cpusvn: [0; 16],
            miscselect: 0,
            miscmask: 0,
            keypolicy: 0,
            configid: [0; 64],
            configsvn: 0,
            isvfamilyid: [0; 16],
            isvextprodid: [0; 16],
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut o = Vec::with_capacity(320);
        o.extend_from_slice(b"COFFER-EGETKEY-v1");
        o.extend_from_slice(&self.keyname.0.to_le_bytes());
        o.extend_from_slice(&self.isvprodid.to_le_bytes());
        o.extend_from_slice(&self.isvsvn.to_le_bytes());
        o.extend_from_slice(&self.owner_epoch);
        o.extend_from_slice(&self.attributes.to_array());
        o.extend_from_slice(&self.attributemask.to_array());
        o.extend_from_slice(&self.mrenclave);
        o.extend_from_slice(&self.mrsigner);
        o.extend_from_slice(&self.keyid);
        o.extend_from_slice(&self.cpusvn);
        o.extend_from_slice(&self.miscselect.to_le_bytes());
        o.extend_from_slice(&self.miscmask.to_le_bytes());
        o.extend_from_slice(&self.keypolicy.to_le_bytes());
        o.extend_from_slice(&self.configid);
        o.extend_from_slice(&self.configsvn.to_le_bytes());
        o.extend_from_slice(&self.isvfamilyid);
        o.extend_from_slice(&self.isvextprodid);
        o
    }
}
