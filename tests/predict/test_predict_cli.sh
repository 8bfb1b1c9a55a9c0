#!/usr/bin/env bash
# keratrack predict from the command line: a folder stands for its JPEG/PNG files in name order
# (other files, hidden files and subfolders left out), --csv writes the same answers as --json and
# only when the whole run succeeded, and bad input (an empty folder, a count that is not a number,
# an unwritable --csv, an image that does not decode) is an error naming what is at fault.
# usage: test_predict_cli.sh <keratrack> <source-dir> <build-dir>
set -u
kt=$1; src=$2; build=$3
ckpt=$(bash "$src/tests/serve/make_test_model.sh" "$kt" "$build" 2>"$build/predict_cli_model.err")
rc=$?
if [[ $rc -eq 77 ]]; then echo "SKIP: $(cat "$build/predict_cli_model.err")"; exit 77; fi
[[ $rc -eq 0 ]] || { cat "$build/predict_cli_model.err"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# a folder: 5 images under mixed-case extensions, plus what must be left out
mkdir -p "$tmp/imgs/sub"
i=0
for f in $(ls "$build"/serve_test_model/data/*/*.jpg | head -n 5); do
  case $i in 0) ext=jpg;; 1) ext=JPG;; 2) ext=jpeg;; 3) ext=Jpg;; *) ext=jpg;; esac
  cp "$f" "$tmp/imgs/img_$i.$ext"; i=$((i + 1))
done
echo "notes" >"$tmp/imgs/readme.txt"
cp "$tmp/imgs/img_0.jpg" "$tmp/imgs/.hidden.jpg"
cp "$tmp/imgs/img_0.jpg" "$tmp/imgs/sub/deeper.jpg"

"$kt" predict --model "$ckpt" --device cpu --json "$tmp/imgs" >"$tmp/dir.json" 2>"$tmp/dir.err" || bad "folder: $(cat "$tmp/dir.err")"
want=$(printf '%s\n' img_0.jpg img_1.JPG img_2.jpeg img_3.Jpg img_4.jpg)
got=$(sed -n 's/.*"image":[[:space:]]*"\([^"]*\)".*/\1/p' "$tmp/dir.json" | xargs -n1 basename)
[[ $got == "$want" ]] || bad "folder images: $(echo $got) (want $(echo $want))"
"$kt" predict --model "$ckpt" --device cpu --json "$tmp"/imgs/img_0.jpg "$tmp"/imgs/img_1.JPG "$tmp"/imgs/img_2.jpeg \
  "$tmp"/imgs/img_3.Jpg "$tmp"/imgs/img_4.jpg >"$tmp/files.json" 2>/dev/null
cmp -s "$tmp/dir.json" "$tmp/files.json" || bad "the folder's answers differ from its files listed one by one"

# --csv: one row per image with the JSON's class and probabilities, in several batches
"$kt" predict --model "$ckpt" --device cpu --batch 2 --csv "$tmp/out.csv" "$tmp/imgs" >/dev/null 2>"$tmp/csv.err" ||
  bad "--csv: $(cat "$tmp/csv.err")"
head -n 1 "$tmp/out.csv" | grep -q '^image,predicted_stage,confidence,LEVEL_2,LEVEL_3,LEVEL_4,LEVEL_5$' ||
  bad "CSV header: $(head -n 1 "$tmp/out.csv")"
[[ $(($(wc -l <"$tmp/out.csv") - 1)) -eq 5 ]] || bad "CSV rows: $(wc -l <"$tmp/out.csv") lines"
jstages=$(sed -n 's/.*"predicted_stage":[[:space:]]*"\([^"]*\)".*/\1/p' "$tmp/dir.json")
cstages=$(tail -n +2 "$tmp/out.csv" | cut -d, -f2)
[[ $jstages == "$cstages" ]] || bad "CSV classes $(echo $cstages) vs JSON $(echo $jstages)"
jconf=$(sed -n 's/.*"confidence":[[:space:]]*\([0-9.eE+-]*\).*/\1/p' "$tmp/dir.json")
cconf=$(tail -n +2 "$tmp/out.csv" | cut -d, -f3)
paste <(echo "$jconf") <(echo "$cconf") | awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-6) { print; exit 1 } }' >"$tmp/diff" ||
  bad "CSV confidences differ from JSON: $(cat "$tmp/diff")"
awk -F, 'NR > 1 { s = $4 + $5 + $6 + $7; if (s < 0.999 || s > 1.001) { print; exit 1 } }' "$tmp/out.csv" >"$tmp/sum" ||
  bad "CSV probabilities do not sum to 1: $(cat "$tmp/sum")"

# --fast-decode: a 512 px JPEG decoded at a reduced scale answers close to the exact decode, not equal
"$kt" synth --out "$tmp/big" --classes 2 --per-class 2 --size 512 --seed 4 >/dev/null 2>&1 || bad "synth 512 px"
bigimg=$(ls "$tmp"/big/train/*.jpg | head -n 1)
"$kt" predict --model "$ckpt" --device cpu --csv "$tmp/exact.csv" "$bigimg" >/dev/null 2>&1 || bad "exact decode"
"$kt" predict --model "$ckpt" --device cpu --fast-decode --csv "$tmp/fast.csv" "$bigimg" >/dev/null 2>"$tmp/fast.err" ||
  bad "--fast-decode: $(cat "$tmp/fast.err")"
paste -d, <(tail -n 1 "$tmp/exact.csv" | cut -d, -f4-) <(tail -n 1 "$tmp/fast.csv" | cut -d, -f4-) |
  awk -F, '{ n = NF / 2; m = 0; for (i = 1; i <= n; i++) { d = $i - $(i + n); if (d < 0) d = -d; if (d > m) m = d }
             print m; exit !(m > 0 && m < 0.02) }' >"$tmp/fastdiff" ||
  bad "--fast-decode moved the probabilities by $(cat "$tmp/fastdiff") (want 0 < d < 0.02)"

# a multi-label model (trained here, 2 folds x 1 epoch): predict's fold-ensemble probabilities are
# per-class sigmoids, those the training run wrote for its test split (test_probs_*.csv), and the
# classes at >= 0.5 are its predicted_labels
"$kt" synth --out "$tmp/ml" --classes 3 --per-class 8 --size 48 --multilabel --seed 2 >/dev/null 2>&1 || bad "synth --multilabel"
"$kt" train --data "$tmp/ml" --out "$tmp/mlrun" --model smallcnn --img-size 32 --folds 2 --epochs 1 --batch 4 --quiet --no-plots \
  >/dev/null 2>"$tmp/mltrain.err" || bad "multi-label training: $(cat "$tmp/mltrain.err")"
"$kt" predict --device cpu --model "$tmp/mlrun/smallcnn_fold1_best.safetensors" --model "$tmp/mlrun/smallcnn_fold2_best.safetensors" \
  --csv "$tmp/ml.csv" "$tmp/ml/test" >/dev/null 2>"$tmp/mlpred.err" || bad "multi-label predict: $(cat "$tmp/mlpred.err")"
head -n 1 "$tmp/ml.csv" | grep -q '^image,predicted_stage,confidence,predicted_labels,' || bad "multi-label CSV header: $(head -n 1 "$tmp/ml.csv")"
# both files list the test images in name order: compare the probabilities row by row
paste -d, <(tail -n +2 "$tmp/ml.csv" | awk -F, '{ print $(NF-2) "," $(NF-1) "," $NF "," $4 }') \
          <(tail -n +2 "$tmp/mlrun/test_probs_smallcnn.csv" | awk -F, '{ print $(NF-2) "," $(NF-1) "," $NF }') |
  awk -F, '{ for (i = 1; i <= 3; i++) { d = $i - $(i + 4); if (d < 0) d = -d; if (d > 1e-5) { print "row " NR ": " $0; exit 1 } }
             n = 0; for (i = 1; i <= 3; i++) n += $i >= 0.5; m = split($4, l, ";"); if ($4 == "") m = 0
             if (m != n) { print "row " NR " labels " $4 " for " n " classes >= 0.5"; exit 1 } rows++ }
           END { if (rows < 4) { print rows " rows"; exit 1 } }' >"$tmp/mldiff" ||
  bad "multi-label probabilities or labels: $(cat "$tmp/mldiff")"
"$kt" predict --device cpu --model "$tmp/mlrun/smallcnn_fold1_best.safetensors" --json "$(ls "$tmp"/ml/test/*.jpg | head -n 1)" \
  2>/dev/null | grep -q '"predicted_labels"' || bad "multi-label JSON has no predicted_labels"
"$kt" predict --device cpu --model "$tmp/mlrun/smallcnn_fold1_best.safetensors" --model "$ckpt" "$(ls "$tmp"/ml/test/*.jpg | head -n 1)" \
  >/dev/null 2>"$tmp/e6"; rc=$?
[[ $rc -eq 1 ]] && grep -q "an ensemble needs one task" "$tmp/e6" || bad "a mixed ensemble (exit $rc): $(cat "$tmp/e6")"

# errors
mkdir -p "$tmp/empty"
"$kt" predict --model "$ckpt" --device cpu "$tmp/empty" >/dev/null 2>"$tmp/e1"; rc=$?
[[ $rc -eq 1 ]] && grep -q "folder $tmp/empty holds no" "$tmp/e1" || bad "empty folder (exit $rc): $(cat "$tmp/e1")"
for opt in --batch --top --threads; do
  "$kt" predict --model "$ckpt" --device cpu $opt 2x "$tmp/imgs" >/dev/null 2>"$tmp/e2"; rc=$?
  [[ $rc -eq 2 ]] && grep -q -- "$opt needs a whole number" "$tmp/e2" || bad "$opt 2x (exit $rc): $(cat "$tmp/e2")"
done
"$kt" predict --model "$ckpt" --device cpu --csv "$tmp/nofolder/out.csv" "$tmp/imgs" >"$tmp/o3" 2>"$tmp/e3"; rc=$?
[[ $rc -eq 1 && ! -s $tmp/o3 ]] && grep -q "nofolder/out.csv" "$tmp/e3" ||
  bad "unwritable --csv must fail before predicting (exit $rc, stdout $(wc -c <"$tmp/o3") bytes): $(cat "$tmp/e3")"
echo "not an image" >"$tmp/imgs/zz_broken.png"
echo "old" >"$tmp/keep.csv"
"$kt" predict --model "$ckpt" --device cpu --batch 2 --csv "$tmp/keep.csv" "$tmp/imgs" >/dev/null 2>"$tmp/e4"; rc=$?
[[ $rc -eq 1 ]] && grep -q "zz_broken.png" "$tmp/e4" || bad "broken image (exit $rc): $(cat "$tmp/e4")"
[[ $(cat "$tmp/keep.csv") == old ]] || bad "a failed run replaced the CSV"
ls "$tmp" | grep -q '\.tmp\.' && bad "a temporary CSV was left: $(ls "$tmp")"

[[ $fail -eq 0 ]] && echo "test_predict_cli: ok"
exit $fail
