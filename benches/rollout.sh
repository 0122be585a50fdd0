#!/usr/bin/env bash
# The model lifecycle under load, measured with `bullpen loadtest` on a release build.
#
#   benches/rollout.sh [--write]      (--write appends the results to BENCHMARKS.md)
#
# 1. Lifecycle: open-loop load at RATE req/s (cache off: every answer runs the model routed
#    to) for BEFORE s, then DURING s while version 2 is loaded, routed 50/50, then 100 %,
#    version 1 unloaded, version 2 reloaded from a replaced file and a SIGHUP loads version 3,
#    then AFTER s: requests, failures and p50/p99 of each phase, and the process RSS with one
#    version, with two, and after version 1 is unloaded and the load moved on.
# 2. Shadow: the same rate with and without a shadow version, ROUNDS alternating rounds of
#    ROUND s (medians of p50/p99); then closed-loop saturation with and without it, and the
#    CPU time per answer: what shadow scoring costs when there is no idle core.
set -euo pipefail
cd "$(dirname "$0")/.."

RATE="${RATE:-4000}"
BEFORE="${BEFORE:-10}"
DURING="${DURING:-22}"
AFTER="${AFTER:-10}"
ROUND="${ROUND:-10}"
ROUNDS="${ROUNDS:-3}"
PORT="${PORT:-18191}"
write=false
[ "${1:-}" = "--write" ] && write=true

source benches/common.sh

url="http://127.0.0.1:$PORT"
admin="$url/api/v1/admin/models"
models="$work/models"
add_version() { # $1: shipped version folder to copy, $2: version to call it
  mkdir -p "$models/home_win/$2"
  cp "models/home_win/$1/model.onnx" "$models/home_win/$2/"
  sed "s/\"version\": \"$1\"/\"version\": \"$2\"/" "models/home_win/$1/manifest.json" \
    > "$models/home_win/$2/manifest.json"
}
call() { # $1: method, $2: path, $3: body (optional)
  curl -sf -X "$1" -H 'content-type: application/json' ${3:+-d "$3"} "$admin$2" > /dev/null
}
rss_mb() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' /proc/$server/status; }
cpu_ticks() { awk '{ print $14 + $15 }' /proc/$server/stat; }

start_server() {
  BULLPEN__SERVER__PORT=$PORT BULLPEN__CACHE__ENABLED=false BULLPEN__TELEMETRY__LEVEL=warn \
    BULLPEN__MODELS__DIR="$models" BULLPEN__MODELS__DEFAULT=home_win@1 \
    $bin serve > "$work/server.log" 2>&1 &
  server=$!
  until curl -sf "$url/ready" > /dev/null; do
    kill -0 $server 2>/dev/null || { cat "$work/server.log"; exit 1; }
    sleep 0.05
  done
}

# Runs bullpen loadtest with the given flags over every 2024 game; prints
# "requests failed p50 p99 achieved_rps" from its JSON report.
load() {
  $bin loadtest --quiet --url "$url" --games "$work/ids" --json "$work/report.json" "$@" \
    > "$work/loadtest.txt" || true
  python3 - "$work/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency_ms"]
print(r["requests"], r["failed"], l["p50"], l["p99"], round(r["achieved_rps"]))
PY
}

# --- 1. the lifecycle under load ---------------------------------------------------------
add_version 1 1
start_server
load --rate "$RATE" --duration 3s > /dev/null   # warm
before=$(load --rate "$RATE" --duration "${BEFORE}s")
rss_one=$(rss_mb)
(
  sleep 2; add_version 2 2; call POST /home_win/versions/2/load
  sleep 2; call PUT /home_win/routing '{"weights": {"1": 50, "2": 50}}'
  sleep 2; echo "$(rss_mb)" > "$work/rss_two"
  call PUT /home_win/routing '{"weights": {"2": 100}}'
  sleep 2; call DELETE /home_win/versions/1
  sleep 3; echo "$(rss_mb)" > "$work/rss_unloaded"
  cp models/home_win/1/model.onnx "$models/home_win/2/model.onnx"; call POST /reload
  sleep 2; add_version 2 3; kill -HUP $server
) &
ops=$!
during=$(load --rate "$RATE" --duration "${DURING}s")
wait $ops
after=$(load --rate "$RATE" --duration "${AFTER}s")
rss_after=$(rss_mb)
# What a version costs in memory, and whether it comes back: eight more copies of version 1
# loaded (each with its sessions and inference thread), then unloaded, then load again.
for v in $(seq 11 18); do add_version 1 "$v"; call POST "/home_win/versions/$v/load"; done
rss_many=$(rss_mb)
for v in $(seq 11 18); do call DELETE "/home_win/versions/$v"; done
load --rate "$RATE" --duration 5s > /dev/null
rss_back=$(rss_mb)
rss_two=$(cat "$work/rss_two")
rss_unloaded=$(cat "$work/rss_unloaded")
versions=$(curl -sf "$url/api/v1/models" | python3 -c 'import json,sys; print(" ".join(m["version"] + ":" + str(m["routing_weight"]) for m in json.load(sys.stdin)["models"]))')
kill -TERM $server; wait $server || true

printf '%-8s %s\n' phase "requests failed p50_ms p99_ms rps" before "$before" during "$during" after "$after"
echo "RSS: ${rss_one} MB (version 1), ${rss_two} MB (1 and 2 loaded), ${rss_unloaded} MB (1 unloaded, 3 s of load on 2), ${rss_after} MB at the end; loaded at the end: $versions"
echo "RSS with 8 more versions loaded: ${rss_many} MB; once they are unloaded and 5 s of load ran: ${rss_back} MB"

# --- 2. shadow scoring -------------------------------------------------------------------
rm -rf "$models"; add_version 1 1; add_version 2 2
start_server
load --rate "$RATE" --duration 3s > /dev/null
plain=(); shadowed=()
for _ in $(seq "$ROUNDS"); do
  call PUT /home_win/routing '{"weights": {"1": 100}}'
  plain+=("$(load --rate "$RATE" --duration "${ROUND}s")")
  call PUT /home_win/routing '{"weights": {"1": 100}, "shadow": ["2"]}'
  shadowed+=("$(load --rate "$RATE" --duration "${ROUND}s")")
done
saturate() { # prints "rps cpu_ms_per_answer"
  local ticks=$(cpu_ticks) hz
  hz=$(getconf CLK_TCK)
  read -r requests _ _ _ rps <<< "$(load --users 64 --duration "${ROUND}s")"
  awk -v t="$(( $(cpu_ticks) - ticks ))" -v hz="$hz" -v n="$requests" -v rps="$rps" \
    'BEGIN { printf "%s %.4f\n", rps, t / hz * 1000 / n }'
}
call PUT /home_win/routing '{"weights": {"1": 100}}'
sat_plain=$(saturate)
call PUT /home_win/routing '{"weights": {"1": 100}, "shadow": ["2"]}'
sat_shadow=$(saturate)
scrape=$(curl -sf "$url/metrics" | grep 'bullpen_shadow_predictions_total{model="home_win",outcome=.*version="2"}' || true)
shadow_counts=$(echo "$scrape" | sed -n 's/.*outcome="\([a-z]*\)".* \([0-9]*\)$/\1 \2/p' | paste -sd, - | sed 's/,/, /g')
kill -TERM $server; wait $server || true

col_median() { median "$1" "$(printf '%s\n' "${@:2}")"; }
p50_plain=$(col_median 3 "${plain[@]}"); p99_plain=$(col_median 4 "${plain[@]}")
p50_shadow=$(col_median 3 "${shadowed[@]}"); p99_shadow=$(col_median 4 "${shadowed[@]}")
echo "shadow off: p50 $p50_plain ms, p99 $p99_plain ms; shadow on: p50 $p50_shadow ms, p99 $p99_shadow ms (medians of $ROUNDS rounds at $RATE req/s)"
echo "saturation (64 users): off $sat_plain, on $sat_shadow (req/s, CPU ms per answer)"
echo "$scrape"

if $write; then
  row() { read -r n f p50 p99 rps <<< "$2"; echo "| $1 | $n | $f | $p50 | $p99 | $rps |"; }
  read -r rps_off cpu_off <<< "$sat_plain"; read -r rps_on cpu_on <<< "$sat_shadow"
  {
    echo
    echo "## Model lifecycle under load, $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD))"
    echo
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/ {print $2}') GiB;"
    echo "release build, cache disabled (every answer runs the routed model), \`bullpen loadtest\` open loop at $RATE req/s"
    echo "(64 connections, every 2024 game) on the same 2 cores; \`benches/rollout.sh --write\`."
    echo
    echo "During the middle phase: load version 2, route 50/50, route 100 % to 2, unload 1, reload 2 after"
    echo "replacing its file, SIGHUP (loads version 3, unrouted)."
    echo
    echo "| phase | requests | failed | p50 ms | p99 ms | achieved req/s |"
    echo "|---|---|---|---|---|---|"
    row before "$before"; row "during (every step)" "$during"; row after "$after"
    echo
    echo "RSS: ${rss_one} MB with version 1 loaded, ${rss_two} MB with 1 and 2, ${rss_unloaded} MB 3 s after 1"
    echo "was unloaded with the load on 2, ${rss_after} MB at the end (3 loaded by the SIGHUP, unrouted; versions"
    echo "and weights: \`$versions\`). The shipped versions are small (70 KB and 1 KB of ONNX), so to see what"
    echo "a version costs and whether it comes back, eight more copies of version 1 were then loaded: ${rss_many} MB;"
    echo "unloaded, and 5 s of load later: ${rss_back} MB."
    echo
    echo "Shadow scoring (version 2 shadowing every request of version 1), $ROUNDS alternating rounds of"
    echo "${ROUND} s at $RATE req/s, medians:"
    echo
    echo "| shadow | p50 ms | p99 ms |"
    echo "|---|---|---|"
    echo "| off | $p50_plain | $p99_plain |"
    echo "| on | $p50_shadow | $p99_shadow |"
    echo
    echo "At saturation (closed loop, 64 users, ${ROUND} s each) there is no idle core to hide it in:"
    echo "$rps_off req/s and $cpu_off ms of CPU per answer without shadow, $rps_on req/s and $cpu_on ms"
    echo "with it. Shadow predictions over the whole run: $shadow_counts (a full queue drops shadow work,"
    echo "never the answer)."
  } >> BENCHMARKS.md
fi
