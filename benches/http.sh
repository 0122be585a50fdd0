#!/usr/bin/env bash
# HTTP benchmark of a release build against the HTTP ceiling, driven by wrk on this machine.
#
#   benches/http.sh [--write]      (--write appends the results to BENCHMARKS.md)
#
# The ceiling (../shared/bench/ceiling, built outside this project's target/ in
# $CEILING_TARGET) answers the predict route from a table of bullpen's own cached answers,
# byte for byte, doing the least that route can do on this stack. ROUNDS alternating rounds
# of DURATION s at CONNECTIONS connections, the same wrk script (POST every 2024 game, with
# `Authorization: Bearer peer-token`, which the ceiling checks and bullpen with auth off
# ignores): the ceiling, bullpen with the cache warm, bullpen with the cache disabled (dynamic
# batching off, then per worker and shared with BATCH_WAIT_US µs). Each round's ratio to the
# ceiling, then their medians. Also, once: GET /health, batches of 100 with the cache warm
# and disabled (predictions/s is 100 × req/s), the time from start to /ready and each
# server's peak RSS.
#
# And the distinct-body case in each round, ceiling, cache warm and cache disabled (batching
# off and per worker): a script that builds every request in Lua, a random 2024 game with
# odds that change from one request to the next (a client pricing games as their lines
# move), so no body comes twice. The cycling script's bodies repeat, and bullpen serves a
# repeated body from the bytes it kept for it (http::rendered) without parsing it; a
# distinct body is parsed, found by what it asks and gets its own market. The ceiling
# ignores the odds and answers the same bytes. This is the shape of the independent harness
# of issue 31 (wrk building each request in Lua over every 2024 game).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-15}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-64}"
CEILING_DIR="${CEILING_DIR:-../shared/bench/ceiling}"
CEILING_TARGET="${CEILING_TARGET:-/tmp/ceiling-target}"
CEILING_PORT="${CEILING_PORT:-18182}"
THREADS="${THREADS:-2}"
BATCH_WAIT_US="${BATCH_WAIT_US:-100}"
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
cycling_post_lua "$work/bodies.lua" "$work/predict.lua" "Bearer peer-token"
cycling_post_lua "$work/batches.lua" "$work/batch.lua"
{
  echo 'local ids = {'
  sed 's/.*/  "&",/' "$work/ids"
  echo '}'
  cat <<'LUA'
local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer peer-token" }
local n = 0
function init(args)
  n = math.random(1000)
end
-- American odds with a bookmaker's margin: home -120 to -169, away +100 to +109.
function request()
  n = n + 1
  local body = string.format('{"game_id": "%s", "odds": {"home": %d, "away": %d}}',
    ids[math.random(#ids)], -120 - n % 50, 100 + n % 10)
  return wrk.format("POST", "/api/v1/predict", headers, body)
end
LUA
} > "$work/distinct.lua"

[ -f "$CEILING_DIR/Cargo.toml" ] || { echo "no ceiling in $CEILING_DIR (set CEILING_DIR)" >&2; exit 1; }
cargo build --release --quiet --manifest-path "$CEILING_DIR/Cargo.toml" --target-dir "$CEILING_TARGET"

start_server() { # $1: cache enabled (true|false); then VAR=value settings
  local started
  started=$(date +%s%N)
  env BULLPEN__SERVER__PORT=$PORT BULLPEN__CACHE__ENABLED=$1 BULLPEN__TELEMETRY__LEVEL=warn "${@:2}" \
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
run_wrk() { # $1: path, $2: lua script or empty, $3: port (bullpen's by default)
  wrk_run "http://127.0.0.1:${3:-$PORT}$1" "$2"
}

results=()
record() { # $1: label, $2: "rps p50 p99"
  results+=("$1|$2")
  printf '%-34s %s\n' "$1" "$2"
}

echo "scenario                           req/s p50ms p99ms"
# bullpen's cached answers, byte for byte, for the ceiling's table: served once to warm the
# cache, then asked again (now a hit) and kept.
start_server true
ready_cached=$ready_ms
python3 - "$work/ids" "http://127.0.0.1:$PORT/api/v1/predict" "$work/table.tsv" <<'PY'
import json, sys, urllib.request
ids, url, out = open(sys.argv[1]).read().split(), sys.argv[2], open(sys.argv[3], "w")
def ask(game_id):
    request = urllib.request.Request(url, json.dumps({"game_id": game_id}).encode(),
                                     {"Content-Type": "application/json"})
    return urllib.request.urlopen(request).read().decode()
for game_id in ids:
    ask(game_id)
    answer = ask(game_id)
    assert '"cached":true' in answer, answer
    out.write(f"{game_id}\t{answer}\n")
PY
record "GET /health" "$(run_wrk /health '')"
stop_server
rss_cached=$peak_rss_mb
IDS="$work/table.tsv" PORT=$CEILING_PORT "$CEILING_TARGET/release/ceiling" > "$work/ceiling.log" 2>&1 &
ceiling=$!
until curl -s -o /dev/null "http://127.0.0.1:$CEILING_PORT/"; do
  kill -0 $ceiling 2>/dev/null || { cat "$work/ceiling.log"; exit 1; }
  sleep 0.05
done

ceiling_rounds=(); cached_rounds=(); uncached_rounds=(); cached_ratios=(); uncached_ratios=()
worker_rounds=(); shared_rounds=(); distinct_ceiling_rounds=(); distinct_rounds=(); distinct_ratios=()
distinct_uncached_rounds=(); distinct_uncached_ratios=(); distinct_worker_rounds=()
batching() { # $1: worker | shared
  echo BULLPEN__INFERENCE__BATCHING="$1" BULLPEN__INFERENCE__BATCH_WAIT_US="$BATCH_WAIT_US"
}
for round in $(seq "$ROUNDS"); do
  run_wrk /api/v1/predict "$work/predict.lua" "$CEILING_PORT" > /dev/null   # warm
  ceiling_rounds+=("$(run_wrk /api/v1/predict "$work/predict.lua" "$CEILING_PORT")")
  distinct_ceiling_rounds+=("$(run_wrk /api/v1/predict "$work/distinct.lua" "$CEILING_PORT")")
  start_server true
  run_wrk /api/v1/predict "$work/predict.lua" > /dev/null   # every 2024 game into the cache
  cached_rounds+=("$(run_wrk /api/v1/predict "$work/predict.lua")")
  distinct_rounds+=("$(run_wrk /api/v1/predict "$work/distinct.lua")")
  if [ "$round" = 1 ]; then
    record "batch of 100, cache warm" "$(run_wrk /api/v1/predict/batch "$work/batch.lua")"
  fi
  stop_server
  start_server false BULLPEN__INFERENCE__BATCH_WAIT_US=0
  uncached_rounds+=("$(run_wrk /api/v1/predict "$work/predict.lua")")
  distinct_uncached_rounds+=("$(run_wrk /api/v1/predict "$work/distinct.lua")")
  if [ "$round" = 1 ]; then
    ready_uncached=$ready_ms
    record "batch of 100, cache disabled" "$(run_wrk /api/v1/predict/batch "$work/batch.lua")"
  fi
  stop_server
  rss_uncached=$peak_rss_mb
  if [ "$round" = 1 ]; then
    # The same with the 100 rows run on the HTTP worker instead of an inference thread.
    start_server false BULLPEN__INFERENCE__BATCH_WAIT_US=0 BULLPEN__INFERENCE__INLINE_MAX_ROWS=128
    record "batch of 100, cache disabled, inline_max_rows = 128" \
      "$(run_wrk /api/v1/predict/batch "$work/batch.lua")"
    stop_server
  fi
  # shellcheck disable=SC2046 # the settings are words
  start_server false $(batching worker)
  worker_rounds+=("$(run_wrk /api/v1/predict "$work/predict.lua")")
  distinct_worker_rounds+=("$(run_wrk /api/v1/predict "$work/distinct.lua")")
  stop_server
  # shellcheck disable=SC2046
  start_server false $(batching shared)
  shared_rounds+=("$(run_wrk /api/v1/predict "$work/predict.lua")")
  stop_server
  c=${ceiling_rounds[-1]%% *}
  cached_ratios+=("$(awk -v a="${cached_rounds[-1]%% *}" -v b="$c" 'BEGIN { printf "%.3f", a / b }')")
  uncached_ratios+=("$(awk -v a="${uncached_rounds[-1]%% *}" -v b="$c" 'BEGIN { printf "%.3f", a / b }')")
  d=${distinct_ceiling_rounds[-1]%% *}
  distinct_ratios+=("$(awk -v a="${distinct_rounds[-1]%% *}" -v b="$d" 'BEGIN { printf "%.3f", a / b }')")
  distinct_uncached_ratios+=("$(awk -v a="${distinct_uncached_rounds[-1]%% *}" -v b="$d" 'BEGIN { printf "%.3f", a / b }')")
  echo "round $round: ceiling ${ceiling_rounds[-1]} | cached ${cached_rounds[-1]} (${cached_ratios[-1]}) | uncached ${uncached_rounds[-1]} (${uncached_ratios[-1]}) | batched per worker ${worker_rounds[-1]} | shared ${shared_rounds[-1]} | distinct bodies: ceiling ${distinct_ceiling_rounds[-1]}, cached ${distinct_rounds[-1]} (${distinct_ratios[-1]}), uncached ${distinct_uncached_rounds[-1]} (${distinct_uncached_ratios[-1]}), batched per worker ${distinct_worker_rounds[-1]}"
done
kill -TERM $ceiling; wait $ceiling 2>/dev/null || true

col() { median "$1" "$(printf '%s\n' "${@:2}")"; }
medians() { echo "$(col 1 "$@") $(col 2 "$@") $(col 3 "$@")"; }
record "ceiling (same answer bytes)" "$(medians "${ceiling_rounds[@]}")"
record "predict, cache warm" "$(medians "${cached_rounds[@]}")"
record "predict, cache disabled, batching off" "$(medians "${uncached_rounds[@]}")"
record "predict, cache disabled, batching per worker (${BATCH_WAIT_US} µs)" "$(medians "${worker_rounds[@]}")"
record "predict, cache disabled, batching shared (${BATCH_WAIT_US} µs)" "$(medians "${shared_rounds[@]}")"
record "ceiling, distinct bodies" "$(medians "${distinct_ceiling_rounds[@]}")"
record "predict, distinct bodies with odds, cache warm" "$(medians "${distinct_rounds[@]}")"
record "predict, distinct bodies with odds, cache disabled, batching off" "$(medians "${distinct_uncached_rounds[@]}")"
record "predict, distinct bodies with odds, cache disabled, batching per worker (${BATCH_WAIT_US} µs)" "$(medians "${distinct_worker_rounds[@]}")"
cached_ratio=$(col 1 "${cached_ratios[@]}")
uncached_ratio=$(col 1 "${uncached_ratios[@]}")
distinct_ratio=$(col 1 "${distinct_ratios[@]}")
distinct_uncached_ratio=$(col 1 "${distinct_uncached_ratios[@]}")
echo "vs the ceiling, median of per-round ratios: cached $cached_ratio (${cached_ratios[*]}), uncached $uncached_ratio (${uncached_ratios[*]}), distinct bodies cached $distinct_ratio (${distinct_ratios[*]}), uncached $distinct_uncached_ratio (${distinct_uncached_ratios[*]})"
echo "start to /ready: ${ready_cached} ms and ${ready_uncached} ms; peak RSS: ${rss_cached} MB (cache on), ${rss_uncached} MB (cache off)"

if $write; then
  ceiling_rps=$(col 1 "${ceiling_rounds[@]}")
  health_rps=$(echo "${results[0]}" | cut -d'|' -f2 | cut -d' ' -f1)
  {
    echo
    echo "## HTTP vs the ceiling, $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD))"
    echo
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/ {print $2}') GiB;"
    echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s on the same machine; release builds; the ceiling is"
    echo "\`../shared/bench/ceiling\` serving bullpen's own cached answer bytes; $ROUNDS alternating rounds"
    echo "(ceiling, cached, uncached), medians, and the median of each round's ratio; \`benches/http.sh --write\`."
    echo
    echo "| scenario | req/s | vs ceiling | vs /health | p50 ms | p99 ms |"
    echo "|---|---|---|---|---|---|"
    for row in "${results[@]}"; do
      label=${row%%|*}; read -r rps p50 p99 <<< "${row#*|}"
      case "$label" in
        "predict, cache warm") vs_ceiling=$cached_ratio ;;
        "predict, cache disabled, batching off") vs_ceiling=$uncached_ratio ;;
        "predict, distinct bodies with odds, cache warm") vs_ceiling=$distinct_ratio ;;
        "predict, distinct bodies with odds, cache disabled, batching off") vs_ceiling=$distinct_uncached_ratio ;;
        "predict, distinct bodies"*)
          vs_ceiling=$(awk -v a="$rps" -v b="$(col 1 "${distinct_ceiling_rounds[@]}")" 'BEGIN { printf "%.2f", a / b }') ;;
        "ceiling"*) vs_ceiling=1.00 ;;
        *) vs_ceiling=$(awk -v a="$rps" -v b="$ceiling_rps" 'BEGIN { printf "%.2f", a / b }') ;;
      esac
      ratio=$(awk -v a="$rps" -v b="$health_rps" 'BEGIN { printf "%.2f", a / b }')
      echo "| $label | $rps | $vs_ceiling | $ratio | $p50 | $p99 |"
    done
    echo
    echo "Per-round ratios to the ceiling: cached ${cached_ratios[*]}; uncached ${uncached_ratios[*]}; distinct bodies (to the ceiling's distinct-body round) cached ${distinct_ratios[*]}, uncached ${distinct_uncached_ratios[*]}."
    echo "Start to \`/ready\`: ${ready_cached} ms (cache on), ${ready_uncached} ms (cache off). Peak RSS: ${rss_cached} MB (cache on, every 2024 game cached), ${rss_uncached} MB (cache off)."
  } >> BENCHMARKS.md
fi
