#!/usr/bin/env bash
# Capacity of one replica as deployed (docs/deploy.md), and what each distributed part
# costs. The server with 2 HTTP workers (the pod's CPU limit), POST /api/v1/predict cycling
# over every 2024 game, 64 connections, in eight set-ups: a single box (embedded store, no
# auth); each distributed part alone on top of it (an API key per request; Redis as L2;
# the key with the shared rate limit, against the key with Redis but no limit; features
# from PostgreSQL; the prediction log); and production-like (all of them). Each with the
# in-process cache warm (a slate asked for again and again) and disabled (every request
# computes: the worst case). wrk runs closed-loop on the same 2 cores, with PostgreSQL and
# Redis, so the figures are a floor for a pod with 2 cores of its own. ROUNDS alternating
# rounds per row, medians. Prints requests per second and p95, each part's throughput as a
# ratio of its baseline, and the replicas the design's 1,000 and 5,000 RPS need at 70 % of
# the worst production-like row (the HPA's CPU target); --write appends them to
# BENCHMARKS.md. RATE_LIMIT_MODE=exact runs the shared limit with a Redis call per request.
#
# `promise`: the design's promise through the balancer. Three replicas behind nginx
# (scripts/local-cluster) with the production-like settings, API keys kept in PostgreSQL,
# and `bullpen loadtest --rate 5000 --connections 10000 --duration 60s --ramp-up 10s`
# asking stored and scheduled games, half with odds; the SLO is p95 < 500 ms, at least
# 99.9 % succeeded and the rate held. Its JSON report goes to benches/results/.
# `search`: the largest rate at which that SLO holds for 1, 2 and 3 replicas (10,000
# connections, SEARCH_SECS s at full rate per probe, bisection to within 5 %).
#
#   benches/capacity.sh [--write] [parts] [promise] [search]     (all three by default)
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/common.sh

write=false
modes=()
for arg in "$@"; do
  case $arg in
    --write) write=true ;;
    parts | promise | search) modes+=("$arg") ;;
    *) echo "usage: benches/capacity.sh [--write] [parts] [promise] [search]" >&2; exit 2 ;;
  esac
done
[ ${#modes[@]} = 0 ] && modes=(parts promise search)
wants() { [[ " ${modes[*]} " == *" $1 "* ]]; }
PORT=${PORT:-18089}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CLUSTER_PORT=${CLUSTER_PORT:-18090}

PREFIX="bullpen_capacity:$$:"
DB="bullpen_capacity_$$"
URL="postgres://postgres@127.0.0.1:5432/$DB"
psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $DB"
cluster="$work/cluster"
trap 'scripts/local-cluster --dir "$cluster" down > /dev/null 2>&1 || true; kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"; psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"; redis-cli --scan --pattern "${PREFIX}*" | xargs -r redis-cli unlink > /dev/null' EXIT
BULLPEN__DATABASE__URL=$URL BULLPEN__TELEMETRY__LEVEL=warn $bin import > /dev/null 2>&1

config_with_key

predict_bodies > "$work/bodies.lua"
for auth in none key; do
  authorization=""
  [ $auth = key ] && authorization="Bearer $key"
  cycling_post_lua "$work/bodies.lua" "$work/$auth.lua" "$authorization"
  cat >> "$work/$auth.lua" <<'LUA'
function done(summary, latency, requests)
  io.write(string.format("P95_MS %.3f\n", latency:percentile(95) / 1000))
end
LUA
done

# One round: $1 set-up, $2 in-process cache on (true/false). Prints "req/s p95_ms".
round() {
  local settings=(BULLPEN__SERVER__PORT="$PORT" BULLPEN__SERVER__WORKERS=2
    BULLPEN__TELEMETRY__LEVEL=warn BULLPEN__CACHE__ENABLED="$2" BULLPEN__SERVER__DRAIN_SECS=0)
  local with_key=false redis=false limit=false postgres=false log=false
  case $1 in
    box) ;;
    key) with_key=true ;;
    redis) redis=true ;;
    key_redis) with_key=true; redis=true ;;
    limit) with_key=true; redis=true; limit=true ;;
    postgres) postgres=true ;;
    log) log=true ;;
    production) with_key=true; redis=true; limit=true; postgres=true; log=true ;;
  esac
  local config=() script="$work/none.lua"
  if $with_key; then
    config=(--config-dir "$work/config"); script="$work/key.lua"
    settings+=(BULLPEN__RATE_LIMIT__ENABLED=$limit)
    [ -n "${RATE_LIMIT_MODE:-}" ] && settings+=(BULLPEN__RATE_LIMIT__MODE="$RATE_LIMIT_MODE")
  fi
  $redis && settings+=(BULLPEN__REDIS__ENABLED=true BULLPEN__REDIS__KEY_PREFIX="$PREFIX")
  $postgres && settings+=(BULLPEN__FEATURES__STORE=postgres BULLPEN__DATABASE__URL="$URL")
  $log && settings+=(BULLPEN__PREDICTION_LOG__ENABLED=true BULLPEN__DATABASE__URL="$URL")
  env "${settings[@]}" $bin "${config[@]}" serve > "$work/server.log" 2>&1 &
  local server=$!
  until curl -sf "http://127.0.0.1:$PORT/ready" > /dev/null; do sleep 0.05; done
  # Warm: every game once (into the caches when they are on), and the connections.
  wrk -t2 -c64 -d3s -s "$script" "http://127.0.0.1:$PORT/api/v1/predict" > /dev/null
  wrk -t2 -c64 -d"${DURATION}s" -s "$script" \
    "http://127.0.0.1:$PORT/api/v1/predict" > "$work/wrk.txt"
  kill -TERM $server; wait $server || true
  if grep -q "Non-2xx\|Socket errors" "$work/wrk.txt"; then cat "$work/wrk.txt" >&2; return 1; fi
  awk '/^Requests\/sec/ { rps = $2 } /^P95_MS/ { p95 = $2 } END { printf "%.0f %.3f\n", rps, p95 }' "$work/wrk.txt"
}

# Each part alone, and all together, against the single box: one row per set-up and cache.
parts() {
  setups=(box key redis key_redis limit postgres log production)
  scenarios=()
  for setup in "${setups[@]}"; do scenarios+=("$setup true" "$setup false"); done
  declare -gA runs rps p95
  for ((r = 1; r <= ROUNDS; r++)); do
    for scenario in "${scenarios[@]}"; do
      runs[$scenario]+="$(round $scenario)"$'\n'
    done
  done

  echo "set-up cache req/s p95_ms"
  for scenario in "${scenarios[@]}"; do
    rps[$scenario]=$(median 1 "${runs[$scenario]}")
    p95[$scenario]=$(median 2 "${runs[$scenario]}")
    echo "$scenario ${rps[$scenario]} ${p95[$scenario]}"
  done

  # Each part: "name set-up baseline".
  parts=("an API key per request|key|box" "Redis as L2 cache|redis|box"
    "shared rate limit (key and Redis on both sides)|limit|key_redis"
    "features from PostgreSQL|postgres|box" "prediction log|log|box"
    "all of them (production-like)|production|box")
  ratio() { awk -v a="${rps[$1 $3]}" -v b="${rps[$2 $3]}" 'BEGIN { printf "%.2f", a / b }'; }
  echo "part: throughput against its baseline, cache warm / disabled"
  for part in "${parts[@]}"; do
    IFS='|' read -r name setup baseline <<< "$part"
    echo "$name: $(ratio "$setup" "$baseline" true) / $(ratio "$setup" "$baseline" false)"
  done

  # Replicas for a target rate at 70 % of a replica's worst production-like rate (nothing
  # cached in process: the case the HPA must still hold).
  worst=${rps[production false]}
  replicas() { awk -v t="$1" -v c="$worst" 'BEGIN { n = t / (0.7 * c); printf "%d", (n == int(n)) ? n : int(n) + 1 }'; }
  echo "replicas at 70 % of ${worst} req/s: 1,000 RPS -> $(replicas 1000), 5,000 RPS -> $(replicas 5000)"
}

# The parts' rows and ratios in Markdown.
parts_markdown() {
  echo
  echo "## Capacity of one replica, and what each distributed part costs, $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD))"
  echo
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/ {print $2}') GiB;"
  echo "server with 2 HTTP workers (the pod's CPU limit), wrk -t2 -c64 on the same cores (with"
  echo "PostgreSQL and Redis), ${DURATION} s, median of ${ROUNDS} alternating rounds; release build;"
  echo "\`benches/capacity.sh --write\`${RATE_LIMIT_MODE:+ with \`RATE_LIMIT_MODE=$RATE_LIMIT_MODE\`}. Production-like: features from PostgreSQL, Redis L2 and"
  echo "shared rate limit, an API key per request, the prediction log on."
  echo
  echo "| set-up | in-process cache | req/s | p95 ms |"
  echo "|---|---|---|---|"
  for scenario in "${scenarios[@]}"; do
    read -r setup cache <<< "$scenario"
    label=$([ "$cache" = true ] && echo "warm" || echo "disabled")
    echo "| $setup | $label | ${rps[$scenario]} | ${p95[$scenario]} |"
  done
  echo
  echo "Each part's throughput as a fraction of its baseline's (same run, medians):"
  echo
  echo "| part | against | cache warm | cache disabled |"
  echo "|---|---|---|---|"
  for part in "${parts[@]}"; do
    IFS='|' read -r name setup baseline <<< "$part"
    echo "| $name | $baseline | $(ratio "$setup" "$baseline" true) | $(ratio "$setup" "$baseline" false) |"
  done
  echo
  echo "At 70 % of the production-like row with the cache disabled (${worst} req/s), the design's 1,000 RPS"
  echo "need $(replicas 1000) replica(s) and 5,000 RPS need $(replicas 5000); the HPA keeps at least 5."
}

# The production-like cluster of $1 replicas behind nginx on $CLUSTER_PORT; sets $token to an
# API key kept in PostgreSQL whose limit is far above the load.
cluster_up() {
  scripts/local-cluster --dir "$cluster" up --bin "$bin" --replicas "$1" --port "$CLUSTER_PORT" \
    --postgres "$URL" --set telemetry.level=warn --set auth.enabled=true \
    --set auth.key_store=postgres ${RATE_LIMIT_MODE:+--set rate_limit.mode=$RATE_LIMIT_MODE} > /dev/null
  token=$(BULLPEN__DATABASE__URL=$URL BULLPEN__TELEMETRY__LEVEL=warn $bin keys create \
    --name "capacity-$1-$RANDOM" --scope predict --rate 1000000000/min --burst 1000000 2> /dev/null)
}

# `bullpen loadtest` at $1 req/s against the cluster, 10,000 connections, ramping up for 10 s,
# held $2 s; the report in $3 (JSON). Exit status 0 when the SLO held.
load() {
  BULLPEN_LOADTEST_TOKEN=$token $bin loadtest --url "http://127.0.0.1:$CLUSTER_PORT" --rate "$1" \
    --connections "${CONNECTIONS:-10000}" --duration "$2s" --ramp-up 10s --quiet \
    --mix stored=60,scheduled=40,odds=50 --games "$work/ids" --slo-error-rate 0.001 \
    --json "$3" > "$3.txt" 2>&1
}

promise() {
  mkdir -p benches/results
  cluster_up 3
  local json="benches/results/capacity-promise-$(date -u +%Y-%m-%d).json"
  local held=held
  load 5000 "${PROMISE_SECS:-60}" "$json" || held="NOT held"
  scripts/local-cluster --dir "$cluster" down > /dev/null
  promise_summary="$(cat "$json.txt")"
  rm -f "$json.txt"
  promise_held=$held
  promise_json=$json
  echo "$promise_summary"
  echo "the promise (5,000 req/s, 10,000 connections, p95 < 500 ms, 99.9 %): $held"
}

# The largest rate (to within 5 %) at which the SLO holds, for 1, 2 and 3 replicas.
search() {
  declare -gA largest
  for replicas in 1 2 3; do
    cluster_up "$replicas"
    local low=0 high=$((replicas * ${SEARCH_HIGH:-6000})) rate
    while awk -v l="$low" -v h="$high" 'BEGIN { exit !(h - l > 0.05 * h) }'; do
      rate=$(( (low + high) / 2 ))
      if load "$rate" "${SEARCH_SECS:-20}" "$work/probe.json"; then low=$rate; else high=$rate; fi
      echo "  $replicas replica(s), $rate req/s: $([ "$low" = "$rate" ] && echo held || echo missed)"
    done
    scripts/local-cluster --dir "$cluster" down > /dev/null
    largest[$replicas]=$low
    # Within 5 % of the top of the range: the range was too small, not the replicas.
    if awk -v l="$low" -v h="$((replicas * ${SEARCH_HIGH:-6000}))" 'BEGIN { exit !(l >= 0.95 * h) }'; then
      largest[$replicas]="at least $low (the top of the range searched; raise SEARCH_HIGH)"
    fi
    echo "$replicas replica(s): the SLO holds up to ${largest[$replicas]} req/s"
  done
}

ulimit -n "$(ulimit -Hn)"
wants parts && parts
wants promise && promise
wants search && search

if $write; then
  {
    if wants parts; then parts_markdown; fi
    if wants promise; then
      echo
      echo "## The design's capacity promise through the balancer, $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD))"
      echo
      echo "Three production-like replicas (PostgreSQL store and prediction log, Redis L2 and shared"
      echo "rate limit, an API key kept in PostgreSQL) behind nginx (\`scripts/local-cluster\`), and"
      echo "\`bullpen loadtest --rate 5000 --connections 10000 --duration ${PROMISE_SECS:-60}s --ramp-up 10s\`"
      echo "(60 % stored games, 40 % scheduled, half with odds), all on the same 2 cores;"
      echo "\`benches/capacity.sh --write promise\`: **$promise_held**. Report: \`$promise_json\`."
      echo
      echo '```'
      echo "$promise_summary"
      echo '```'
    fi
    if wants search; then
      echo
      echo "## The largest rate at which the SLO holds, $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD))"
      echo
      echo "The same cluster and load with 1, 2 and 3 replicas; each probe ramps up for 10 s and holds"
      echo "${SEARCH_SECS:-20} s; bisection to within 5 %; SLO: p95 < 500 ms, at least 99.9 % succeeded, the"
      echo "rate held within 5 %. \`benches/capacity.sh --write search\`; machine as above."
      echo
      echo "| replicas | largest rate with the SLO held (req/s) |"
      echo "|---|---|"
      for replicas in 1 2 3; do echo "| $replicas | ${largest[$replicas]} |"; done
    fi
  } >> BENCHMARKS.md
fi
