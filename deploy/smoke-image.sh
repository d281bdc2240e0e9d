#!/usr/bin/env bash
# Smoke test of a built image without a container runtime: buildah runs the image's own files
# (chroot isolation, the host's network) as its user 10001 with its environment. A tiny model
# (tests/fixtures/e5-tiny) is copied to /models; `akidb serve` starts with the image's
# configuration on 127.0.0.1:8080, and curl, inside the image, checks /healthz, makes a text
# collection, adds two lines and queries them; then SIGTERM, and `akidb stats` reads the
# database the server left. Usage: bash deploy/smoke-image.sh IMAGE
set -euo pipefail
cd "$(dirname "$0")/.."
image=${1:?usage: smoke-image.sh IMAGE}
B="buildah --storage-driver vfs"
c=$($B from "$image")
trap '$B rm "$c" >/dev/null' EXIT
$B copy --chown 10001 "$c" tests/fixtures/e5-tiny /models/e5-tiny >/dev/null
$B run --isolation chroot --user 10001 --env AKIDB_KEY=smoke-key-0123456789 "$c" -- sh -ec '
  akidb --version
  akidb serve > /tmp/serve.log 2>&1 & pid=$!
  for i in $(seq 100); do curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1 && break; sleep 0.2; done
  auth="Authorization: Bearer $AKIDB_KEY"; json="Content-Type: application/json"
  api=http://127.0.0.1:8080/v1/collections
  echo "healthz: $(curl -fsS http://127.0.0.1:8080/healthz)"
  curl -fsS -X POST "$api" -H "$auth" -H "$json" -d "{\"name\": \"logs\", \"model\": \"e5-tiny\"}"; echo
  curl -fsS -X POST "$api/logs/add_texts" -H "$auth" -H "$json" -d "{\"texts\": [
    {\"id\": \"1\", \"text\": \"lidar timeout near the loading dock\"},
    {\"id\": \"2\", \"text\": \"battery temperature critical\"}]}"; echo
  curl -fsS -X POST "$api/logs/query" -H "$auth" -H "$json" \
    -d "{\"text\": \"lidar timeout\", \"k\": 1, \"mode\": \"keyword\"}"; echo
  kill -TERM $pid; wait $pid; echo "serve exited $?"
  akidb stats
  ls -ld /var/lib/akidb/db
'
