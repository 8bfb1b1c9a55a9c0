#!/usr/bin/env bash
# Load test of `keratrack serve` on loopback with wrk: requests/s and latency percentiles of
# GET /history (authenticated, a SQLite read) and, with --model, POST /predict (upload + decode +
# forward + insert). Starts its own server on a free port with a scratch database and stops it.
#
#   bench/serve_load.sh build/keratrack [--model CKPT] [--image FILE] [--duration 10s]
#                       [--connections 32] [--predict-connections 4] [--wrk-threads 2]
#                       [--server-threads 4] [--device cpu] [--model-threads N] [--fast-decode] [--max-batch N]
set -euo pipefail
kt=${1:?usage: bench/serve_load.sh KERATRACK [--model CKPT] [options]}; shift
model="" image="" duration=10s conns=32 pconns=4 wthreads=2 sthreads=4 device=cpu mthreads="" history_rows=20 fast="" maxb=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --model) model=$2; shift 2;;
    --image) image=$2; shift 2;;
    --duration) duration=$2; shift 2;;
    --connections) conns=$2; shift 2;;
    --predict-connections) pconns=$2; shift 2;;
    --model-threads) mthreads=$2; shift 2;;
    --wrk-threads) wthreads=$2; shift 2;;
    --server-threads) sthreads=$2; shift 2;;
    --device) device=$2; shift 2;;
    --fast-decode) fast=--fast-decode; shift;;
    --max-batch) maxb=$2; shift 2;;
    *) echo "serve_load: unknown option $1" >&2; exit 2;;
  esac
done
command -v wrk >/dev/null || { echo "serve_load: wrk is not installed (scripts/install-deps.sh --tests)" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
[[ -z $image ]] && image=$(ls "$here"/../../shared/datasets/hair-samples/*.jpg 2>/dev/null | head -1 || true)
tmp=$(mktemp -d); srv=""
cleanup() { [[ -n $srv ]] && kill "$srv" 2>/dev/null && wait "$srv" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

args=(serve --db "$tmp/load.db" --port 0 --threads "$sthreads" --quiet)
[[ -n $model ]] && args+=(--model "$model" --device "$device")
[[ -n $model && -n $mthreads ]] && args+=(--model-threads "$mthreads")
[[ -n $model && -n $fast ]] && args+=("$fast")
[[ -n $model && -n $maxb ]] && args+=(--max-batch "$maxb")
"$kt" "${args[@]}" 2>"$tmp/server.log" & srv=$!
for _ in $(seq 100); do grep -q "listening on" "$tmp/server.log" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$tmp/server.log")
[[ -n $port ]] || { cat "$tmp/server.log" >&2; exit 1; }
base=http://127.0.0.1:$port
curl -sf -X POST "$base/register" -H 'Content-Type: application/json' \
  -d '{"name": "Load", "email": "load@example.com", "password": "load-test-1"}' >/dev/null
token=$(curl -sf -X POST "$base/token" -d 'username=load@example.com&password=load-test-1' |
        sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[[ -n $token ]] || { echo "serve_load: no token" >&2; exit 1; }

echo "# keratrack serve load test: $(nproc) CPUs (load average $(cut -d' ' -f1-3 /proc/loadavg)), server threads $sthreads,"
echo "# wrk $wthreads threads x $conns connections (/predict: $pconns), $duration per endpoint"
echo "# server: ${args[*]}"
if [[ -n $model && -n $image ]]; then
  # Fill the history through the API so /history answers real rows.
  for _ in $(seq "$history_rows"); do
    curl -sf -X POST "$base/predict" -H "Authorization: Bearer $token" -F "file=@$image" >/dev/null
  done
else
  # No model: put the same number of rows into the history straight into the database (WAL lets
  # a second writer in while the server runs), so /history answers a realistic list.
  /usr/bin/python3 - "$tmp/load.db" "$history_rows" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10)
with db:
    for i in range(int(sys.argv[2])):
        db.execute("INSERT INTO predictions(user_id, image_path, predicted_stage, confidence, probabilities, created_at)"
                   " VALUES (1, NULL, ?, 0.8, '{}', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))", ("LEVEL_%d" % (2 + i % 6),))
PY
fi
rows=$(curl -sf "$base/history" -H "Authorization: Bearer $token" | { grep -o '"id"' || true; } | wc -l)
bytes=$(curl -sf "$base/history" -H "Authorization: Bearer $token" | wc -c)
echo
echo "## GET /history ($rows rows, $bytes bytes per answer)"
echo "\$ wrk -t$wthreads -c$conns -d$duration --latency -H 'Authorization: Bearer TOKEN' $base/history"
wrk -t"$wthreads" -c"$conns" -d"$duration" --latency -H "Authorization: Bearer $token" "$base/history"
if [[ -n $model && -n $image ]]; then
  echo
  echo "## POST /predict ($(basename "$image"), $(stat -c %s "$image") bytes)"
  echo "\$ wrk -t$wthreads -c$pconns -d$duration --latency -s bench/serve_load.lua $base/predict -- TOKEN IMAGE"
  wrk -t"$wthreads" -c"$pconns" -d"$duration" --latency -s "$here/serve_load.lua" "$base/predict" -- "$token" "$image"
fi
echo
echo "## GET /metrics after the run (inference quantiles)"
curl -sf "$base/metrics" | grep -E '^keratrack_inference_seconds|^keratrack_predict_stage_seconds|^keratrack_predict_batch_size|^keratrack_requests_total' || true
ps -o rss= -p "$srv" | awk '{printf "server RSS after the run: %.0f MB\n", $1 / 1024}'
