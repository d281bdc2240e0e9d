#!/usr/bin/env bash
# Builds deploy/Dockerfile with buildah where no container registry is reachable (only Debian's
# mirror, crates.io and PyPI): the two base images it names are made locally first, and the
# image is then built by the Dockerfile unchanged.
#   localhost/debian:bookworm-slim   debootstrap (minbase) from deb.debian.org
#   localhost/rust:1-slim-bookworm   that, plus gcc and the host's stable Rust toolchain
# Usage (as root, from the repository root): bash deploy/build-offline.sh [cpu|cuda]
# Needs Debian's buildah and debootstrap; storage driver vfs and chroot isolation, so it runs in
# an unprivileged container too. Prints the image's size, then deploy/smoke-image.sh tests it.
set -euo pipefail
variant=${1:-cpu}
cd "$(dirname "$0")/.."
B="buildah --storage-driver vfs"
if ! $B inspect --type image localhost/debian:bookworm-slim >/dev/null 2>&1; then
  rootfs=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  c=$($B from scratch)
  $B copy "$c" "$rootfs" / >/dev/null
  $B config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash "$c"
  # A network that reaches the registries through a TLS proxy of its own: its CA certificates
  # (this machine's /usr/local/share/ca-certificates) join the base's trust store, and cargo and
  # pip are pointed at that store. Without such certificates this changes nothing.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    $B run --isolation chroot "$c" -- sh -c 'apt-get update -q && apt-get install -y -q \
      --no-install-recommends ca-certificates >/dev/null && rm -rf /var/lib/apt/lists/*'
    for crt in /usr/local/share/ca-certificates/*.crt; do
      $B copy "$c" "$crt" /usr/local/share/ca-certificates/ >/dev/null
    done
    $B run --isolation chroot "$c" -- update-ca-certificates >/dev/null
    bundle=/etc/ssl/certs/ca-certificates.crt
    $B config --env SSL_CERT_FILE=$bundle --env PIP_CERT=$bundle --env CARGO_HTTP_CAINFO=$bundle "$c"
  fi
  $B commit -q "$c" localhost/debian:bookworm-slim >/dev/null
  $B rm "$c" >/dev/null
  rm -rf "$rootfs"
fi
if ! $B inspect --type image localhost/rust:1-slim-bookworm >/dev/null 2>&1; then
  toolchain=$(rustup toolchain list | awk '/^stable/ {print $1; exit}')
  c=$($B from localhost/debian:bookworm-slim)
  $B run --isolation chroot "$c" -- sh -c 'apt-get update -q && apt-get install -y -q \
    --no-install-recommends gcc libc6-dev ca-certificates >/dev/null && rm -rf /var/lib/apt/lists/*'
  $B copy "$c" "$HOME/.rustup/toolchains/$toolchain" /usr/local/rust >/dev/null
  $B config --env PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env CARGO_HOME=/usr/local/cargo "$c"
  $B commit -q "$c" localhost/rust:1-slim-bookworm >/dev/null
  $B rm "$c" >/dev/null
fi
$B bud --isolation chroot --layers=false --format docker -f deploy/Dockerfile --build-arg VARIANT="$variant" \
  --build-arg BASE=localhost/debian:bookworm-slim --build-arg RUST=localhost/rust:1-slim-bookworm \
  -t "localhost/akidb:$variant" .
$B images --format '{{.Name}}:{{.Tag}} {{.Size}}' "localhost/akidb:$variant"
bash deploy/smoke-image.sh "localhost/akidb:$variant"
