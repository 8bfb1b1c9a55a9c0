#!/usr/bin/env bash
# keratrack serve end to end with a model trained by `keratrack train` (tests/serve/make_test_model.sh):
# POST /predict on a real scalp photo, history, uploads kept under server-made names only, a corrupt
# image answered 400, inference metrics, the diet plan following the predicted stage, the CLI's hints
# for device and checkpoint errors, clean SIGTERM.
# usage: test_serve_predict.sh <keratrack> <source-dir> <build-dir>
set -u
kt=$1; src=$2; build=$3
ckpt=$(bash "$src/tests/serve/make_test_model.sh" "$kt" "$build" 2>"$build/serve_test_model.err")
rc=$?
if [[ $rc -eq 77 ]]; then echo "SKIP: $(cat "$build/serve_test_model.err")"; exit 77; fi
[[ $rc -eq 0 ]] || { cat "$build/serve_test_model.err"; exit 1; }
img=$(ls "$src"/../shared/datasets/hair-samples/*.jpg 2>/dev/null | head -1)
if [[ -z $img ]]; then
  img=$(ls "$build"/serve_test_model/data/test/*.jpg | head -1)
  echo "note: ../shared/datasets/hair-samples is absent; using a synthetic test image"
fi
tmp=$(mktemp -d); pid=""
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

"$kt" serve --model "$ckpt" --db "$tmp/k.db" --port 0 --threads 4 --keep-uploads "$tmp/uploads" 2>"$tmp/log" &
pid=$!
for _ in $(seq 300); do grep -q "listening on" "$tmp/log" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$tmp/log")
[[ -n $port ]] || { echo "server did not start:"; cat "$tmp/log"; exit 1; }
base=http://127.0.0.1:$port

curl -s "$base/health" >"$tmp/health"
grep -q '"model_loaded":true' "$tmp/health" || bad "health: $(cat "$tmp/health")"
# where the model runs (--device auto's choice), the same in /health and the start line
dev=$(sed -n 's/.*"device":"\([a-z]*\)".*/\1/p' "$tmp/health")
[[ $dev == cpu || $dev == cuda ]] && grep -q "listening on .* on $dev)" "$tmp/log" ||
  bad "device '$dev' in /health, start line: $(grep listening "$tmp/log")"
curl -s -X POST "$base/register" -H 'Content-Type: application/json' \
  -d '{"name": "Pia", "email": "pia@example.com", "password": "pia-secret-1"}' >/dev/null
tok=$(curl -s -X POST "$base/token" -d 'username=pia@example.com&password=pia-secret-1' |
      sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[[ -n $tok ]] || { echo "FAIL: no token"; exit 1; }
auth=(-H "Authorization: Bearer $tok")

# A real photo; the client's file name tries to leave the uploads folder.
code=$(curl -s -o "$tmp/p1" -w '%{http_code}' -X POST "$base/predict" "${auth[@]}" \
       -F "file=@$img;filename=../../escape.jpg;type=image/jpeg")
[[ $code == 200 ]] || bad "predict: $code $(cat "$tmp/p1")"
stage=$(sed -n 's/.*"predicted_stage":"\([^"]*\)".*/\1/p' "$tmp/p1")
grep -q "\"$stage\"" "$tmp/health" && [[ -n $stage ]] || bad "stage '$stage' is not one of the model's classes"
conf=$(sed -n 's/.*"confidence":\([0-9.eE+-]*\).*/\1/p' "$tmp/p1")
awk -v c="$conf" 'BEGIN { exit !(c > 0 && c <= 1) }' || bad "confidence $conf"
probs=$(sed -n 's/.*"probabilities":{\([^}]*\)}.*/\1/p' "$tmp/p1")
awk -v p="$probs" 'BEGIN { n = split(p, a, ","); s = 0; for (i = 1; i <= n; i++) { split(a[i], kv, ":"); s += kv[2] }
                           exit !(n >= 2 && s > 0.999 && s < 1.001) }' || bad "probabilities do not sum to 1: $probs"
[[ -e $tmp/escape.jpg || -e $tmp/uploads/../escape.jpg ]] && bad "the client file name was used as a path"
saved=$(ls "$tmp/uploads")
[[ $(echo "$saved" | wc -l) -eq 1 && $saved =~ ^u1-[0-9a-f]{24}\.jpg$ ]] || bad "uploads folder holds: $saved"
cmp -s "$img" "$tmp/uploads/$saved" || bad "the kept upload differs from the photo"
grep -q "\"image_path\":\"$tmp/uploads/$saved\"" "$tmp/p1" || bad "image_path: $(cat "$tmp/p1")"

# A JPEG signature followed by junk: the decoder refuses it, 400, nothing stored or kept.
{ printf '\xff\xd8\xff\xe0'; head -c 3000 /dev/urandom; } >"$tmp/junk.jpg"
code=$(curl -s -o "$tmp/p2" -w '%{http_code}' -X POST "$base/predict" "${auth[@]}" -F "file=@$tmp/junk.jpg")
[[ $code == 400 ]] && grep -q '"detail"' "$tmp/p2" || bad "corrupt jpeg: $code $(cat "$tmp/p2")"
[[ $(ls "$tmp/uploads" | wc -l) -eq 1 ]] || bad "a refused upload was kept"

# A second prediction, the history, one item, metrics.
code=$(curl -s -o "$tmp/p3" -w '%{http_code}' -X POST "$base/predict" "${auth[@]}" -F "file=@$img")
[[ $code == 200 ]] || bad "second predict: $code $(cat "$tmp/p3")"
hist=$(curl -s "$base/history" "${auth[@]}")
[[ $(grep -o '"predicted_stage"' <<<"$hist" | wc -l) -eq 2 ]] || bad "history: $hist"
id=$(sed -n 's/^{"id":\([0-9]*\).*/\1/p' "$tmp/p1")
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/history/$id" "${auth[@]}")
[[ $code == 200 ]] || bad "history/$id: $code"
curl -s "$base/metrics" >"$tmp/metrics"
grep -q '^keratrack_inference_seconds_count 2$' "$tmp/metrics" || bad "metrics: $(grep inference "$tmp/metrics")"
# each prediction's decode, wait and forward, the forward taking some time
for st in decode wait forward; do
  grep -q "^keratrack_predict_stage_seconds_count{stage=\"$st\"} 2$" "$tmp/metrics" || bad "stage $st: $(grep stage "$tmp/metrics")"
done
awk '/^keratrack_predict_stage_seconds_sum\{stage="forward"\}/ { ok = $2 > 0 } END { exit !ok }' "$tmp/metrics" ||
  bad "no forward time: $(grep stage "$tmp/metrics")"
grep -q 'keratrack_requests_total{endpoint="/predict",status="400"} 1' "$tmp/metrics" || bad "predict 400 not counted"

# The diet plan follows the newest predicted stage.
curl -s -o /dev/null -X POST "$base/diet/assessment" "${auth[@]}" -H 'Content-Type: application/json' \
  -d '{"age": 30, "gender": "female", "weight": 65, "height": 165, "activity_level": "moderate", "dietary_restrictions": ["vegetarian"]}'
last=$(sed -n 's/^\[{"id":[0-9]*,"user_id":[0-9]*,"image_path":[^,]*,"predicted_stage":"\([^"]*\)".*/\1/p' <<<"$hist")
plan=$(curl -s "$base/diet/recommendations" "${auth[@]}")
grep -q "\"hair_stage_at_time\":\"$last\"" <<<"$plan" || bad "plan stage (newest $last): ${plan:0:300}"

# The CLI's hint follows the failure: a device error points at --device, a checkpoint error at the file.
"$kt" predict --model "$ckpt" --device tpu "$img" >/dev/null 2>"$tmp/e1"; rc=$?
[[ $rc -ne 0 ]] && grep -q "device 'tpu' is unknown" "$tmp/e1" && grep -q -- "--device cpu runs on the CPU" "$tmp/e1" &&
  ! grep -q "checkpoint path" "$tmp/e1" || bad "predict --device tpu (exit $rc): $(cat "$tmp/e1")"
"$kt" predict --model "$ckpt" --device cuda:1x "$img" >/dev/null 2>"$tmp/e3"; rc=$?
[[ $rc -ne 0 ]] && grep -q "device 'cuda:1x': the GPU index after 'cuda:' must be a number" "$tmp/e3" ||
  bad "predict --device cuda:1x (exit $rc): $(cat "$tmp/e3")"
"$kt" serve --model "$ckpt" --device gpu --port 0 >/dev/null 2>"$tmp/e4"; rc=$?
[[ $rc -eq 2 ]] && grep -q "device 'gpu' is unknown: use auto, cpu, cuda or cuda:N" "$tmp/e4" ||
  bad "serve --device gpu (exit $rc): $(cat "$tmp/e4")"
"$kt" predict --model "$tmp/none.safetensors" "$img" >/dev/null 2>"$tmp/e2"; rc=$?
[[ $rc -ne 0 ]] && grep -q "check the checkpoint path" "$tmp/e2" && ! grep -q -- "--device cpu" "$tmp/e2" ||
  bad "predict with a missing checkpoint (exit $rc): $(cat "$tmp/e2")"

kill -TERM "$pid"; wait "$pid"; rc=$?; pid=""
[[ $rc -eq 0 ]] || bad "server exit status $rc after SIGTERM"
grep -q "SIGTERM received, stopping" "$tmp/log" || bad "no clean stop in the log"
# --max-batch: 8 concurrent uploads all answered, each counted with the size of the batch that
# answered it; a bad --max-batch is a usage error naming it.
"$kt" serve --model "$ckpt" --db "$tmp/kb.db" --port 0 --threads 8 --max-batch 4 2>"$tmp/logb" &
pidb=$!
for _ in $(seq 300); do grep -q "listening on" "$tmp/logb" && break; sleep 0.1; done
portb=$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$tmp/logb")
baseb=http://127.0.0.1:$portb
grep -q "up to 4 concurrent predictions share a forward" "$tmp/logb" || bad "--max-batch start line: $(cat "$tmp/logb")"
curl -s -X POST "$baseb/register" -H 'Content-Type: application/json' \
  -d '{"name": "Bo", "email": "bo@example.com", "password": "bo-secret-12"}' >/dev/null
tokb=$(curl -s -X POST "$baseb/token" -d 'username=bo@example.com&password=bo-secret-12' |
       sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
for i in $(seq 8); do
  curl -s -o "$tmp/b$i" -w '%{http_code}\n' -X POST "$baseb/predict" -H "Authorization: Bearer $tokb" \
    -F "file=@$img;type=image/jpeg" >"$tmp/bc$i" &
done
wait $(jobs -p | grep -v "^$pidb$")
for i in $(seq 8); do
  [[ $(cat "$tmp/bc$i") == 200 ]] && grep -q '"predicted_stage"' "$tmp/b$i" || bad "batched predict $i: $(cat "$tmp/bc$i") $(cat "$tmp/b$i")"
done
curl -s "$baseb/metrics" >"$tmp/metricsb"
grep -q '^keratrack_predict_batch_size_count 8$' "$tmp/metricsb" || bad "batch sizes: $(grep batch_size "$tmp/metricsb")"
awk '/^keratrack_predict_batch_size\{quantile="0.99"\}/ { ok = $2 >= 1 && $2 <= 4 } END { exit !ok }' "$tmp/metricsb" ||
  bad "batch size quantiles: $(grep batch_size "$tmp/metricsb")"
kill -TERM "$pidb"; wait "$pidb"
"$kt" serve --model "$ckpt" --port 0 --max-batch 65 >/dev/null 2>"$tmp/e5"; rc=$?
[[ $rc -eq 2 ]] && grep -q -- "--max-batch" "$tmp/e5" || bad "serve --max-batch 65 (exit $rc): $(cat "$tmp/e5")"

[[ $fail -eq 0 ]] && echo "test_serve_predict: ok (stage $stage, confidence $conf)"
[[ $fail -eq 0 ]] || { echo "server log (last 30 lines):"; tail -n 30 "$tmp/log"; }
exit $fail
