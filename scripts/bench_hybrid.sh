#!/usr/bin/env bash
# Hybrid search against LanceDB on the labelled multi-day fleet log (examples/hybrid_eval.rs):
# AkiDB ingests the corpus with and without its full-text index (alternating), scores the
# questions in every mode (the default vector side, which scans exactly at this size, and the
# graph at the collection's ef), times queries per mode; then, in
# alternating rounds, LanceDB (same stored vectors, its full-text index and RRF reranker) and
# AkiDB again time hybrid queries. Then the tuning question set (its own incidents and
# questions: fusion parameters are chosen on it) for both, and both sets at each of
# DAYS_LARGE's sizes (default "6 12 18": 30,000, 60,000 and 90,000 lines, which text queries
# scan exactly through the graph's half-float codes; give more days to see the graph answer).
# About 45 minutes with the defaults. Usage: PY=<python with lancedb> bash
# scripts/bench_hybrid.sh [ROUNDS] [LINES_PER_DAY] [DAYS_LARGE]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
ROUNDS=${1:-3}
LINES=${2:-5000}
DAYS_LARGE=${3:-6 12 18}
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
echo "== tuning set: AkiDB, then LanceDB"
$EVAL --questions tuning --ingest-rounds 0 --latency-rounds 0 --export "$OUT/export-tuning" \
  | tee "$OUT/akidb-tuning.txt"
$PY scripts/peers/lancedb_hybrid.py "$OUT/export-tuning" models/all-MiniLM-L6-v2 --rounds 0 \
  2>"$OUT/lancedb-tuning.err" | tee "$OUT/lancedb-tuning.txt"
for days in $DAYS_LARGE; do
  for set in tuning reported; do
    echo "== $set set, $days days: AkiDB, then LanceDB"
    ./target/release/examples/hybrid_eval --questions $set --days "$days" --lines-per-day "$LINES" \
      --db "$OUT/eval-$days-days.akidb" --ingest-rounds 0 --latency-rounds 1 \
      --export "$OUT/export-$days-$set" 2>&1 | tee "$OUT/akidb-$days-$set.txt"
    $PY scripts/peers/lancedb_hybrid.py "$OUT/export-$days-$set" models/all-MiniLM-L6-v2 \
      --rounds 1 2>"$OUT/lancedb-$days-$set.err" | tee "$OUT/lancedb-$days-$set.txt"
  done
done
