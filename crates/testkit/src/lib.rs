//! # coffer-testkit: what Coffer's tests share
//!
//! Test support only (`publish = false`), used as a dev-dependency:
//!
//! | module | gives |
//! |---|---|
//! | [`build`] | static enclave builds (as `coffer build` makes them) and workspace binaries, in `target/enclave-tests`, once per test process |
//! | [`vectors`] | the public test vectors in `../shared/vectors`, and their signing key (feature `sign`) |
//! | [`root`] | the rule for root-only tests: skip with a reason when not root, never when `CI=true` |
//! | [`scan`] | a root process's scan of another process's memory through `/proc/PID/mem` |
//! | [`ptrace`] | a debugger attaching (`PTRACE_SEIZE`), and reaping the threads it traced |
//! | [`root_attack`] | root's run-time channels: a brief ptrace attach that writes, a forced `/proc/PID/mem` write, `pidfd_getfd`, a process's mappings |
//! | [`process`] | child processes with timeouts that are killed when a test fails |
//! | [`enclave`] | signed test enclaves: a configuration to vary, one signing date, static images read once, bundles written to disk (feature `sign`) |
//! | [`elf`] | where an ELF file keeps its code, and minimal static ELF files the layout accepts |
//! | [`rng`] | reproducible pseudo-random test data |
//! | [`postgres`] | the PostgreSQL test database's URL: skip without it, never when `CI=true` |
//! | [`daemon`] | the platform daemon in-process on a temporary socket (feature `daemon`) |
//!
//! `coffer-boundary`'s and `coffer-enclave`'s tests use the kit without its default features
//! (`daemon`, which brings `sign`): the kit must not depend on the crate under test, and
//! examples (coffer-enclave's static test enclaves) are built with the dev-dependencies.

#![deny(unsafe_code)]

pub mod build;
#[cfg(feature = "daemon")]
pub mod daemon;
pub mod elf;
#[cfg(feature = "sign")]
pub mod enclave;
pub mod postgres;
pub mod process;
#[allow(unsafe_code)]
pub mod ptrace;
pub mod rng;
pub mod root;
#[allow(unsafe_code)]
pub mod root_attack;
pub mod scan;
pub mod vectors;

pub use build::{
    build_host_binary, build_host_example, build_static_enclave, build_static_example,
    test_target_dir, workspace_dir,
};
#[cfg(feature = "daemon")]
pub use daemon::Daemon;
pub use postgres::postgres_url;
pub use process::wait_until;
pub use root::{is_root, require_root};
pub use scan::{
    MemoryScan, SecretScan, scan_for_secret, scan_process_memory, scan_process_memory_for,
};
#[cfg(feature = "sign")]
pub use vectors::vector_key;
pub use vectors::{vector, vectors_dir};

/// One mebibyte.
pub const MIB: u64 = 1 << 20;
