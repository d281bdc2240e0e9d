#!/usr/bin/env bash
# CPU embedding bench, AkiDB vs the Python onnxruntime peer on the same ONNX file and thread
# count, in rounds whose order alternates (AkiDB first in odd rounds, the peer first in even
# ones) so that this machine's drift does not favour one side (issue 4; docs/benchmarks.md).
# Usage: bash scripts/bench_embed.sh [ROUNDS] [THREADS] | tee LOG; python3 scripts/embed_ratio.py LOG
# Peer: pip install onnxruntime tokenizers numpy; PY=python that has them (default: .venv's).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-6}; threads=${2:-2}
model=models/all-MiniLM-L6-v2; corpus=bench-data/corpus.txt
bash scripts/setup.sh >/dev/null
source scripts/env.sh
PY=${PY:-.venv/bin/python}
cargo build --release --example embed_bench >/dev/null 2>&1
mkdir -p bench-data
write=(); [ -f "$corpus" ] || write=(--write-corpus)
akidb() {
  echo "== round $1 akidb"
  target/release/examples/embed_bench --model-dir "$model" --corpus "$corpus" --threads "$threads" "${write[@]}"
  write=()
}
peer() {
  echo "== round $1 peer"
  "$PY" ../shared/bench/ort_python_peer.py "$model/model.onnx" "$model/tokenizer.json" "$corpus" "$threads"
}
[ -f "$corpus" ] || akidb 0
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then akidb "$r"; peer "$r"; else peer "$r"; akidb "$r"; fi
done
