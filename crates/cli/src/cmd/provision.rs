//! `coffer platform provision`: certify this node with a deployment CA.
//!
//! The node's hardening facts (what `coffer platform status` reports as its TCB status) become
//! the TCB components of its PCK certificate; the certification key (`pck.key`, 0600), the chain
//! (`pck_chain.pem`: leaf, PCK CA, root) and the quoting identity (`qe_identity.json`) go into
//! the daemon's state directory.

use std::path::PathBuf;
use std::time::SystemTime;

use coffer_ca::{Authority, CaError};
use coffer_platform::HostFacts;
use serde_json::json;

use crate::util;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CA directory made by `coffer ca init`.
    #[arg(long)]
    ca: PathBuf,
    /// The platform daemon's state directory (created 0700 when missing).
    #[arg(long)]
    state_dir: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<(), CaError> {
    let ca = Authority::open(&a.ca)?;
    let status = HostFacts::probe().tcb_status();
    let p = ca.provision(&a.state_dir, &status, SystemTime::now())?;
    let serial = hex::encode(&p.record.serial);
    if a.json {
        util::print_json(&json!({
            "serial": serial,
            "tcb": {
                "level": status.level.as_str(),
                "advisories": p.record.advisories,
                "components": hex::encode(p.record.tcb_components),
                "pcesvn": p.record.pcesvn,
            },
            "pck_key": p.key_path,
            "pck_chain": p.chain_path,
            "qe_identity": p.qe_identity_path,
        }));
    } else {
        println!(
            "provisioned {}: PCK certificate {serial}, TCB {}{}",
            a.state_dir.display(),
            status.level,
            if p.record.advisories.is_empty() {
                String::new()
            } else {
                format!(" ({})", p.record.advisories.join(", "))
            }
        );
    }
    Ok(())
}
