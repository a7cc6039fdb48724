//! Signed test enclaves: one production configuration to vary, one signing date, the statically
//! built enclaves of the workspace read once per test process, and bundles written where a daemon
//! finds them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use coffer_abi::SigstructDate;
use coffer_sign::{Bundle, EnclaveConfig, SigningKey};

/// The date every test SIGSTRUCT carries, so that measurements and signatures repeat.
pub fn date() -> SigstructDate {
    SigstructDate::from_ymd(2026, 1, 1).expect("a valid date")
}

/// A production configuration for tests to vary with struct update syntax
/// (`EnclaveConfig { debug: true, ..config() }`): 1 MiB of heap, 256 KiB stacks, two threads,
/// a 64 KiB call buffer.
pub fn config() -> EnclaveConfig {
    EnclaveConfig {
        isv_prod_id: 1,
        isv_svn: 1,
        heap_size: 1 << 20,
        stack_size: 256 << 10,
        tcs_count: 2,
        debug: false,
        isv_family_id: None,
        isv_ext_prod_id: None,
        max_call_size: 64 << 10,
    }
}

/// A configuration file of the workspace, such as `examples/hello/enclave.toml`.
pub fn workspace_config(relative: &str) -> EnclaveConfig {
    let path = crate::workspace_dir().join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    EnclaveConfig::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Signs `image` with `key` and `config`, dated [`date`].
pub fn sign(key: &SigningKey, config: &EnclaveConfig, image: impl Into<Arc<[u8]>>) -> Bundle {
    Bundle::sign(key, config, image, date()).unwrap_or_else(|e| panic!("signing: {e}"))
}

/// Writes `bundle` as `dir/name` and returns the path.
pub fn write_bundle(dir: &Path, name: &str, bundle: &Bundle) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bundle.to_bytes())
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

/// The enclave package `package` (or, as `package/example`, an example of it) built statically
/// as `coffer build` builds it, read once per test process.
pub fn static_image(package: &str) -> Arc<[u8]> {
    static IMAGES: OnceLock<Mutex<HashMap<String, Arc<[u8]>>>> = OnceLock::new();
    let images = IMAGES.get_or_init(Mutex::default);
    if let Some(image) = images.lock().expect("image cache").get(package) {
        return image.clone();
    }
    let path = match package.split_once('/') {
        Some((package, example)) => crate::build_static_example(package, example),
        None => crate::build_static_enclave(package),
    };
    let image: Arc<[u8]> = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .into();
    images
        .lock()
        .expect("image cache")
        .insert(package.to_owned(), image.clone());
    image
}
