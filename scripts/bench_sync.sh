#!/usr/bin/env bash
# Sync throughput (akidb-sync/examples/sync_bench.rs) into a PostgreSQL + pgvector started here
# from the pgserver wheel's binaries (scripts/setup.sh installs them) on a loopback port, in a
# temporary directory removed afterwards. Arguments go to the example (--n, --dim, --page,
# --rounds). The server runs as `nobody` when this runs as root (PostgreSQL refuses root).
# Usage: bash scripts/bench_sync.sh [--n 100000] [--dim 384] [--rounds 3]
#        EXAMPLE=fleet_sim bash scripts/bench_sync.sh [--robots 50] [--rate 2] [--seconds 30]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bin=$(ls -d .venv/lib/python3*/site-packages/pgserver/pginstall/bin 2>/dev/null | head -n 1)
[ -x "$bin/postgres" ] || { echo "PostgreSQL binaries missing: run scripts/setup.sh" >&2; exit 1; }
bin=$(realpath "$bin")
example=${EXAMPLE:-sync_bench}
cargo build --release -p akidb-sync --example "$example"
dir=$(mktemp -d); port=${PORT:-$((40000 + RANDOM % 20000))}
as_pg() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown 65534:65534 "$dir"
as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
as_pg "$bin/pg_ctl" -w -D "$dir/data" -o "-p $port -c listen_addresses=127.0.0.1 -k $dir" \
  -l "$dir/log" start >/dev/null
trap 'as_pg "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null; rm -rf "$dir"' EXIT
target/release/examples/"$example" --conninfo "host=127.0.0.1 port=$port user=postgres" "$@"
