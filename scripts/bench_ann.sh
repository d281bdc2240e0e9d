#!/usr/bin/env bash
# HNSW bench, AkiDB vs hnswlib in alternating rounds on the same data (docs/benchmarks.md).
# Usage: bash scripts/bench_ann.sh [ROUNDS] [DATA_DIR]
#   peer: pip install hnswlib numpy; PY=python that has them
#   FILTER=0.5,0.1,0.01 adds filtered runs; BEFORE=path/to/an/older/ann_bench adds a round of that
#   binary after each AkiDB round (before/after comparisons of a change, same data, same hour).
# Data: python3 ../shared/bench/make_dataset.py 100000 1000 384 200 7 bench-data/clustered-100k
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; D=${2:-bench-data/clustered-100k}; PY=${PY:-python3}
cargo build --release --example ann_bench >/dev/null 2>&1
ann() {
  "$1" --base "$D/base.fvecs" --query "$D/query.fvecs" --groundtruth "$D/groundtruth.ivecs" \
    --metric cosine --m 16 --ef-construction 200 --ef 10,20,30,40,80,160 --k 10 --threads 1 \
    --reps 5 ${FILTER:+--filter $FILTER}
}
for r in $(seq 1 "$rounds"); do
  echo "== round $r hnswlib"
  "$PY" ../shared/bench/hnswlib_peer.py "$D" 16 200
  echo "== round $r akidb"
  ann target/release/examples/ann_bench
  if [ -n "${BEFORE:-}" ]; then
    echo "== round $r akidb-before"
    ann "$BEFORE"
  fi
done
