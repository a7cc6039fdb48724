//! # coffer-bench: Coffer's benchmarks
//!
//! `cargo bench -p coffer-bench` runs three targets, each printing markdown tables whose figures
//! are ratios to baselines measured in the same run (results and machine in
//! `docs/benchmarks.md`):
//!
//! | target | measures |
//! |---|---|
//! | `roundtrip` | the channel alone between two processes: ECALL round trips next to the futex and spin baselines |
//! | `platform` | issue 3: enclave creation (4 MiB and 64 MiB heaps), MRENCLAVE throughput next to raw SHA-256, raw ECALL round trip through a real enclave; baseline the futex round trip between two processes |
//! | `sdk` | issue 4: typed ECALL and OCALL round trips (baseline: futex round trip), switchless ECALL (baseline: spin round trip), 1 MiB argument in and result out (baseline: memcpy), sealing 1 MiB (baseline: AES-GCM in the enclave process) |
//!
//! `platform` and `sdk` run the platform daemon in-process and so need root; without it they print why and
//! measure nothing. They build and sign `bench-enclave` (`examples/bench`) themselves.
//!
//! The library holds what the benchmarks share: the cross-process ping-pong baselines and the
//! statistics ([`baseline`]).

#![forbid(unsafe_code)]

pub mod baseline;

pub use baseline::{Stats, Wait, micros, peer_request, pingpong, serve_baseline, spawn_peer};
