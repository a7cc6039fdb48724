//! The enclave the runtime's tests launch: one call per service of the runtime.
//!
//! It hands keys and reports back to the host so that the tests can check them; a real enclave
//! never returns a key.

use coffer_enclave::abi::{Codec, Keyrequest, Report, Targetinfo};
use coffer_enclave::{Ctx, HandlerError};

/// OCALL 7 with the input; returns the host's answer.
const ECHO: u32 = 1;
/// EGETKEY with the 512-byte KEYREQUEST input; returns the key.
const EGETKEY: u32 = 2;
/// EREPORT for the input's TARGETINFO (512 bytes) and REPORTDATA (64); returns the REPORT.
const EREPORT: u32 = 3;
/// Returns the identity from the boot parameters (384 bytes).
const IDENTITY: u32 = 4;
/// Fails with the input as its error bytes.
const FAIL: u32 = 5;
/// Panics.
const PANIC: u32 = 6;
/// A REPORT for the quoting enclave with the input as REPORTDATA (64), then its quote.
const QUOTE: u32 = 7;
/// Returns the interface id and whether the enclave is DEBUG (last byte).
const INFO: u32 = 8;
/// Seals the input for this enclave (MRENCLAVE policy); returns the blob.
const SEAL: u32 = 9;
/// Unseals the input; returns the plaintext. Errors carry `UnsealError`'s whole source chain.
const UNSEAL: u32 = 10;

fn handle(ctx: &Ctx<'_>, call_id: u32, input: &[u8]) -> Result<Vec<u8>, HandlerError> {
    match call_id {
        ECHO => Ok(ctx.ocall(7, input)?),
        EGETKEY => {
            let request =
                Keyrequest::from_bytes(input).map_err(|e| HandlerError::from_error(&e))?;
            Ok(ctx.egetkey(&request)?.to_vec())
        }
        EREPORT => {
            let (target, reportdata) = input.split_at_checked(512).ok_or_else(|| {
                HandlerError::failed("input: TARGETINFO (512 bytes), REPORTDATA (64)")
            })?;
            let target =
                Targetinfo::from_bytes(target).map_err(|e| HandlerError::from_error(&e))?;
            let reportdata: &[u8; 64] = reportdata
                .try_into()
                .map_err(|e| HandlerError::from_error(&e))?;
            Ok(ctx.ereport(&target, reportdata)?.to_bytes())
        }
        IDENTITY => Ok(ctx.identity().to_bytes()),
        FAIL => Err(HandlerError::Failed(input.to_vec())),
        PANIC => panic!("asked to panic"),
        QUOTE => {
            let reportdata: &[u8; 64] =
                input.try_into().map_err(|e| HandlerError::from_error(&e))?;
            let qe = ctx.qe_targetinfo()?;
            let report: Report = ctx.ereport(&qe, reportdata)?;
            Ok(ctx.quote(&report)?)
        }
        INFO => {
            let mut out = ctx.interface_id().to_vec();
            out.push(u8::from(ctx.is_debug()));
            Ok(out)
        }
        SEAL => ctx
            .seal(coffer_enclave::SealPolicy::MrEnclave, b"", input)
            .map_err(|e| HandlerError::from_error(&e)),
        UNSEAL => {
            let unsealed = ctx
                .unseal(input)
                .map_err(|e| HandlerError::from_error(&e))?;
            Ok(unsealed.plaintext.to_vec())
        }
        _ => Err(HandlerError::UnknownCall),
    }
}

coffer_enclave::entry!(handle);
