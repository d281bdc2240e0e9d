#!/usr/bin/env bash
# akidb-server against Chroma's server on loopback, the same 10,000 fleet-log lines and the same
# distinct queries (akidb-server/examples/load.rs; scripts/peers/chroma_server_load.py): closed
# loop at concurrency 1, 8, 32, 64, an open loop at 50 queries/s, and 90% query / 10% add at 8,
# in alternating rounds. Usage: PY=<python with chromadb> bash scripts/bench_server.sh [ROUNDS]
# [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
ROUNDS=${1:-2}
SECS=${2:-10}
PY=${PY:-python3}
OUT=target/bench-server
rm -rf "$OUT" && mkdir -p "$OUT"
cargo build -q --release -p akidb-server --bin akidb-server --example load
KEY=bench-key-$(date +%s%N)
cat > "$OUT/server.toml" <<TOML
listen = "127.0.0.1:0"
data_dir = "$PWD/$OUT/db"
[models.minilm]
dir = "$PWD/models/all-MiniLM-L6-v2"
queue = 256
[[auth.keys]]
key_env = "AKIDB_BENCH_KEY"
scope = "write"
TOML
./target/release/examples/load --write-corpus "$OUT/corpus.txt" --docs 10000
AKIDB_BENCH_KEY=$KEY ./target/release/akidb-server --config "$OUT/server.toml" > "$OUT/server.out" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q "listening on" "$OUT/server.out" && break; sleep 0.2; done
ADDR=$(sed -n 's/^listening on //p' "$OUT/server.out")
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r: akidb-server, vector queries (the peer's operation)"
  ./target/release/examples/load --url "http://$ADDR" --key "$KEY" --seconds "$SECS" \
    | tee "$OUT/akidb-$r.jsonl"
  echo "== round $r: akidb-server, hybrid queries (closed loop at 8 and 32)"
  ./target/release/examples/load --url "http://$ADDR" --key "$KEY" --seconds "$SECS" \
    --mode hybrid --levels 8,32 | grep '"closed"' | tee "$OUT/akidb-hybrid-$r.jsonl"
  echo "== round $r: Chroma server"
  $PY scripts/peers/chroma_server_load.py "$OUT/corpus.txt" models/all-MiniLM-L6-v2 \
    --seconds "$SECS" | tee "$OUT/chroma-$r.jsonl"
done
kill -TERM $SERVER && wait $SERVER
