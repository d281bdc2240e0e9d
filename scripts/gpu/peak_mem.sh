#!/usr/bin/env bash
# Runs a command while sampling the GPU's memory.used (nvidia-smi, every 100 ms); prints the
# command's output, then `peak_mib N idle_mib M` (M: before the command started).
# Usage: bash scripts/gpu/peak_mem.sh CMD [ARGS...]
set -u
q() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -n 1; }
idle=$(q); f=$(mktemp); echo 0 > "$f"
( while :; do m=$(q); [ "$m" -gt "$(cat "$f")" ] && echo "$m" > "$f"; sleep 0.1; done ) &
sampler=$!
"$@"; rc=$?
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
echo "peak_mib $(cat "$f") idle_mib $idle"; rm -f "$f"
exit $rc
