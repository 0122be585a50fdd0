# Shared by the benchmark scripts (sourced, not run): builds the release binary, makes a
# work folder removed on exit, and writes the wrk inputs every script uses.
# BULLPEN_BIN=path runs an already built binary instead (an A/B against another commit's
# build); the library it loads is found beside it or through ORT_DYLIB_PATH.

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
if [ -n "${BULLPEN_BIN:-}" ]; then
  bin=$BULLPEN_BIN
else
  cargo build --release --locked --quiet
  bin=target/release/bullpen
fi
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# Every 2024 regular-season game id, one per line, in $work/ids.
$bin features export --seasons 2024 --output "$work/2024.csv" 2>/dev/null
cut -d, -f1 "$work/2024.csv" | tail -n +2 > "$work/ids"

# Writes to $2 a wrk script that POSTs the Lua table `bodies` of file $1 in a cycle, with
# the header `Authorization: $3` when $3 is given.
cycling_post_lua() {
  {
    cat "$1"
    echo "local authorization = \"${3:-}\""
    cat <<'LUA'
local counter = 0
local requests = {}
function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  if authorization ~= "" then headers["Authorization"] = authorization end
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", nil, headers, body)
  end
  counter = math.random(#requests)
end
function request()
  counter = counter % #requests + 1
  return requests[counter]
end
LUA
  } > "$2"
}

# A Lua table `bodies` of one predict body per 2024 game.
predict_bodies() {
  echo 'bodies = {'
  sed 's/.*/  "{\\"game_id\\": \\"&\\"}",/' "$work/ids"
  echo '}'
}

# Prints "req/s p50_ms p99_ms" from wrk --latency output in $1.
wrk_summary() {
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) } /^Requests\/sec/ { rps = $2 }
    END { printf "%.0f %.3f %.3f\n", rps, p50, p99 }' "$1"
}

# wrk at URL $1 with the script $2 (none when empty) for DURATION s, THREADS (2) threads
# and CONNECTIONS (64) connections; prints "req/s p50_ms p99_ms". Fails on any non-2xx
# answer, printing wrk's report.
wrk_run() {
  local args=(-t"${THREADS:-2}" -c"${CONNECTIONS:-64}" -d"${DURATION}s" --latency)
  [ -n "${2:-}" ] && args+=(-s "$2")
  wrk "${args[@]}" "$1" > "$work/wrk.txt"
  if grep -q "Non-2xx" "$work/wrk.txt"; then cat "$work/wrk.txt" >&2; return 1; fi
  wrk_summary "$work/wrk.txt"
}

# Starts the server with the VAR=value settings given after $1 (a wrk script POSTed to
# /api/v1/predict) and with --config-dir "$CONFIG_DIR" when set; warms it for 3 s, measures
# $DURATION s, stops it; prints "req/s p50_ms p99_ms". Fails on any non-2xx answer.
measure() {
  local script=$1; shift
  env BULLPEN__SERVER__PORT="$PORT" BULLPEN__TELEMETRY__LEVEL=warn "$@" \
    $bin ${CONFIG_DIR:+--config-dir "$CONFIG_DIR"} serve > "$work/server.log" 2>&1 &
  local server=$!
  until curl -sf "http://127.0.0.1:$PORT/health" > /dev/null; do sleep 0.05; done
  wrk -t2 -c64 -d3s -s "$script" "http://127.0.0.1:$PORT/api/v1/predict" > /dev/null
  wrk -t2 -c64 -d"${DURATION}s" --latency -s "$script" "http://127.0.0.1:$PORT/api/v1/predict" > "$work/wrk.txt"
  kill -TERM $server; wait $server || true
  if grep -q "Non-2xx" "$work/wrk.txt"; then cat "$work/wrk.txt" "$work/server.log" >&2; return 1; fi
  wrk_summary "$work/wrk.txt"
}

# The median of column $1 (1 req/s, 2 p50, 3 p99) of the lines in $2.
median() {
  printf '%s' "$2" | awk -v c="$1" '{ print $c }' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# Writes $work/config/default.toml with auth on and one key in it whose limit is far above
# what wrk can send (every request is admitted), and sets $key to that key.
config_with_key() {
  mkdir -p "$work/config"
  $bin keys create --name bench --scope predict --rate 1000000000/min --burst 1000000 \
    --print-config > "$work/key.toml" 2>/dev/null
  key=$(sed -n 's/^# The key (shown once; give it to its user): //p' "$work/key.toml")
  { echo "[auth]"; echo "enabled = true"; echo; grep -v '^#' "$work/key.toml"; } > "$work/config/default.toml"
}
