#!/usr/bin/env bash
# Capacity of one replica as deployed (docs/deploy.md): the server with 2 HTTP workers (the
# pod's CPU limit), POST /api/v1/predict cycling over every 2024 game, 64 connections, in
# two set-ups: a single box (embedded store, no auth) and production-like (features from
# PostgreSQL, Redis as L2 cache and shared rate limit, an API key on every request, the
# prediction log on), each with the in-process cache warm (a slate asked for again and
# again) and disabled (every request computes: the worst case). wrk runs closed-loop on the
# same 2 cores, with PostgreSQL and Redis, so the figures are a floor for a pod with 2 cores
# of its own. Three alternating rounds per row, medians. Prints requests per second and p95,
# and the replicas the design's 1,000 and 5,000 RPS need at 70 % of the worst row (the
# HPA's CPU target); --write appends them to BENCHMARKS.md.
#
#   benches/capacity.sh [--write]
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh

write=false
[ "${1:-}" = "--write" ] && write=true
PORT=${PORT:-18089}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}

PREFIX="bullpen_capacity:$$:"
DB="bullpen_capacity_$$"
URL="postgres://postgres@127.0.0.1:5432/$DB"
psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $DB"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"; psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"; redis-cli --scan --pattern "${PREFIX}*" | xargs -r redis-cli unlink > /dev/null' EXIT
BULLPEN__DATABASE__URL=$URL BULLPEN__TELEMETRY__LEVEL=warn $bin import > /dev/null 2>&1

config_with_key

predict_bodies > "$work/bodies.lua"
for setup in box production; do
  authorization=""
  [ $setup = production ] && authorization="Bearer $key"
  cycling_post_lua "$work/bodies.lua" "$work/$setup.lua" "$authorization"
  cat >> "$work/$setup.lua" <<'LUA'
function done(summary, latency, requests)
  io.write(string.format("P95_MS %.3f\n", latency:percentile(95) / 1000))
end
LUA
done

# One round: $1 set-up (box, production), $2 in-process cache on (true/false). Prints
# "req/s p95_ms".
round() {
  local settings=(BULLPEN__SERVER__PORT="$PORT" BULLPEN__SERVER__WORKERS=2
    BULLPEN__TELEMETRY__LEVEL=warn BULLPEN__CACHE__ENABLED="$2" BULLPEN__SERVER__DRAIN_SECS=0)
  local config=()
  if [ "$1" = production ]; then
    settings+=(BULLPEN__FEATURES__STORE=postgres BULLPEN__DATABASE__URL="$URL"
      BULLPEN__REDIS__ENABLED=true BULLPEN__REDIS__KEY_PREFIX="$PREFIX"
      BULLPEN__PREDICTION_LOG__ENABLED=true)
    config=(--config-dir "$work/config")
  fi
  env "${settings[@]}" $bin "${config[@]}" serve > "$work/server.log" 2>&1 &
  local server=$!
  until curl -sf "http://127.0.0.1:$PORT/ready" > /dev/null; do sleep 0.05; done
  # Warm: every game once (into the caches when they are on), and the connections.
  wrk -t2 -c64 -d3s -s "$work/$1.lua" "http://127.0.0.1:$PORT/api/v1/predict" > /dev/null
  wrk -t2 -c64 -d"${DURATION}s" -s "$work/$1.lua" \
    "http://127.0.0.1:$PORT/api/v1/predict" > "$work/wrk.txt"
  kill -TERM $server; wait $server || true
  if grep -q "Non-2xx\|Socket errors" "$work/wrk.txt"; then cat "$work/wrk.txt" >&2; return 1; fi
  awk '/^Requests\/sec/ { rps = $2 } /^P95_MS/ { p95 = $2 } END { printf "%.0f %.3f\n", rps, p95 }' "$work/wrk.txt"
}

scenarios=("box true" "box false" "production true" "production false")
declare -A runs
for ((r = 1; r <= ROUNDS; r++)); do
  for scenario in "${scenarios[@]}"; do
    runs[$scenario]+="$(round $scenario)"$'\n'
  done
done

rows=()
echo "set-up cache req/s p95_ms"
for scenario in "${scenarios[@]}"; do
  rps=$(median 1 "${runs[$scenario]}")
  p95=$(median 2 "${runs[$scenario]}")
  rows+=("$scenario $rps $p95")
  echo "$scenario $rps $p95"
done

# Replicas for a target rate at 70 % of a replica's worst measured rate (production-like,
# nothing cached in process: the case the HPA must still hold).
worst=$(printf '%s\n' "${rows[@]}" | awk '{ print $3 }' | sort -g | head -1)
replicas() { awk -v t="$1" -v c="$worst" 'BEGIN { n = t / (0.7 * c); printf "%d", (n == int(n)) ? n : int(n) + 1 }'; }
echo "replicas at 70 % of ${worst} req/s: 1,000 RPS -> $(replicas 1000), 5,000 RPS -> $(replicas 5000)"

if $write; then
  {
    echo
    echo "## Capacity of one replica, $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD))"
    echo
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/ {print $2}') GiB;"
    echo "server with 2 HTTP workers (the pod's CPU limit), wrk -t2 -c64 on the same cores (with"
    echo "PostgreSQL and Redis), ${DURATION} s, median of ${ROUNDS} alternating rounds; release build;"
    echo "\`benches/capacity.sh --write\`. Production-like: features from PostgreSQL, Redis L2 and"
    echo "shared rate limit, an API key per request, the prediction log on."
    echo
    echo "| set-up | in-process cache | req/s | p95 ms |"
    echo "|---|---|---|---|"
    for row in "${rows[@]}"; do
      read -r setup cache rps p95 <<< "$row"
      label=$([ "$cache" = true ] && echo "warm" || echo "disabled")
      name=$([ "$setup" = box ] && echo "single box" || echo "production-like")
      echo "| $name | $label | $rps | $p95 |"
    done
    echo
    echo "At 70 % of the worst row (${worst} req/s), the design's 1,000 RPS"
    echo "need $(replicas 1000) replica(s) and 5,000 RPS need $(replicas 5000); the HPA keeps at least 5."
  } >> BENCHMARKS.md
fi
