//! The enclave the sealing and local-attestation tests launch through the platform daemon: one
//! raw call per operation, arguments and results postcard-encoded.
//!
//! It hands unsealed data back to the host so that the tests can check it; a real enclave keeps
//! it. Session keys never leave it: the host sees only a confirmation hash and ciphertext.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use coffer_enclave::abi::{Codec, Report, Targetinfo};
use coffer_enclave::local_attest::{Msg1, Msg2, Msg3, Session};
use coffer_enclave::{Ctx, HandlerError, SealPolicy};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// `(mrsigner_policy: bool, aad, data)` → the sealed blob.
const SEAL: u32 = 1;
/// The blob → `(plaintext, aad)`; errors carry `UnsealError`'s message.
const UNSEAL: u32 = 2;
/// → this enclave's REPORT BODY (384 bytes).
const IDENTITY: u32 = 3;
/// → this enclave's TARGETINFO (512 bytes).
const TARGET_INFO: u32 = 4;
/// TARGETINFO (512) ‖ REPORTDATA (64) → a REPORT (432) for that target.
const REPORT_FOR: u32 = 5;
/// A REPORT (432) → the verified REPORT BODY (384); errors carry the reason.
const VERIFY_REPORT: u32 = 6;
/// → `(id, Msg1)`.
const LA_INITIATE: u32 = 7;
/// `Msg1` → `(id, Msg2)`.
const LA_RESPOND: u32 = 8;
/// `(id, Msg2, expected peer MRENCLAVE or None for any)` → `Msg3`.
const LA_COMPLETE_INITIATOR: u32 = 9;
/// `(id, Msg3, expected peer MRENCLAVE or None)` → `()`.
const LA_COMPLETE_RESPONDER: u32 = 10;
/// `id` → SHA-256(session key ‖ "confirm"): equal on both sides iff the keys are.
const SESSION_CONFIRM: u32 = 11;
/// `(id, message)` → nonce (12) ‖ AES-256-GCM ciphertext under the session key.
const SESSION_ENCRYPT: u32 = 12;
/// `(id, nonce ‖ ciphertext)` → the message.
const SESSION_DECRYPT: u32 = 13;
/// `id` → `bool` (whether a session was closed).
const SESSION_CLOSE: u32 = 14;

fn args<T: DeserializeOwned>(input: &[u8]) -> Result<T, HandlerError> {
    postcard::from_bytes(input).map_err(|e| HandlerError::from_error(&e))
}

fn out<T: Serialize>(v: &T) -> Result<Vec<u8>, HandlerError> {
    postcard::to_stdvec(v).map_err(|e| HandlerError::from_error(&e))
}

fn accept(expected: Option<[u8; 32]>) -> impl FnOnce(&coffer_enclave::abi::ReportBody) -> bool {
    move |peer| expected.is_none_or(|m| m == peer.mrenclave)
}

fn cipher(s: &Session) -> Aes256Gcm {
    Aes256Gcm::new((&*s.key).into())
}

fn handle(ctx: &Ctx<'_>, call_id: u32, input: &[u8]) -> Result<Vec<u8>, HandlerError> {
    match call_id {
        SEAL => {
            let (mrsigner, aad, data): (bool, Vec<u8>, Vec<u8>) = args(input)?;
            let policy = if mrsigner {
                SealPolicy::MrSigner
            } else {
                SealPolicy::MrEnclave
            };
            ctx.seal(policy, &aad, &data)
                .map_err(|e| HandlerError::from_error(&e))
        }
        UNSEAL => {
            let u = ctx
                .unseal(input)
                .map_err(|e| HandlerError::from_error(&e))?;
            out(&(u.plaintext.to_vec(), u.aad))
        }
        IDENTITY => Ok(ctx.identity().to_bytes()),
        TARGET_INFO => Ok(ctx.target_info().to_bytes()),
        REPORT_FOR => {
            let (target, reportdata) = input.split_at_checked(512).ok_or_else(|| {
                HandlerError::failed("input: TARGETINFO (512 bytes), REPORTDATA (64)")
            })?;
            let target =
                Targetinfo::from_bytes(target).map_err(|e| HandlerError::from_error(&e))?;
            let reportdata: &[u8; 64] = reportdata
                .try_into()
                .map_err(|e| HandlerError::from_error(&e))?;
            Ok(ctx.report_for(&target, reportdata)?.to_bytes())
        }
        VERIFY_REPORT => {
            let report = Report::from_bytes(input).map_err(|e| HandlerError::from_error(&e))?;
            let body = ctx
                .verify_report(&report)
                .map_err(|e| HandlerError::from_error(&e))?;
            Ok(body.to_bytes())
        }
        LA_INITIATE => out(&ctx.attest_initiate()),
        LA_RESPOND => {
            let msg: Msg1 = args(input)?;
            out(&ctx
                .attest_respond(&msg)
                .map_err(|e| HandlerError::from_error(&e))?)
        }
        LA_COMPLETE_INITIATOR => {
            let (id, msg, expected): (u64, Msg2, Option<[u8; 32]>) = args(input)?;
            let (_, reply) = ctx
                .attest_complete_initiator(id, &msg, accept(expected))
                .map_err(|e| HandlerError::from_error(&e))?;
            out(&reply)
        }
        LA_COMPLETE_RESPONDER => {
            let (id, msg, expected): (u64, Msg3, Option<[u8; 32]>) = args(input)?;
            ctx.attest_complete_responder(id, &msg, accept(expected))
                .map_err(|e| HandlerError::from_error(&e))?;
            out(&())
        }
        SESSION_CONFIRM => {
            let id: u64 = args(input)?;
            let digest = ctx
                .with_session(id, |s| {
                    let mut h = Sha256::new();
                    h.update(&s.key[..]);
                    h.update(b"confirm");
                    <[u8; 32]>::from(h.finalize())
                })
                .map_err(|e| HandlerError::from_error(&e))?;
            Ok(digest.to_vec())
        }
        SESSION_ENCRYPT => {
            let (id, message): (u64, Vec<u8>) = args(input)?;
            let mut nonce = [0u8; 12];
            getrandom::fill(&mut nonce).map_err(|e| HandlerError::from_error(&e))?;
            let ct = ctx
                .with_session(id, |s| {
                    cipher(s).encrypt(&Nonce::from(nonce), message.as_slice())
                })
                .map_err(|e| HandlerError::from_error(&e))?
                .map_err(|_| HandlerError::failed("encryption failed"))?;
            Ok([nonce.as_slice(), &ct].concat())
        }
        SESSION_DECRYPT => {
            let (id, sealed): (u64, Vec<u8>) = args(input)?;
            let (nonce, ct) = sealed
                .split_first_chunk::<12>()
                .ok_or_else(|| HandlerError::failed("shorter than a nonce"))?;
            ctx.with_session(id, |s| cipher(s).decrypt(&Nonce::from(*nonce), ct))
                .map_err(|e| HandlerError::from_error(&e))?
                .map_err(|_| {
                    HandlerError::failed("the message does not decrypt under the session key")
                })
        }
        SESSION_CLOSE => {
            let id: u64 = args(input)?;
            out(&ctx.close_session(id))
        }
        _ => Err(HandlerError::UnknownCall),
    }
}

coffer_enclave::entry!(handle);
