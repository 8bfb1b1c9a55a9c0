#!/usr/bin/env bash
# The Keratrack server against the stack it replaces, on loopback with wrk: bench/fastapi_ref.py
# (FastAPI + uvicorn + PyTorch + timm, SQLite) serving the same checkpoint, driven exactly as
# bench/serve_load.sh drives ours (GET /history with 20 rows, 32 connections; POST /predict of one
# image, 4 connections; 10 s each). Run bench/serve_load.sh with the same model right before or after.
#   bench/serve_compare.sh CKPT [IMAGE]      (needs .venv with fastapi, uvicorn, python-multipart, timm)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: bench/serve_compare.sh CKPT [IMAGE]}
image=${2:-$(ls ../shared/datasets/hair-samples/*.jpg | head -1 || true)}
tmp=$(mktemp -d); srv=""
cleanup() { [[ -n $srv ]] && kill "$srv" 2>/dev/null && wait "$srv" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
env -u OPENBLAS_CORETYPE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
    .venv/bin/python bench/fastapi_ref.py --model "$model" --db "$tmp/ref.db" --port "$port" > "$tmp/server.log" 2>&1 &
srv=$!
for _ in $(seq 300); do grep -q "listening on" "$tmp/server.log" && break; sleep 0.1; done
sleep 1
token=$(sed -n 's/^token //p' "$tmp/server.log")
[[ -n $token ]] || { cat "$tmp/server.log" >&2; exit 1; }
base=http://127.0.0.1:$port
for _ in $(seq 20); do curl -sf -X POST "$base/predict" -H "Authorization: Bearer $token" -F "file=@$image" >/dev/null; done
echo "# FastAPI + PyTorch reference: $(nproc) CPUs, uvicorn 1 process, torch 2 threads; model $model"
echo "## GET /history (20 rows)"
wrk -t2 -c32 -d10s --latency -H "Authorization: Bearer $token" "$base/history" | grep -E "Requests/sec|99%|50%"
echo "## POST /predict ($(basename "$image"))"
wrk -t2 -c4 -d10s --latency -s bench/serve_load.lua "$base/predict" -- "$token" "$image" | grep -E "Requests/sec|99%|50%"
ps -o rss= -p "$srv" | awk '{printf "server RSS after the run: %.0f MB\n", $1 / 1024}'
