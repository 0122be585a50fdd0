#!/usr/bin/env bash
# The Open Inference Protocol against /api/v1, on one release server with the cache
# disabled (feature rows are never cached, so every path does its inference):
#
#   benches/oip.sh [--write]      (--write appends the results to BENCHMARKS.md)
#
# ROUNDS alternating rounds of DURATION s at CONNECTIONS connections of: /api/v1/predict
# (one game id), /api/v1/predict/batch (64 ids), /v2 infer with 1 and 64 feature rows of
# real 2024 games as JSON and as Triton's binary tensors (wrk, HTTP/1.1), and gRPC
# ModelInfer with 1 and 64 rows as tritonclient sends them (raw_input_contents; h2load,
# HTTP/2, one stream per connection). Medians of req/s and rows/s; wrk's p50/p99, h2load's
# mean (it reports no percentiles).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
PORT="${PORT:-18191}"
GRPC_PORT="${GRPC_PORT:-18192}"
write=false
[ "${1:-}" = "--write" ] && write=true

command -v h2load >/dev/null || { apt-get update -qq && apt-get install -y -qq nghttp2-client; }
tests/oip/run --venv
source benches/common.sh

.tools/oip/bin/python benches/oip-bodies.py "$work/2024.csv" "$work/oip"
predict_bodies > "$work/bodies.lua"
cycling_post_lua "$work/bodies.lua" "$work/predict.lua"
cycling_post_lua "$work/oip/batch-64.lua" "$work/batch.lua"
# A wrk script POSTing the bodies listed in $1 (file, JSON header length) in a cycle.
files_lua() {
  cat > "$2" <<LUA
local requests = {}
local counter = 0
function init(args)
  for line in io.lines("$1") do
    local path, length = line:match("(%S+) (%d+)")
    local file = io.open(path, "rb")
    local body = file:read("*a")
    file:close()
    local headers = { ["Content-Type"] = "application/json" }
    if length ~= "0" then
      headers["Content-Type"] = "application/octet-stream"
      headers["Inference-Header-Content-Length"] = length
    end
    requests[#requests + 1] = wrk.format("POST", nil, headers, body)
  end
  counter = math.random(#requests)
end
function request()
  counter = counter % #requests + 1
  return requests[counter]
end
LUA
}
for kind in json-1 binary-1 json-64 binary-64; do
  files_lua "$work/oip/v2-$kind/list" "$work/v2-$kind.lua"
done

BULLPEN__SERVER__PORT=$PORT BULLPEN__SERVER__GRPC_PORT=$GRPC_PORT BULLPEN__CACHE__ENABLED=false \
  BULLPEN__TELEMETRY__LEVEL=warn $bin serve > "$work/server.log" 2>&1 &
server=$!
until curl -sf "http://127.0.0.1:$PORT/ready" > /dev/null; do
  kill -0 $server 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.05
done

# gRPC with h2load: "req/s p50_ms p99_ms" with the mean in both latency columns. Fails when a
# call is not answered 200 or when the body does not decode as a ModelInfer answer.
grpc_run() {
  h2load -c"$CONNECTIONS" -t"$THREADS" -m1 -D"$DURATION" --data="$1" \
    -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://127.0.0.1:$GRPC_PORT/inference.GRPCInferenceService/ModelInfer" > "$work/h2load.txt"
  if ! grep -q ' 0 failed, 0 errored, 0 timeout' "$work/h2load.txt" \
     || grep -q 'status codes: [0-9]* 2xx.*[1-9][0-9]* [345]xx' "$work/h2load.txt"; then
    cat "$work/h2load.txt" >&2; return 1
  fi
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /^finished in/ { rps = $4 }
    /^time for request:/ { mean = ms($6) }
    END { printf "%.0f %.3f %.3f\n", rps, mean, mean }' "$work/h2load.txt"
}
# One gRPC call through a real client first: the body is a request bullpen answers.
.tools/oip/bin/python - "$GRPC_PORT" "$work/oip/grpc-64.bin" <<'PY'
import sys, grpc
from tritonclient.grpc import service_pb2
port, path = sys.argv[1], sys.argv[2]
body = open(path, "rb").read()[5:]
call = grpc.insecure_channel(f"127.0.0.1:{port}").unary_unary(
    "/inference.GRPCInferenceService/ModelInfer")
answer = service_pb2.ModelInferResponse.FromString(call(body))
assert len(answer.raw_output_contents[0]) == 64 * 4, answer
PY

scenarios=(
  "/api/v1/predict, 1 game|1|wrk|/api/v1/predict|$work/predict.lua"
  "/api/v1/predict/batch, 64 games|64|wrk|/api/v1/predict/batch|$work/batch.lua"
  "/v2 infer, 1 row, JSON|1|wrk|/v2/models/home_win/infer|$work/v2-json-1.lua"
  "/v2 infer, 1 row, binary|1|wrk|/v2/models/home_win/infer|$work/v2-binary-1.lua"
  "/v2 infer, 64 rows, JSON|64|wrk|/v2/models/home_win/infer|$work/v2-json-64.lua"
  "/v2 infer, 64 rows, binary|64|wrk|/v2/models/home_win/infer|$work/v2-binary-64.lua"
  "gRPC ModelInfer, 1 row|1|grpc||$work/oip/grpc-1.bin"
  "gRPC ModelInfer, 64 rows|64|grpc||$work/oip/grpc-64.bin"
)
declare -A runs
for round in $(seq "$ROUNDS"); do
  for scenario in "${scenarios[@]}"; do
    IFS='|' read -r label rows tool path input <<< "$scenario"
    # The previous run's last calls, cut off when its connections closed, may still sit in
    # the inference queue: let them drain so they are not this run's 503s.
    sleep 1
    if [ "$tool" = wrk ]; then
      figures=$(wrk_run "http://127.0.0.1:$PORT$path" "$input") || failed=true
    else
      figures=$(grpc_run "$input") || failed=true
    fi
    if ${failed:-false}; then
      echo "$label failed; answers other than 200 so far:" >&2
      curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^bullpen_(http|grpc)_requests_total' | grep -v 'status="200"\|code="OK"' >&2
      exit 1
    fi
    runs[$label]+="$figures"$'\n'
    echo "round $round: $label: $figures"
  done
done
kill -TERM $server; wait $server || true

table=()
for scenario in "${scenarios[@]}"; do
  IFS='|' read -r label rows tool _ _ <<< "$scenario"
  lines=${runs[$label]}
  rps=$(median 1 "$lines"); p50=$(median 2 "$lines"); p99=$(median 3 "$lines")
  if [ "$tool" = grpc ]; then latency="$p50 (mean) | -"; else latency="$p50 | $p99"; fi
  table+=("| $label | $rps | $((rps * rows)) | $latency |")
done
printf '%s\n' "${table[@]}"

if $write; then
  {
    echo
    echo "## Open Inference Protocol vs /api/v1, $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD))"
    echo
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/ {print $2}') GiB;"
    echo "one release server, cache disabled; $ROUNDS alternating rounds of ${DURATION} s at $CONNECTIONS connections, medians;"
    echo "REST with wrk (HTTP/1.1), gRPC with h2load (HTTP/2, one stream per connection, tritonclient's raw"
    echo "tensors); rows are real 2024 feature vectors (\`benches/oip.sh --write\`)."
    echo
    echo "| scenario | req/s | rows/s | p50 ms | p99 ms |"
    echo "|---|---|---|---|---|"
    printf '%s\n' "${table[@]}"
  } >> BENCHMARKS.md
fi
