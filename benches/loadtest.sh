#!/usr/bin/env bash
# `bullpen loadtest` against wrk on the same server and route, closed loop at the same
# concurrency, alternating rounds: a load tool is only as good as the throughput it can drive.
#
#   benches/loadtest.sh [--write]      (--write appends the results to BENCHMARKS.md)
#
# One release server (cache warm over every 2024 game); ROUNDS rounds of DURATION s each of
# `wrk -t2 -c64` and `bullpen loadtest --users 64`, both POSTing /api/v1/predict over every
# 2024 game on keep-alive connections. Prints req/s and p50/p99 of each round; the medians
# and their ratio.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
PORT="${PORT:-18211}"
write=false
[ "${1:-}" = "--write" ] && write=true

source benches/common.sh

BULLPEN__SERVER__PORT=$PORT BULLPEN__TELEMETRY__LEVEL=warn $bin serve > "$work/server.log" 2>&1 &
server=$!
until curl -sf "http://127.0.0.1:$PORT/ready" > /dev/null; do sleep 0.05; done
predict_bodies > "$work/bodies.lua"
cycling_post_lua "$work/bodies.lua" "$work/predict.lua"
wrk -t2 -c64 -d3s -s "$work/predict.lua" "http://127.0.0.1:$PORT/api/v1/predict" > /dev/null

wrk_rounds=(); loadtest_rounds=()
for _ in $(seq "$ROUNDS"); do
  wrk_rounds+=("$(wrk_run "http://127.0.0.1:$PORT/api/v1/predict" "$work/predict.lua")")
  $bin loadtest --quiet --url "http://127.0.0.1:$PORT" --users 64 --duration "${DURATION}s" \
    --games "$work/ids" --json "$work/report.json" > /dev/null
  loadtest_rounds+=("$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); l=r['latency_ms']; assert r['failed'] == 0, r['errors']; print(round(r['achieved_rps']), l['p50'], l['p99'])" "$work/report.json")")
  echo "wrk ${wrk_rounds[-1]} | loadtest ${loadtest_rounds[-1]}"
done
kill -TERM $server; wait $server || true

col() { median "$1" "$(printf '%s\n' "${@:2}")"; }
wrk_rps=$(col 1 "${wrk_rounds[@]}"); lt_rps=$(col 1 "${loadtest_rounds[@]}")
# The ratio of each round (the two tools back to back), then their median: the machine's
# drift between rounds cancels out.
ratios=()
for i in "${!wrk_rounds[@]}"; do
  ratios+=("$(awk -v a="${loadtest_rounds[$i]%% *}" -v b="${wrk_rounds[$i]%% *}" 'BEGIN { printf "%.3f", a / b }')")
done
ratio=$(col 1 "${ratios[@]}")
echo "medians: wrk $wrk_rps req/s, bullpen loadtest $lt_rps req/s; per-round ratios ${ratios[*]}, median $ratio"

if $write; then
  {
    echo
    echo "## bullpen loadtest vs wrk, $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD))"
    echo
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/ {print $2}') GiB;"
    echo "release server (cache warm), both tools on the same 2 cores, closed loop at 64 connections, POST"
    echo "/api/v1/predict over every 2024 game, $ROUNDS alternating rounds of ${DURATION} s; \`benches/loadtest.sh --write\`."
    echo
    echo "| tool | req/s (median) | p50 ms | p99 ms |"
    echo "|---|---|---|---|"
    echo "| wrk -t2 -c64 | $wrk_rps | $(col 2 "${wrk_rounds[@]}") | $(col 3 "${wrk_rounds[@]}") |"
    echo "| bullpen loadtest --users 64 | $lt_rps | $(col 2 "${loadtest_rounds[@]}") | $(col 3 "${loadtest_rounds[@]}") |"
    echo
    echo "bullpen loadtest / wrk, round by round: ${ratios[*]}; median $ratio. The latencies are not alike by"
    echo "construction: wrk's are per thread over its connections, bullpen loadtest's are each request's own,"
    echo "in an HDR histogram."
  } >> BENCHMARKS.md
fi
