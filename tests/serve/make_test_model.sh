#!/usr/bin/env bash
# Makes (once per build folder) a small checkpoint for the server tests: `keratrack synth` writes a
# 4-class dataset, its class names become LEVEL_2..LEVEL_5 (so the diet engine can map the model's
# stages), and `keratrack train` trains a small CNN on it. Prints the checkpoint path on stdout.
# Exit 77 (with the reason on stderr) when `keratrack train` is not in this build yet.
#   make_test_model.sh <keratrack> <build-dir>
set -u
kt=$1; build=$2
out=$build/serve_test_model
if [[ -n ${KT_TEST_CKPT:-} ]]; then
  [[ -f $KT_TEST_CKPT ]] || { echo "KT_TEST_CKPT=$KT_TEST_CKPT does not exist" >&2; exit 1; }
  echo "$KT_TEST_CKPT"; exit 0
fi
if ! "$kt" train --help >/dev/null 2>&1; then
  echo "keratrack train is not built yet: the cases that need a trained model are skipped" >&2
  exit 77
fi
# Tests running in parallel (ctest -j) share the model: one makes it, the others wait for it.
exec 9>"$build/serve_test_model.lock"
flock 9
# Reuse a finished run only (the marker is written after train exited 0).
if [[ -f $out/done ]]; then cat "$out/done"; exit 0; fi
rm -rf "$out"; mkdir -p "$out"
"$kt" synth --out "$out/data" --classes 4 --per-class 16 --size 64 --seed 3 >"$out/synth.log" 2>&1 ||
  { echo "keratrack synth failed:" >&2; cat "$out/synth.log" >&2; exit 1; }
for split in train valid test; do
  csv=$out/data/$split/_classes.csv
  [[ -f $csv ]] || continue
  # Rename the classes in the header only: "filename, a, b, c, d" -> "filename, LEVEL_2, ...".
  awk -F', *' 'NR == 1 { printf "filename"; for (i = 2; i <= NF; i++) printf ", LEVEL_%d", i; print ""; next } { print }' \
    "$csv" >"$csv.new" && mv "$csv.new" "$csv"
done
"$kt" train --data "$out/data" --model smallcnn --out "$out/run" --folds 2 --epochs 2 --batch 8 --img-size 64 --quiet \
  --no-plots >"$out/train.log" 2>&1 || { echo "keratrack train failed:" >&2; tail -20 "$out/train.log" >&2; exit 1; }
ckpt=$(ls "$out"/run/*_fold1_best.safetensors 2>/dev/null | head -1)
[[ -n $ckpt ]] || { echo "keratrack train wrote no *_fold1_best.safetensors in $out/run" >&2; exit 1; }
echo "$ckpt" >"$out/done"
echo "$ckpt"
