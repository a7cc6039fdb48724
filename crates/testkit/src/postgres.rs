//! The PostgreSQL server of the database tests: `.ci/run` starts one and exports its URL as
//! `COFFER_TEST_POSTGRES_URL`. Without it a test is skipped with a printed reason, except under
//! CI (`CI=true`), where a skip would hide a failure.

/// The environment variable naming the test database.
pub const POSTGRES_URL_VAR: &str = "COFFER_TEST_POSTGRES_URL";

/// The test database's URL for test `test`, or `None` (printing why it is skipped) when
/// `COFFER_TEST_POSTGRES_URL` is unset. Fails the test instead under `CI=true`.
pub fn postgres_url(test: &str) -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "{test} needs PostgreSQL: .ci/run starts one and sets {POSTGRES_URL_VAR}"
            );
            eprintln!("skipping {test}: {POSTGRES_URL_VAR} is not set (no PostgreSQL server)");
            None
        }
    }
}

/// The master key every test uses on the shared test database. One database remembers one
/// master key (a store refuses another), and the tests of every crate and run share it.
/// Test-only: a published constant, never a real key.
pub const POSTGRES_TEST_MASTER_KEY: [u8; 32] = *b"coffer test database master key!";
