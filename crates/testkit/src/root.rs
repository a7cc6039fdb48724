//! The rule for tests that need root: as root they run; otherwise they are skipped with a
//! printed reason, except under CI (`CI=true`), which runs as root, where a skip would hide a
//! failure.

/// Whether this process runs as root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether root-only test `test` can run: true as root; false, printing why it is skipped,
/// otherwise. Fails the test instead under `CI=true`.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "{test} needs root, and CI runs as root"
    );
    eprintln!(
        "skipping {test}: it needs root (switching uid, reading or tracing another uid's process)"
    );
    false
}
