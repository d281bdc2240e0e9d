#!/usr/bin/env bash
# The main job: set-up (idempotent), then semantic search over a day of robot fleet logs.
# Extra arguments go to the example, e.g.: bash scripts/demo.sh --query "lidar problems" --robot 3
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
if [ "$#" -eq 0 ]; then set -- --eval; fi
exec cargo run --release --example robot_logs -- "$@"
