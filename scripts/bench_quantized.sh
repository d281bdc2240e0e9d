#!/usr/bin/env bash
# Quantization sweep (docs/benchmarks.md, "Vectors in bounded memory"): per dimension, alternating
# rounds of the peers (hnswlib f32; USearch f16, i8, b1: each in its own process, so that its
# resident-size growth is its own) and AkiDB's settings (f16 in memory, then with the exact
# vectors on disk: f16, int8, int4, binary), one search thread, M 16, ef_construction 200; then
# scripts/quant_ratio.py: memory per vector, recall reached, QPS at recall 0.95 and its ratio to
# hnswlib's of the same round.
# Usage: PY=python-with-numpy-hnswlib-usearch bash scripts/bench_quantized.sh [ROUNDS] [N] [DIMS...]
#   defaults: 2 rounds, 50000 vectors, dimensions 1024 2560 (Qwen3 0.6B / 4B widths)
#   PEERS="hnswlib f16" and SETTINGS="f16 int4:disk" run a subset (default: all of them)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}; n=${2:-50000}; shift $(( $# < 2 ? $# : 2 )) || true
dims=${*:-1024 2560}
PY=${PY:-python3}
cargo build --release --example ann_bench >/dev/null 2>&1
spill=$(mktemp -d); trap 'rm -rf "$spill"' EXIT
for d in $dims; do
  data="bench-data/clustered-$((n / 1000))k-$d"
  [ -f "$data/groundtruth.ivecs" ] || "$PY" ../shared/bench/make_dataset.py "$n" 200 "$d" 200 7 "$data"
  log="target/bench-quantized-$d.log"
  : > "$log"
  for r in $(seq 1 "$rounds"); do
    for peer in ${PEERS:-hnswlib f16 i8 b1}; do
      echo "== round $r peer $peer" >> "$log"
      "$PY" scripts/peers/quantized_peers.py "$data" 16 200 "$peer" >> "$log"
    done
    for setting in ${SETTINGS:-f16 f16:disk int8:disk int4:disk binary:16:disk}; do
      q=${setting%:disk}; disk=()
      [ "$q" != "$setting" ] && disk=(--vectors-on-disk "$spill")
      echo "== round $r akidb $setting" >> "$log"
      target/release/examples/ann_bench --base "$data/base.fvecs" --query "$data/query.fvecs" \
        --groundtruth "$data/groundtruth.ivecs" --metric cosine --m 16 --ef-construction 200 \
        --ef 10,20,40,60,80,100,160,320 --k 10 --threads 1 --reps 3 --quantization "$q" \
        "${disk[@]}" >> "$log"
    done
  done
  echo "== dimension $d ($n vectors, $rounds rounds; log $log)"
  python3 scripts/quant_ratio.py "$log"
done
