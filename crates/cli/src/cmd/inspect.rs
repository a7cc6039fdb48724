//! `coffer inspect APP.coffer [--json]`

use std::path::{Path, PathBuf};

use coffer_abi::Attributes;
use coffer_sign::bundle::{Bundle, BundleError, BundleVerifyError, MAX_BUNDLE_SIZE};
use coffer_sign::layout;
use serde_json::json;

use crate::util::{self, IoError, hex64};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The `.coffer` bundle.
    bundle: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Errors of `coffer inspect`.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{path}: {source}")]
    Bundle { path: PathBuf, source: BundleError },
}

pub fn run(a: Args) -> Result<(), InspectError> {
    inspect(&a.bundle, a.json)
}

fn inspect(path: &Path, json: bool) -> Result<(), InspectError> {
    let bytes = util::read_capped(path, MAX_BUNDLE_SIZE)?;
    let b = Bundle::from_bytes(&bytes).map_err(|source| InspectError::Bundle {
        path: path.to_owned(),
        source,
    })?;
    drop(bytes);
    let s = b.sigstruct();
    let c = b.config();
    let signature = coffer_sign::verify(s);
    let verified = b.verify();
    // One measurement: the full check's, or, when it stopped before measuring, a separate one.
    let measured: Result<[u8; 32], String> = match &verified {
        Ok(v) => Ok(v.mrenclave()),
        Err(BundleVerifyError::MeasurementMismatch { computed, .. }) => Ok(*computed),
        Err(BundleVerifyError::Layout(e)) => Err(e.to_string()),
        Err(_) => layout::measure_enclave(b.image(), c)
            .map(|m| m.mrenclave)
            .map_err(|e| e.to_string()),
    };
    let measurement_valid = measured.as_ref().is_ok_and(|m| *m == s.enclavehash);
    let epc_size = b.epc_size().ok();
    let verify_error = verified.as_ref().err().map(|e| e.to_string());
    let attrs = |a: &Attributes| json!({"flags": hex64(a.flags.bits()), "xfrm": hex64(a.xfrm)});
    if json {
        let v = json!({
            "mrenclave": hex::encode(s.enclavehash),
            "measured_mrenclave": measured.as_ref().ok().map(hex::encode),
            "mrsigner": hex::encode(s.mrsigner()),
            "isv_prod_id": s.isvprodid,
            "isv_svn": s.isvsvn,
            "debug": s.attributes.debug(),
            "date": s.date.to_string(),
            "attributes": attrs(&s.attributes),
            "attribute_mask": attrs(&s.attributemask),
            "isv_family_id": c.isv_family_id.map(hex::encode),
            "isv_ext_prod_id": c.isv_ext_prod_id.map(hex::encode),
            "heap_size": c.heap_size,
            "stack_size": c.stack_size,
            "tcs_count": c.tcs_count,
            "max_call_size": c.max_call_size,
            "epc_size": epc_size,
            "image_size": b.image().len(),
            "signature_valid": signature.is_ok(),
            "measurement_valid": measurement_valid,
            "valid": verified.is_ok(),
            "error": verify_error,
        });
        util::print_json(&v);
    } else {
        println!("bundle {}", path.display());
        println!("  mrenclave        {}", hex::encode(s.enclavehash));
        println!("  mrsigner         {}", hex::encode(s.mrsigner()));
        println!("  isv_prod_id      {}", s.isvprodid);
        println!("  isv_svn          {}", s.isvsvn);
        println!("  debug            {}", s.attributes.debug());
        println!("  date             {}", s.date);
        println!("  heap_size        {}", c.heap_size);
        println!("  stack_size       {}", c.stack_size);
        println!("  tcs_count        {}", c.tcs_count);
        println!("  max_call_size    {}", c.max_call_size);
        match epc_size {
            Some(e) => println!("  epc_size         {e}"),
            None => println!("  epc_size         unknown (the image has no layout)"),
        }
        println!("  image_size       {}", b.image().len());
        match &signature {
            Ok(_) => println!("  signature        valid"),
            Err(e) => println!("  signature        INVALID: {e}"),
        }
        match &measured {
            Ok(_) if measurement_valid => println!("  measurement      valid"),
            Ok(m) => println!(
                "  measurement      MISMATCH: image and configuration measure {}",
                hex::encode(m)
            ),
            Err(e) => println!("  measurement      INVALID: {e}"),
        }
        match &verified {
            Ok(_) => println!("  launchable       yes"),
            Err(e) => println!("  launchable       no: {e}"),
        }
    }
    Ok(())
}
