//! The deployment CA on disk: `init` makes it, `open` loads it, `provision` certifies a node,
//! `revoke` revokes a node's PCK certificate, `collateral` signs what verifiers need.
//!
//! A CA directory holds:
//!
//! | file | what | mode |
//! |---|---|---|
//! | `ca.json` | the deployment's FMSPC, PCE-ID, PCESVN, QE identity, certificate names and validity | 0644 |
//! | `root.pem`, `root.key` | the self-signed root CA (ECDSA P-256) | 0644, 0600 |
//! | `pck_ca.pem`, `pck_ca.key` | the PCK CA, issued by the root; it issues nodes' PCK certificates | 0644, 0600 |
//! | `tcb_signing.pem`, `tcb_signing.key` | the TCB signer, issued by the root; it signs TCB Info and QE Identity | 0644, 0600 |
//! | `issued/SERIAL.json` | one record per PCK certificate issued: its TCB components and level | 0644 |
//! | `revoked/SERIAL.json` | one record per revoked PCK certificate | 0644 |

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use coffer_proto::tcb::{TcbLevel, TcbStatus};
use p256::ecdsa::SigningKey;
use p256::pkcs8::DecodePrivateKey;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::extension::SgxExtension;
use crate::files::{self, FileError, PUBLIC, SECRET};
use crate::tcb;

mod collateral;

/// The node's files written by [`Authority::provision`] into its state directory.
pub const PCK_KEY_FILE: &str = "pck.key";
pub const PCK_CHAIN_FILE: &str = "pck_chain.pem";
pub const QE_IDENTITY_FILE: &str = "qe_identity.json";

const CONFIG_FILE: &str = "ca.json";
const ISSUED_DIR: &str = "issued";
const REVOKED_DIR: &str = "revoked";

/// The FMSPC of Coffer's soft-backend platforms.
pub const FMSPC: [u8; 6] = [0xc0, 0xff, 0xe5, 0x00, 0x00, 0x00];
/// The PCE-ID of Coffer's soft-backend platforms.
pub const PCE_ID: [u8; 2] = [0x00, 0x00];

/// Years a PCK certificate is valid (Intel's are valid seven).
const PCK_YEARS: i64 = 7;
/// Years the root, the PCK CA and the TCB signer are valid.
const CA_YEARS: i64 = 25;

/// Why a CA operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error(
        "{dir} is not a Coffer CA directory (it has no {CONFIG_FILE}): create one with `coffer ca init --out {dir}`"
    )]
    NotACa { dir: PathBuf },
    #[error("{dir} already holds a CA ({file} exists); Coffer never overwrites a CA")]
    AlreadyInitialized { dir: PathBuf, file: PathBuf },
    #[error(
        "{dir} is already provisioned ({file} exists); to certify the node again, revoke its certificate and remove {PCK_KEY_FILE}, {PCK_CHAIN_FILE} and {QE_IDENTITY_FILE} first"
    )]
    AlreadyProvisioned { dir: PathBuf, file: PathBuf },
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{path} is not valid: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} is not a PEM certificate: {source}")]
    Pem {
        path: PathBuf,
        #[source]
        source: pem::PemError,
    },
    #[error("{path} is not UTF-8 PEM text")]
    NotText { path: PathBuf },
    #[error("the key in {path} is not a P-256 PKCS#8 key: {source}")]
    Key {
        path: PathBuf,
        #[source]
        source: rcgen::Error,
    },
    #[error("the TCB signing key in {path} is not a P-256 key: {source}")]
    SigningKey {
        path: PathBuf,
        #[source]
        source: p256::pkcs8::Error,
    },
    #[error("cannot make the {what}: {source}")]
    Certificate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error(transparent)]
    UnknownAdvisory(#[from] tcb::UnknownAdvisory),
    #[error(
        "{text:?} is not a certificate serial number (hexadecimal, as `ca provision` printed it)"
    )]
    BadSerial { text: String },
    #[error("this CA issued no PCK certificate with serial {serial}")]
    UnknownSerial { serial: String },
    #[error("the PCK certificate with serial {serial} is already revoked")]
    AlreadyRevoked { serial: String },
    #[error("the system's random number generator failed: {0}")]
    Random(getrandom::Error),
    #[error("time {what} is out of range")]
    Time { what: &'static str },
}

/// A certificate's name, serial and validity, kept so the CA can issue under it again.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CertInfo {
    cn: String,
    #[serde(with = "hex::serde")]
    serial: Vec<u8>,
    not_before: i64,
    not_after: i64,
}

/// The identity of the deployment's quoting enclave, as the QE Identity names it: the
/// quoting step makes its QE report with these values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QeIdentity {
    #[serde(with = "hex::serde")]
    pub mrsigner: [u8; 32],
    pub isvprodid: u16,
    pub isvsvn: u16,
    /// ATTRIBUTES (flags then XFRM, little-endian), and which bits of them are checked.
    #[serde(with = "hex::serde")]
    pub attributes: [u8; 16],
    #[serde(with = "hex::serde")]
    pub attributes_mask: [u8; 16],
    pub miscselect: u32,
    pub miscselect_mask: u32,
    /// The quote header's QE vendor ID. Intel's: dcap-qvl 0.7 refuses every other
    /// (`Unknown QE vendor ID`), and the QE Identity above identifies the quoting enclave.
    #[serde(with = "hex::serde")]
    pub qe_vendor_id: [u8; 16],
}

impl QeIdentity {
    /// Coffer's soft-backend quoting identity: MRSIGNER is SHA-256 of
    /// `"Coffer soft-backend quoting identity"`, product 1, SVN 1, attributes INIT and
    /// PROVISIONKEY with DEBUG checked clear (as Intel's QE Identity checks them).
    pub fn coffer() -> QeIdentity {
        let mut attributes = [0u8; 16];
        attributes[0] = 0x11;
        let mut attributes_mask = [0u8; 16];
        attributes_mask[..8].copy_from_slice(&[0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        QeIdentity {
            mrsigner: Sha256::digest(b"Coffer soft-backend quoting identity").into(),
            isvprodid: 1,
            isvsvn: 1,
            attributes,
            attributes_mask,
            miscselect: 0,
            miscselect_mask: 0xffff_ffff,
            qe_vendor_id: coffer_abi::quote::INTEL_QE_VENDOR_ID,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CaConfig {
    format: u32,
    created: i64,
    #[serde(with = "hex::serde")]
    fmspc: [u8; 6],
    #[serde(with = "hex::serde")]
    pce_id: [u8; 2],
    pcesvn: u16,
    root: CertInfo,
    pck_ca: CertInfo,
    tcb_signing: CertInfo,
    qe: QeIdentity,
}

/// One PCK certificate issued: what it certifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedRecord {
    #[serde(with = "hex::serde")]
    pub serial: Vec<u8>,
    #[serde(with = "hex::serde")]
    pub ppid: [u8; 16],
    #[serde(with = "hex::serde")]
    pub tcb_components: [u8; 16],
    pub pcesvn: u16,
    /// The level the platform reported when it was certified.
    pub level: TcbLevel,
    /// Its open advisories.
    pub advisories: Vec<String>,
    pub issued: i64,
    pub not_after: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RevokedRecord {
    #[serde(with = "hex::serde")]
    serial: Vec<u8>,
    revoked: i64,
}

/// A loaded CA.
#[derive(Debug)]
pub struct Authority {
    dir: PathBuf,
    config: CaConfig,
    root: CertificateDer<'static>,
    pck_ca: CertificateDer<'static>,
    tcb_signing: CertificateDer<'static>,
    root_issuer: Issuer<'static, KeyPair>,
    pck_ca_issuer: Issuer<'static, KeyPair>,
    tcb_signing_key: SigningKey,
}

/// What [`Authority::provision`] issued.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub record: IssuedRecord,
    pub pck_leaf: CertificateDer<'static>,
    /// The state directory's files.
    pub key_path: PathBuf,
    pub chain_path: PathBuf,
    pub qe_identity_path: PathBuf,
}

/// Signed collateral: the dcap-qvl `QuoteCollateralV3` form and Intel's PCS bodies.
#[derive(Debug, Clone)]
pub struct SignedCollateral {
    pub collateral: coffer_dcap::Collateral,
    /// `{"tcbInfo":{…},"signature":"…"}` as Intel's PCS serves it.
    pub tcb_info_body: String,
    /// `{"enclaveIdentity":{…},"signature":"…"}` as Intel's PCS serves it.
    pub qe_identity_body: String,
}

pub(crate) fn unix(t: SystemTime) -> Result<OffsetDateTime, CaError> {
    let secs = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).map_err(|_| CaError::Time { what: "now" })?,
        Err(e) => {
            -i64::try_from(e.duration().as_secs()).map_err(|_| CaError::Time { what: "now" })?
        }
    };
    from_unix(secs)
}

fn from_unix(secs: i64) -> Result<OffsetDateTime, CaError> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| CaError::Time { what: "a date" })
}

/// `t` as Intel writes dates: `2026-01-01T00:00:00Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn years(n: i64) -> time::Duration {
    time::Duration::days(365 * n)
}

/// A positive serial number of 16 random bytes in minimal DER.
fn random_serial() -> Result<Vec<u8>, CaError> {
    let mut s = vec![0u8; 16];
    getrandom::fill(&mut s).map_err(CaError::Random)?;
    s[0] = (s[0] & 0x7f).max(1);
    Ok(s)
}

fn cert_params(info: &CertInfo) -> Result<CertificateParams, CaError> {
    let mut c = CertificateParams::default();
    c.distinguished_name = rcgen::DistinguishedName::new();
    c.distinguished_name
        .push(DnType::CommonName, info.cn.as_str());
    c.distinguished_name
        .push(DnType::OrganizationName, "Coffer deployment");
    c.not_before = from_unix(info.not_before)?;
    c.not_after = from_unix(info.not_after)?;
    c.serial_number = Some(SerialNumber::from_slice(&info.serial));
    Ok(c)
}

fn ca_cert_params(info: &CertInfo) -> Result<CertificateParams, CaError> {
    let mut c = cert_params(info)?;
    c.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    c.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(c)
}

fn signer_params(info: &CertInfo) -> Result<CertificateParams, CaError> {
    let mut c = cert_params(info)?;
    c.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    Ok(c)
}

fn new_key() -> Result<KeyPair, CaError> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|source| CaError::Certificate {
        what: "P-256 key",
        source,
    })
}

fn pem_cert(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

fn read_cert(path: &Path) -> Result<CertificateDer<'static>, CaError> {
    let bytes = files::read(path)?;
    let p = pem::parse(&bytes).map_err(|source| CaError::Pem {
        path: path.to_owned(),
        source,
    })?;
    Ok(CertificateDer::from(p.into_contents()))
}

fn read_key(path: &Path) -> Result<KeyPair, CaError> {
    let text = Zeroizing::new(files::read(path)?);
    let text = std::str::from_utf8(&text).map_err(|_| CaError::NotText {
        path: path.to_owned(),
    })?;
    KeyPair::from_pem(text).map_err(|source| CaError::Key {
        path: path.to_owned(),
        source,
    })
}

fn write_key(path: &Path, key: &KeyPair) -> Result<(), CaError> {
    let pem = Zeroizing::new(key.serialize_pem());
    files::write(path, pem.as_bytes(), SECRET, false)?;
    Ok(())
}

fn write_json<T: Serialize>(path: &Path, v: &T, overwrite: bool) -> Result<(), CaError> {
    let text = serde_json::to_string_pretty(v).map_err(|source| CaError::Json {
        path: path.to_owned(),
        source,
    })?;
    files::write(path, text.as_bytes(), PUBLIC, overwrite)?;
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, CaError> {
    let bytes = files::read(path)?;
    serde_json::from_slice(&bytes).map_err(|source| CaError::Json {
        path: path.to_owned(),
        source,
    })
}

/// Parses a serial number written in hex (colons and a `0x` prefix allowed).
pub fn parse_serial(text: &str) -> Result<Vec<u8>, CaError> {
    let t: String = text
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    match hex::decode(&t) {
        Ok(v) if !v.is_empty() && v.len() <= 20 => Ok(v),
        _ => Err(CaError::BadSerial {
            text: text.to_owned(),
        }),
    }
}

impl Authority {
    /// Creates a CA in `dir` (created 0700 when missing): a root CA, a PCK CA and a TCB signer,
    /// each with a new P-256 key. Refuses a directory that already holds a CA.
    pub fn init(dir: &Path, now: SystemTime) -> Result<Authority, CaError> {
        for f in [CONFIG_FILE, "root.key", "pck_ca.key", "tcb_signing.key"] {
            let file = dir.join(f);
            if file.exists() {
                return Err(CaError::AlreadyInitialized {
                    dir: dir.to_owned(),
                    file,
                });
            }
        }
        files::create_dir(dir)?;
        files::create_dir(&dir.join(ISSUED_DIR))?;
        files::create_dir(&dir.join(REVOKED_DIR))?;
        let now = unix(now)?;
        let not_before = (now - time::Duration::hours(1)).unix_timestamp();
        let not_after = (now + years(CA_YEARS)).unix_timestamp();
        let info = |cn: &str| -> Result<CertInfo, CaError> {
            Ok(CertInfo {
                cn: cn.to_owned(),
                serial: random_serial()?,
                not_before,
                not_after,
            })
        };
        let config = CaConfig {
            format: 1,
            created: now.unix_timestamp(),
            fmspc: FMSPC,
            pce_id: PCE_ID,
            pcesvn: tcb::PCESVN,
            root: info("Coffer Deployment Root CA")?,
            pck_ca: info("Coffer Deployment PCK Processor CA")?,
            tcb_signing: info("Coffer Deployment TCB Signing")?,
            qe: QeIdentity::coffer(),
        };
        let cert_err = |what| move |source| CaError::Certificate { what, source };

        let root_key = new_key()?;
        let root = ca_cert_params(&config.root)?
            .self_signed(&root_key)
            .map_err(cert_err("root certificate"))?;
        let root_issuer = Issuer::new(ca_cert_params(&config.root)?, root_key);
        let pck_ca_key = new_key()?;
        let pck_ca = ca_cert_params(&config.pck_ca)?
            .signed_by(&pck_ca_key, &root_issuer)
            .map_err(cert_err("PCK CA certificate"))?;
        let tcb_key = new_key()?;
        let tcb_signing = signer_params(&config.tcb_signing)?
            .signed_by(&tcb_key, &root_issuer)
            .map_err(cert_err("TCB signing certificate"))?;

        // Keys first (never overwritten), the configuration last: a directory with ca.json
        // is a complete CA.
        write_key(&dir.join("root.key"), root_issuer.key())?;
        write_key(&dir.join("pck_ca.key"), &pck_ca_key)?;
        write_key(&dir.join("tcb_signing.key"), &tcb_key)?;
        files::write(
            &dir.join("root.pem"),
            pem_cert(root.der()).as_bytes(),
            PUBLIC,
            false,
        )?;
        files::write(
            &dir.join("pck_ca.pem"),
            pem_cert(pck_ca.der()).as_bytes(),
            PUBLIC,
            false,
        )?;
        files::write(
            &dir.join("tcb_signing.pem"),
            pem_cert(tcb_signing.der()).as_bytes(),
            PUBLIC,
            false,
        )?;
        write_json(&dir.join(CONFIG_FILE), &config, false)?;
        tracing::info!(dir = %dir.display(), "deployment CA created");
        Authority::open(dir)
    }

    /// Loads the CA in `dir`.
    pub fn open(dir: &Path) -> Result<Authority, CaError> {
        let cfg_path = dir.join(CONFIG_FILE);
        if !cfg_path.is_file() {
            return Err(CaError::NotACa {
                dir: dir.to_owned(),
            });
        }
        let config: CaConfig = read_json(&cfg_path)?;
        let root_issuer = Issuer::new(
            ca_cert_params(&config.root)?,
            read_key(&dir.join("root.key"))?,
        );
        let pck_ca_issuer = Issuer::new(
            ca_cert_params(&config.pck_ca)?,
            read_key(&dir.join("pck_ca.key"))?,
        );
        let tcb_path = dir.join("tcb_signing.key");
        let tcb_der = Zeroizing::new(read_key(&tcb_path)?.serialize_der());
        let tcb_signing_key =
            SigningKey::from_pkcs8_der(&tcb_der).map_err(|source| CaError::SigningKey {
                path: tcb_path,
                source,
            })?;
        Ok(Authority {
            dir: dir.to_owned(),
            root: read_cert(&dir.join("root.pem"))?,
            pck_ca: read_cert(&dir.join("pck_ca.pem"))?,
            tcb_signing: read_cert(&dir.join("tcb_signing.pem"))?,
            config,
            root_issuer,
            pck_ca_issuer,
            tcb_signing_key,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The root certificate: what verifiers pin (`coffer quote verify --root`).
    pub fn root(&self) -> &CertificateDer<'static> {
        &self.root
    }

    pub fn pck_ca(&self) -> &CertificateDer<'static> {
        &self.pck_ca
    }

    pub fn tcb_signing(&self) -> &CertificateDer<'static> {
        &self.tcb_signing
    }

    pub fn qe_identity(&self) -> &QeIdentity {
        &self.config.qe
    }

    pub fn fmspc(&self) -> [u8; 6] {
        self.config.fmspc
    }

    /// Certifies a node whose platform reports `status`: a new P-256 PCK key (`pck.key`,
    /// 0600), its certificate with the SGX extension issued by the PCK CA (`pck_chain.pem`:
    /// leaf, PCK CA, root) and the quoting identity (`qe_identity.json`), written into
    /// `state_dir`. Refuses a state directory that already has a PCK key.
    pub fn provision(
        &self,
        state_dir: &Path,
        status: &TcbStatus,
        now: SystemTime,
    ) -> Result<Provisioned, CaError> {
        let key_path = state_dir.join(PCK_KEY_FILE);
        let chain_path = state_dir.join(PCK_CHAIN_FILE);
        let qe_identity_path = state_dir.join(QE_IDENTITY_FILE);
        for file in [&key_path, &chain_path, &qe_identity_path] {
            if file.exists() {
                return Err(CaError::AlreadyProvisioned {
                    dir: state_dir.to_owned(),
                    file: file.clone(),
                });
            }
        }
        let components = tcb::components_for(status)?;
        let now = unix(now)?;
        let ca_not_after = from_unix(self.config.pck_ca.not_after)?;
        let not_after = (now + years(PCK_YEARS)).min(ca_not_after);
        let mut ppid = [0u8; 16];
        getrandom::fill(&mut ppid).map_err(CaError::Random)?;
        let record = IssuedRecord {
            serial: random_serial()?,
            ppid,
            tcb_components: components,
            pcesvn: self.config.pcesvn,
            level: status.level,
            advisories: tcb::open_advisories(&components),
            issued: now.unix_timestamp(),
            not_after: not_after.unix_timestamp(),
        };
        let ext = SgxExtension {
            ppid,
            tcb_components: components,
            pcesvn: record.pcesvn,
            cpusvn: components,
            pce_id: self.config.pce_id,
            fmspc: self.config.fmspc,
            sgx_type: 0,
        };
        let mut params = signer_params(&CertInfo {
            cn: "Coffer Deployment PCK Certificate".into(),
            serial: record.serial.clone(),
            not_before: (now - time::Duration::hours(1)).unix_timestamp(),
            not_after: record.not_after,
        })?;
        params.custom_extensions.push(ext.to_custom_extension());
        let key = new_key()?;
        let leaf = params
            .signed_by(&key, &self.pck_ca_issuer)
            .map_err(|source| CaError::Certificate {
                what: "PCK certificate",
                source,
            })?;

        files::create_dir(state_dir)?;
        // The key claims the state directory: a concurrent provisioning loses here.
        write_key(&key_path, &key)?;
        let chain = [leaf.der().as_ref(), &self.pck_ca, &self.root]
            .iter()
            .map(|d| pem_cert(d))
            .collect::<String>();
        files::write(&chain_path, chain.as_bytes(), PUBLIC, false)?;
        write_json(&qe_identity_path, &self.config.qe, false)?;
        write_json(
            &self
                .dir
                .join(ISSUED_DIR)
                .join(format!("{}.json", hex::encode(&record.serial))),
            &record,
            false,
        )?;
        tracing::info!(serial = %hex::encode(&record.serial), level = %status.level, "PCK certificate issued");
        Ok(Provisioned {
            record,
            pck_leaf: leaf.der().clone(),
            key_path,
            chain_path,
            qe_identity_path,
        })
    }

    fn records<T: for<'de> Deserialize<'de>>(&self, sub: &str) -> Result<Vec<T>, CaError> {
        let d = self.dir.join(sub);
        let rerr = |source| {
            CaError::File(FileError::Read {
                path: d.clone(),
                source,
            })
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&d)
            .map_err(rerr)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(rerr)?;
        paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
        paths.sort();
        paths.iter().map(|p| read_json(p)).collect()
    }

    /// Every PCK certificate issued.
    pub fn issued(&self) -> Result<Vec<IssuedRecord>, CaError> {
        self.records(ISSUED_DIR)
    }

    /// Revokes the PCK certificate with serial `serial` (hex): the next PCK CRL lists it.
    pub fn revoke(&self, serial: &str, now: SystemTime) -> Result<(), CaError> {
        let serial = parse_serial(serial)?;
        let name = format!("{}.json", hex::encode(&serial));
        if !self.dir.join(ISSUED_DIR).join(&name).is_file() {
            return Err(CaError::UnknownSerial {
                serial: hex::encode(&serial),
            });
        }
        let rec = RevokedRecord {
            serial: serial.clone(),
            revoked: unix(now)?.unix_timestamp(),
        };
        match write_json(&self.dir.join(REVOKED_DIR).join(&name), &rec, false) {
            Err(CaError::File(FileError::Exists { .. })) => Err(CaError::AlreadyRevoked {
                serial: hex::encode(&serial),
            }),
            r => r,
        }
    }
}
