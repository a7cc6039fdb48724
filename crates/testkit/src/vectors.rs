//! The public test vectors in `../shared/vectors` (next to the repository; never copied into
//! it). A test that needs them fails with a clear message when the folder is missing.

use std::path::PathBuf;

use crate::build::workspace_dir;

/// The shared vectors folder; fails the test, saying where it was expected, when it is missing.
pub fn vectors_dir() -> PathBuf {
    let dir = workspace_dir().join("../shared/vectors");
    assert!(
        dir.join("README.md").is_file(),
        "the shared test vectors are missing: expected them in {} (../shared/vectors next to the \
         repository; see its README.md)",
        dir.display()
    );
    dir
}

/// The vector at `rel` (e.g. `sgx/sig1.key.pem`); fails the test when it is missing.
pub fn vector(rel: &str) -> PathBuf {
    let path = vectors_dir().join(rel);
    assert!(
        path.is_file(),
        "the shared test vector {} is missing",
        path.display()
    );
    path
}

/// The bytes of the vector at `rel`; fails the test when it is missing or unreadable.
pub fn read(rel: &str) -> Vec<u8> {
    let path = vector(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The text of the vector at `rel`; fails the test when it is missing or not UTF-8.
pub fn read_to_string(rel: &str) -> String {
    let path = vector(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The RSA-3072 e=3 key of the public vectors (`sgx/sig1.key.pem`).
#[cfg(feature = "sign")]
pub fn vector_key() -> coffer_sign::SigningKey {
    let pem = read_to_string("sgx/sig1.key.pem");
    coffer_sign::SigningKey::from_pem(&pem)
        .unwrap_or_else(|e| panic!("sgx/sig1.key.pem is not a signing key: {e}"))
}
