#!/usr/bin/env bash
# HTTP benchmark of a release build, driven by wrk on this machine.
#
#   benches/http.sh [--write]      (--write appends the results to BENCHMARKS.md)
#
# Starts `bullpen serve` twice on loopback (cache on, cache off) and runs, each for
# DURATION seconds at CONNECTIONS connections: GET /health (the same-run baseline), predict
# over every 2024 game with the cache warm, predict with the cache disabled, and batches of
# 100 games with the cache disabled. Prints requests/s, p50/p99 latency, the time from start
# to /ready, and each server's peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-15}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
PORT="${PORT:-18181}"
write=false
[ "${1:-}" = "--write" ] && write=true

source benches/common.sh

predict_bodies > "$work/bodies.lua"
{
  echo 'bodies = {'
  awk '{ ids[NR] = $0 } END {
    for (start = 1; start + 99 <= NR; start += 100) {
      line = "  \"{\\\"items\\\": ["
      for (i = start; i < start + 100; i++) {
        line = line (i > start ? ", " : "") "{\\\"game_id\\\": \\\"" ids[i] "\\\"}"
      }
      print line "]}\","
    }
  }' "$work/ids"
  echo '}'
} > "$work/batches.lua"
cycling_post_lua "$work/bodies.lua" "$work/predict.lua"
cycling_post_lua "$work/batches.lua" "$work/batch.lua"

start_server() { # $1: cache enabled (true|false)
  local started
  started=$(date +%s%N)
  BULLPEN__SERVER__PORT=$PORT BULLPEN__CACHE__ENABLED=$1 BULLPEN__TELEMETRY__LEVEL=warn \
    $bin serve > "$work/server.log" 2>&1 &
  server=$!
  until curl -sf "http://127.0.0.1:$PORT/ready" > /dev/null; do
    kill -0 $server 2>/dev/null || { cat "$work/server.log"; exit 1; }
    sleep 0.01
  done
  ready_ms=$(( ($(date +%s%N) - started) / 1000000 ))
}

stop_server() {
  peak_rss_mb=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' /proc/$server/status)
  kill -TERM $server
  wait $server || true
}

# Runs wrk and prints "rps p50 p99" (latencies in ms).
run_wrk() { # $1: path, $2: lua script or empty
  local args=(-t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency)
  [ -n "$2" ] && args+=(-s "$2")
  wrk "${args[@]}" "http://127.0.0.1:$PORT$1" > "$work/wrk.txt"
  grep -q "Non-2xx" "$work/wrk.txt" && { echo "non-2xx answers:" >&2; cat "$work/wrk.txt" >&2; exit 1; }
  wrk_summary "$work/wrk.txt"
}

results=()
record() { # $1: label, $2: "rps p50 p99"
  results+=("$1|$2")
  printf '%-34s %s\n' "$1" "$2"
}

echo "scenario                           req/s p50ms p99ms"
start_server true
ready_cached=$ready_ms
record "GET /health" "$(run_wrk /health '')"
run_wrk /api/v1/predict "$work/predict.lua" > /dev/null   # warm every 2024 game into the cache
record "predict, cache warm" "$(run_wrk /api/v1/predict "$work/predict.lua")"
stop_server
rss_cached=$peak_rss_mb

start_server false
ready_uncached=$ready_ms
record "predict, cache disabled" "$(run_wrk /api/v1/predict "$work/predict.lua")"
record "batch of 100, cache disabled" "$(run_wrk /api/v1/predict/batch "$work/batch.lua")"
stop_server
rss_uncached=$peak_rss_mb

echo "start to /ready: ${ready_cached} ms and ${ready_uncached} ms; peak RSS: ${rss_cached} MB (cache on), ${rss_uncached} MB (cache off)"

if $write; then
  health_rps=$(echo "${results[0]}" | cut -d'|' -f2 | cut -d' ' -f1)
  {
    echo
    echo "## HTTP, $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD))"
    echo
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/ {print $2}') GiB;"
    echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s on the same machine; release build; \`benches/http.sh --write\`."
    echo
    echo "| scenario | req/s | vs /health | p50 ms | p99 ms |"
    echo "|---|---|---|---|---|"
    for row in "${results[@]}"; do
      label=${row%%|*}; read -r rps p50 p99 <<< "${row#*|}"
      ratio=$(awk -v a="$rps" -v b="$health_rps" 'BEGIN { printf "%.2f", a / b }')
      echo "| $label | $rps | $ratio | $p50 | $p99 |"
    done
    echo
    echo "Start to \`/ready\`: ${ready_cached} ms (cache on), ${ready_uncached} ms (cache off). Peak RSS: ${rss_cached} MB (cache on, every 2024 game cached), ${rss_uncached} MB (cache off)."
  } >> BENCHMARKS.md
fi
