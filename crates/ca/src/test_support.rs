//! A test deployment (feature `test-support`, for tests only): a root CA, a PCK CA, a PCK leaf
//! certificate carrying the SGX extension, a TCB signer, CRLs, TCB Info and QE Identity signed by
//! the test TCB signer, and quotes signed by a test attestation key and the PCK key. Everything
//! real verification needs, with every key known, so tests can break one thing at a time.
//!
//! The collateral it makes has the JSON shape of dcap-qvl's `QuoteCollateralV3`, so the same
//! quote and collateral can be given to dcap-qvl (`QuoteVerifier::new(root_der)`).

#![allow(clippy::expect_used)]

use coffer_abi::quote::{
    AttestationKeyType, CertificationData, INTEL_QE_VENDOR_ID, QeAuthData,
    QeReportCertificationData, Quote, QuoteHeader, QuoteSignatureData, QuoteVersion, TeeType,
};
use coffer_abi::{Attributes, AttributesFlags, Codec, Miscselect, ReportBody};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use coffer_dcap::{Collateral, TcbStatus};

use crate::authority::QeIdentity;
use crate::extension::SgxExtension;
use crate::formats;

/// Every test level's tcbDate: 2025-11-12T00:00:00Z.
const TCB_DATE: u64 = 1_762_905_600;

/// 2026-01-01T00:00:00Z: the default collateral is fresh then.
pub const TEST_NOW: u64 = 1_767_225_600;

/// Intel's QE MRSIGNER, which the default QE report and QE Identity use.
pub const QE_MRSIGNER: [u8; 32] = [
    0x8c, 0x4f, 0x57, 0x75, 0xd7, 0x96, 0x50, 0x3e, 0x96, 0x13, 0x7f, 0x77, 0xc6, 0x8a, 0x82, 0x9a,
    0x00, 0x56, 0xac, 0x8d, 0xed, 0x70, 0x14, 0x0b, 0x08, 0x1b, 0x09, 0x44, 0x90, 0xc5, 0x7b, 0xff,
];

/// A time as Unix seconds.
pub fn at(secs: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(i64::try_from(secs).expect("a time in range"))
        .expect("a time in range")
}

/// The certificates of a deployment.
#[derive(Debug, Clone)]
pub struct DeploymentParams {
    pub root_cn: String,
    pub pck_ca_cn: String,
    pub tcb_signer_cn: String,
    pub leaf_cn: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The PCK leaf's notAfter.
    pub leaf_not_after: OffsetDateTime,
    /// The TCB signer's notAfter.
    pub tcb_signer_not_after: OffsetDateTime,
    pub fmspc: [u8; 6],
    pub pce_id: [u8; 2],
    /// The PCK leaf's sixteen TCB components (and CPUSVN).
    pub tcb_components: [u8; 16],
    /// CPUSVN, when it should differ from the components (a malformed certificate).
    pub cpusvn_override: Option<[u8; 16]>,
    pub pcesvn: u16,
    /// Whether the PCK leaf carries the SGX extension at all.
    pub sgx_extension: bool,
}

impl Default for DeploymentParams {
    fn default() -> Self {
        DeploymentParams {
            root_cn: "Coffer Test Root CA".into(),
            pck_ca_cn: "Coffer Test PCK Processor CA".into(),
            tcb_signer_cn: "Coffer Test TCB Signing".into(),
            leaf_cn: "Coffer Test PCK Certificate".into(),
            not_before: rcgen::date_time_ymd(2024, 1, 1),
            not_after: rcgen::date_time_ymd(2040, 1, 1),
            leaf_not_after: rcgen::date_time_ymd(2030, 1, 1),
            tcb_signer_not_after: rcgen::date_time_ymd(2032, 1, 1),
            fmspc: [0x00, 0x90, 0x6e, 0xa1, 0x00, 0x00],
            pce_id: [0x00, 0x00],
            tcb_components: [11, 11, 2, 2, 255, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            cpusvn_override: None,
            pcesvn: 13,
            sgx_extension: true,
        }
    }
}

/// A deployment: its certificates and the keys that sign with them.
#[derive(Debug)]
pub struct Deployment {
    pub params: DeploymentParams,
    pub root: CertificateDer<'static>,
    pub pck_ca: CertificateDer<'static>,
    pub tcb_signer: CertificateDer<'static>,
    pub pck_leaf: CertificateDer<'static>,
    root_issuer: Issuer<'static, KeyPair>,
    pck_ca_issuer: Issuer<'static, KeyPair>,
    tcb_signer_key: SigningKey,
    pck_key: SigningKey,
}

/// Serial numbers of the deployment's certificates (positive, minimal DER).
pub const ROOT_SERIAL: &[u8] = &[0x01, 0x00, 0x01];
pub const PCK_CA_SERIAL: &[u8] = &[0x02, 0x00, 0x02];
pub const TCB_SIGNER_SERIAL: &[u8] = &[0x03, 0x00, 0x03];
pub const PCK_LEAF_SERIAL: &[u8] = &[0x04, 0x00, 0x04];

fn name_params(cn: &str, p: &DeploymentParams, serial: &[u8]) -> CertificateParams {
    let mut c = CertificateParams::new(Vec::<String>::new()).expect("no SANs");
    c.distinguished_name = rcgen::DistinguishedName::new();
    c.distinguished_name.push(DnType::CommonName, cn);
    c.distinguished_name
        .push(DnType::OrganizationName, "Coffer Test");
    c.distinguished_name.push(DnType::CountryName, "US");
    c.not_before = p.not_before;
    c.not_after = p.not_after;
    c.serial_number = Some(SerialNumber::from_slice(serial));
    c
}

fn ca_params(cn: &str, p: &DeploymentParams, serial: &[u8]) -> CertificateParams {
    let mut c = name_params(cn, p, serial);
    c.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    c.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    c
}

fn p256_keypair() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key generation")
}

fn signing_key(kp: &KeyPair) -> SigningKey {
    SigningKey::from_pkcs8_der(&kp.serialize_der()).expect("a P-256 PKCS#8 key")
}

/// The SGX extension's DER: PPID, TCB (16 components, PCESVN, CPUSVN), PCE-ID, FMSPC, SGX type.
pub fn sgx_extension_der(p: &DeploymentParams) -> Vec<u8> {
    SgxExtension {
        ppid: [0x5a; 16],
        tcb_components: p.tcb_components,
        pcesvn: p.pcesvn,
        cpusvn: p.cpusvn_override.unwrap_or(p.tcb_components),
        pce_id: p.pce_id,
        fmspc: p.fmspc,
        sgx_type: 0,
    }
    .to_der()
}

impl Deployment {
    pub fn new(params: DeploymentParams) -> Deployment {
        let root_key = p256_keypair();
        let root_params = ca_params(&params.root_cn, &params, ROOT_SERIAL);
        let root = root_params
            .self_signed(&root_key)
            .expect("root certificate");
        let root_issuer = Issuer::new(root_params, root_key);

        let ca_key = p256_keypair();
        let ca_params = ca_params(&params.pck_ca_cn, &params, PCK_CA_SERIAL);
        let pck_ca = ca_params
            .signed_by(&ca_key, &root_issuer)
            .expect("PCK CA certificate");
        let pck_ca_issuer = Issuer::new(ca_params, ca_key);

        let signer_kp = p256_keypair();
        let mut signer_params = name_params(&params.tcb_signer_cn, &params, TCB_SIGNER_SERIAL);
        signer_params.not_after = params.tcb_signer_not_after;
        signer_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        let tcb_signer = signer_params
            .signed_by(&signer_kp, &root_issuer)
            .expect("TCB signer certificate");

        let leaf_kp = p256_keypair();
        let mut leaf_params = name_params(&params.leaf_cn, &params, PCK_LEAF_SERIAL);
        leaf_params.not_after = params.leaf_not_after;
        leaf_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        if params.sgx_extension {
            leaf_params
                .custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(
                    crate::extension::SGX_EXTENSION_OID,
                    sgx_extension_der(&params),
                ));
        }
        let pck_leaf = leaf_params
            .signed_by(&leaf_kp, &pck_ca_issuer)
            .expect("PCK leaf certificate");

        Deployment {
            root: root.der().clone(),
            pck_ca: pck_ca.der().clone(),
            tcb_signer: tcb_signer.der().clone(),
            pck_leaf: pck_leaf.der().clone(),
            root_issuer,
            pck_ca_issuer,
            tcb_signer_key: signing_key(&signer_kp),
            pck_key: signing_key(&leaf_kp),
            params,
        }
    }

    /// PEM text of `certs`, in order.
    pub fn pem(certs: &[&CertificateDer<'_>]) -> String {
        certs
            .iter()
            .map(|c| pem::encode(&pem::Pem::new("CERTIFICATE", c.to_vec())))
            .collect()
    }

    /// The PCK chain a quote carries: leaf, PCK CA, root.
    pub fn pck_chain_pem(&self) -> Vec<u8> {
        Self::pem(&[&self.pck_leaf, &self.pck_ca, &self.root]).into_bytes()
    }

    /// Signs `text` as the TCB signer does the TCB Info and QE Identity: raw r ‖ s.
    pub fn sign_collateral(&self, text: &str) -> Vec<u8> {
        formats::sign(&self.tcb_signer_key, text)
    }

    /// A quote under this deployment.
    pub fn quote(&self, q: &QuoteParams) -> Vec<u8> {
        self.quote_with_chain(q, self.pck_chain_pem())
    }

    /// A quote under this deployment whose certification data is `chain_pem`.
    pub fn quote_with_chain(&self, q: &QuoteParams, chain_pem: Vec<u8>) -> Vec<u8> {
        quote_signed_by(
            &self.pck_key,
            chain_pem,
            self.params.tcb_components,
            self.params.pcesvn,
            q,
        )
    }

    fn crl(
        &self,
        issuer: &Issuer<'static, KeyPair>,
        c: &CollateralParams,
        revoked: &[&[u8]],
    ) -> Vec<u8> {
        let revoked: Vec<formats::Revoked<'_>> = revoked
            .iter()
            .map(|serial| formats::Revoked {
                serial,
                at: c.crl_this_update,
            })
            .collect();
        formats::crl(issuer, c.crl_this_update, c.crl_next_update, 1, &revoked).expect("CRL")
    }

    /// The TCB Info JSON text for `c`.
    pub fn tcb_info_json(&self, c: &CollateralParams) -> String {
        formats::TcbInfo {
            version: c.tcb_info_version,
            issue_date: c.issue_date,
            next_update: c.next_update,
            fmspc: c.fmspc.unwrap_or(self.params.fmspc),
            pce_id: c.pce_id.unwrap_or(self.params.pce_id),
            tcb_evaluation_data_number: 19,
            tcb_date: at(TCB_DATE),
            levels: &c.tcb_levels,
        }
        .to_json()
    }

    /// The QE Identity JSON text for `c`.
    pub fn qe_identity_json(&self, c: &CollateralParams) -> String {
        let mut identity = QeIdentity::coffer();
        identity.mrsigner = c.qe_mrsigner;
        identity.isvprodid = c.qe_isvprodid;
        formats::QeIdentityInfo {
            issue_date: c.issue_date,
            next_update: c.next_update,
            tcb_evaluation_data_number: 19,
            tcb_date: at(TCB_DATE),
            identity: &identity,
            levels: &c.qe_levels,
        }
        .to_json()
    }

    /// Collateral for this deployment, signed by its TCB signer and CAs.
    pub fn collateral(&self, c: &CollateralParams) -> Collateral {
        let mut root_revoked: Vec<&[u8]> = Vec::new();
        if c.revoke_pck_ca {
            root_revoked.push(PCK_CA_SERIAL);
        }
        if c.revoke_tcb_signer {
            root_revoked.push(TCB_SIGNER_SERIAL);
        }
        let pck_revoked: Vec<&[u8]> = if c.revoke_pck_leaf {
            vec![PCK_LEAF_SERIAL]
        } else {
            Vec::new()
        };
        let tcb_info = self.tcb_info_json(c);
        let qe_identity = self.qe_identity_json(c);
        let signer_chain = Self::pem(&[&self.tcb_signer, &self.root]);
        Collateral {
            pck_crl_issuer_chain: Self::pem(&[&self.pck_ca, &self.root]),
            root_ca_crl: self.crl(&self.root_issuer, c, &root_revoked),
            pck_crl: self.crl(&self.pck_ca_issuer, c, &pck_revoked),
            tcb_info_issuer_chain: signer_chain.clone(),
            tcb_info_signature: self.sign_collateral(&tcb_info),
            tcb_info,
            qe_identity_issuer_chain: signer_chain,
            qe_identity_signature: self.sign_collateral(&qe_identity),
            qe_identity,
        }
    }
}

/// A quote whose QE report is signed by `pck_key` (a provisioned node's `pck.key`, say) and
/// whose certification data is `chain_pem`; the QE report's CPUSVN is `cpusvn`, the header's
/// PCESVN `pcesvn`.
pub fn quote_signed_by(
    pck_key: &SigningKey,
    chain_pem: Vec<u8>,
    cpusvn: [u8; 16],
    pcesvn: u16,
    q: &QuoteParams,
) -> Vec<u8> {
    let attestation_key = SigningKey::from_slice(&[0x42; 32]).expect("a P-256 scalar");
    let point = attestation_key.verifying_key().to_sec1_point(false);
    let mut ak = [0u8; 64];
    ak.copy_from_slice(&point.as_bytes()[1..]);
    let auth: Vec<u8> = (0u8..32).collect();
    let mut qe_report = ReportBody {
        mrsigner: q.qe_mrsigner,
        isvprodid: q.qe_isvprodid,
        isvsvn: q.qe_isvsvn,
        attributes: q.qe_attributes,
        miscselect: Miscselect::from_bits_retain(q.qe_miscselect),
        cpusvn,
        ..ReportBody::default()
    };
    let mut h = Sha256::new();
    h.update(ak);
    h.update(&auth);
    qe_report.reportdata[..32].copy_from_slice(&h.finalize());
    let qe_sig: Signature = pck_key.sign(&qe_report.to_bytes());
    let mut quote = Quote {
        header: QuoteHeader {
            version: q.version,
            attestation_key_type: AttestationKeyType::ECDSA_256_P256,
            tee_type: TeeType::SGX,
            qe_svn: q.qe_isvsvn,
            pce_svn: pcesvn,
            qe_vendor_id: q.qe_vendor_id,
            user_data: [0; 20],
        },
        report_body: q.report_body.clone(),
        signature_data: QuoteSignatureData {
            isv_enclave_report_signature: [0; 64],
            ecdsa_attestation_key: ak,
            qe_report_certification_data: QeReportCertificationData {
                qe_report,
                qe_report_signature: qe_sig.to_bytes().into(),
                qe_auth_data: QeAuthData::new(auth).expect("32 bytes of auth data"),
                certification_data: CertificationData::PckCertificateChain(chain_pem),
            },
        },
    };
    let sig: Signature = attestation_key.sign(&quote.signed_bytes());
    quote.signature_data.isv_enclave_report_signature = sig.to_bytes().into();
    quote.to_bytes()
}

/// The quote's enclave and quoting enclave.
#[derive(Debug, Clone)]
pub struct QuoteParams {
    pub version: QuoteVersion,
    pub report_body: ReportBody,
    pub qe_mrsigner: [u8; 32],
    pub qe_isvprodid: u16,
    pub qe_isvsvn: u16,
    pub qe_attributes: Attributes,
    pub qe_miscselect: u32,
    /// The header's QE vendor ID (Intel's by default).
    pub qe_vendor_id: [u8; 16],
}

impl Default for QuoteParams {
    fn default() -> Self {
        let mut report_body = ReportBody {
            mrenclave: [0xe1; 32],
            mrsigner: [0x51; 32],
            attributes: Attributes {
                flags: AttributesFlags::INIT | AttributesFlags::MODE64BIT,
                xfrm: 0xe7,
            },
            ..ReportBody::default()
        };
        report_body.reportdata[..6].copy_from_slice(b"coffer");
        QuoteParams {
            version: QuoteVersion::V3,
            report_body,
            qe_mrsigner: QE_MRSIGNER,
            qe_isvprodid: 1,
            qe_isvsvn: 8,
            qe_attributes: Attributes {
                flags: AttributesFlags::INIT | AttributesFlags::PROVISIONKEY,
                xfrm: 0xe7,
            },
            qe_miscselect: 0,
            qe_vendor_id: INTEL_QE_VENDOR_ID,
        }
    }
}

/// One TCB Info level.
pub type TcbLevelParams = formats::TcbLevelInfo;

/// One QE Identity level.
pub type QeLevelParams = formats::QeLevelInfo;

/// What the collateral says.
#[derive(Debug, Clone)]
pub struct CollateralParams {
    pub issue_date: OffsetDateTime,
    pub next_update: OffsetDateTime,
    pub crl_this_update: OffsetDateTime,
    pub crl_next_update: OffsetDateTime,
    pub tcb_info_version: u32,
    pub tcb_levels: Vec<TcbLevelParams>,
    pub qe_levels: Vec<QeLevelParams>,
    /// Defaults to the deployment's.
    pub fmspc: Option<[u8; 6]>,
    pub pce_id: Option<[u8; 2]>,
    pub qe_mrsigner: [u8; 32],
    pub qe_isvprodid: u16,
    pub revoke_pck_leaf: bool,
    pub revoke_pck_ca: bool,
    pub revoke_tcb_signer: bool,
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for CollateralParams {
    /// Levels shaped like Intel's for FMSPC 00906EA10000: the default deployment's TCB
    /// (components 11,11,2,2,255,1,12,0..., PCESVN 13) is SWHardeningNeeded with one advisory;
    /// the default QE (ISVSVN 8) is UpToDate.
    fn default() -> Self {
        let c = |head: [u8; 7]| {
            let mut a = [0u8; 16];
            a[..7].copy_from_slice(&head);
            a
        };
        CollateralParams {
            issue_date: at(TEST_NOW - 14 * 86_400),
            next_update: at(TEST_NOW + 16 * 86_400),
            crl_this_update: at(TEST_NOW - 14 * 86_400),
            crl_next_update: at(TEST_NOW + 16 * 86_400),
            tcb_info_version: 3,
            tcb_levels: vec![
                TcbLevelParams {
                    components: c([11, 11, 2, 2, 255, 1, 12]),
                    pcesvn: 13,
                    status: TcbStatus::SWHardeningNeeded,
                    advisory_ids: ids(&["INTEL-SA-00615"]),
                },
                TcbLevelParams {
                    components: c([11, 11, 2, 2, 255, 1, 0]),
                    pcesvn: 13,
                    status: TcbStatus::ConfigurationAndSWHardeningNeeded,
                    advisory_ids: ids(&["INTEL-SA-00289", "INTEL-SA-00615"]),
                },
                TcbLevelParams {
                    components: c([10, 10, 2, 2, 255, 1, 12]),
                    pcesvn: 13,
                    status: TcbStatus::OutOfDate,
                    advisory_ids: ids(&["INTEL-SA-00828", "INTEL-SA-00615"]),
                },
                TcbLevelParams {
                    components: c([10, 10, 2, 2, 255, 1, 0]),
                    pcesvn: 13,
                    status: TcbStatus::OutOfDateConfigurationNeeded,
                    advisory_ids: ids(&["INTEL-SA-00289", "INTEL-SA-00828"]),
                },
                TcbLevelParams {
                    components: c([5, 5, 2, 2, 255, 1, 0]),
                    pcesvn: 5,
                    status: TcbStatus::Revoked,
                    advisory_ids: ids(&["INTEL-SA-00233"]),
                },
            ],
            qe_levels: vec![
                QeLevelParams {
                    isvsvn: 8,
                    status: TcbStatus::UpToDate,
                    advisory_ids: Vec::new(),
                },
                QeLevelParams {
                    isvsvn: 6,
                    status: TcbStatus::OutOfDate,
                    advisory_ids: ids(&["INTEL-SA-00615"]),
                },
                QeLevelParams {
                    isvsvn: 2,
                    status: TcbStatus::OutOfDate,
                    advisory_ids: ids(&["INTEL-SA-00219", "INTEL-SA-00615"]),
                },
                QeLevelParams {
                    isvsvn: 1,
                    status: TcbStatus::Revoked,
                    advisory_ids: ids(&["INTEL-SA-00202"]),
                },
            ],
            fmspc: None,
            pce_id: None,
            qe_mrsigner: QE_MRSIGNER,
            qe_isvprodid: 1,
            revoke_pck_leaf: false,
            revoke_pck_ca: false,
            revoke_tcb_signer: false,
        }
    }
}
