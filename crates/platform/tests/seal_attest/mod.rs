//! Shared by `sealing.rs` and `local_attest.rs`: the `seal-attest-enclave` test enclave of
//! coffer-enclave (built statically once per test binary by coffer-testkit), signed with chosen
//! identities, its raw calls, and daemons to run it on.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use coffer_abi::{Codec, ReportBody};
use coffer_host::{EcallError, Enclave, Platform};
use coffer_platform::LaunchPolicy;
use coffer_sign::{EnclaveConfig, SigningKey};
use coffer_testkit::enclave;
pub use coffer_testkit::{Daemon, vector_key};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The call ids of `crates/enclave/examples/seal_attest_enclave.rs`.
pub mod call {
    pub const SEAL: u32 = 1;
    pub const UNSEAL: u32 = 2;
    pub const IDENTITY: u32 = 3;
    pub const TARGET_INFO: u32 = 4;
    pub const REPORT_FOR: u32 = 5;
    pub const VERIFY_REPORT: u32 = 6;
    pub const LA_INITIATE: u32 = 7;
    pub const LA_RESPOND: u32 = 8;
    pub const LA_COMPLETE_INITIATOR: u32 = 9;
    pub const LA_COMPLETE_RESPONDER: u32 = 10;
    pub const SESSION_CONFIRM: u32 = 11;
    pub const SESSION_ENCRYPT: u32 = 12;
    pub const SESSION_DECRYPT: u32 = 13;
    pub const SESSION_CLOSE: u32 = 14;
}

pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Room for a handful of 4–6 MiB enclaves at once.
pub const VM_SIZE: &str = "Standard_DC4s_v2";

/// A daemon in this process, with room for a handful of these enclaves.
pub fn daemon() -> Daemon {
    Daemon::start(VM_SIZE, LaunchPolicy::default(), TIMEOUT)
}

/// A second signer (a fresh RSA-3072 e=3 key), made once per test binary.
pub fn other_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate().unwrap())
}

/// A production configuration. The heap size is measured: enclaves with different heaps have
/// different MRENCLAVEs.
pub fn config(isv_prod_id: u16, isv_svn: u16, heap_mib: u64) -> EnclaveConfig {
    EnclaveConfig {
        isv_prod_id,
        isv_svn,
        heap_size: heap_mib << 20,
        ..coffer_testkit::enclave::config()
    }
}

/// Signs the test enclave with `key` and `config` into `dir/name`.
pub fn bundle(dir: &Path, name: &str, key: &SigningKey, config: &EnclaveConfig) -> PathBuf {
    let image = enclave::static_image("coffer-enclave/seal-attest-enclave");
    enclave::write_bundle(dir, name, &enclave::sign(key, config, image))
}

/// Creates an enclave from `bundle`.
pub fn create(platform: &Platform, bundle: &Path) -> Enclave {
    platform.create_enclave(bundle).unwrap()
}

/// A call whose arguments and result are postcard-encoded.
pub fn call<A: Serialize, R: DeserializeOwned>(
    e: &Enclave,
    id: u32,
    args: &A,
) -> Result<R, String> {
    let out = raw(e, id, &postcard::to_stdvec(args).unwrap())?;
    Ok(postcard::from_bytes(&out).unwrap())
}

/// A call on bytes; a failure inside the enclave comes back as its message.
pub fn raw(e: &Enclave, id: u32, input: &[u8]) -> Result<Vec<u8>, String> {
    match e.ecall(id, input) {
        Ok(out) => Ok(out),
        Err(EcallError::Failed(bytes)) => Err(String::from_utf8_lossy(&bytes).into_owned()),
        Err(other) => panic!("call {id}: {other}"),
    }
}

pub fn identity(e: &Enclave) -> ReportBody {
    ReportBody::from_bytes(&raw(e, call::IDENTITY, &[]).unwrap()).unwrap()
}
