//! # hello-enclave: the enclave of the `hello` example
//!
//! It implements the `Hello` interface of `hello-common`:
//! - `probe`: computes `SHA-256("coffer-probe" ‖ nonce)` inside and keeps it until the enclave
//!   ends: 1000 copies in the heap and one on the worker's stack, the secrets a memory scan of
//!   the enclave must not find (and does find in a DEBUG enclave);
//! - `try_open`: opens a file itself, which the sandbox answers by killing the enclave;
//! - `echo`: passes its text to the host's `HelloHost::echo` OCALL and returns the answer.
//!
//! Build and sign it with `coffer build -p hello-enclave --key KEY.pem --config
//! examples/hello/enclave.toml -o hello.coffer` (`enclave-debug.toml` for the DEBUG twin).

#![forbid(unsafe_code)]

use std::cell::Cell;
use std::sync::Mutex;

use coffer_enclave::Ocalls;
use hello_common::{
    HELLO_HOST_INTERFACE, HELLO_INTERFACE, Hello, HelloHostProxy, PROBE_HEAP_COPIES,
    hello_dispatch, probe_digest,
};

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

/// The enclave's state: only the way back to its host.
struct HelloEnclave {
    host: HelloHostProxy<Ocalls>,
}

impl Hello for HelloEnclave {
    fn probe(&self, nonce: Vec<u8>) {
        let digest = probe_digest(&nonce);
        STACK_COPY.with(|copy| {
            copy.set(digest);
            // Nothing in the enclave reads the copy back, so without this the compiler may
            // drop the store as dead.
            std::hint::black_box(copy);
        });
        let mut copies = HEAP_COPIES.lock().unwrap_or_else(|p| p.into_inner());
        copies.clear();
        copies.resize(PROBE_HEAP_COPIES, digest);
    }

    fn try_open(&self, path: String) -> Result<(), String> {
        // The seccomp filter kills the process here. Should the open ever return, the host
        // learns how it went: success would be a hole in the sandbox.
        match std::fs::File::open(&path) {
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn echo(&self, text: String) -> Result<String, String> {
        self.host.echo(text).map_err(|e| e.to_string())
    }
}

coffer_enclave::entry_interface!(
    HELLO_INTERFACE,
    hello_dispatch,
    HelloEnclave {
        host: HelloHostProxy::new(coffer_enclave::ocalls()),
    },
    ocalls: HELLO_HOST_INTERFACE,
);
