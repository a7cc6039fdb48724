//! `coffer quote inspect FILE [--json]` and
//! `coffer quote verify FILE [--root CERT.pem] [--collateral FILE.json] [--at TIME] [--json]`

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coffer_abi::quote::{MAX_QUOTE_SIZE, Quote};
use coffer_abi::{Attributes, Codec, DecodeError, ReportBody};
use coffer_dcap::{
    Collateral, CollateralError, MAX_COLLATERAL_SIZE, QuoteVerificationError, RootTrust,
    VerifiedQuote, VerifyOptions,
};
use serde_json::json;

use crate::util::{self, IoError, hex64};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show the fields of a DCAP quote (nothing is verified).
    Inspect {
        file: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Verify a DCAP quote: quote signature, QE report binding, QE report signature, PCK chain
    /// to Intel's SGX Root CA key (or --root); with --collateral also revocation, QE identity
    /// and TCB level.
    Verify {
        file: PathBuf,
        /// A root CA certificate (PEM or DER) the PCK chain must end at instead of Intel's SGX
        /// Root CA key (a Coffer deployment's root).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Intel's collateral for the platform, as the JSON of dcap-qvl's QuoteCollateralV3:
        /// CRLs, TCB Info, QE Identity. Prints the TCB status and advisory ids.
        #[arg(long)]
        collateral: Option<PathBuf>,
        /// Check certificates and collateral at this time (RFC 3339, e.g.
        /// 2026-01-01T00:00:00Z, or Unix seconds) instead of now.
        #[arg(long, value_parser = parse_time)]
        at: Option<SystemTime>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Errors of `coffer quote`.
#[derive(Debug, thiserror::Error)]
pub enum QuoteCmdError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{path} is not a quote Coffer reads: {source}")]
    Parse { path: PathBuf, source: DecodeError },
    #[error("{path}: root certificate: {source}")]
    Root {
        path: PathBuf,
        source: QuoteVerificationError,
    },
    #[error("{path}: {source}")]
    Collateral {
        path: PathBuf,
        source: CollateralError,
    },
    /// The message names the check that failed.
    #[error("{path}: verification failed: {source}")]
    Verify {
        path: PathBuf,
        source: QuoteVerificationError,
    },
}

/// Root certificates are small; anything larger is not one.
const ROOT_FILE_LIMIT: u64 = 64 * 1024;

pub fn run(c: Command) -> Result<(), QuoteCmdError> {
    match c {
        Command::Inspect { file, json } => inspect(&file, json),
        Command::Verify {
            file,
            root,
            collateral,
            at,
            json,
        } => verify(&file, root.as_deref(), collateral.as_deref(), at, json),
    }
}

/// Parses RFC 3339 (`2026-01-01T00:00:00Z`) or Unix seconds.
pub fn parse_time(s: &str) -> Result<SystemTime, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = s
            .parse()
            .map_err(|_| format!("{s:?} is too large for Unix seconds"))?;
        return UNIX_EPOCH
            .checked_add(Duration::from_secs(secs))
            .ok_or_else(|| format!("{s} Unix seconds is out of range"));
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            format!(
                "{s:?} is neither an RFC 3339 time (2026-01-01T00:00:00Z) nor Unix seconds: {e}"
            )
        })?;
    let secs = u64::try_from(t.unix_timestamp())
        .map_err(|_| format!("{s} is before 1970-01-01, which no certificate covers"))?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs))
}

fn read_quote(path: &Path) -> Result<Quote, QuoteCmdError> {
    let bytes = util::read_capped(path, MAX_QUOTE_SIZE as u64)?;
    Quote::from_bytes(&bytes).map_err(|source| QuoteCmdError::Parse {
        path: path.to_owned(),
        source,
    })
}

fn attrs(a: &Attributes) -> serde_json::Value {
    json!({"flags": hex64(a.flags.bits()), "xfrm": hex64(a.xfrm)})
}

fn body_json(b: &ReportBody) -> serde_json::Value {
    json!({
        "mrenclave": hex::encode(b.mrenclave),
        "mrsigner": hex::encode(b.mrsigner),
        "isv_prod_id": b.isvprodid,
        "isv_svn": b.isvsvn,
        "debug": b.attributes.debug(),
        "attributes": attrs(&b.attributes),
        "cpu_svn": hex::encode(b.cpusvn),
        "misc_select": format!("0x{:08x}", b.miscselect.bits()),
        "isv_family_id": hex::encode(b.isvfamilyid),
        "isv_ext_prod_id": hex::encode(b.isvextprodid),
        "config_id": hex::encode(b.configid),
        "config_svn": b.configsvn,
        "report_data": hex::encode(b.reportdata),
    })
}

/// The PCK leaf's SGX extension, unverified (to fetch collateral with), or null.
fn pck_json(q: &Quote) -> serde_json::Value {
    match coffer_dcap::unverified_pck_info(q) {
        Ok(p) => json!({
            "fmspc": hex::encode(p.extension.fmspc),
            "pce_id": hex::encode(p.extension.pce_id),
            "ca": p.ca,
            "tcb_components": hex::encode(p.extension.tcb_components),
            "pcesvn": p.extension.pcesvn,
        }),
        Err(_) => serde_json::Value::Null,
    }
}

fn inspect(path: &Path, json: bool) -> Result<(), QuoteCmdError> {
    let q = read_quote(path)?;
    let h = &q.header;
    let b = &q.report_body;
    let sd = &q.signature_data;
    let qe = q.qe_report_certification_data();
    let cert = q.certification_data();
    let total = q.to_bytes().len();
    let sig_len = q.signature_data_bytes().len();
    if json {
        let mut v = body_json(b);
        let extra = json!({
            "version": h.version.0,
            "att_key_type": h.attestation_key_type.0,
            "att_key_type_name": h.attestation_key_type.name(),
            "tee_type": h.tee_type.0,
            "qe_svn": h.qe_svn,
            "pce_svn": h.pce_svn,
            "qe_vendor_id": hex::encode(h.qe_vendor_id),
            "user_data": hex::encode(h.user_data),
            "cert_data_type": cert.cert_type().0,
            "cert_data_size": cert.body_bytes().len(),
            "qe_auth_data_size": qe.qe_auth_data.as_bytes().len(),
            "signature_data_size": sig_len,
            "size": total,
            "attestation_key": hex::encode(sd.ecdsa_attestation_key),
            "qe_report": body_json(&qe.qe_report),
            "pck": pck_json(&q),
        });
        if let (Some(obj), Some(more)) = (v.as_object_mut(), extra.as_object()) {
            obj.extend(more.clone());
        }
        util::print_json(&v);
    } else {
        println!("quote {} ({total} bytes)", path.display());
        println!("  version          {}", h.version.0);
        println!(
            "  att_key_type     {} ({})",
            h.attestation_key_type.0,
            h.attestation_key_type.name().unwrap_or("unknown")
        );
        println!("  qe_svn           {}", h.qe_svn);
        println!("  pce_svn          {}", h.pce_svn);
        println!("  qe_vendor_id     {}", hex::encode(h.qe_vendor_id));
        println!("  mrenclave        {}", hex::encode(b.mrenclave));
        println!("  mrsigner         {}", hex::encode(b.mrsigner));
        println!("  isv_prod_id      {}", b.isvprodid);
        println!("  isv_svn          {}", b.isvsvn);
        println!("  debug            {}", b.attributes.debug());
        println!(
            "  attributes       flags {} xfrm {}",
            hex64(b.attributes.flags.bits()),
            hex64(b.attributes.xfrm)
        );
        println!("  report_data      {}", hex::encode(b.reportdata));
        println!(
            "  cert_data_type   {} ({} bytes)",
            cert.cert_type().0,
            cert.body_bytes().len()
        );
        println!("  qe mrsigner      {}", hex::encode(qe.qe_report.mrsigner));
        match coffer_dcap::unverified_pck_info(&q) {
            Ok(p) => {
                println!("  pck fmspc        {}", hex::encode(p.extension.fmspc));
                println!("  pck ca           {}", p.ca);
            }
            Err(e) => println!("  pck              unreadable: {e}"),
        }
    }
    Ok(())
}

fn verify(
    path: &Path,
    root: Option<&Path>,
    collateral: Option<&Path>,
    at: Option<SystemTime>,
    json: bool,
) -> Result<(), QuoteCmdError> {
    let q = read_quote(path)?;
    let now = at.unwrap_or_else(SystemTime::now);
    let mut opts = match root {
        Some(root_path) => {
            let pem = util::read_capped(root_path, ROOT_FILE_LIMIT)?;
            let root = coffer_dcap::parse_root_certificate(&pem).map_err(|source| {
                QuoteCmdError::Root {
                    path: root_path.to_owned(),
                    source,
                }
            })?;
            VerifyOptions::pinned(root, now)
        }
        None => VerifyOptions::new(now),
    };
    if let Some(c) = collateral {
        let bytes = util::read_capped(c, MAX_COLLATERAL_SIZE as u64)?;
        let parsed = Collateral::from_json(&bytes).map_err(|source| QuoteCmdError::Collateral {
            path: c.to_owned(),
            source,
        })?;
        opts = opts.with_collateral(parsed);
    }
    let v = coffer_dcap::verify(&q, &opts).map_err(|source| QuoteCmdError::Verify {
        path: path.to_owned(),
        source,
    })?;
    if json {
        util::print_json(&verified_json(&v));
        return Ok(());
    }
    let mrenclave = hex::encode(v.report_body().mrenclave);
    let anchor = match v.root_trust() {
        RootTrust::IntelRootKey => "Intel's SGX Root CA key",
        RootTrust::Pinned => "the pinned root",
        // The CLI always pins a root.
        RootTrust::NotPinned => "its own root (NOT pinned)",
    };
    let checked = if v.tcb().is_some() {
        "quote signature, QE report binding, QE report signature, PCK chain (not revoked), QE \
         identity and TCB level"
    } else {
        "quote signature, QE report binding, QE report signature and PCK chain"
    };
    println!("quote verified: {checked} to {anchor} all pass (MRENCLAVE {mrenclave})");
    match v.tcb() {
        Some(tcb) => {
            println!("TCB status: {}", tcb.status);
            println!(
                "advisory ids: {}",
                if tcb.advisory_ids.is_empty() {
                    "none".to_owned()
                } else {
                    tcb.advisory_ids.join(", ")
                }
            );
        }
        None => eprintln!(
            "warning: no --collateral given: revocation, the QE identity and the TCB level were \
             not checked"
        ),
    }
    Ok(())
}

fn verified_json(v: &VerifiedQuote) -> serde_json::Value {
    let b = v.report_body();
    let root = match v.root_trust() {
        RootTrust::IntelRootKey => "intel-sgx-root-key",
        RootTrust::Pinned => "pinned",
        RootTrust::NotPinned => "not-pinned",
    };
    let tcb = v.tcb().map(|t| {
        json!({
            "status": t.status.as_str(),
            "advisory_ids": t.advisory_ids,
            "platform_status": t.platform.status.as_str(),
            "platform_tcb_date": t.platform.tcb_date,
            "qe_status": t.qe.status.as_str(),
            "qe_tcb_date": t.qe.tcb_date,
            "fmspc": hex::encode(t.pck.fmspc),
            "pce_id": hex::encode(t.pck.pce_id),
            "tcb_components": hex::encode(t.pck.tcb_components),
            "pcesvn": t.pck.pcesvn,
            "tcb_evaluation_data_number": t.tcb_evaluation_data_number,
            "collateral_next_update": t.collateral_next_update,
        })
    });
    json!({
        "verified": true,
        "root": root,
        "mrenclave": hex::encode(b.mrenclave),
        "mrsigner": hex::encode(b.mrsigner),
        "isv_prod_id": b.isvprodid,
        "isv_svn": b.isvsvn,
        "debug": b.attributes.debug(),
        "report_data": hex::encode(b.reportdata),
        "qe_svn": v.header().qe_svn,
        "pce_svn": v.header().pce_svn,
        "tcb": tcb,
    })
}
