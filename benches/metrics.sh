#!/usr/bin/env bash
# Cost of counting every request and prediction for /metrics: cached predict throughput with
# monitoring.request_metrics on and off, release build, alternating for ROUNDS rounds;
# medians. Then a scrape taken under load is checked with promtool.
#
#   benches/metrics.sh [--write]      (--write appends the results to BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
PORT="${PORT:-18189}"
write=false
[ "${1:-}" = "--write" ] && write=true

source benches/common.sh
command -v promtool > /dev/null || { apt-get update -qq && apt-get install -y -qq prometheus; }

predict_bodies > "$work/bodies.lua"
cycling_post_lua "$work/bodies.lua" "$work/predict.lua"

on="" off=""
for round in $(seq "$ROUNDS"); do
  line=$(measure "$work/predict.lua"); echo "round $round on: $line" >&2; on+="$line"$'\n'
  line=$(measure "$work/predict.lua" BULLPEN__MONITORING__REQUEST_METRICS=false); echo "round $round off: $line" >&2; off+="$line"$'\n'
done

# A scrape in the middle of a load run.
BULLPEN__SERVER__PORT=$PORT BULLPEN__TELEMETRY__LEVEL=warn $bin serve > "$work/server.log" 2>&1 &
server=$!
until curl -sf "http://127.0.0.1:$PORT/health" > /dev/null; do sleep 0.05; done
wrk -t2 -c64 -d6s -s "$work/predict.lua" "http://127.0.0.1:$PORT/api/v1/predict" > /dev/null &
sleep 3
curl -s "http://127.0.0.1:$PORT/metrics" > "$work/scrape.txt"
wait %2 2>/dev/null || true
kill -TERM $server; wait $server || true
promtool check metrics < "$work/scrape.txt"
series=$(grep -vc '^#' "$work/scrape.txt")

on_rps=$(median 1 "$on"); off_rps=$(median 1 "$off")
ratio=$(awk -v a="$on_rps" -v b="$off_rps" 'BEGIN { printf "%.3f", a / b }')
table="| request metrics on | $on_rps | $ratio | $(median 2 "$on") | $(median 3 "$on") |
| request metrics off | $off_rps | 1.000 | $(median 2 "$off") | $(median 3 "$off") |"
echo "$table"
echo "promtool check metrics: passed on a scrape under load ($series series)"

if $write; then
  {
    echo
    echo "## Metrics cost, $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD))"
    echo
    echo "\`benches/metrics.sh --write\`: release build, cached predict over every 2024 game, wrk -t2 -c64 -d${DURATION}s after a 3 s warm-up, on and off alternating for $ROUNDS rounds; medians. $(nproc) cores, $(uname -m). \`promtool check metrics\` passed on a scrape taken under load ($series series)."
    echo
    echo "| scenario | req/s | vs off | p50 ms | p99 ms |"
    echo "|---|---|---|---|---|"
    echo "$table"
  } >> BENCHMARKS.md
fi
