#!/usr/bin/env bash
# The web page in headless Chromium: sign up, diet assessment and dashboard, and (with a model from
# `keratrack train`) a real photo from ../shared/datasets/hair-samples uploaded and its stage read
# off the page. Skips with the reason when chromium/chromedriver/selenium or the model are missing.
# usage: test_web_browser.sh <keratrack> <source-dir> <build-dir>
set -u
kt=$1; src=$2; build=$3
for tool in /usr/bin/chromium /usr/bin/chromedriver; do
  [[ -x $tool ]] || { echo "SKIP: $tool is not installed (scripts/install-deps.sh --tests)"; exit 77; }
done
/usr/bin/python3 -c "import selenium" 2>/dev/null || { echo "SKIP: python3-selenium is not installed"; exit 77; }
if [[ -n ${KT_SANITIZED:-} ]]; then echo "SKIP: not run under sanitizers (Chromium and a browser session are too slow there)"; exit 77; fi
ckpt=$(bash "$src/tests/serve/make_test_model.sh" "$kt" "$build" 2>"$build/serve_test_model.err"); mrc=$?
[[ $mrc -ne 0 && $mrc -ne 77 ]] && { cat "$build/serve_test_model.err"; exit 1; }
img=-
if [[ $mrc -eq 0 ]]; then
  img=$(ls "$src"/../shared/datasets/hair-samples/*.jpg 2>/dev/null | head -1)
  [[ -n $img ]] || { echo "SKIP: ../shared/datasets/hair-samples is absent (the upload needs a real photo)"; exit 77; }
fi
tmp=$(mktemp -d); pid=""
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
args=(serve --db "$tmp/web.db" --port 0 --threads 4 --quiet)
[[ $img != - ]] && args+=(--model "$ckpt")
"$kt" "${args[@]}" 2>"$tmp/log" &
pid=$!
for _ in $(seq 300); do grep -q "listening on" "$tmp/log" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$tmp/log")
[[ -n $port ]] || { echo "server did not start:"; cat "$tmp/log"; exit 1; }
/usr/bin/python3 "$src/tests/serve/web_browser.py" "http://127.0.0.1:$port" "$img" || exit 1
if [[ $img == - ]]; then
  echo "SKIP (upload part): $(cat "$build/serve_test_model.err") — sign-up and diet dashboard passed"
  exit 77
fi
echo "test_web_browser: ok"
