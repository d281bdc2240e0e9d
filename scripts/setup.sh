#!/usr/bin/env bash
# One-time, idempotent set-up of everything AkiDB needs beyond cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }
