#!/usr/bin/env bash
# Hybrid search against LanceDB on the labelled multi-day fleet log (examples/hybrid_eval.rs):
# AkiDB ingests the corpus with and without its full-text index (alternating), scores the
# questions in every mode (the default vector side, which scans exactly at this size, and the
# graph at the collection's ef), times queries per mode; then, in
# alternating rounds, LanceDB (same stored vectors, its full-text index and RRF reranker) and
# AkiDB again time hybrid queries. Usage: PY=<python with lancedb> bash scripts/bench_hybrid.sh
# [ROUNDS] [LINES_PER_DAY]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
ROUNDS=${1:-3}
LINES=${2:-5000}
PY=${PY:-python3}
OUT=target/bench-hybrid
rm -rf "$OUT" && mkdir -p "$OUT"
cargo build -q --release --example hybrid_eval
EVAL="./target/release/examples/hybrid_eval --lines-per-day $LINES --db $OUT/eval.akidb"
$EVAL --ingest-rounds 2 --latency-rounds 1 --export "$OUT/export" | tee "$OUT/akidb.txt"
echo "== AkiDB, graph vector side (ef 64)"
$EVAL --ingest-rounds 0 --latency-rounds 0 --ef 64 | tee "$OUT/akidb-graph.txt"
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r: LanceDB"
  $PY scripts/peers/lancedb_hybrid.py "$OUT/export" models/all-MiniLM-L6-v2 --rounds 1 \
    2>"$OUT/lancedb-$r.err" | tee "$OUT/lancedb-$r.txt"
  echo "== round $r: AkiDB"
  $EVAL --ingest-rounds 0 --latency-rounds 1 2>&1 | grep -E "latency|p95" | tee "$OUT/akidb-lat-$r.txt"
done
