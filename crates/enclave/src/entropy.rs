//! Randomness inside the sandbox.
//!
//! The `getrandom` crates 0.3 and 0.4 (behind coffer-seal's key ids, RustCrypto's key
//! generation, `rand`, `uuid`, …) look `getrandom(3)` up with `dlsym`, which finds nothing in a
//! statically linked enclave, and fall back to opening `/dev/urandom` on first use. After
//! lockdown that `open` is a sandbox violation (the enclave dies of `SIGSYS`), so the runtime
//! draws once from each before the sandbox closes: each opens its descriptor then and keeps it,
//! and every later draw is a `read` on it, which the seccomp policy allows. Cargo unifies each
//! major version into one copy per build, so the enclave's own dependencies share these
//! descriptors. (`getrandom` 0.2 and std call the `getrandom` system call directly.)

/// Makes both `getrandom` versions open their source now. `Err` names the version that failed.
pub(crate) fn prepare() -> Result<(), (&'static str, String)> {
    let mut byte = [0u8; 1];
    getrandom::fill(&mut byte).map_err(|e| ("0.3", e.to_string()))?;
    getrandom_04::fill(&mut byte).map_err(|e| ("0.4", e.to_string()))?;
    Ok(())
}
