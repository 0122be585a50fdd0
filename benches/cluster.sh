#!/usr/bin/env bash
# Throughput of 1, 2 and 3 replicas behind nginx (scripts/local-cluster with
# deploy/nginx/bullpen.conf) against one replica asked directly: what the balancer costs and
# what more replicas buy on this machine.
#
#   benches/cluster.sh [--write]      (--write appends the results to BENCHMARKS.md)
#
# Each round starts a cluster of 1, then 2, then 3 replicas (sharing a Redis of the
# cluster's own prefix); on the 1-replica cluster wrk also asks the replica directly. Every
# measurement: wrk -t2 -c64, POST /api/v1/predict cycling over every 2024 game, cache warm
# (3 s), DURATION s measured. ROUNDS rounds; medians, and each row's ratio to the direct
# replica of its round (median of those).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
PORT="${PORT:-18288}"
write=false
[ "${1:-}" = "--write" ] && write=true

source benches/common.sh

predict_bodies > "$work/bodies.lua"
cycling_post_lua "$work/bodies.lua" "$work/predict.lua"
cluster="$work/cluster"
trap 'scripts/local-cluster --dir "$cluster" down > /dev/null 2>&1 || true; rm -rf "$work"' EXIT

# Prints "req/s p50_ms p99_ms" of wrk against $1 (a base URL), after a 3 s warm-up.
wrk_at() {
  wrk -t2 -c64 -d3s -s "$work/predict.lua" "$1/api/v1/predict" > /dev/null
  wrk_run "$1/api/v1/predict" "$work/predict.lua"
}

declare -A rows
for round in $(seq "$ROUNDS"); do
  for replicas in 1 2 3; do
    scripts/local-cluster --dir "$cluster" up --bin "$bin" --replicas "$replicas" --port "$PORT" \
      --set telemetry.level=warn > /dev/null
    if [ "$replicas" = 1 ]; then
      direct=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['replicas'][0]['port'])" "$cluster/cluster.json")
      rows[direct]+="$(wrk_at "http://127.0.0.1:$direct")"$'\n'
      direct_rps=$(printf '%s' "${rows[direct]}" | tail -1 | cut -d' ' -f1)
    fi
    result=$(wrk_at "http://127.0.0.1:$PORT")
    rows[nginx$replicas]+="$result"$'\n'
    rows[ratio$replicas]+="$(awk -v a="${result%% *}" -v b="$direct_rps" 'BEGIN { printf "%.3f", a / b }')"$'\n'
    scripts/local-cluster --dir "$cluster" down > /dev/null
    echo "round $round: $replicas replica(s) behind nginx $result (direct $direct_rps req/s)"
  done
done

table() {
  echo "| setup | req/s | p50 ms | p99 ms | vs one replica direct |"
  echo "|---|---|---|---|---|"
  echo "| one replica, direct | $(median 1 "${rows[direct]}") | $(median 2 "${rows[direct]}") | $(median 3 "${rows[direct]}") | 1.00 |"
  for replicas in 1 2 3; do
    echo "| $replicas replica(s) behind nginx | $(median 1 "${rows[nginx$replicas]}") | $(median 2 "${rows[nginx$replicas]}") | $(median 3 "${rows[nginx$replicas]}") | $(median 1 "${rows[ratio$replicas]}") |"
  done
}
table

if $write; then
  {
    echo
    echo "## Replicas behind nginx, $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD))"
    echo
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/ {print $2}') GiB;"
    echo "release replicas (scripts/local-cluster, deploy/nginx/bullpen.conf, nginx $(nginx -v 2>&1 | cut -d/ -f2), workers auto),"
    echo "wrk -t2 -c64 POST /api/v1/predict over every 2024 game, cache warm; wrk, nginx and every replica share"
    echo "the same cores. $ROUNDS rounds of ${DURATION} s, medians; \`benches/cluster.sh --write\`."
    echo
    table
  } >> BENCHMARKS.md
fi
