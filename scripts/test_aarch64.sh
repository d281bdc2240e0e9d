#!/usr/bin/env bash
# The vector index on aarch64 (Jetson Thor) without a Thor: cross-builds akidb-index for
# aarch64-unknown-linux-gnu (Debian's cross gcc) and runs its tests under qemu-user, where the
# NEON kernels are compared with the scalar reference (and every finite half float decoded
# exactly). Installs the two Debian packages and the rustup target when missing (as root);
# called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -q gcc-aarch64-linux-gnu qemu-user >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && apt-get install -y -q gcc-aarch64-linux-gnu qemu-user >/dev/null; }
  else
    echo "aarch64 tests need the Debian packages gcc-aarch64-linux-gnu and qemu-user" >&2
    exit 1
  fi
fi
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu ||
  rustup target add aarch64-unknown-linux-gnu
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
cargo clippy -p akidb-index --target aarch64-unknown-linux-gnu --all-targets --quiet -- -D warnings
cargo test -p akidb-index --target aarch64-unknown-linux-gnu --lib --tests 2>&1
