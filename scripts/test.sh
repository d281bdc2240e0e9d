#!/usr/bin/env bash
# The whole test suite from a fresh clone: set-up (idempotent), format and lints, then every test of the
# workspace (unit, integration, crash, model reference and doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace --no-fail-fast 2>&1
