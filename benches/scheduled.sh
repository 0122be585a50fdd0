#!/usr/bin/env bash
# Cold scheduled games on the PostgreSQL store, as a hostile client would send them: each
# (home, away, date) asked once, so every answer computes features (benches/scheduled-client.py).
#
#   benches/scheduled.sh [--write]      (--write appends the results to BENCHMARKS.md)
#
# BEFORE_BIN=path also measures another build (e.g. the commit before a change) in the same
# run, each on a database it imported itself, alternating. The embedded store is measured
# beside them as the bar.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN="${SECONDS_PER_RUN:-10}"
PORT="${PORT:-18187}"
write=false
[ "${1:-}" = "--write" ] && write=true

source benches/common.sh

builds=("after|$bin")
[ -n "${BEFORE_BIN:-}" ] && builds=("before|$BEFORE_BIN" "${builds[@]}")
for build in "${builds[@]}"; do
  name=${build%%|*}; binary=${build#*|}
  db="bullpen_bench_scheduled_$name"
  psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
  BULLPEN__DATABASE__URL="postgres://postgres@127.0.0.1:5432/$db" BULLPEN__TELEMETRY__LEVEL=warn \
    "$binary" import > /dev/null
done

measure() { # $1: binary, $2: store, $3: database
  if curl -sf "http://127.0.0.1:$PORT/health" > /dev/null; then
    echo "port $PORT already answers: stop that server first" >&2; exit 1
  fi
  BULLPEN__SERVER__PORT=$PORT BULLPEN__SERVER__GRPC_PORT=0 BULLPEN__FEATURES__STORE=$2 \
    BULLPEN__DATABASE__URL="postgres://postgres@127.0.0.1:5432/$3" BULLPEN__TELEMETRY__LEVEL=warn \
    "$1" serve > "$work/server.log" 2>&1 &
  local server=$!
  until curl -sf "http://127.0.0.1:$PORT/ready" > /dev/null; do
    kill -0 $server 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.05
  done
  python3 benches/scheduled-client.py "$PORT" "$work/ids" "$SECONDS_PER_RUN" || { cat "$work/server.log" >&2; exit 1; }
  kill -TERM $server; wait $server || true
  sleep 1
}

rows=()
for build in "${builds[@]}"; do
  name=${build%%|*}; binary=${build#*|}
  result=$(measure "$binary" postgres "bullpen_bench_scheduled_$name")
  echo "postgres, $name: $result"
  rows+=("postgres ($name)|$result")
done
result=$(measure "$bin" embedded "bullpen_bench_scheduled_after")
echo "embedded: $result"
rows+=("embedded|$result")

table=()
for row in "${rows[@]}"; do
  table+=("$(python3 -c '
import json, sys
label, figures = sys.argv[1].split("|", 1)
f = json.loads(figures)
keys = ["cold_p50_ms", "cold_p99_ms", "clients8_rps", "clients8_p50_ms", "clients8_failed",
        "cached_meanwhile_p50_ms", "batch64_cold_ms"]
print("| " + " | ".join([label] + [str(f[key]) for key in keys]) + " |")' "$row")")
done
printf '%s\n' "${table[@]}"

if $write; then
  {
    echo
    echo "## Cold scheduled games, $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD))"
    echo
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/ {print $2}') GiB;"
    echo "release builds, cache on, each (home, away, date) asked once; 200 one at a time, then 8 clients"
    echo "for ${SECONDS_PER_RUN} s with a ninth asking cached stored games, then one batch of 64"
    echo "(\`benches/scheduled.sh --write\`${BEFORE_BIN:+, \`BEFORE_BIN\` the build before the change})."
    echo
    echo "| store (build) | cold p50 ms | cold p99 ms | 8 clients req/s | 8 clients p50 ms | 8 clients failed | cached meanwhile p50 ms | batch of 64 cold, ms |"
    echo "|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${table[@]}"
  } >> BENCHMARKS.md
fi
