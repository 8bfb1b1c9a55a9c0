#!/bin/bash
# One prepared GPU session (H100/H200, sm_90): builds with CUDA (Release), runs `ctest -L cuda`, the
# GPU kernel and model benchmarks (kt_gpu_bench) and, when torch with CUDA imports, the PyTorch
# counterpart; writes $OUT/results.md (tables) and $OUT/logs/ (raw output). Each step has a time
# limit inside one overall budget (KT_GPU_BUDGET_S, default 480 s), so the whole run fits one
# 10-minute device command. Run from anywhere:  OUT=/some/dir bash bench/gpu/run_gpu_checks.sh
# Environment: OUT (default ./gpu_out), BUILD (default <repo>/build-gpu), KT_GPU_BUDGET_S, PYTHON.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$PWD/gpu_out}
BUILD=${BUILD:-$ROOT/build-gpu}
BUDGET=${KT_GPU_BUDGET_S:-480}
START=$(date +%s)
DEADLINE=$((START + BUDGET))
LOGS=$OUT/logs
RES=$OUT/results.md
mkdir -p "$LOGS"
: > "$LOGS/steps.log"

say() { echo "[$(date +%H:%M:%S) +$(($(date +%s) - START))s] $*" | tee -a "$LOGS/steps.log"; }
left() { echo $((DEADLINE - $(date +%s))); }
# limit STEP_MAX: the smaller of STEP_MAX and what the budget has left (at least 5 s)
limit() { local l; l=$(left); [ "$l" -lt "$1" ] || l=$1; [ "$l" -gt 5 ] || l=5; echo "$l"; }
section() { printf '\n## %s\n\n' "$1" >> "$RES"; }
fence() { echo '```' >> "$RES"; cat "$1" >> "$RES"; echo '```' >> "$RES"; }

GPU=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
{
    echo "# Keratrack GPU checks"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- card: ${GPU:-unknown (nvidia-smi failed)}"
    echo "- commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with local changes)')"
    echo "- host: $(nproc) CPUs; command: OUT=$OUT bash bench/gpu/run_gpu_checks.sh"
} > "$RES"
nvidia-smi > "$LOGS/nvidia-smi.txt" 2>&1

# ---- 1. build -----------------------------------------------------------------------------------
say "configure + build (Release, CUDA) in $BUILD"
section "Build"
if timeout "$(limit 60)" cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DKT_CUDA=ON > "$LOGS/configure.log" 2>&1 &&
    timeout "$(limit 300)" cmake --build "$BUILD" -j"$(nproc)" > "$LOGS/build.log" 2>&1; then
    grep -E '\[x\]|\[ \]' "$LOGS/configure.log" | sed 's/^-- */- /' >> "$RES"
    say "build ok"
else
    echo "Build FAILED (see logs/configure.log, logs/build.log); last lines:" >> "$RES"
    tail -n 30 "$LOGS/build.log" "$LOGS/configure.log" > "$LOGS/build_tail.txt" 2>/dev/null
    fence "$LOGS/build_tail.txt"
    say "build failed: stopping"
    exit 1
fi

# ---- 2. the cuda tests --------------------------------------------------------------------------
say "ctest -L cuda"
section "Tests: ctest -L cuda"
(cd "$BUILD" && OMP_NUM_THREADS=4 timeout "$(limit 240)" ctest -L cuda -j4 -V --timeout 200) > "$LOGS/ctest_cuda.log" 2>&1
echo "exit status $?" >> "$LOGS/ctest_cuda.log"
grep -E 'tests passed|tests failed|\*\*\*Failed|Timeout|Not Run|exit status' "$LOGS/ctest_cuda.log" > "$LOGS/ctest_summary.txt"
echo "skipped: $(grep -c '(Skipped)' "$LOGS/ctest_cuda.log")" >> "$LOGS/ctest_summary.txt"
grep -E '(FAIL|SKIP) test_' "$LOGS/ctest_cuda.log" | head -40 >> "$LOGS/ctest_summary.txt"
fence "$LOGS/ctest_summary.txt"
grep -hE 'worst gradient|loss GPU' "$LOGS/ctest_cuda.log" > "$LOGS/parity_lines.txt" 2>/dev/null
if [ -s "$LOGS/parity_lines.txt" ]; then echo "Parity lines printed by the model tests:" >> "$RES"; fence "$LOGS/parity_lines.txt"; fi
say "tests done: $(grep -E 'tests passed' "$LOGS/ctest_cuda.log" || echo 'no summary')"

# ---- 3. kernel benchmarks -----------------------------------------------------------------------
say "kernel benchmarks"
section "Kernels (ConvNeXt-tiny batch-64 shapes)"
QUICK=""
[ "$(left)" -gt 300 ] || QUICK=--quick
timeout "$(limit 120)" "$BUILD/kt_gpu_bench" kernels $QUICK > "$LOGS/kernels.md" 2> "$LOGS/kernels.err"
echo "(exit status $?)" >> "$LOGS/kernels.md"
cat "$LOGS/kernels.md" >> "$RES"
[ -s "$LOGS/kernels.err" ] && fence "$LOGS/kernels.err"

# ---- 4. model benchmarks ------------------------------------------------------------------------
say "model benchmarks"
section "Models on the CUDA backend (224x224, 6 classes)"
CASES="train:convnext_tiny:64:224 train:convnext_base:64:224 infer:convnext_tiny:1:224 infer:convnext_base:1:224 infer:convnext_tiny:64:224 infer:convnext_base:64:224"
# shellcheck disable=SC2086
timeout "$(limit 200)" "$BUILD/kt_gpu_bench" model --tf32 --warmup 2 --iters 5 $CASES > "$LOGS/models_tf32.md" 2> "$LOGS/models.err"
echo "(exit status $?)" >> "$LOGS/models_tf32.md"
cat "$LOGS/models_tf32.md" >> "$RES"
if [ "$(left)" -gt 200 ]; then
    echo >> "$RES"
    timeout "$(limit 90)" "$BUILD/kt_gpu_bench" model --bf16 --warmup 2 --iters 5 train:convnext_tiny:64:224 train:convnext_base:64:224 \
        > "$LOGS/models_bf16.md" 2>> "$LOGS/models.err"
    echo "(exit status $?)" >> "$LOGS/models_bf16.md"
    cat "$LOGS/models_bf16.md" >> "$RES"
fi
if [ "$(left)" -gt 150 ]; then
    echo >> "$RES"
    timeout "$(limit 60)" "$BUILD/kt_gpu_bench" model --warmup 2 --iters 5 train:convnext_tiny:64:224 > "$LOGS/models_fp32.md" 2>> "$LOGS/models.err"
    echo "(exit status $?)" >> "$LOGS/models_fp32.md"
    cat "$LOGS/models_fp32.md" >> "$RES"
fi
[ -s "$LOGS/models.err" ] && fence "$LOGS/models.err"

# ---- 5. PyTorch on the same card ----------------------------------------------------------------
say "keratrack train/eval --device cuda (smoke run on synthetic data)"
section "keratrack train --device cuda (convnext_atto, synthetic 4 classes, 2 folds x 2 epochs, 64 px)"
if [ "$(left)" -gt 90 ]; then
    SM="$OUT/smoke"
    rm -rf "$SM"
    {
        "$BUILD/keratrack" synth --out "$SM/data" --classes 4 --per-class 40 --size 64 --seed 3 &&
            timeout "$(limit 60)" "$BUILD/keratrack" train --device cuda --data "$SM/data" --out "$SM/run" \
                --model convnext_atto --img-size 64 --folds 2 --epochs 2 --batch 16 --lr 2e-3 --quiet --no-plots &&
            timeout "$(limit 30)" "$BUILD/keratrack" eval --device cuda --model "$SM"/run/convnext_atto_fold*_best.safetensors \
                --data "$SM/data" --split test --no-plots --out "$SM/eval"
        echo "exit status $?"
    } > "$LOGS/train_cuda.log" 2>&1
    grep -E 'folds, .* steps|accuracy|exit status|error|keratrack' "$LOGS/train_cuda.log" | tail -n 8 > "$LOGS/train_cuda_tail.txt"
    fence "$LOGS/train_cuda_tail.txt"
    rm -rf "$SM/data"
else
    echo "Out of time budget: not run." >> "$RES"
fi

section "PyTorch on the same GPU"
PY=""
for p in ${PYTHON:-} python3 /usr/bin/python3; do
    if [ -n "$p" ] && "$p" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' > /dev/null 2>&1; then PY=$p; break; fi
done
if [ -z "$PY" ]; then
    echo "No python with torch and CUDA here: PyTorch numbers not measured." >> "$RES"
    say "no torch with CUDA"
elif [ "$(left)" -lt 40 ]; then
    echo "Out of time budget before PyTorch ($(left) s left): not measured." >> "$RES"
    say "no time for PyTorch"
else
    say "PyTorch with $PY"
    MODES=eager,channels_last,amp_bf16
    [ "$(left)" -gt 150 ] || MODES=amp_bf16
    timeout "$(limit 200)" "$PY" "$ROOT/bench/gpu/pytorch_gpu_bench.py" --modes "$MODES" --json "$OUT/pytorch.json" \
        > "$LOGS/pytorch.md" 2> "$LOGS/pytorch.err"
    echo "(exit status $?)" >> "$LOGS/pytorch.md"
    cat "$LOGS/pytorch.md" >> "$RES"
    [ -s "$LOGS/pytorch.err" ] && { tail -n 20 "$LOGS/pytorch.err" > "$LOGS/pytorch_err_tail.txt"; fence "$LOGS/pytorch_err_tail.txt"; }
fi

printf '\nTotal time %d s (budget %d s).\n' $(($(date +%s) - START)) "$BUDGET" >> "$RES"
say "done: $RES"
