#!/usr/bin/env bash
# PostgreSQL benchmark of a release build: the time `bullpen import` takes for the shipped
# seasons (2010-2024) into an empty database, then uncached predictions (cache disabled)
# from the PostgreSQL store against the embedded store, in the same run, driven by wrk.
#
#   benches/postgres.sh [--write]      (--write appends the results to BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-15}"
PORT="${PORT:-18185}"
DB="bullpen_bench"
URL="postgres://postgres@127.0.0.1:5432/$DB"
write=false
[ "${1:-}" = "--write" ] && write=true

source benches/common.sh

psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
started=$(date +%s%N)
BULLPEN__DATABASE__URL=$URL BULLPEN__TELEMETRY__LEVEL=warn $bin import
import_ms=$(( ($(date +%s%N) - started) / 1000000 ))
games=$(psql -tA -h 127.0.0.1 -U postgres -d $DB -c "SELECT count(*) FROM games")
echo "import 2010-2024: ${import_ms} ms for ${games} games"

predict_bodies > "$work/bodies.lua"
cycling_post_lua "$work/bodies.lua" "$work/predict.lua"

run() { # $1: store
  BULLPEN__SERVER__PORT=$PORT BULLPEN__CACHE__ENABLED=false BULLPEN__FEATURES__STORE=$1 \
    BULLPEN__DATABASE__URL=$URL BULLPEN__TELEMETRY__LEVEL=warn $bin serve > "$work/server.log" 2>&1 &
  local server=$!
  until curl -sf "http://127.0.0.1:$PORT/ready" > /dev/null; do sleep 0.05; done
  wrk -t2 -c64 -d"${DURATION}s" --latency -s "$work/predict.lua" "http://127.0.0.1:$PORT/api/v1/predict" > "$work/wrk.txt"
  kill -TERM $server; wait $server || true
  grep -q "Non-2xx" "$work/wrk.txt" && { cat "$work/wrk.txt" >&2; exit 1; }
  wrk_summary "$work/wrk.txt"
}

read -r emb_rps emb_p50 emb_p99 <<< "$(run embedded)"
read -r pg_rps pg_p50 pg_p99 <<< "$(run postgres)"
echo "uncached predict: embedded $emb_rps req/s (p50 $emb_p50, p99 $emb_p99 ms); postgres $pg_rps req/s (p50 $pg_p50, p99 $pg_p99 ms)"
psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"

if $write; then
  ratio=$(awk -v a="$pg_rps" -v b="$emb_rps" 'BEGIN { printf "%.2f", a / b }')
  {
    echo
    echo "## PostgreSQL, $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD))"
    echo
    echo "\`benches/postgres.sh --write\`: release build, PostgreSQL 15 on the same machine, wrk -t2 -c64 -d${DURATION}s."
    echo
    echo "| measurement | figure |"
    echo "|---|---|"
    echo "| \`bullpen import\`, 2010–2024 into an empty database (${games} games and their features) | ${import_ms} ms |"
    echo "| uncached predict, embedded store | ${emb_rps} req/s, p50 ${emb_p50} ms, p99 ${emb_p99} ms |"
    echo "| uncached predict, PostgreSQL store | ${pg_rps} req/s (${ratio} of embedded), p50 ${pg_p50} ms, p99 ${pg_p99} ms |"
  } >> BENCHMARKS.md
fi
