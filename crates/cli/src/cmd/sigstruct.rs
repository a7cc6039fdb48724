//! `coffer sigstruct inspect|sign`

use std::path::PathBuf;

use coffer_abi::{
    Attributes, AttributesFlags, Codec, DecodeError, FixedSize, Miscselect, Sigstruct,
    SigstructDate,
};
use coffer_sign::{SigstructBody, SigstructSignError, SigstructVerifyError};
use serde_json::json;

use crate::util::{self, IoError, hex64, parse_hash, parse_u16, parse_u32, parse_u64};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show the fields of a SIGSTRUCT file and whether its signature verifies.
    Inspect {
        file: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Sign a SIGSTRUCT for an enclave hash (MRENCLAVE).
    Sign(SignArgs),
}

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The RSA-3072, e = 3 private key (PEM).
    #[arg(long)]
    key: PathBuf,
    /// ENCLAVEHASH: the enclave's MRENCLAVE, 64 hex characters.
    #[arg(long, value_parser = parse_hash)]
    enclave_hash: [u8; 32],
    /// DATE, as YYYYMMDD.
    #[arg(long, value_parser = SigstructDate::parse)]
    date: SigstructDate,
    #[arg(long, default_value = "0", value_parser = parse_u32)]
    vendor: u32,
    #[arg(long, default_value = "0", value_parser = parse_u32)]
    swdefined: u32,
    #[arg(long, default_value = "0", value_parser = parse_u16)]
    isv_prod_id: u16,
    #[arg(long, default_value = "0", value_parser = parse_u16)]
    isv_svn: u16,
    /// ATTRIBUTES.FLAGS (default MODE64BIT).
    #[arg(long, default_value = "0x4", value_parser = parse_u64)]
    attributes: u64,
    /// ATTRIBUTEMASK.FLAGS (default: every bit but DEBUG).
    #[arg(long, default_value = "0xfffffffffffffffd", value_parser = parse_u64)]
    attribute_mask: u64,
    /// ATTRIBUTES.XFRM (default x87 and SSE).
    #[arg(long, default_value = "0x3", value_parser = parse_u64)]
    xfrm: u64,
    /// ATTRIBUTEMASK.XFRM.
    #[arg(long, default_value = "0xffffffffffffff1b", value_parser = parse_u64)]
    xfrm_mask: u64,
    #[arg(long, default_value = "0", value_parser = parse_u32)]
    misc_select: u32,
    #[arg(long, default_value = "0xffffffff", value_parser = parse_u32)]
    misc_mask: u32,
    /// Where to write the 1808-byte SIGSTRUCT.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// Replace the output file if it exists.
    #[arg(long)]
    force: bool,
}

/// Errors of `coffer sigstruct`.
#[derive(Debug, thiserror::Error)]
pub enum SigstructCmdError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{path} is not a SIGSTRUCT: {source}")]
    Parse { path: PathBuf, source: DecodeError },
    #[error("{path} is not a key: {source}")]
    Key {
        path: PathBuf,
        source: coffer_sign::KeyError,
    },
    #[error("signing failed: {0}")]
    Sign(#[from] SigstructSignError),
    #[error("{path}: {source}")]
    Verify {
        path: PathBuf,
        source: SigstructVerifyError,
    },
}

/// Key files are small; anything larger is not a key.
const KEY_FILE_LIMIT: u64 = 64 * 1024;

pub fn run(c: Command) -> Result<(), SigstructCmdError> {
    match c {
        Command::Inspect { file, json } => inspect(file, json),
        Command::Sign(a) => sign(a),
    }
}

fn inspect(path: PathBuf, json: bool) -> Result<(), SigstructCmdError> {
    let bytes = util::read_capped(&path, Sigstruct::SIZE as u64)?;
    let s = Sigstruct::from_bytes(&bytes).map_err(|source| SigstructCmdError::Parse {
        path: path.clone(),
        source,
    })?;
    let verified = coffer_sign::verify(&s);
    let mrsigner = s.mrsigner();
    let attrs = |a: &Attributes| json!({"flags": hex64(a.flags.bits()), "xfrm": hex64(a.xfrm)});
    let v = json!({
        "mrenclave": hex::encode(s.enclavehash),
        "mrsigner": hex::encode(mrsigner),
        "isv_prod_id": s.isvprodid,
        "isv_svn": s.isvsvn,
        "date": s.date.to_string(),
        "vendor": s.vendor,
        "swdefined": s.swdefined,
        "debug": s.attributes.debug(),
        "attributes": attrs(&s.attributes),
        "attribute_mask": attrs(&s.attributemask),
        "misc_select": format!("0x{:08x}", s.miscselect.bits()),
        "misc_mask": format!("0x{:08x}", s.miscmask),
        "isv_family_id": hex::encode(s.isvfamilyid),
        "isv_ext_prod_id": hex::encode(s.isvextprodid),
        "signature_valid": verified.is_ok(),
        "signature_error": verified.as_ref().err().map(|e| e.to_string()),
    });
    if json {
        util::print_json(&v);
    } else {
        println!("SIGSTRUCT {}", path.display());
        println!("  mrenclave        {}", hex::encode(s.enclavehash));
        println!("  mrsigner         {}", hex::encode(mrsigner));
        println!("  isv_prod_id      {}", s.isvprodid);
        println!("  isv_svn          {}", s.isvsvn);
        println!("  date             {}", s.date);
        println!("  vendor           {:#x}", s.vendor);
        println!("  debug            {}", s.attributes.debug());
        println!(
            "  attributes       flags {} xfrm {}",
            hex64(s.attributes.flags.bits()),
            hex64(s.attributes.xfrm)
        );
        println!(
            "  attribute_mask   flags {} xfrm {}",
            hex64(s.attributemask.flags.bits()),
            hex64(s.attributemask.xfrm)
        );
        println!(
            "  misc_select      {:#010x} (mask {:#010x})",
            s.miscselect.bits(),
            s.miscmask
        );
        match &verified {
            Ok(_) => println!("  signature        valid"),
            Err(e) => println!("  signature        INVALID: {e}"),
        }
    }
    Ok(())
}

fn sign(a: SignArgs) -> Result<(), SigstructCmdError> {
    let pem = util::read_capped(&a.key, KEY_FILE_LIMIT)?;
    let key =
        coffer_sign::SigningKey::from_pem(&String::from_utf8_lossy(&pem)).map_err(|source| {
            SigstructCmdError::Key {
                path: a.key.clone(),
                source,
            }
        })?;
    let body = SigstructBody {
        vendor: a.vendor,
        date: a.date,
        swdefined: a.swdefined,
        miscselect: Miscselect::from_bits_retain(a.misc_select),
        miscmask: a.misc_mask,
        attributes: Attributes {
            flags: AttributesFlags::from_bits_retain(a.attributes),
            xfrm: a.xfrm,
        },
        attributemask: Attributes {
            flags: AttributesFlags::from_bits_retain(a.attribute_mask),
            xfrm: a.xfrm_mask,
        },
        enclavehash: a.enclave_hash,
        isvprodid: a.isv_prod_id,
        isvsvn: a.isv_svn,
        ..SigstructBody::default()
    };
    let s = coffer_sign::sign(&key, &body)?;
    coffer_sign::verify(&s).map_err(|source| SigstructCmdError::Verify {
        path: a.output.clone(),
        source,
    })?;
    util::write_atomic(&a.output, &s.to_bytes(), 0o644, a.force)?;
    println!(
        "wrote {} (MRENCLAVE {}, MRSIGNER {})",
        a.output.display(),
        hex::encode(s.enclavehash),
        hex::encode(key.verifying_key().mrsigner())
    );
    Ok(())
}
