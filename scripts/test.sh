#!/usr/bin/env bash
# The whole test suite from a fresh clone: set-up (idempotent), format and lints, then every test
# of the workspace (unit, integration, crash, model reference and doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
# One pass over a clean tree: incremental state would only take disk.
export CARGO_INCREMENTAL=0
cargo fmt --all --check
python3 scripts/long_lines.py # what rustfmt leaves alone: strings, macro bodies, comments
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace --no-fail-fast 2>&1
# The vector-only build: without the default `onnx` feature neither ONNX Runtime nor tokenizers
# is compiled; core and the vector tests of the facade build, lint and pass without them.
cargo clippy -p akidb-core -p akidb --no-default-features --all-targets --quiet -- -D warnings
cargo test -p akidb-core --no-default-features 2>&1
cargo test -p akidb --no-default-features --lib --test api --test faults --test lifecycle 2>&1
bash scripts/test_aarch64.sh
