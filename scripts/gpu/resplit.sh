#!/usr/bin/env bash
# After ../shared/gpu/stage-ort-gpu.sh: re-splits the compressed CUDA provider library from its
# three parts (.gpu/p1..p3, 57 MiB each) into four (.gpu/q1..q4, 43 MiB each), so that each part
# plus the working tree (about 10 MB with the format fixtures) fits one device call's 64 MiB.
# On the device, move each qN/* into /root/ortgpu (one call per part); scripts/gpu/device_run.sh
# assembles the library from them.
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root/.gpu"
[ -f p1/part.00 ] || { echo "run ../shared/gpu/stage-ort-gpu.sh first" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat p1/part.00 p2/part.01 p3/part.02 > "$tmp/cuda.xz"
rm -rf p1 p2 p3 q1 q2 q3 q4; mkdir -p q1 q2 q3 q4
split -n 4 -d "$tmp/cuda.xz" "$tmp/qpart."
for i in 0 1 2 3; do mv "$tmp/qpart.0$i" "q$((i + 1))/"; done
du -sh q1 q2 q3 q4
