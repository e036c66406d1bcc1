#!/usr/bin/env bash
# Every check and test of ztrs. This is the README's test command and what CI runs.
# Order: cheap static checks, a short fuzz smoke run of every target, doc tests, then the test
# suite last so its summary closes the output.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== fuzz smoke (every target, ${ZTRS_FUZZ_SMOKE_SECONDS:-5} s each)"
scripts/fuzz.sh "${ZTRS_FUZZ_SMOKE_SECONDS:-5}"
echo "== doc tests"
cargo test --workspace --doc
echo "== tests (cargo nextest)"
cargo nextest run --workspace --all-targets --no-fail-fast
