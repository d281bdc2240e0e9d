#!/usr/bin/env bash
# End-to-end text bench, AkiDB vs Chroma in alternating rounds on the same corpus (issue 5;
# docs/benchmarks.md). Usage: bash scripts/bench_e2e.sh [ROUNDS] [N]
# Peer: pip install chromadb (it brings onnxruntime, tokenizers, numpy); PY=python that has it.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}; n=${2:-100000}; PY=${PY:-python3}
corpus=bench-data/fleet-100k.txt; model=models/all-MiniLM-L6-v2
bash scripts/setup.sh >/dev/null
source scripts/env.sh
cargo build --release --example e2e_bench >/dev/null 2>&1
mkdir -p bench-data
if [ ! -f "$corpus" ]; then
  target/release/examples/e2e_bench --model-dir "$model" --corpus "$corpus" --n 10 --write-corpus >/dev/null
fi
for r in $(seq 1 "$rounds"); do
  echo "== round $r akidb"
  target/release/examples/e2e_bench --model-dir "$model" --corpus "$corpus" --n "$n"
  echo "== round $r chroma"
  "$PY" ../shared/bench/chroma_peer.py text "$model/model.onnx" "$model/tokenizer.json" "$corpus" "$n"
done
