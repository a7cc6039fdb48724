#!/usr/bin/env bash
# Runs every fuzz target for SECONDS seconds (default 180), seeded with the shared vectors.
# Needs cargo-fuzz (`cargo install cargo-fuzz`); works on stable through RUSTC_BOOTSTRAP.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-180}"
vectors=../../shared/vectors
mkdir -p corpus/quote corpus/sigstruct corpus/sgxs corpus/structures corpus/platform_request corpus/bundle corpus/enclave_config corpus/attest_policy
mkdir -p corpus/quote corpus/sigstruct corpus/sgxs corpus/structures corpus/platform_request corpus/bundle corpus/enclave_config corpus/dcap_verify
cp -n "$vectors"/dcap/*.bin corpus/quote/ 2>/dev/null || true
cp -n "$vectors"/dcap/* corpus/dcap_verify/ 2>/dev/null || true
cp -n "$vectors"/sgx/*.sig "$vectors"/sgx/sig1.sigstruct.bin corpus/sigstruct/ 2>/dev/null || true
cp -n "$vectors"/sgx/test_enclave.sgxs corpus/sgxs/ 2>/dev/null || true
cp -n ../crates/attest-policy/tests/fixtures/*.policy corpus/attest_policy/ 2>/dev/null || true
for t in $(RUSTC_BOOTSTRAP=1 cargo fuzz list); do
  echo "== $t for ${secs}s"
  RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=4096 2>&1 | grep -E "^#[0-9]+.*(DONE|pulse)|ERROR|panicked|SUMMARY|Done" | tail -3
done
