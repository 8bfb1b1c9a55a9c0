#!/usr/bin/env bash
# The training acceptance benchmark (issue 5): `keratrack train` from scratch on
# ../shared/datasets/nail-disease (4 classes, 979/123/123 images), convnext_atto at 128 px, 5 folds,
# the seed's recipe otherwise (batch 16, AdamW lr 3e-4 wd 1e-4, OneCycleLR, label smoothing 0.1,
# seed 42), then optionally the same recipe in PyTorch + timm on the very same folds
# (tests/reference/train_nail_ref.py). Prints test accuracy (fold ensemble), OOF accuracy and wall
# time of each, and the commands that made them.
#
# usage: bench/train_nail.sh [--build DIR] [--epochs N] [--out DIR] [--threads N] [--pytorch]
#   --build DIR   build folder holding the keratrack program (default build)
#   --epochs N    epochs per fold (default 8, the seed's)
#   --out DIR     run folder (default runs/bench_nail); the PyTorch results go to DIR/pytorch.json
#   --threads N   compute threads of both (default 2)
#   --pytorch     also run the PyTorch reference (needs .venv with timm, see tests/reference/)
#
# Both run with OpenBLAS's own core detection (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset) and
# PyTorch with its fastest settings here (../shared/PERFORMANCE.md). On a shared machine wall times
# are noisy: compare them only from runs made side by side on a quiet machine.
set -eu
cd "$(dirname "$0")/.."
BUILD=build EPOCHS=8 OUT=runs/bench_nail THREADS=2 PYTORCH=0
while [ $# -gt 0 ]; do
    case "$1" in
    --build) BUILD="$2"; shift 2 ;;
    --epochs) EPOCHS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --pytorch) PYTORCH=1; shift ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "train_nail.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
DATA=../shared/datasets/nail-disease
if [ ! -d "$DATA" ]; then
    echo "train_nail.sh: $DATA is absent: this benchmark needs the shared nail-disease dataset" >&2
    exit 77
fi
KT="$BUILD/keratrack"
[ -x "$KT" ] || { echo "train_nail.sh: $KT not built (cmake --build $BUILD)" >&2; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT"
ENV=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
CMD=("$KT" train --data "$DATA" --model convnext_atto --img-size 128 --folds 5 --epochs "$EPOCHS" --batch 16
    --lr 3e-4 --weight-decay 1e-4 --label-smoothing 0.1 --seed 42 --threads "$THREADS" --workers 2 --out "$OUT")
echo "command: ${ENV[*]} ${CMD[*]}"
t0=$(date +%s.%N)
/usr/bin/time -f "keratrack: %e s wall, %U s user, peak RSS %M KB" "${ENV[@]}" "${CMD[@]}" 2> >(grep --line-buffered -v '\] ' >&2) | tee "$OUT/summary.txt"
t1=$(date +%s.%N)
ours_test=$(grep -o '"accuracy":[^,]*' "$OUT/convnext_atto/test/eval_report.json" | head -1 | cut -d: -f2 | tr -d '\t ')
ours_oof=$(grep -o '"accuracy":[^,]*' "$OUT/convnext_atto/oof/eval_report.json" | head -1 | cut -d: -f2 | tr -d '\t ')
ours_s=$(echo "$t1 - $t0" | bc)

if [ "$PYTORCH" = 1 ]; then
    PY=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp
        GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736 .venv/bin/python -u
        tests/reference/train_nail_ref.py --data "$DATA" --folds-csv "$OUT/folds.csv" --model convnext_atto --img-size 128
        --epochs "$EPOCHS" --batch 16 --lr 3e-4 --weight-decay 1e-4 --label-smoothing 0.1 --seed 42 --threads "$THREADS"
        --workers 2 --json "$OUT/pytorch.json")
    echo "command: ${PY[*]}"
    /usr/bin/time -f "pytorch: %e s wall, %U s user, peak RSS %M KB" "${PY[@]}" 2>&1 | grep -v "Error importing huggingface" \
        | tee "$OUT/pytorch.log" | grep --line-buffered -E "done|wall|accuracy"
fi

echo
echo "| run (convnext_atto, 128 px, 5 folds x $EPOCHS epochs, batch 16, $THREADS threads) | TEST acc (fold ensemble) | OOF acc | wall |"
echo "|---|---|---|---|"
printf "| keratrack train | %.4f | %.4f | %.0f s |\n" "$ours_test" "$ours_oof" "$ours_s"
if [ "$PYTORCH" = 1 ] && [ -f "$OUT/pytorch.json" ]; then
    pt_test=$(grep -o '"test_accuracy": [0-9.]*' "$OUT/pytorch.json" | cut -d' ' -f2)
    pt_oof=$(grep -o '"oof_accuracy": [0-9.]*' "$OUT/pytorch.json" | cut -d' ' -f2)
    pt_s=$(grep -o '"seconds": [0-9.]*' "$OUT/pytorch.json" | cut -d' ' -f2)
    printf "| PyTorch %s + timm %s | %.4f | %.4f | %.0f s |\n" \
        "$(grep -o '"torch": "[^"]*' "$OUT/pytorch.json" | cut -d'"' -f4)" \
        "$(grep -o '"timm": "[^"]*' "$OUT/pytorch.json" | cut -d'"' -f4)" "$pt_test" "$pt_oof" "$pt_s"
fi
