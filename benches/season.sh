#!/usr/bin/env bash
# A season's results arriving day by day (benches/season-client.py): the 2024 regular season
# posted one day at a time to a server that started from the data through 2023, each day's
# next games cached first so the results must drop them.
#
#   benches/season.sh [--write]      (--write appends the results to BENCHMARKS.md)
#
# Measured on the embedded store (one server, its journal fsynced on every post) and on the
# PostgreSQL store with Redis and two replicas (results posted to one, the other told by
# Redis). Per day: the post (checks, journal or transaction, features of later games,
# invalidation), and the time from the post to the first correct price of the next day's
# first game on each replica.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${PORT:-18190}"
write=false
[ "${1:-}" = "--write" ] && write=true

source benches/common.sh

data="$work/data"
mkdir -p "$data"
for season in $(seq 2010 2023); do
  ln -s "$PWD/data/retrosheet/teams-$season.csv.gz" "$data/"
done
db=bullpen_bench_season
psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
BULLPEN__DATABASE__URL="postgres://postgres@127.0.0.1:5432/$db" BULLPEN__TELEMETRY__LEVEL=warn \
  "$bin" import --dir "$data" > /dev/null

servers=()
start() { # $1: port, $2: log name, then VAR=value settings
  local port=$1 log=$2; shift 2
  if curl -sf "http://127.0.0.1:$port/health" > /dev/null; then
    echo "port $port already answers: stop that server first" >&2; exit 1
  fi
  env BULLPEN__SERVER__PORT="$port" BULLPEN__SERVER__GRPC_PORT=0 BULLPEN__TELEMETRY__LEVEL=warn "$@" \
    "$bin" serve > "$work/$log.log" 2>&1 &
  local server=$!
  servers+=("$server")
  until curl -sf "http://127.0.0.1:$port/ready" > /dev/null; do
    kill -0 "$server" 2>/dev/null || { cat "$work/$log.log" >&2; exit 1; }
    sleep 0.05
  done
}
stop_all() {
  kill -TERM "${servers[@]}" 2>/dev/null || true
  wait "${servers[@]}" 2>/dev/null || true
  servers=()
}

start $((PORT + 9)) reference
reference_pid=${servers[0]}

start "$PORT" embedded BULLPEN__DATA__DIR="$data" BULLPEN__FEATURES__RESULTS_DIR="$work/journal"
embedded=$(python3 benches/season-client.py $((PORT + 9)) "$PORT")
echo "embedded: $embedded"
kill -TERM "${servers[1]}"; wait "${servers[1]}" || true

prefix="bullpen_bench_season_$$:"
postgres=(BULLPEN__FEATURES__STORE=postgres
  BULLPEN__DATABASE__URL="postgres://postgres@127.0.0.1:5432/$db"
  BULLPEN__REDIS__ENABLED=true BULLPEN__REDIS__KEY_PREFIX="$prefix")
start $((PORT + 1)) replica-a "${postgres[@]}"
start $((PORT + 2)) replica-b "${postgres[@]}"
two=$(python3 benches/season-client.py $((PORT + 9)) $((PORT + 1)) $((PORT + 2)))
echo "postgres, two replicas: $two"
stop_all
kill "$reference_pid" 2>/dev/null || true
redis-cli --scan --pattern "${prefix}*" | xargs -r redis-cli del > /dev/null
psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"

row() {
  python3 - "$1" "$2" <<'PY'
import json, sys
label, f = sys.argv[1], json.loads(sys.argv[2])
def cell(s):
    return "–" if s is None else f"{s['p50']} / {s['p95']}"
print(f"| {label} | {f['days']} | {f['results_per_day_p50']} | {cell(f['post_ms'])} | "
      f"{cell(f['first_correct_same_ms'])} | {cell(f['first_correct_other_ms'])} | "
      f"{f['cached_prices_changed']} |")
PY
}
table=("$(row "embedded (journal fsynced)" "$embedded")" "$(row "PostgreSQL + Redis, 2 replicas" "$two")")
printf '%s\n' "${table[@]}"

if $write; then
  {
    echo
    echo "## A season's results, day by day, $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD))"
    echo
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/ {print $2}') GiB;"
    echo "release build, cache on; the 2024 regular season posted one day at a time to a server started"
    echo "from 2010–2023, the next day's games cached before each post (\`benches/season.sh --write\`)."
    echo "\"First correct price\": from the start of the post until the next day's first game is"
    echo "priced as a server on the full data prices it, on the replica posted to and on the other."
    echo
    echo "| store | days | results a day (median) | post of a day, ms p50 / p95 | first correct price, same replica, ms p50 / p95 | other replica, ms p50 / p95 | next day's first price moved by the day |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${table[@]}"
  } >> BENCHMARKS.md
fi
