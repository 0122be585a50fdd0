#!/usr/bin/env bash
# Memory soak of a release build: SECONDS_TOTAL (default 120) of wrk traffic mixing every
# 2024 game with random scheduled games (random teams, random dates in 2024 and 2025, so
# the caches keep meeting new keys), sampling the server's RSS every 10 s. The caches are
# bounded, so RSS must level off instead of growing with the number of distinct keys.
#
#   benches/soak.sh [--write]      (--write appends the samples to BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/.."

TOTAL="${SECONDS_TOTAL:-120}"
PORT="${PORT:-18191}"
write=false
[ "${1:-}" = "--write" ] && write=true

source benches/common.sh

{
  echo 'ids = {'
  sed 's/.*/  "&",/' "$work/ids"
  echo '}'
  cat <<'LUA'
teams = { "ANA", "ARI", "ATL", "BAL", "BOS", "CHA", "CHN", "CIN", "CLE", "COL", "DET", "HOU",
          "KCA", "LAN", "MIA", "MIL", "MIN", "NYA", "NYN", "OAK", "PHI", "PIT", "SDN", "SEA",
          "SFN", "SLN", "TBA", "TEX", "TOR", "WAS" }
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
function init(args)
  math.randomseed(os.time() + math.random(1000))
end
function request()
  local body
  if math.random() < 0.5 then
    body = string.format('{"game_id": "%s"}', ids[math.random(#ids)])
  else
    local home = math.random(#teams)
    local away = (home + math.random(#teams - 1) - 1) % #teams + 1
    local year = 2024 + math.random(0, 1)
    body = string.format('{"game": {"home": "%s", "away": "%s", "date": "%d-%02d-%02d"}}',
      teams[home], teams[away], year, math.random(4, 9), math.random(1, 28))
  end
  return wrk.format(nil, "/api/v1/predict", nil, body)
end
LUA
} > "$work/soak.lua"

BULLPEN__SERVER__PORT=$PORT BULLPEN__TELEMETRY__LEVEL=warn $bin serve > "$work/server.log" 2>&1 &
server=$!
until curl -sf "http://127.0.0.1:$PORT/ready" > /dev/null; do sleep 0.05; done

wrk -t2 -c64 -d"${TOTAL}s" --latency -s "$work/soak.lua" "http://127.0.0.1:$PORT" > "$work/wrk.txt" &
load=$!
samples=()
for ((t = 10; t <= TOTAL; t += 10)); do
  sleep 10
  rss=$(awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' /proc/$server/status)
  samples+=("$t:$rss")
  echo "t=${t}s RSS=${rss} MB"
done
wait $load
requests=$(awk '/requests in/ { print $1 }' "$work/wrk.txt")
errors=$(awk '/Non-2xx/ { print $NF }' "$work/wrk.txt")
rps=$(awk '/Requests\/sec/ { print $2 }' "$work/wrk.txt")
peak=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' /proc/$server/status)
echo "requests: $requests (${rps}/s), non-2xx: ${errors:-0}, peak RSS ${peak} MB"
kill -TERM $server; wait $server || true

if $write; then
  {
    echo
    echo "## Memory soak, $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD))"
    echo
    echo "\`benches/soak.sh --write\`: ${TOTAL} s of wrk -t2 -c64, half requests for random 2024 games, half for random"
    echo "scheduled games (random teams and dates in 2024 and 2025): ${requests} requests (${rps}/s), non-2xx: ${errors:-0}."
    echo
    echo "| seconds | $(printf '%s | ' "${samples[@]%%:*}")"
    echo "|---|$(printf -- '---|%.0s' "${samples[@]}")"
    echo "| RSS MB | $(printf '%s | ' "${samples[@]##*:}")"
    echo
    echo "Peak RSS ${peak} MB."
  } >> BENCHMARKS.md
fi
