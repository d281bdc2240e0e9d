#!/usr/bin/env bash
# Width sweep of the HNSW bench (issue: the F16 default must beat hnswlib at every width): for
# each dimension, a clustered set of N vectors (../shared/bench/make_dataset.py, made once under
# bench-data/), then scripts/bench_ann.sh's alternating rounds (hnswlib, AkiDB) and the
# matched-recall ratios of scripts/ann_ratio.py.
# Usage: PY=python-with-hnswlib-and-numpy bash scripts/bench_widths.sh [ROUNDS] [N] [DIMS...]
#   defaults: 3 rounds, 50000 vectors, dimensions 128 256 384 768 1024 2560
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; n=${2:-50000}; shift $(( $# < 2 ? $# : 2 )) || true
dims=${*:-128 256 384 768 1024 2560}
PY=${PY:-python3}; export PY
for d in $dims; do
  data="bench-data/clustered-$((n / 1000))k-$d"
  [ -f "$data/groundtruth.ivecs" ] || "$PY" ../shared/bench/make_dataset.py "$n" 1000 "$d" 200 7 "$data"
  log="target/bench-widths-$d.log"
  bash scripts/bench_ann.sh "$rounds" "$data" > "$log" 2>&1
  echo "== dimension $d ($n vectors, $rounds rounds; log $log)"
  python3 scripts/ann_ratio.py "$log"
done
