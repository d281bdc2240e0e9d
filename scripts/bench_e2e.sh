#!/usr/bin/env bash
# End-to-end text bench, AkiDB vs Chroma in alternating rounds on the same corpus
# (docs/benchmarks.md). Usage: bash scripts/bench_e2e.sh [ROUNDS] [N]
#   Peer: pip install chromadb (it brings onnxruntime, tokenizers, numpy); PY=python that has it.
#   The corpus repeats lines (AkiDB embeds a repeated line once per call; Chroma embeds every
#   copy): each round also runs both on N distinct lines (AkiDB's `--unique`, the lines it took
#   handed to Chroma), and AkiDB's output states the repeat rate of what it took.
#   BEFORE=path/to/an/older/e2e_bench adds a run of that binary on the same lines after AkiDB's.
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
unique=bench-data/fleet-unique-$n.txt
for r in $(seq 1 "$rounds"); do
  echo "== round $r akidb"
  target/release/examples/e2e_bench --model-dir "$model" --corpus "$corpus" --n "$n"
  if [ -n "${BEFORE:-}" ]; then
    echo "== round $r akidb-before"
    "$BEFORE" --model-dir "$model" --corpus "$corpus" --n "$n"
  fi
  echo "== round $r chroma"
  "$PY" ../shared/bench/chroma_peer.py text "$model/model.onnx" "$model/tokenizer.json" "$corpus" "$n"
  echo "== round $r akidb unique"
  target/release/examples/e2e_bench --model-dir "$model" --corpus "$corpus" --n "$n" --unique \
    --write-taken "$unique"
  echo "== round $r chroma unique"
  "$PY" ../shared/bench/chroma_peer.py text "$model/model.onnx" "$model/tokenizer.json" "$unique" "$n"
done
