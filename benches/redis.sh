#!/usr/bin/env bash
# Shared-tier benchmark of a release build, in one run: predict over every 2024 game with
# in-process (L1) hits; with L1 holding nothing so every answer is a Redis (L2) hit; and
# with Redis unreachable (breaker open, L1 and computation only).
#
#   benches/redis.sh [--write]      (--write appends the results to BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-15}"
PORT="${PORT:-18187}"
PREFIX="bullpen_bench:$$:"
write=false
[ "${1:-}" = "--write" ] && write=true

source benches/common.sh

predict_bodies > "$work/bodies.lua"
cycling_post_lua "$work/bodies.lua" "$work/predict.lua"

run() { # $1: redis url, $2: in-process prediction entries; prints "req/s p50 p99"
  BULLPEN__SERVER__PORT=$PORT BULLPEN__REDIS__ENABLED=true BULLPEN__REDIS__URL=$1 \
    BULLPEN__REDIS__KEY_PREFIX=$PREFIX BULLPEN__CACHE__PREDICTIONS_MAX_ENTRIES=$2 \
    BULLPEN__TELEMETRY__LEVEL=warn $bin serve > "$work/server.log" 2>&1 &
  local server=$!
  until curl -sf "http://127.0.0.1:$PORT/ready" > /dev/null; do sleep 0.05; done
  # Warm: every 2024 game computed once, in L1 and in Redis.
  wrk -t2 -c64 -d3s -s "$work/predict.lua" "http://127.0.0.1:$PORT/api/v1/predict" > /dev/null
  wrk -t2 -c64 -d"${DURATION}s" --latency -s "$work/predict.lua" "http://127.0.0.1:$PORT/api/v1/predict" > "$work/wrk.txt"
  curl -s "http://127.0.0.1:$PORT/ready" > "$work/ready.json"
  kill -TERM $server; wait $server || true
  grep -q "Non-2xx" "$work/wrk.txt" && { cat "$work/wrk.txt" >&2; exit 1; }
  wrk_summary "$work/wrk.txt"
}

read -r l1_rps l1_p50 l1_p99 <<< "$(run redis://127.0.0.1:6379 50000)"
read -r l2_rps l2_p50 l2_p99 <<< "$(run redis://127.0.0.1:6379 0)"
l2_hits=$(python3 -c "import json; print(json.load(open('$work/ready.json'))['shared_cache']['hits'])")
read -r down_rps down_p50 down_p99 <<< "$(run redis://127.0.0.1:1 50000)"
breaker=$(python3 -c "import json; print(json.load(open('$work/ready.json'))['shared_cache']['breaker'])")
redis-cli -h 127.0.0.1 --scan --pattern "${PREFIX}*" | xargs -r redis-cli -h 127.0.0.1 unlink > /dev/null

echo "L1 hits: $l1_rps req/s (p50 $l1_p50, p99 $l1_p99 ms)"
echo "L2 hits: $l2_rps req/s (p50 $l2_p50, p99 $l2_p99 ms; $l2_hits Redis hits)"
echo "Redis down: $down_rps req/s (p50 $down_p50, p99 $down_p99 ms; breaker $breaker)"

if $write; then
  {
    echo
    echo "## Shared cache (Redis), $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD))"
    echo
    echo "\`benches/redis.sh --write\`: release build, Redis 7 on the same machine, wrk -t2 -c64 -d${DURATION}s over every 2024 game, after a 3 s warm-up."
    echo
    echo "| scenario | req/s | p50 ms | p99 ms |"
    echo "|---|---|---|---|"
    echo "| in-process (L1) hits | $l1_rps | $l1_p50 | $l1_p99 |"
    echo "| L1 holding nothing: Redis (L2) hits (${l2_hits} in the run) | $l2_rps | $l2_p50 | $l2_p99 |"
    echo "| Redis unreachable (breaker ${breaker}) | $down_rps | $down_p50 | $down_p99 |"
  } >> BENCHMARKS.md
fi
