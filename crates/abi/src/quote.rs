//! DCAP ECDSA quotes: version 3, and the SGX flavour of version 4 (Intel SGX ECDSA Quote Library
//! API, appendix A; Intel TDX DCAP Quoting Library API for version 4). All integers little-endian.
//!
//! ```text
//!   0  QUOTE HEADER (48)        VERSION u16, ATT_KEY_TYPE u16, TEE_TYPE u32 (v3: reserved),
//!                               QE_SVN u16, PCE_SVN u16, QE_VENDOR_ID [16], USER_DATA [20]
//!  48  ISV ENCLAVE REPORT BODY (384)
//! 432  QUOTE_SIGNATURE_DATA_LEN u32
//! 436  QUOTE SIGNATURE DATA
//!        ISV ENCLAVE REPORT SIGNATURE [64]   ECDSA r ‖ s, big-endian, over bytes 0..432
//!        ECDSA ATTESTATION KEY [64]          x ‖ y, big-endian
//!      v3: QE REPORT CERTIFICATION DATA inline:
//!        QE REPORT BODY (384) ‖ QE REPORT SIGNATURE [64] ‖ QE AUTH DATA (u16 size ‖ bytes)
//!        ‖ QE CERTIFICATION DATA (type u16 ‖ size u32 ‖ bytes)
//!      v4: QE CERTIFICATION DATA of type 6 whose body is the QE REPORT CERTIFICATION DATA above
//! ```
//!
//! Both layouts parse into the same [`QuoteSignatureData`]; the header's version decides which
//! one [`Quote::encode`] writes, so `encode(parse(x)) == x` for every accepted `x`.
//!
//! This module owns the layout only and does no cryptography: signatures, the binding of the
//! attestation key to the QE report and the PCK certificate chain are checked by `coffer-dcap`.

use crate::codec::{Codec, DecodeError, FixedSize, Reader};
use crate::report_body::ReportBody;

/// Size of the quote header.
pub const QUOTE_HEADER_SIZE: usize = 48;
/// Size of the bytes the attestation key signs: header ‖ ISV enclave report body.
pub const QUOTE_SIGNED_SIZE: usize = QUOTE_HEADER_SIZE + 384;
/// Size of an ECDSA P-256 signature (r ‖ s) or public key (x ‖ y) in a quote.
pub const ECDSA_P256_SIZE: usize = 64;

/// Largest quote accepted (64 KiB; real quotes are under 6 KiB). Without it a client could make
/// a verifier buffer, hash and PEM-decode arbitrarily large inputs.
pub const MAX_QUOTE_SIZE: usize = 64 * 1024;
/// Largest signature data accepted: whatever fits in [`MAX_QUOTE_SIZE`] after the signed bytes
/// and the length field. Bounds the allocation a forged `QUOTE_SIGNATURE_DATA_LEN` can ask for.
pub const MAX_SIGNATURE_DATA_SIZE: usize = MAX_QUOTE_SIZE - QUOTE_SIGNED_SIZE - 4;
/// Largest certification data body accepted (32 KiB; Intel's three-certificate PEM chain is
/// about 3.5 KiB). Bounds the PEM decoding and X.509 path building one quote can trigger.
pub const MAX_CERTIFICATION_DATA_SIZE: usize = 32 * 1024;
/// Largest QE authentication data accepted (4 KiB; Intel's QE writes 32 bytes). The verifier
/// hashes it, so this bounds that work and the memory a quote can pin.
pub const MAX_QE_AUTH_DATA_SIZE: usize = 4 * 1024;

/// The QE vendor ID of Intel's quoting enclave.
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];

/// QUOTE HEADER.VERSION, an open enum: unknown values survive a round trip of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuoteVersion(pub u16);

impl QuoteVersion {
    /// Version 3: SGX only, QE report inline in the signature data.
    pub const V3: Self = Self(3);
    /// Version 4: SGX or TDX, QE report nested in certification data type 6.
    pub const V4: Self = Self(4);
}

impl std::fmt::Display for QuoteVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// QUOTE HEADER.ATT_KEY_TYPE: the algorithm of the attestation key, an open enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttestationKeyType(pub u16);

impl AttestationKeyType {
    /// ECDSA-256 with P-256: the only one Coffer supports.
    pub const ECDSA_256_P256: Self = Self(2);
    /// ECDSA-384 with P-384: defined by Intel, not supported by Coffer (nor by Intel's QVL).
    pub const ECDSA_384_P384: Self = Self(3);

    /// The algorithm's name, for the known values.
    pub fn name(&self) -> Option<&'static str> {
        match *self {
            Self::ECDSA_256_P256 => Some("ECDSA-256 with P-256"),
            Self::ECDSA_384_P384 => Some("ECDSA-384 with P-384"),
            _ => None,
        }
    }
}

impl std::fmt::Display for AttestationKeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{} ({n})", self.0),
            None => write!(f, "{} (unknown)", self.0),
        }
    }
}

/// QUOTE HEADER.TEE_TYPE (version 4; reserved and zero in version 3), an open enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TeeType(pub u32);

impl TeeType {
    pub const SGX: Self = Self(0x0000_0000);
    pub const TDX: Self = Self(0x0000_0081);
}

impl std::fmt::Display for TeeType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match *self {
            Self::SGX => "SGX",
            Self::TDX => "TDX",
            _ => "unknown",
        };
        write!(f, "0x{:08x} ({name})", self.0)
    }
}

/// QE CERTIFICATION DATA type, an open enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertificationDataType(pub u16);

impl CertificationDataType {
    /// PPID in clear text ‖ CPUSVN ‖ PCESVN ‖ PCEID.
    pub const PPID_CLEARTEXT: Self = Self(1);
    /// PPID encrypted with RSA-2048-OAEP ‖ CPUSVN ‖ PCESVN ‖ PCEID.
    pub const PPID_RSA2048_ENCRYPTED: Self = Self(2);
    /// PPID encrypted with RSA-3072-OAEP ‖ CPUSVN ‖ PCESVN ‖ PCEID.
    pub const PPID_RSA3072_ENCRYPTED: Self = Self(3);
    /// The PCK leaf certificate, DER.
    pub const PCK_LEAF_CERTIFICATE: Self = Self(4);
    /// The PCK certificate chain: concatenated PEM certificates.
    pub const PCK_CERTIFICATE_CHAIN: Self = Self(5);
    /// QE report certification data (quote version 4).
    pub const QE_REPORT_CERTIFICATION_DATA: Self = Self(6);
    /// Platform manifest (kept raw by Coffer).
    pub const PLATFORM_MANIFEST: Self = Self(7);
}

impl std::fmt::Display for CertificationDataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The 48-byte quote header. [`QuoteHeader::read`] accepts any values; [`Quote::read`] then
/// rejects the versions, key types and TEE types Coffer does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuoteHeader {
    /// Offset 0.
    pub version: QuoteVersion,
    /// Offset 2.
    pub attestation_key_type: AttestationKeyType,
    /// Offset 4: the TEE type in version 4; reserved (zero) in version 3.
    pub tee_type: TeeType,
    /// Offset 8: security version of the quoting enclave.
    pub qe_svn: u16,
    /// Offset 10: security version of the provisioning certification enclave.
    pub pce_svn: u16,
    /// Offset 12: who made the quoting enclave ([`INTEL_QE_VENDOR_ID`] for Intel's).
    pub qe_vendor_id: [u8; 16],
    /// Offset 28: custom data of the QE (Intel's puts the first 16 bytes of QE ID here).
    pub user_data: [u8; 20],
}

impl QuoteHeader {
    /// Fails, naming the field, unless Coffer can verify a quote with this header: version 3
    /// (TEE type field zero) or version 4 with TEE type SGX, and an ECDSA P-256 attestation key.
    pub fn check_supported(&self) -> Result<(), DecodeError> {
        match self.version {
            QuoteVersion::V3 | QuoteVersion::V4 => {}
            v => {
                return Err(DecodeError::Invalid {
                    what: "QUOTE HEADER.VERSION",
                    reason: format!(
                        "unsupported quote version {v} (Coffer parses versions 3 and 4)"
                    ),
                });
            }
        }
        if self.attestation_key_type != AttestationKeyType::ECDSA_256_P256 {
            return Err(DecodeError::Invalid {
                what: "QUOTE HEADER.ATT_KEY_TYPE",
                reason: format!(
                    "attestation key type {} is not supported (Coffer verifies only 2, ECDSA-256 with P-256)",
                    self.attestation_key_type
                ),
            });
        }
        match (self.version, self.tee_type) {
            (_, TeeType::SGX) => Ok(()),
            (QuoteVersion::V3, t) => Err(DecodeError::Invalid {
                what: "QUOTE HEADER.RESERVED",
                reason: format!(
                    "bytes 4..8 of a version 3 header are reserved and must be zero, found {t}"
                ),
            }),
            (_, TeeType::TDX) => Err(DecodeError::Invalid {
                what: "QUOTE HEADER.TEE_TYPE",
                reason: format!(
                    "{} is a TDX quote; Coffer verifies SGX quotes only",
                    TeeType::TDX
                ),
            }),
            (_, t) => Err(DecodeError::Invalid {
                what: "QUOTE HEADER.TEE_TYPE",
                reason: format!("unknown TEE type {t} (Coffer verifies SGX quotes only)"),
            }),
        }
    }
}

impl Codec for QuoteHeader {
    const NAME: &'static str = "QUOTE HEADER";

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.0.to_le_bytes());
        out.extend_from_slice(&self.attestation_key_type.0.to_le_bytes());
        out.extend_from_slice(&self.tee_type.0.to_le_bytes());
        out.extend_from_slice(&self.qe_svn.to_le_bytes());
        out.extend_from_slice(&self.pce_svn.to_le_bytes());
        out.extend_from_slice(&self.qe_vendor_id);
        out.extend_from_slice(&self.user_data);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(QuoteHeader {
            version: QuoteVersion(r.u16("QUOTE HEADER.VERSION")?),
            attestation_key_type: AttestationKeyType(r.u16("QUOTE HEADER.ATT_KEY_TYPE")?),
            tee_type: TeeType(r.u32("QUOTE HEADER.TEE_TYPE")?),
            qe_svn: r.u16("QUOTE HEADER.QE_SVN")?,
            pce_svn: r.u16("QUOTE HEADER.PCE_SVN")?,
            qe_vendor_id: r.array("QUOTE HEADER.QE_VENDOR_ID")?,
            user_data: r.array("QUOTE HEADER.USER_DATA")?,
        })
    }
}

impl FixedSize for QuoteHeader {
    const SIZE: usize = QUOTE_HEADER_SIZE;
}

/// The body of certification data types 1, 2 and 3: what a PCCS needs to look up a PCK
/// certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PpidCertificationData {
    /// The PPID: 16 bytes in clear text (type 1), or RSA-OAEP ciphertext of 256 (type 2) or
    /// 384 (type 3) bytes. The parser enforces the length of each type.
    pub ppid: Vec<u8>,
    pub cpusvn: [u8; 16],
    pub pcesvn: u16,
    pub pceid: u16,
}

impl PpidCertificationData {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ppid);
        out.extend_from_slice(&self.cpusvn);
        out.extend_from_slice(&self.pcesvn.to_le_bytes());
        out.extend_from_slice(&self.pceid.to_le_bytes());
    }

    fn read(r: &mut Reader<'_>, ppid_len: usize) -> Result<Self, DecodeError> {
        Ok(PpidCertificationData {
            ppid: r.take("QE CERTIFICATION DATA.PPID", ppid_len)?.to_vec(),
            cpusvn: r.array("QE CERTIFICATION DATA.CPUSVN")?,
            pcesvn: r.u16("QE CERTIFICATION DATA.PCESVN")?,
            pceid: r.u16("QE CERTIFICATION DATA.PCEID")?,
        })
    }
}

/// QE CERTIFICATION DATA: what a verifier needs to find and check the PCK certificate.
///
/// Types 1 to 5 are parsed into their own variants. Type 6 (QE report certification data) is
/// accepted only as the outer certification data of a version 4 quote, where it becomes
/// [`QuoteSignatureData::qe_report_certification_data`]; nested anywhere else it is rejected,
/// because a second QE report inside the first has no meaning and would make parsing recursive.
/// Every other type is kept raw in [`CertificationData::Other`], so such a quote still round-trips
/// (it cannot be verified: only type 5 carries the chain).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CertificationData {
    /// Type 1.
    PpidCleartext(PpidCertificationData),
    /// Type 2.
    PpidRsa2048Encrypted(PpidCertificationData),
    /// Type 3.
    PpidRsa3072Encrypted(PpidCertificationData),
    /// Type 4: the PCK leaf certificate, DER.
    PckLeafCertificate(Vec<u8>),
    /// Type 5: the PCK certificate chain, concatenated PEM (Intel's may end in a NUL byte).
    PckCertificateChain(Vec<u8>),
    /// Any type other than 1 to 6, with its body as is.
    Other {
        cert_type: CertificationDataType,
        data: Vec<u8>,
    },
}

impl CertificationData {
    /// The type field.
    pub fn cert_type(&self) -> CertificationDataType {
        match self {
            Self::PpidCleartext(_) => CertificationDataType::PPID_CLEARTEXT,
            Self::PpidRsa2048Encrypted(_) => CertificationDataType::PPID_RSA2048_ENCRYPTED,
            Self::PpidRsa3072Encrypted(_) => CertificationDataType::PPID_RSA3072_ENCRYPTED,
            Self::PckLeafCertificate(_) => CertificationDataType::PCK_LEAF_CERTIFICATE,
            Self::PckCertificateChain(_) => CertificationDataType::PCK_CERTIFICATE_CHAIN,
            Self::Other { cert_type, .. } => *cert_type,
        }
    }

    /// The body, as the size field counts it.
    pub fn body_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Self::PpidCleartext(p)
            | Self::PpidRsa2048Encrypted(p)
            | Self::PpidRsa3072Encrypted(p) => p.encode(&mut out),
            Self::PckLeafCertificate(d)
            | Self::PckCertificateChain(d)
            | Self::Other { data: d, .. } => out.extend_from_slice(d),
        }
        out
    }

    /// Length of the PPID each PPID type carries.
    fn ppid_len(cert_type: CertificationDataType) -> Option<usize> {
        match cert_type {
            CertificationDataType::PPID_CLEARTEXT => Some(16),
            CertificationDataType::PPID_RSA2048_ENCRYPTED => Some(256),
            CertificationDataType::PPID_RSA3072_ENCRYPTED => Some(384),
            _ => None,
        }
    }
}

impl Codec for CertificationData {
    const NAME: &'static str = "QE CERTIFICATION DATA";

    fn encode(&self, out: &mut Vec<u8>) {
        let body = self.body_bytes();
        out.extend_from_slice(&self.cert_type().0.to_le_bytes());
        out.extend_from_slice(&len_u32(body.len()).to_le_bytes());
        out.extend_from_slice(&body);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let cert_type = CertificationDataType(r.u16("QE CERTIFICATION DATA.TYPE")?);
        let size = len_from_u32(r.u32("QE CERTIFICATION DATA.SIZE")?);
        if size > MAX_CERTIFICATION_DATA_SIZE {
            return Err(DecodeError::TooLarge {
                what: "QE CERTIFICATION DATA.SIZE",
                length: size,
                limit: MAX_CERTIFICATION_DATA_SIZE,
            });
        }
        if let Some(ppid_len) = Self::ppid_len(cert_type) {
            let p = read_exactly(r, "QE CERTIFICATION DATA.SIZE", size, |r| {
                PpidCertificationData::read(r, ppid_len)
            })?;
            return Ok(match cert_type {
                CertificationDataType::PPID_CLEARTEXT => Self::PpidCleartext(p),
                CertificationDataType::PPID_RSA2048_ENCRYPTED => Self::PpidRsa2048Encrypted(p),
                _ => Self::PpidRsa3072Encrypted(p),
            });
        }
        if cert_type == CertificationDataType::QE_REPORT_CERTIFICATION_DATA {
            return Err(DecodeError::Invalid {
                what: "QE CERTIFICATION DATA.TYPE",
                reason:
                    "type 6 (QE report certification data) may only be the outer certification \
                         data of a version 4 quote, not nested inside a QE report"
                        .into(),
            });
        }
        let data = r.take("QE CERTIFICATION DATA", size)?.to_vec();
        Ok(match cert_type {
            CertificationDataType::PCK_LEAF_CERTIFICATE => Self::PckLeafCertificate(data),
            CertificationDataType::PCK_CERTIFICATE_CHAIN => Self::PckCertificateChain(data),
            _ => Self::Other { cert_type, data },
        })
    }
}

/// QE AUTHENTICATION DATA: bytes the quoting enclave hashed, with the attestation key, into its
/// report's REPORTDATA. At most [`MAX_QE_AUTH_DATA_SIZE`] bytes, so its u16 size always encodes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct QeAuthData(Vec<u8>);

impl QeAuthData {
    /// Fails if `data` is longer than [`MAX_QE_AUTH_DATA_SIZE`].
    pub fn new(data: Vec<u8>) -> Result<Self, DecodeError> {
        if data.len() > MAX_QE_AUTH_DATA_SIZE {
            return Err(DecodeError::TooLarge {
                what: "QE AUTHENTICATION DATA.SIZE",
                length: data.len(),
                limit: MAX_QE_AUTH_DATA_SIZE,
            });
        }
        Ok(Self(data))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Codec for QeAuthData {
    const NAME: &'static str = "QE AUTHENTICATION DATA";

    fn encode(&self, out: &mut Vec<u8>) {
        // `new` and `read` keep the length within MAX_QE_AUTH_DATA_SIZE, far below u16::MAX.
        let len = u16::try_from(self.0.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&self.0);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let size = usize::from(r.u16("QE AUTHENTICATION DATA.SIZE")?);
        if size > MAX_QE_AUTH_DATA_SIZE {
            return Err(DecodeError::TooLarge {
                what: "QE AUTHENTICATION DATA.SIZE",
                length: size,
                limit: MAX_QE_AUTH_DATA_SIZE,
            });
        }
        Ok(Self(r.take("QE AUTHENTICATION DATA", size)?.to_vec()))
    }
}

/// QE REPORT CERTIFICATION DATA: the quoting enclave's report, which binds the attestation key,
/// signed with the PCK key, and the certification data that leads to the PCK certificate.
/// Inline in a version 3 quote's signature data; the body of certification data type 6 in
/// version 4.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QeReportCertificationData {
    /// The QE's REPORT body; REPORTDATA[0..32] = SHA-256(attestation key ‖ QE auth data).
    pub qe_report: ReportBody,
    /// ECDSA P-256 r ‖ s over the 384 bytes of `qe_report`, by the PCK key.
    pub qe_report_signature: [u8; 64],
    pub qe_auth_data: QeAuthData,
    pub certification_data: CertificationData,
}

impl Codec for QeReportCertificationData {
    const NAME: &'static str = "QE REPORT CERTIFICATION DATA";

    fn encode(&self, out: &mut Vec<u8>) {
        self.qe_report.encode(out);
        out.extend_from_slice(&self.qe_report_signature);
        self.qe_auth_data.encode(out);
        self.certification_data.encode(out);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(QeReportCertificationData {
            qe_report: ReportBody::read(r)?,
            qe_report_signature: r.array("QE REPORT SIGNATURE")?,
            qe_auth_data: QeAuthData::read(r)?,
            certification_data: CertificationData::read(r)?,
        })
    }
}

/// QUOTE SIGNATURE DATA (ECDSA 256-bit): everything after `QUOTE_SIGNATURE_DATA_LEN`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuoteSignatureData {
    /// ECDSA P-256 r ‖ s (big-endian) over the quote's bytes 0..432, by the attestation key.
    pub isv_enclave_report_signature: [u8; 64],
    /// The attestation public key, x ‖ y (big-endian).
    pub ecdsa_attestation_key: [u8; 64],
    /// Inline in version 3; wrapped in certification data type 6 in version 4.
    pub qe_report_certification_data: QeReportCertificationData,
}

impl QuoteSignatureData {
    /// Writes the layout of quote `version` (4: type-6 wrapper; anything else: version 3).
    pub fn encode_for(&self, version: QuoteVersion, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.isv_enclave_report_signature);
        out.extend_from_slice(&self.ecdsa_attestation_key);
        if version == QuoteVersion::V4 {
            let body = self.qe_report_certification_data.to_bytes();
            out.extend_from_slice(
                &CertificationDataType::QE_REPORT_CERTIFICATION_DATA
                    .0
                    .to_le_bytes(),
            );
            out.extend_from_slice(&len_u32(body.len()).to_le_bytes());
            out.extend_from_slice(&body);
        } else {
            self.qe_report_certification_data.encode(out);
        }
    }

    /// Reads the layout of quote `version` (3 or 4).
    pub fn read_for(version: QuoteVersion, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let isv_enclave_report_signature = r.array("ISV ENCLAVE REPORT SIGNATURE")?;
        let ecdsa_attestation_key = r.array("ECDSA ATTESTATION KEY")?;
        let qe_report_certification_data = if version == QuoteVersion::V4 {
            let cert_type = CertificationDataType(r.u16("QE CERTIFICATION DATA.TYPE")?);
            if cert_type != CertificationDataType::QE_REPORT_CERTIFICATION_DATA {
                return Err(DecodeError::Invalid {
                    what: "QE CERTIFICATION DATA.TYPE",
                    reason: format!(
                        "a version 4 quote must carry certification data type 6 (QE report \
                         certification data), found type {cert_type}"
                    ),
                });
            }
            let size = len_from_u32(r.u32("QE CERTIFICATION DATA.SIZE")?);
            if size > MAX_SIGNATURE_DATA_SIZE {
                return Err(DecodeError::TooLarge {
                    what: "QE CERTIFICATION DATA.SIZE",
                    length: size,
                    limit: MAX_SIGNATURE_DATA_SIZE,
                });
            }
            read_exactly(
                r,
                "QE CERTIFICATION DATA.SIZE",
                size,
                QeReportCertificationData::read,
            )?
        } else {
            QeReportCertificationData::read(r)?
        };
        Ok(QuoteSignatureData {
            isv_enclave_report_signature,
            ecdsa_attestation_key,
            qe_report_certification_data,
        })
    }
}

/// A DCAP ECDSA quote, parsed but not verified (`coffer-dcap` verifies it).
///
/// [`Codec::read`] accepts version 3 and SGX version 4 quotes with an ECDSA P-256 attestation
/// key ([`QuoteHeader::check_supported`]), and requires `QUOTE_SIGNATURE_DATA_LEN` to equal
/// exactly what the signature data occupies. [`Codec::from_bytes`] also rejects inputs larger
/// than [`MAX_QUOTE_SIZE`] before reading anything.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Quote {
    pub header: QuoteHeader,
    /// The ISV enclave's report body: the identity the quote attests.
    pub report_body: ReportBody,
    pub signature_data: QuoteSignatureData,
}

impl Quote {
    /// The bytes the attestation key signs: header ‖ ISV enclave report body (bytes 0..432).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(QUOTE_SIGNED_SIZE);
        self.header.encode(&mut out);
        self.report_body.encode(&mut out);
        out
    }

    /// The signature data as it is encoded (its length is `QUOTE_SIGNATURE_DATA_LEN`).
    pub fn signature_data_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.signature_data
            .encode_for(self.header.version, &mut out);
        out
    }

    /// The QE report, its signature, auth data and certification data (v3 and v4 alike).
    pub fn qe_report_certification_data(&self) -> &QeReportCertificationData {
        &self.signature_data.qe_report_certification_data
    }

    /// The certification data that leads to the PCK certificate (inside type 6 in version 4).
    pub fn certification_data(&self) -> &CertificationData {
        &self
            .signature_data
            .qe_report_certification_data
            .certification_data
    }

    /// The PEM PCK certificate chain, if the certification data is type 5.
    pub fn pck_certificate_chain_pem(&self) -> Option<&[u8]> {
        match self.certification_data() {
            CertificationData::PckCertificateChain(pem) => Some(pem),
            _ => None,
        }
    }
}

impl Codec for Quote {
    const NAME: &'static str = "QUOTE";

    fn encode(&self, out: &mut Vec<u8>) {
        let sig = self.signature_data_bytes();
        self.header.encode(out);
        self.report_body.encode(out);
        out.extend_from_slice(&len_u32(sig.len()).to_le_bytes());
        out.extend_from_slice(&sig);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let header = QuoteHeader::read(r)?;
        header.check_supported()?;
        let report_body = ReportBody::read(r)?;
        let len = len_from_u32(r.u32("QUOTE.SIGNATURE_DATA_LEN")?);
        if len > MAX_SIGNATURE_DATA_SIZE {
            return Err(DecodeError::TooLarge {
                what: "QUOTE.SIGNATURE_DATA_LEN",
                length: len,
                limit: MAX_SIGNATURE_DATA_SIZE,
            });
        }
        let signature_data = read_exactly(r, "QUOTE.SIGNATURE_DATA_LEN", len, |r| {
            QuoteSignatureData::read_for(header.version, r)
        })?;
        Ok(Quote {
            header,
            report_body,
            signature_data,
        })
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_QUOTE_SIZE {
            return Err(DecodeError::InputTooLarge {
                what: Self::NAME,
                length: bytes.len(),
                limit: MAX_QUOTE_SIZE,
            });
        }
        let mut r = Reader::new(bytes);
        let q = Self::read(&mut r)?;
        r.expect_end(Self::NAME)?;
        Ok(q)
    }
}

/// Reads a structure that a length field `what` says occupies exactly `len` bytes: fails if the
/// structure needs more (its end would lie past the declared length) or fewer.
fn read_exactly<T>(
    r: &mut Reader<'_>,
    what: &'static str,
    len: usize,
    f: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let bytes = r.take(what, len)?;
    let mut inner = Reader::new(bytes);
    let v = f(&mut inner).map_err(|e| match e {
        DecodeError::Truncated { what: field, .. } => DecodeError::Invalid {
            what,
            reason: format!("declares {len} bytes, but {field} does not fit in them"),
        },
        e => e,
    })?;
    if inner.remaining() != 0 {
        return Err(DecodeError::Invalid {
            what,
            reason: format!(
                "declares {len} bytes, but the contents occupy only {}",
                inner.position()
            ),
        });
    }
    Ok(v)
}

/// A u32 length field as a size (saturating; every size is then checked against a cap).
fn len_from_u32(v: u32) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// A size as a u32 length field. Every parsed structure is far below 4 GiB; a hand-built one
/// that is not encodes a saturated length that the parser rejects.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample(version: QuoteVersion) -> Quote {
        Quote {
            header: QuoteHeader {
                version,
                attestation_key_type: AttestationKeyType::ECDSA_256_P256,
                tee_type: TeeType::SGX,
                qe_svn: 2,
                pce_svn: 7,
                qe_vendor_id: INTEL_QE_VENDOR_ID,
                user_data: [9; 20],
            },
            report_body: ReportBody::default(),
            signature_data: QuoteSignatureData {
                isv_enclave_report_signature: [1; 64],
                ecdsa_attestation_key: [2; 64],
                qe_report_certification_data: QeReportCertificationData {
                    qe_report: ReportBody::default(),
                    qe_report_signature: [3; 64],
                    qe_auth_data: QeAuthData::new(vec![4; 32]).unwrap(),
                    certification_data: CertificationData::PckCertificateChain(b"pem".to_vec()),
                },
            },
        }
    }

    #[test]
    fn accepts_v3_and_v4_layouts_and_round_trips() {
        for v in [QuoteVersion::V3, QuoteVersion::V4] {
            let q = sample(v);
            let b = q.to_bytes();
            assert_eq!(Quote::from_bytes(&b).unwrap(), q);
            assert_eq!(q.signed_bytes(), b[..QUOTE_SIGNED_SIZE]);
        }
        // The v4 layout adds the six-byte type-6 wrapper.
        assert_eq!(
            sample(QuoteVersion::V4).to_bytes().len(),
            sample(QuoteVersion::V3).to_bytes().len() + 6
        );
    }

    #[test]
    fn rejects_a_v3_quote_declaring_a_wrong_signature_data_length() {
        let b = sample(QuoteVersion::V3).to_bytes();
        for delta in [-1i64, 1] {
            let mut c = b.clone();
            let len = u32::from_le_bytes(c[432..436].try_into().unwrap());
            let len = u32::try_from(i64::from(len) + delta).unwrap();
            c[432..436].copy_from_slice(&len.to_le_bytes());
            if delta > 0 {
                c.push(0);
            }
            let err = Quote::from_bytes(&c).unwrap_err();
            assert!(
                err.to_string().contains("QUOTE.SIGNATURE_DATA_LEN"),
                "{err}"
            );
        }
    }
}
