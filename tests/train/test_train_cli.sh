#!/usr/bin/env bash
# keratrack train / eval end to end through the program: --help covers every option, a run writes
# its files and summary, Ctrl-C (SIGINT) stops with a resumable state and --resume ends bit-identical
# to an uninterrupted run, eval writes the report with temperature scaling, a full disk (ulimit -f)
# leaves no partial checkpoint, bad usage exits 2 with a message.
# Usage (ctest): bash test_train_cli.sh <keratrack> <source-dir> <build-dir>
set -u
KT="$1"
BUILD="$3"
TMP="$BUILD/kt_tmp_train_cli_$$"
rm -rf "$TMP" && mkdir -p "$TMP" || exit 1
FAILS=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
check() { if ! eval "$1"; then fail "$2"; fi; }

# --- --help documents every option ------------------------------------------------------------
"$KT" train --help > "$TMP/help.txt" || fail "train --help exits non-zero"
for opt in --data --model --models --folds --epochs --batch --lr --weight-decay --label-smoothing --img-size --seed \
    --out --holdout-valid --threads --init --drop-path --workers --device --clip-grad --no-decay-norms \
    --no-cycle-momentum --resume --strict --eval-batch --recompute --no-plots --stop-after-steps --precision; do
    grep -q -- "$opt" "$TMP/help.txt" || fail "train --help does not document $opt"
done
"$KT" eval --help > "$TMP/ehelp.txt" || fail "eval --help exits non-zero"
for opt in --model --data --split --temperature --calib-split --out --batch --workers --threads --device --precision; do
    grep -q -- "$opt" "$TMP/ehelp.txt" || fail "eval --help does not document $opt"
done

# --- usage errors: exit 2 and say what is wrong -------------------------------------------------
"$KT" synth --out "$TMP/data" --classes 3 --per-class 16 --size 32 --seed 4 > /dev/null 2>&1 || { echo "synth failed"; exit 1; }
usage() { # expected-text args...
    local want="$1"; shift
    "$KT" train "$@" > /dev/null 2> "$TMP/err.txt"
    local rc=$?
    [ $rc -eq 2 ] || fail "train $* exits $rc, not 2"
    grep -q -- "$want" "$TMP/err.txt" || fail "train $*: no '$want' in: $(cat "$TMP/err.txt")"
}
usage "at least 2 folds" --data "$TMP/data" --out "$TMP/x" --folds 1
usage "unknown model 'resnet50'" --data "$TMP/data" --out "$TMP/x" --model resnet50
usage "--data DIR is required" --out "$TMP/x"
usage "--lr" --data "$TMP/data" --out "$TMP/x" --lr abc
usage "unknown option" --data "$TMP/data" --out "$TMP/x" --bogus 1
usage "--precision bf16 needs --device cuda" --data "$TMP/data" --out "$TMP/x" --precision bf16
usage "--precision fp16 needs --device cuda" --data "$TMP/data" --out "$TMP/x" --precision fp16
usage "unknown precision 'fp7'" --data "$TMP/data" --out "$TMP/x" --precision fp7
# --device: the names engine/device_spec.c takes, the bad one quoted back with what is taken
usage "device 'gpu' is unknown: use cpu, cuda or cuda:N" --data "$TMP/data" --out "$TMP/x" --device gpu
usage "device 'cuda:x': the GPU index after 'cuda:' must be a number" --data "$TMP/data" --out "$TMP/x" --device cuda:x
usage "device 'cuda:-1'" --data "$TMP/data" --out "$TMP/x" --device cuda:-1
usage "device 'auto' is not taken here" --data "$TMP/data" --out "$TMP/x" --device auto
usage "see keratrack train --help" --data "$TMP/data" --out "$TMP/x" --device cuda:1x
usage "--precision bf16 needs --device cuda" --data "$TMP/data" --out "$TMP/x" --device cpu --precision bf16
"$KT" eval --model "$TMP/none.safetensors" --data "$TMP/data" --device cuda:x > /dev/null 2> "$TMP/err.txt"
rc=$?
check "[ $rc -eq 2 ] && grep -q \"keratrack eval: --device: device 'cuda:x'\" '$TMP/err.txt'" "eval --device cuda:x exits $rc: $(cat "$TMP/err.txt")"
check "[ ! -e '$TMP/x' ]" "a refused --precision left $TMP/x behind"

# --- --device cuda without a usable GPU: a clear error, exit 1, nothing written ------------------------
if "$KT" info | grep -q "GPU *none present"; then
    : > "$TMP/none.safetensors"
    for cmd in train eval train:1; do # train:1: --device cuda:1, the same error
        dev=cuda; [ $cmd = train:1 ] && cmd=train dev=cuda:1
        if [ $cmd = train ]; then args=(--data "$TMP/data" --out "$TMP/cuda_run" --device $dev)
        else args=(--model "$TMP/none.safetensors" --data "$TMP/data" --out "$TMP/cuda_run" --device $dev); fi
        "$KT" $cmd "${args[@]}" > /dev/null 2> "$TMP/err.txt"
        rc=$?
        check "[ $rc -eq 1 ]" "$cmd --device cuda without a GPU exits $rc, not 1"
        check "grep -q 'cuda backend' '$TMP/err.txt' && grep -q -- '--device cpu' '$TMP/err.txt'" \
            "$cmd --device cuda: unclear error: $(cat "$TMP/err.txt")"
        # (info says "none present" only in a build with CUDA) it is not told to build with CUDA:
        # the GPU or its driver is what is missing
        check "! grep -q 'KT_CUDA=ON' '$TMP/err.txt' && grep -q 'keratrack info' '$TMP/err.txt'" \
            "$cmd --device cuda in a CUDA build: $(cat "$TMP/err.txt")"
        check "[ ! -e '$TMP/cuda_run' ]" "$cmd --device cuda without a GPU wrote $TMP/cuda_run"
    done
fi

COMMON=(--data "$TMP/data" --model smallcnn --img-size 32 --folds 2 --epochs 4 --batch 8 --lr 3e-3 --threads 1 --no-plots)

# --- an uninterrupted run --------------------------------------------------------------------------
"$KT" train "${COMMON[@]}" --out "$TMP/straight" > "$TMP/out.txt" 2> "$TMP/log.txt"
rc=$?
check "[ $rc -eq 0 ]" "train exits $rc: $(tail -3 "$TMP/log.txt")"
check "grep -q 'smallcnn: 2 folds, 24 steps' '$TMP/out.txt'" "summary line: $(cat "$TMP/out.txt")"
check "grep -q 'fold 2/2 epoch  4/4  train loss' '$TMP/log.txt'" "no epoch line in the log"
for f in smallcnn_fold1_best.safetensors smallcnn_fold2_best.safetensors oof_probs_smallcnn.csv test_probs_smallcnn.csv \
    meta_smallcnn.csv folds.csv smallcnn/metrics.jsonl smallcnn/oof/eval_report.json smallcnn/test/eval_report.json \
    smallcnn/test/classification_report.txt; do
    check "[ -f '$TMP/straight/$f' ]" "missing $f"
done

# --- Ctrl-C, then --resume ---------------------------------------------------------------------------
"$KT" train "${COMMON[@]}" --out "$TMP/stopped" > "$TMP/out2.txt" 2> "$TMP/log2.txt" &
pid=$!
for _ in $(seq 1 1200); do # until the training loop starts (at most 60 s); the run takes a second or more
    grep -q '^training smallcnn' "$TMP/log2.txt" 2> /dev/null && break
    kill -0 $pid 2> /dev/null || break
    sleep 0.05
done
kill -INT $pid 2> /dev/null
wait $pid
rc=$?
if [ $rc -eq 130 ]; then
    check "grep -q 'continue with the same command plus --resume' '$TMP/log2.txt'" "no resume hint: $(tail -2 "$TMP/log2.txt")"
    check "[ -f '$TMP/stopped/smallcnn/resume.state.safetensors' ] && [ -f '$TMP/stopped/smallcnn/resume.safetensors' ]" \
        "no state after Ctrl-C"
    "$KT" train "${COMMON[@]}" --out "$TMP/stopped" > /dev/null 2> "$TMP/log3.txt"
    rc=$?
    check "[ $rc -eq 1 ] && grep -q 'unfinished run' '$TMP/log3.txt'" "an unfinished run was overwritten without --resume"
    "$KT" train "${COMMON[@]}" --out "$TMP/stopped" --resume > "$TMP/out3.txt" 2> "$TMP/log3.txt"
    rc=$?
    check "[ $rc -eq 0 ]" "--resume exits $rc: $(tail -3 "$TMP/log3.txt")"
    check "grep -q 'resuming at fold' '$TMP/log3.txt'" "the resumed run does not say where it resumes"
else
    fail "Ctrl-C: exit status $rc, not 130 ($(tail -2 "$TMP/log2.txt"))"
fi
for f in smallcnn_fold1_best.safetensors smallcnn_fold2_best.safetensors oof_probs_smallcnn.csv test_probs_smallcnn.csv; do
    check "cmp -s '$TMP/straight/$f' '$TMP/stopped/$f'" "$f differs between the interrupted+resumed and the straight run"
done

# --- eval: fold ensemble with temperature scaling fitted on VALID ----------------------------------------
"$KT" eval --model "$TMP/straight/smallcnn_fold1_best.safetensors" "$TMP/straight/smallcnn_fold2_best.safetensors" \
    --data "$TMP/data" --split test --temperature auto --out "$TMP/ev" --threads 1 --no-plots > "$TMP/eout.txt" 2> "$TMP/elog.txt"
rc=$?
check "[ $rc -eq 0 ]" "eval exits $rc: $(tail -2 "$TMP/elog.txt")"
check "grep -q 'temperature fitted on valid' '$TMP/eout.txt' && grep -q 'ECE (top label)' '$TMP/eout.txt'" \
    "eval does not report the temperature and ECE before/after: $(cat "$TMP/eout.txt")"
check "grep -q '\"temperature\"' '$TMP/ev/eval_report.json' && grep -q '\"calibrated\"' '$TMP/ev/eval_report.json'" \
    "eval_report.json lacks the temperature / calibrated blocks"
check "[ -f '$TMP/ev/test_probs_ensemble2.csv' ]" "eval wrote no probabilities CSV"
# the single fold-1 checkpoint scores the TEST split as train's own report of it does not (that is the
# ensemble); the ensemble's accuracy equals train's TEST report
a=$(grep -o '"accuracy":[^,]*' "$TMP/ev/eval_report.json" | head -1)
b=$(grep -o '"accuracy":[^,]*' "$TMP/straight/smallcnn/test/eval_report.json" | head -1)
check "[ '$a' = '$b' ]" "eval's ensemble accuracy ($a) differs from train's TEST report ($b)"
# a truncated TEST image: skipped, and said (a report on fewer images than the split names them)
cp -r "$TMP/data" "$TMP/data_bad"
bad=$(ls "$TMP/data_bad/test/"*.jpg | head -1)
head -c 200 "$bad" > "$bad.cut" && mv "$bad.cut" "$bad"
"$KT" eval --model "$TMP/straight/smallcnn_fold1_best.safetensors" --data "$TMP/data_bad" --out "$TMP/evbad" --no-plots \
    > "$TMP/eoutbad.txt" 2> "$TMP/elogbad.txt"
rc=$?
check "[ $rc -eq 0 ] && grep -q 'skipped 0 bad CSV rows and 1 bad images' '$TMP/elogbad.txt' && grep -qF '$(basename "$bad")' '$TMP/elogbad.txt'" \
    "eval with a truncated test image: rc $rc, no note naming it: $(cat "$TMP/elogbad.txt")"
# a checkpoint of other classes
"$KT" synth --out "$TMP/data4" --classes 4 --per-class 4 --size 32 > /dev/null 2>&1
"$KT" eval --model "$TMP/straight/smallcnn_fold1_best.safetensors" --data "$TMP/data4" --out "$TMP/ev4" > /dev/null 2> "$TMP/elog4.txt"
rc=$?
check "[ $rc -eq 1 ] && grep -q 'classes' '$TMP/elog4.txt'" "eval on other classes: rc $rc, $(cat "$TMP/elog4.txt")"

# --- a full disk while saving: no partial checkpoint -----------------------------------------------------
(
    trap '' XFSZ # writes past the limit fail with EFBIG instead of killing the process
    ulimit -f 64 # KiB per file: folds.csv fits, a 377 KB checkpoint does not
    exec "$KT" train "${COMMON[@]}" --epochs 1 --out "$TMP/full" > /dev/null 2> "$TMP/flog.txt"
)
rc=$?
check "[ $rc -eq 1 ]" "full disk: exit $rc, not 1"
check "grep -q 'smallcnn_fold1_best.safetensors' '$TMP/flog.txt'" "full disk: the error does not name the checkpoint: $(cat "$TMP/flog.txt")"
n=$(find "$TMP/full" -name '*.safetensors' -o -name '*.tmp.*' | wc -l)
check "[ $n -eq 0 ]" "full disk: $n checkpoint or temporary files left"

if [ $FAILS -eq 0 ]; then
    rm -rf "$TMP"
    echo "PASS test_train_cli"
    exit 0
fi
echo "$FAILS failure(s); files kept in $TMP"
exit 1
