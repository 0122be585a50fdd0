#!/usr/bin/env bash
# Cost of auth and the rate limit on cached predictions, release build, in one run: auth
# off; an API key checked (rate limit off); key + rate limit kept in process (no Redis);
# key + rate limit shared through Redis (one script call per request). Scenarios alternate
# for ROUNDS rounds and the median of each is reported, as this machine is noisy.
#
#   benches/auth.sh [--write]      (--write appends the results to BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
PORT="${PORT:-18188}"
PREFIX="bullpen_bench:$$:"
write=false
[ "${1:-}" = "--write" ] && write=true

source benches/common.sh

config_with_key

predict_bodies > "$work/bodies.lua"
cycling_post_lua "$work/bodies.lua" "$work/predict.lua" "Bearer $key"

scenarios=(off key local redis)
declare -A results
for round in $(seq "$ROUNDS"); do
  for scenario in "${scenarios[@]}"; do
    case $scenario in
      off) line=$(measure "$work/predict.lua" BULLPEN__REDIS__KEY_PREFIX="$PREFIX") ;;
      key) line=$(CONFIG_DIR=$work/config measure "$work/predict.lua" BULLPEN__RATE_LIMIT__ENABLED=false) ;;
      local) line=$(CONFIG_DIR=$work/config measure "$work/predict.lua") ;;
      redis) line=$(CONFIG_DIR=$work/config measure "$work/predict.lua" BULLPEN__REDIS__ENABLED=true BULLPEN__REDIS__KEY_PREFIX="$PREFIX") ;;
    esac
    echo "round $round $scenario: $line" >&2
    results[$scenario]+="$line"$'\n'
  done
done
redis-cli -h 127.0.0.1 --scan --pattern "${PREFIX}*" | xargs -r redis-cli -h 127.0.0.1 unlink > /dev/null

off_rps=$(median 1 "${results[off]}")
table=""
for scenario in "${scenarios[@]}"; do
  rps=$(median 1 "${results[$scenario]}")
  ratio=$(awk -v a="$rps" -v b="$off_rps" 'BEGIN { printf "%.2f", a / b }')
  table+="| $scenario | $rps | $ratio | $(median 2 "${results[$scenario]}") | $(median 3 "${results[$scenario]}") |"$'\n'
done
printf '%s' "$table"

if $write; then
  {
    echo
    echo "## Auth and rate limit, $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD))"
    echo
    echo "\`benches/auth.sh --write\`: release build, cached predict over every 2024 game, wrk -t2 -c64 -d${DURATION}s after a 3 s warm-up, scenarios alternating for $ROUNDS rounds; medians. $(nproc) cores, $(uname -m)."
    echo "off: auth off. key: an API key checked on each request (rate limit off). local: key + GCRA in process. redis: key + GCRA in Redis (one script call per request)."
    echo
    echo "| scenario | req/s | vs off | p50 ms | p99 ms |"
    echo "|---|---|---|---|---|"
    printf '%s' "$table"
  } >> BENCHMARKS.md
fi
