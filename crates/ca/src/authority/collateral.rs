//! Signing collateral: the TCB levels the CA has certified, TCB Info, QE Identity and the CRLs.

use std::path::Path;
use std::time::SystemTime;

use coffer_dcap::Collateral;
use rcgen::{Issuer, KeyPair};
use time::OffsetDateTime;

use super::{
    Authority, CaError, REVOKED_DIR, RevokedRecord, SignedCollateral, from_unix, pem_cert, unix,
};
use crate::files::{self, PUBLIC};
use crate::formats::{self, QeIdentityInfo, QeLevelInfo, TcbInfo, TcbLevelInfo};
use crate::tcb;

impl Authority {
    fn crl(
        &self,
        issuer: &Issuer<'static, KeyPair>,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
        revoked: &[RevokedRecord],
    ) -> Result<Vec<u8>, CaError> {
        let revoked = revoked
            .iter()
            .map(|r| {
                Ok(formats::Revoked {
                    serial: &r.serial,
                    at: from_unix(r.revoked)?,
                })
            })
            .collect::<Result<Vec<_>, CaError>>()?;
        let number = u64::try_from(this_update.unix_timestamp()).unwrap_or(0);
        formats::crl(issuer, this_update, next_update, number, &revoked).map_err(|source| {
            CaError::Certificate {
                what: "CRL",
                source,
            }
        })
    }

    /// The TCB levels: one per combination of hardening facts this CA certified, plus the
    /// level with every channel closed (`UpToDate`), most closed channels first so that a
    /// platform matches its own combination.
    pub fn tcb_levels(&self) -> Result<Vec<TcbLevelInfo>, CaError> {
        let mut levels: Vec<TcbLevelInfo> = vec![TcbLevelInfo {
            components: tcb::all_closed(),
            pcesvn: self.config.pcesvn,
            status: coffer_dcap::TcbStatus::UpToDate,
            advisory_ids: Vec::new(),
        }];
        for r in self.issued()? {
            let status = tcb::dcap_status(r.level);
            match levels
                .iter_mut()
                .find(|l| l.components == r.tcb_components && l.pcesvn == r.pcesvn)
            {
                // The same facts always give the same level; keep the worse if they ever differ.
                Some(l) => {
                    if status_rank(status) > status_rank(l.status) {
                        l.status = status;
                    }
                }
                None => levels.push(TcbLevelInfo {
                    components: r.tcb_components,
                    pcesvn: r.pcesvn,
                    status,
                    advisory_ids: tcb::open_advisories(&r.tcb_components),
                }),
            }
        }
        levels.sort_by(|a, b| {
            let closed = |l: &TcbLevelInfo| l.components.iter().filter(|s| **s > 0).count();
            closed(b)
                .cmp(&closed(a))
                .then(b.pcesvn.cmp(&a.pcesvn))
                .then(b.components.cmp(&a.components))
        });
        Ok(levels)
    }

    /// Signed collateral, issued at `now` and valid for `valid_days`.
    pub fn collateral(
        &self,
        now: SystemTime,
        valid_days: u32,
    ) -> Result<SignedCollateral, CaError> {
        let issue = unix(now)?;
        let next = issue + time::Duration::days(i64::from(valid_days));
        let tcb_date = from_unix(self.config.created)?;
        let eval = u32::try_from(issue.unix_timestamp() / 86_400).unwrap_or(0);
        let levels = self.tcb_levels()?;
        let tcb_info = TcbInfo {
            version: 3,
            issue_date: issue,
            next_update: next,
            fmspc: self.config.fmspc,
            pce_id: self.config.pce_id,
            tcb_evaluation_data_number: eval,
            tcb_date,
            levels: &levels,
        }
        .to_json();
        let qe_identity = QeIdentityInfo {
            issue_date: issue,
            next_update: next,
            tcb_evaluation_data_number: eval,
            tcb_date,
            identity: &self.config.qe,
            levels: &[QeLevelInfo {
                isvsvn: self.config.qe.isvsvn,
                status: coffer_dcap::TcbStatus::UpToDate,
                advisory_ids: Vec::new(),
            }],
        }
        .to_json();
        let tcb_info_signature = formats::sign(&self.tcb_signing_key, &tcb_info);
        let qe_identity_signature = formats::sign(&self.tcb_signing_key, &qe_identity);
        let revoked: Vec<RevokedRecord> = self.records(REVOKED_DIR)?;
        let signer_chain = pem_cert(&self.tcb_signing) + &pem_cert(&self.root);
        let tcb_info_body = formats::tcb_info_body(&tcb_info, &tcb_info_signature);
        let qe_identity_body = formats::qe_identity_body(&qe_identity, &qe_identity_signature);
        Ok(SignedCollateral {
            collateral: Collateral {
                pck_crl_issuer_chain: pem_cert(&self.pck_ca) + &pem_cert(&self.root),
                root_ca_crl: self.crl(&self.root_issuer, issue, next, &[])?,
                pck_crl: self.crl(&self.pck_ca_issuer, issue, next, &revoked)?,
                tcb_info_issuer_chain: signer_chain.clone(),
                tcb_info,
                tcb_info_signature,
                qe_identity_issuer_chain: signer_chain,
                qe_identity,
                qe_identity_signature,
            },
            tcb_info_body,
            qe_identity_body,
        })
    }

    /// Writes [`Authority::collateral`] into `out` (created when missing; earlier collateral
    /// is replaced): `collateral.json` (dcap-qvl's `QuoteCollateralV3`, what `coffer quote
    /// verify --collateral` reads), and Intel's PCS forms: `tcb_info.json`,
    /// `qe_identity.json`, `tcb_signing_chain.pem`, `root_ca.crl`, `pck_ca.crl` (DER),
    /// `pck_crl_issuer_chain.pem`.
    pub fn publish_collateral(
        &self,
        out: &Path,
        now: SystemTime,
        valid_days: u32,
    ) -> Result<SignedCollateral, CaError> {
        let c = self.collateral(now, valid_days)?;
        files::create_dir(out)?;
        let w = |name: &str, bytes: &[u8]| files::write(&out.join(name), bytes, PUBLIC, true);
        w("collateral.json", c.collateral.to_json().as_bytes())?;
        w("tcb_info.json", c.tcb_info_body.as_bytes())?;
        w("qe_identity.json", c.qe_identity_body.as_bytes())?;
        w(
            "tcb_signing_chain.pem",
            c.collateral.tcb_info_issuer_chain.as_bytes(),
        )?;
        w(
            "pck_crl_issuer_chain.pem",
            c.collateral.pck_crl_issuer_chain.as_bytes(),
        )?;
        w("root_ca.crl", &c.collateral.root_ca_crl)?;
        w("pck_ca.crl", &c.collateral.pck_crl)?;
        Ok(c)
    }
}
fn status_rank(s: coffer_dcap::TcbStatus) -> u8 {
    use coffer_dcap::TcbStatus::*;
    match s {
        UpToDate => 0,
        SWHardeningNeeded => 1,
        ConfigurationNeeded => 2,
        ConfigurationAndSWHardeningNeeded => 3,
        OutOfDate => 4,
        OutOfDateConfigurationNeeded => 5,
        Revoked => 6,
    }
}
