#!/usr/bin/env bash
# The whole test suite, from a fresh clone: set-up (idempotent), then every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
cargo test --workspace --all-features --no-fail-fast 2>&1
