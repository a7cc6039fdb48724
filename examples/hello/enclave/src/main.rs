//! # hello-enclave: the enclave of the `hello` example
//!
//! Three ECALLs (ids in `hello-common`):
//! - `PROBE`: computes `SHA-256("coffer-probe" ‖ nonce)` inside and keeps it until the enclave
//!   ends: 1000 copies in the heap and one on the worker's stack, the secrets a memory scan of
//!   the enclave must not find (and does find in a DEBUG enclave);
//! - `TRY_OPEN`: opens a file itself, which the sandbox answers by killing the enclave;
//! - `ECHO`: passes its input to the host's `ECHO` OCALL and returns the answer.
//!
//! Build and sign it with `coffer build -p hello-enclave --key KEY.pem --config
//! examples/hello/enclave.toml -o hello.coffer` (`enclave-debug.toml` for the DEBUG twin).

#![forbid(unsafe_code)]

use std::cell::Cell;
use std::sync::Mutex;

use coffer_enclave::{Ctx, EcallError};
use hello_common::{PROBE_HEAP_COPIES, ecall, ocall, probe_digest};

/// The heap copies of the last probe. The static holds only the vector's pointer and length
/// (ordinary memory); the copies themselves are in the heap, which is secret memory.
static HEAP_COPIES: Mutex<Vec<[u8; 32]>> = Mutex::new(Vec::new());

thread_local! {
    /// The stack copy of the last probe on this worker. A local variable would not outlive the
    /// ECALL (its frame is popped when the handler returns, and what is left of it is soon
    /// overwritten), so the copy lives in the worker's thread-local storage instead, which glibc
    /// places at the top of the worker's stack: the same secret stack region, kept for the
    /// worker's whole life.
    static STACK_COPY: Cell<[u8; 32]> = const { Cell::new([0; 32]) };
}

fn handle(ctx: &Ctx<'_>, call_id: u32, input: &[u8]) -> Result<Vec<u8>, EcallError> {
    match call_id {
        ecall::PROBE => {
            let digest = probe_digest(input);
            STACK_COPY.with(|copy| {
                copy.set(digest);
                // Nothing in the enclave reads the copy back, so without this the compiler
                // may drop the store as dead.
                std::hint::black_box(copy);
            });
            let mut copies = HEAP_COPIES.lock().unwrap_or_else(|p| p.into_inner());
            copies.clear();
            copies.resize(PROBE_HEAP_COPIES, digest);
            Ok(Vec::new())
        }
        ecall::TRY_OPEN => {
            let path = std::str::from_utf8(input).map_err(EcallError::failed)?;
            // The seccomp filter kills the process here. Should the open ever return, the host
            // learns how it went: success would be a hole in the sandbox.
            match std::fs::File::open(path) {
                Ok(_) => Ok(b"opened".to_vec()),
                Err(e) => Err(EcallError::failed(e)),
            }
        }
        ecall::ECHO => Ok(ctx.ocall(ocall::ECHO, input)?),
        _ => Err(EcallError::UnknownCall),
    }
}

coffer_enclave::entry!(handle);
