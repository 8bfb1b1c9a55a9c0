#!/bin/bash
# One prepared GPU session (H100/H200, sm_90): builds with CUDA (Release), runs `ctest -L cuda`, the
# GPU kernel and model benchmarks (kt_gpu_bench) and, when torch with CUDA imports, the PyTorch
# counterpart; writes $OUT/results.md (tables) and $OUT/logs.tgz (raw output). Each step has a time
# limit inside one overall budget (KT_GPU_BUDGET_S, default 480 s), so the whole run fits one
# 10-minute device command. Run from anywhere:  OUT=/some/dir bash bench/gpu/run_gpu_checks.sh
# Environment: OUT (default ./gpu_out), KT_GPU_SKIP_PYTORCH (set: no PyTorch step), KT_GPU_TESTS_ONLY (set: the tests alone, for a short rerun), KT_GPU_LOGS (default a fresh /tmp folder; $OUT/logs.tgz holds it), BUILD (default <repo>/build-gpu), KT_GPU_BUDGET_S, PYTHON,
# KT_GPU_PREBUILT: a tarball from bench/gpu/pack_for_device.sh to run instead of building (the lent
# machines lack our non-CUDA libraries and cannot install them); CUDA, cuBLAS and cuDNN are then
# taken from the machine (system paths first, else the Python wheels'), and the tests run case by
# case without ctest. Order: tests, our model benchmarks, PyTorch, kernels, a train/eval smoke run,
# so that what the acceptance needs comes first if the budget runs out.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$PWD/gpu_out}
BUILD=${BUILD:-$ROOT/build-gpu}
BUDGET=${KT_GPU_BUDGET_S:-480}
START=$(date +%s)
DEADLINE=$((START + BUDGET))
# The device tool brings back at most 8 files from $OUT: the table, PyTorch's JSON and one tarball
# of the logs (written on exit, so a step that fails still leaves its logs).
LOGS=${KT_GPU_LOGS:-$(mktemp -d /tmp/kt_gpu_logs.XXXXXX)}
RES=$OUT/results.md
mkdir -p "$LOGS" "$OUT"
finish() { tar -C "$LOGS" -czf "$OUT/logs.tgz" . 2>/dev/null; cat "$RES"; }
trap finish EXIT
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

# ---- 1. build (or unpack a prebuilt tarball) ---------------------------------------------------
PREBUILT=${KT_GPU_PREBUILT:-}
ORIG_LD=${LD_LIBRARY_PATH:-}
section "Build"
if [ -n "$PREBUILT" ]; then
    say "unpacking $PREBUILT"
    PB=$(mktemp -d /tmp/kt_prebuilt.XXXXXX)
    tar -C "$PB" -xJf "$PREBUILT" || { echo "cannot unpack $PREBUILT" >> "$RES"; exit 1; }
    BUILD=$PB/bin
    # CUDA libraries: what the loader finds already, else the first copy under the usual roots.
    LDX=$PB/lib
    for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcudnn.so.9; do
        if ldconfig -p | grep -q "$lib "; then continue; fi
        f=$(find /usr/local/cuda/ /usr/local/lib /usr/lib /opt -name "$lib" 2>/dev/null | head -1)
        [ -n "$f" ] && LDX=$LDX:$(dirname "$f")
    done
    export LD_LIBRARY_PATH=$LDX${ORIG_LD:+:$ORIG_LD}
    {
        cat "$PB/BUILD_INFO"
        echo "this machine: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"), $(ldd --version | head -1)"
        echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
        ldd "$BUILD/test_suite_cuda" | grep -E 'cud|blas|not found'
    } > "$LOGS/prebuilt.txt" 2>&1
    fence "$LOGS/prebuilt.txt"
    if ! "$BUILD/keratrack" info > "$LOGS/info.txt" 2>&1; then
        echo "The prebuilt programs do not start here:" >> "$RES"
        fence "$LOGS/info.txt"
        say "prebuilt programs do not start: stopping"
        exit 1
    fi
    fence "$LOGS/info.txt"
    say "prebuilt ok"
else
    say "configure + build (Release, CUDA) in $BUILD"
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
fi

# ---- 2. the cuda tests --------------------------------------------------------------------------
section "Tests: the cuda suite"
if [ -n "$PREBUILT" ]; then
    # No ctest tree here: each case in its own process (a crash loses one case), four at a time.
    say "test_suite_cuda, case by case"
    mkdir -p "$LOGS/cases"
    TLIM=$(limit 180)
    export BUILD LOGS
    "$BUILD/test_suite_cuda" --list | OMP_NUM_THREADS=4 KT_SOURCE_DIR=$ROOT timeout "$TLIM" xargs -P4 -I{} bash -c \
        'start=$(date +%s%N); timeout 90 "$BUILD/test_suite_cuda" {} > "$LOGS/cases/{}.log" 2>&1; rc=$?;
         t=$(( ($(date +%s%N) - start) / 1000000 )); case $rc in 0) r=PASS;; 77) r=SKIP;; 124) r=TIMEOUT;; *) r="FAIL(rc $rc)";; esac;
         printf "%s %s %d ms\n" "$r" {} "$t"' > "$LOGS/ctest_cases.txt"
    sort -k2 "$LOGS/ctest_cases.txt" > "$LOGS/ctest_summary.txt"
    {
        echo "passed $(grep -c '^PASS' "$LOGS/ctest_cases.txt"), failed $(grep -vc -E '^(PASS|SKIP)' "$LOGS/ctest_cases.txt"), skipped $(grep -c '^SKIP' "$LOGS/ctest_cases.txt") of $("$BUILD/test_suite_cuda" --list | wc -l)"
        cat "$LOGS/ctest_summary.txt"
    } > "$LOGS/ctest_summary2.txt"
    mv "$LOGS/ctest_summary2.txt" "$LOGS/ctest_summary.txt"
    cat "$LOGS"/cases/*.log > "$LOGS/ctest_cuda.log" 2>/dev/null
else
    say "ctest -L cuda"
    (cd "$BUILD" && OMP_NUM_THREADS=4 timeout "$(limit 240)" ctest -L cuda -j4 -V --timeout 200) > "$LOGS/ctest_cuda.log" 2>&1
    echo "exit status $?" >> "$LOGS/ctest_cuda.log"
    grep -E 'tests passed|tests failed|\*\*\*Failed|Timeout|Not Run|exit status' "$LOGS/ctest_cuda.log" > "$LOGS/ctest_summary.txt"
    echo "skipped: $(grep -c '(Skipped)' "$LOGS/ctest_cuda.log")" >> "$LOGS/ctest_summary.txt"
fi
{ grep -hE '^FAIL test_' "$LOGS/ctest_cuda.log" | head -40; grep -hE 'SKIP test_' "$LOGS/ctest_cuda.log" | head -1; } >> "$LOGS/ctest_summary.txt"
fence "$LOGS/ctest_summary.txt"
grep -hE 'worst gradient|loss GPU|worst step|bf16' "$LOGS/ctest_cuda.log" | grep -v '^FAIL' > "$LOGS/parity_lines.txt" 2>/dev/null
if [ -s "$LOGS/parity_lines.txt" ]; then echo "Parity lines printed by the model tests:" >> "$RES"; fence "$LOGS/parity_lines.txt"; fi
say "tests done: $(head -1 "$LOGS/ctest_summary.txt")"

# ---- 2b. a failing switchable path: say which, and time the other ---------------------------------
# Four paths have switches back to older, hardware-tested ones: cuBLASLt's bias epilogue
# (KT_CUDA_NO_LT=1), the depthwise kernels after run 5 (4-channel, tiled, timed per geometry:
# KT_CUDA_DWCONV=scalar, run 5's kernels), the downsampling convolutions as 16-bit patch
# GEMMs under bf16/fp16 (KT_CUDA_NO_PATCH_GEMM=1: cuDNN in TF32, as in run 5) and the planner
# fusions added after run 5 (KT_CUDA_WITHOUT=$NEW_FUSIONS: run 5 had linear_gelu and
# act_bwd_colsum only). When cases fail,
# each is run again with each switch, so that one device run says which path is at fault; a switch
# is then kept for the benchmarks below (said on the goal line) when its path's own test failed or
# it makes a failed case pass, since timing a path that computes wrong numbers means nothing.
FALLBACK=""
NEW_FUSIONS=layernorm_bwd,layerscale_bwd,layernorm_colsum,scale_colsum,scale_add,dwconv_bwd_add
if [ -n "$PREBUILT" ]; then
    grep -vE '^(PASS|SKIP)' "$LOGS/ctest_cases.txt" | grep -oE 'test_[a-z0-9_]+' | sort > "$LOGS/failed_cases.txt"
else
    grep -oE '^FAIL test_[a-z0-9_]+' "$LOGS/ctest_cuda.log" | cut -c6- | sort -u > "$LOGS/failed_cases.txt"
fi
if [ -s "$LOGS/failed_cases.txt" ]; then
    say "$(wc -l < "$LOGS/failed_cases.txt") failed cases: again with each switch"
    : > "$LOGS/switch_reruns.txt"
    for sw in KT_CUDA_NO_LT=1 KT_CUDA_DWCONV=scalar KT_CUDA_NO_PATCH_GEMM=1 "KT_CUDA_WITHOUT=$NEW_FUSIONS"; do
        while read -r t; do
            [ "$(left)" -gt 60 ] || { echo "(out of time budget: $t not rerun with $sw)" >> "$LOGS/switch_reruns.txt"; continue; }
            env "$sw" OMP_NUM_THREADS=4 KT_SOURCE_DIR="$ROOT" timeout 60 "$BUILD/test_suite_cuda" "$t" > "$LOGS/rerun_${sw%%=*}_$t.log" 2>&1
            rc=$?
            echo "$([ $rc -eq 0 ] && echo PASS || echo "FAIL(rc $rc)") $t with $sw" >> "$LOGS/switch_reruns.txt"
            [ $rc -eq 0 ] && case " $FALLBACK " in *" $sw "*) ;; *) FALLBACK="$FALLBACK $sw";; esac
        done < "$LOGS/failed_cases.txt"
    done
    grep -qx test_cuda_gemm_bias_and_gelu_x16 "$LOGS/failed_cases.txt" && case " $FALLBACK " in *" KT_CUDA_NO_LT=1 "*) ;; *) FALLBACK="$FALLBACK KT_CUDA_NO_LT=1";; esac
    grep -qxE 'test_cuda_dwconv_kinds_same_bits|test_cuda_dwconv_auto_chooses_once_per_geometry' "$LOGS/failed_cases.txt" &&
        case " $FALLBACK " in *" KT_CUDA_DWCONV=scalar "*) ;; *) FALLBACK="$FALLBACK KT_CUDA_DWCONV=scalar";; esac
    grep -qx test_cuda_patch_conv_matches_cpu_on_rounded_inputs "$LOGS/failed_cases.txt" &&
        case " $FALLBACK " in *" KT_CUDA_NO_PATCH_GEMM=1 "*) ;; *) FALLBACK="$FALLBACK KT_CUDA_NO_PATCH_GEMM=1";; esac
    grep -qxE 'test_cuda_layer_scale_bwd_same_bits_as_unfused|test_cuda_layernorm_bwd_fused_same_bits_as_unfused|test_cuda_scale_add_and_dwconv_bwd_add_same_bits' \
        "$LOGS/failed_cases.txt" &&
        case " $FALLBACK " in *" KT_CUDA_WITHOUT=$NEW_FUSIONS "*) ;; *) FALLBACK="$FALLBACK KT_CUDA_WITHOUT=$NEW_FUSIONS";; esac
    FALLBACK=${FALLBACK# }
    echo "Failed cases run again with each switch:" >> "$RES"
    fence "$LOGS/switch_reruns.txt"
    if [ -n "$FALLBACK" ]; then
        echo "**The benchmarks below ran with $FALLBACK** (the default path failed its tests)." >> "$RES"
        # shellcheck disable=SC2163
        for sw in $FALLBACK; do export "$sw"; done
        say "benchmarks with $FALLBACK"
    fi
fi

# a short rerun after a fix: the tests (and the switch reruns above) only
if [ -n "${KT_GPU_TESTS_ONLY:-}" ]; then
    say "KT_GPU_TESTS_ONLY set: no benchmarks"
    printf '\nTotal time %d s (KT_GPU_TESTS_ONLY: tests only).\n' $(($(date +%s) - START)) >> "$RES"
    { head -n 1 "$RES"; printf '\n**Tests only**; cuda tests: %s\n' "$(head -1 "$LOGS/ctest_summary.txt")"; tail -n +2 "$RES"; } > "$RES.tmp" && mv "$RES.tmp" "$RES"
    exit 0
fi

# ---- 3. model benchmarks (ours) -----------------------------------------------------------------
say "model benchmarks"
section "Models on the CUDA backend (224x224, 6 classes)"
: > "$LOGS/models.err"
# bf16 training first: the acceptance goal is ConvNeXt-Base bf16 training beside PyTorch AMP.
# KT_CUDA_DWCONV_LOG=1: the depthwise kernel timings behind each geometry's choice, listed below
KT_CUDA_DWCONV_LOG=1 timeout "$(limit 90)" "$BUILD/kt_gpu_bench" model --bf16 --warmup 2 --iters 5 train:convnext_base:64:224 train:convnext_tiny:64:224 \
    > "$LOGS/models_bf16.md" 2> "$LOGS/models_bf16.err"
echo "(exit status $?)" >> "$LOGS/models_bf16.md"
cat "$LOGS/models_bf16.md" >> "$RES"
echo >> "$RES"
grep '^dwconv ' "$LOGS/models_bf16.err" | sort -u > "$LOGS/dwconv_choices.txt"
grep -v '^dwconv ' "$LOGS/models_bf16.err" >> "$LOGS/models.err"
if [ -s "$LOGS/dwconv_choices.txt" ]; then
    echo "Depthwise kernels timed on this card per geometry (the step above runs the fastest of each):" >> "$RES"
    fence "$LOGS/dwconv_choices.txt"
fi
# the same base step with run 5's scalar depthwise kernels (one channel per thread), against the
# choice above: what the kernels timed per geometry gain
KT_CUDA_DWCONV=scalar timeout "$(limit 45)" "$BUILD/kt_gpu_bench" model --bf16 --warmup 2 --iters 5 train:convnext_base:64:224 \
    > "$LOGS/models_bf16_dwscalar.md" 2>> "$LOGS/models.err"
echo "(exit status $?; KT_CUDA_DWCONV=scalar: the scalar depthwise kernels of run 5)" >> "$LOGS/models_bf16_dwscalar.md"
cat "$LOGS/models_bf16_dwscalar.md" >> "$RES"
echo >> "$RES"
# ... and with the downsampling convolutions through cuDNN in TF32 (run 5's path) instead
# of as bf16 patch GEMMs: what those gain
KT_CUDA_NO_PATCH_GEMM=1 timeout "$(limit 45)" "$BUILD/kt_gpu_bench" model --bf16 --warmup 2 --iters 5 train:convnext_base:64:224 \
    > "$LOGS/models_bf16_nopatch.md" 2>> "$LOGS/models.err"
echo "(exit status $?; KT_CUDA_NO_PATCH_GEMM=1: downsampling convolutions through cuDNN in TF32, as in run 5)" >> "$LOGS/models_bf16_nopatch.md"
cat "$LOGS/models_bf16_nopatch.md" >> "$RES"
echo >> "$RES"
# ... and with the stem, which cuDNN runs in TF32, as our f32-gather + TF32 patch GEMM (faster in
# run 6's kernel table): whether the default should change
KT_CUDA_PATCH_F32=1 timeout "$(limit 45)" "$BUILD/kt_gpu_bench" model --bf16 --warmup 2 --iters 5 train:convnext_base:64:224 \
    > "$LOGS/models_bf16_stempatch.md" 2>> "$LOGS/models.err"
echo "(exit status $?; KT_CUDA_PATCH_F32=1: the stem as our TF32 patch GEMM instead of cuDNN's)" >> "$LOGS/models_bf16_stempatch.md"
cat "$LOGS/models_bf16_stempatch.md" >> "$RES"
echo >> "$RES"
# fp16 (the step itself; loss scaling adds a sum of squares and a scaling over the gradients)
timeout "$(limit 60)" "$BUILD/kt_gpu_bench" model --fp16 --warmup 2 --iters 5 train:convnext_base:64:224 \
    > "$LOGS/models_fp16.md" 2>> "$LOGS/models.err"
echo "(exit status $?)" >> "$LOGS/models_fp16.md"
cat "$LOGS/models_fp16.md" >> "$RES"
echo >> "$RES"
# memory beside PyTorch's: the same step recomputing GELU, LayerNorm and depthwise outputs in backward
timeout "$(limit 60)" "$BUILD/kt_gpu_bench" model --bf16 --recompute --warmup 2 --iters 5 train:convnext_base:64:224 \
    > "$LOGS/models_bf16_recompute.md" 2>> "$LOGS/models.err"
echo "(exit status $?)" >> "$LOGS/models_bf16_recompute.md"
cat "$LOGS/models_bf16_recompute.md" >> "$RES"
echo >> "$RES"
# bf16 inference (PyTorch's fastest batch-64 mode is AMP bf16)
timeout "$(limit 60)" "$BUILD/kt_gpu_bench" model --bf16 --warmup 2 --iters 5 infer:convnext_tiny:64:224 infer:convnext_base:64:224 infer:convnext_base:1:224 \
    > "$LOGS/models_bf16_infer.md" 2>> "$LOGS/models.err"
echo "(exit status $?)" >> "$LOGS/models_bf16_infer.md"
cat "$LOGS/models_bf16_infer.md" >> "$RES"
echo >> "$RES"
CASES="train:convnext_tiny:64:224 train:convnext_base:64:224 infer:convnext_tiny:1:224 infer:convnext_base:1:224 infer:convnext_tiny:64:224 infer:convnext_base:64:224"
# shellcheck disable=SC2086
timeout "$(limit 150)" "$BUILD/kt_gpu_bench" model --tf32 --warmup 2 --iters 5 $CASES > "$LOGS/models_tf32.md" 2>> "$LOGS/models.err"
echo "(exit status $?)" >> "$LOGS/models_tf32.md"
cat "$LOGS/models_tf32.md" >> "$RES"
[ -s "$LOGS/models.err" ] && { tail -n 20 "$LOGS/models.err" > "$LOGS/models_err_tail.txt"; fence "$LOGS/models_err_tail.txt"; }

# ---- 4. PyTorch on the same card ----------------------------------------------------------------
section "PyTorch on the same GPU"
PY=""
for p in ${PYTHON:-} python3 /usr/bin/python3; do
    if [ -n "$p" ] && LD_LIBRARY_PATH=$ORIG_LD "$p" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' > /dev/null 2>&1; then PY=$p; break; fi
done
if [ -n "${KT_GPU_SKIP_PYTORCH:-}" ]; then
    echo "Skipped (KT_GPU_SKIP_PYTORCH set)." >> "$RES"
elif [ -z "$PY" ]; then
    echo "No python with torch and CUDA here: PyTorch numbers not measured." >> "$RES"
    say "no torch with CUDA"
elif [ "$(left)" -lt 40 ]; then
    echo "Out of time budget before PyTorch ($(left) s left): not measured." >> "$RES"
    say "no time for PyTorch"
else
    say "PyTorch with $PY"
    MODES=amp_bf16,channels_last,eager
    [ "$(left)" -gt 150 ] || MODES=amp_bf16
    LD_LIBRARY_PATH=$ORIG_LD PYTHONUNBUFFERED=1 timeout "$(limit 150)" "$PY" "$ROOT/bench/gpu/pytorch_gpu_bench.py" --modes "$MODES" --iters 10 --json "$OUT/pytorch.json" \
        > "$LOGS/pytorch.md" 2> "$LOGS/pytorch.err"
    echo "(exit status $?)" >> "$LOGS/pytorch.md"
    cat "$LOGS/pytorch.md" >> "$RES"
    [ -s "$LOGS/pytorch.err" ] && { tail -n 20 "$LOGS/pytorch.err" > "$LOGS/pytorch_err_tail.txt"; fence "$LOGS/pytorch_err_tail.txt"; }
fi

# ---- 5. kernel benchmarks -----------------------------------------------------------------------
say "kernel benchmarks"
section "Kernels (ConvNeXt-tiny batch-64 shapes)"
if [ "$(left)" -gt 60 ]; then
    QUICK=""
    [ "$(left)" -gt 200 ] || QUICK=--quick
    timeout "$(limit 90)" "$BUILD/kt_gpu_bench" kernels $QUICK > "$LOGS/kernels.md" 2> "$LOGS/kernels.err"
    echo "(exit status $?)" >> "$LOGS/kernels.md"
    cat "$LOGS/kernels.md" >> "$RES"
    [ -s "$LOGS/kernels.err" ] && fence "$LOGS/kernels.err"
else
    echo "Out of time budget: not run." >> "$RES"
fi

# ---- 6. train/eval smoke run (the default precision, bf16; then fp16 and fp32) ---------------------
say "keratrack train/eval --device cuda (smoke run on synthetic data)"
section "keratrack train/eval --device cuda, predict with Grad-CAM (convnext_atto, synthetic 4 classes, 2 folds x 2 epochs, 64 px)"
if [ "$(left)" -gt 40 ]; then
    SM=/tmp/kt_smoke
    rm -rf "$SM"
    {
        "$BUILD/keratrack" synth --out "$SM/data" --classes 4 --per-class 40 --size 64 --seed 3 &&
            timeout "$(limit 60)" "$BUILD/keratrack" train --device cuda --data "$SM/data" --out "$SM/run" \
                --model convnext_atto --img-size 64 --folds 2 --epochs 2 --batch 16 --lr 2e-3 --quiet --no-plots &&
            timeout "$(limit 30)" "$BUILD/keratrack" eval --device cuda --model "$SM"/run/convnext_atto_fold*_best.safetensors \
                --data "$SM/data" --split test --no-plots --out "$SM/eval" &&
            timeout "$(limit 30)" "$BUILD/keratrack" predict --device cuda:0 --model "$SM"/run/convnext_atto_fold1_best.safetensors \
                --gradcam "$SM/gradcam.png" "$(ls "$SM"/data/test/*.jpg | head -n 1)" &&
            ls -l "$SM/gradcam.png"
        echo "exit status $?"
        # a GPU index past the last: exit 1 and the GPUs there are named
        "$BUILD/keratrack" predict --device cuda:99 --model "$SM"/run/convnext_atto_fold1_best.safetensors "$(ls "$SM"/data/test/*.jpg | head -n 1)"
        echo "exit status $? (cuda:99: 1 expected)"
        # the same in fp16 (dynamic loss scaling end to end) and strict fp32
        for prec in fp16 fp32; do
            timeout "$(limit 60)" "$BUILD/keratrack" train --device cuda --precision $prec --data "$SM/data" --out "$SM/run_$prec" \
                --model convnext_atto --img-size 64 --folds 2 --epochs 2 --batch 16 --lr 2e-3 --quiet --no-plots
            echo "exit status $? ($prec)"
        done
    } > "$LOGS/train_cuda.log" 2>&1
    grep -E 'folds, .* steps|accuracy|exit status|error|keratrack|checkpoint|gradcam' "$LOGS/train_cuda.log" | tail -n 12 > "$LOGS/train_cuda_tail.txt"
    fence "$LOGS/train_cuda_tail.txt"
else
    echo "Out of time budget: not run." >> "$RES"
fi
if [ "$(left)" -gt 40 ]; then
    echo >> "$RES"
    timeout "$(limit 40)" "$BUILD/kt_gpu_bench" model --warmup 2 --iters 5 train:convnext_tiny:64:224 > "$LOGS/models_fp32.md" 2>> "$LOGS/models.err"
    echo "(exit status $?)" >> "$LOGS/models_fp32.md"
    cat "$LOGS/models_fp32.md" >> "$RES"
fi

if [ "$(left)" -gt 30 ]; then
    section "Where the time goes: convnext_base bf16 training step, per op type"
    timeout "$(limit 30)" "$BUILD/kt_gpu_bench" model --bf16 --profile --warmup 2 --iters 3 train:convnext_base:64:224 \
        > "$LOGS/profile_bf16.md" 2>> "$LOGS/models.err"
    cat "$LOGS/profile_bf16.md" >> "$RES"
fi

# what each group of fusions saves: the same base bf16 step planned without it (last: the least needed)
# the depthwise weight gradient's first-stage thread target (default 262144): fewer, longer row
# blocks write fewer partials (29 MB per convolution at the default), more give more parallel work;
# whether the default should change
if [ "$(left)" -gt 40 ]; then
    section "Depthwise weight gradient: the first stage's thread target (KT_CUDA_DW_WGRAD_THREADS, default 262144)"
    echo "Compare with the bf16 row at the top of the model section (the default)." >> "$RES"
    : > "$LOGS/models_wgrad_threads.md"
    for t in 65536 131072 1048576; do
        [ "$(left)" -gt 20 ] || { echo "(out of time budget before: $t)" >> "$LOGS/models_wgrad_threads.md"; break; }
        KT_CUDA_DW_WGRAD_THREADS=$t timeout "$(limit 25)" "$BUILD/kt_gpu_bench" model --bf16 --warmup 2 --iters 5 train:convnext_base:64:224 \
            2>> "$LOGS/models.err" | grep -E '^\| train' | sed "s/| bf16 GEMMs |/| bf16 GEMMs, KT_CUDA_DW_WGRAD_THREADS=$t |/" \
            >> "$LOGS/models_wgrad_threads.md"
    done
    { echo "| case | precision | median | images/s | TFLOP/s | device MiB | arena MiB |"; echo "|---|---|---|---|---|---|---|"; } >> "$RES"
    cat "$LOGS/models_wgrad_threads.md" >> "$RES"
fi
if [ "$(left)" -gt 30 ]; then
    section "What the fusions save: convnext_base bf16 training step without each group"
    echo "Compare with the bf16 row at the top of the model section (all fusions)." >> "$RES"
    : > "$LOGS/models_without.md"
    # first the linears' bias epilogue: cuBLAS into f32 and a bias pass instead of cuBLASLt
    KT_CUDA_NO_LT=1 timeout "$(limit 25)" "$BUILD/kt_gpu_bench" model --bf16 --warmup 2 --iters 5 train:convnext_base:64:224 \
        2>> "$LOGS/models.err" | grep -E '^\| train' | sed 's/| bf16 GEMMs |/| bf16 GEMMs, KT_CUDA_NO_LT=1 (no cuBLASLt bias epilogue) |/' \
        >> "$LOGS/models_without.md"
    for f in layernorm_bwd,layernorm_colsum scale_add,dwconv_bwd_add layerscale_bwd,scale_colsum act_bwd_colsum linear_gelu; do
        [ "$(left)" -gt 20 ] || { echo "(out of time budget before: without $f)" >> "$LOGS/models_without.md"; break; }
        timeout "$(limit 25)" "$BUILD/kt_gpu_bench" model --bf16 --without "$f" --warmup 2 --iters 5 train:convnext_base:64:224 \
            2>> "$LOGS/models.err" | grep -E '^\| train' >> "$LOGS/models_without.md"
    done
    { echo "| case | precision | median | images/s | TFLOP/s | device MiB | arena MiB |"; echo "|---|---|---|---|---|---|---|"; } >> "$RES"
    cat "$LOGS/models_without.md" >> "$RES"
fi

# ---- 8. decoding against the GPU (last: only with budget to spare) -------------------------------
# A GPU trains and predicts faster than 2 loader workers or one decoding core deliver images: train's
# workers now default to the cores but one on cuda (the epoch line says 'data wait N%'), predict
# decodes a batch on all its threads. Both measured here with the old settings beside the new ones.
if [ "$(left)" -gt 100 ]; then
    section "Decoding against the GPU: train on 640 px JPEGs with 2 workers and the default, predict 1024 px with 1 thread and all; serve --max-batch"
    DD=/tmp/kt_decode
    rm -rf "$DD"
    {
        "$BUILD/keratrack" synth --out "$DD/d640" --classes 4 --per-class 200 --size 640 --seed 5 | tail -n 1
        for w in "--workers 2" ""; do
            echo "== train convnext_tiny bf16 224 px, batch 64, ${w:-default workers}"
            timeout "$(limit 60)" "$BUILD/keratrack" train --device cuda --data "$DD/d640" --out "$DD/run${w// /}" --model convnext_tiny \
                --img-size 224 --folds 2 --epochs 2 --batch 64 --no-plots $w 2>&1 | grep -E 'epoch +[0-9]+/|waited|loader workers|Error|error'
        done
        "$BUILD/keratrack" synth --out "$DD/d1024" --classes 2 --per-class 64 --size 1024 --seed 6 | tail -n 1
        ck=$(ls "$DD"/run/convnext_tiny_fold1_best.safetensors 2>/dev/null | head -n 1)
        for t in 1 "$(nproc)"; do
            s0=$(date +%s.%N)
            timeout "$(limit 40)" "$BUILD/keratrack" predict --device cuda --threads "$t" --model "$ck" --csv "$DD/p$t.csv" "$DD/d1024/train" \
                > /dev/null 2> "$DD/p$t.err"
            rc=$?
            s1=$(date +%s.%N)
            echo "== predict 128 images of 1024 px, --threads $t: exit $rc, $(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f s, %.1f img/s", b - a, 128 / (b - a) }')"
        done
        # serve --max-batch: 16 client threads x 20 uploads of a 640 px image, one forward each vs batched
        for mb in 1 16; do
            [ "$(left)" -gt 30 ] || break
            rm -f "$DD"/s.db*
            "$BUILD/keratrack" serve --device cuda --model "$ck" --db "$DD/s.db" --port 0 --threads 16 --max-batch $mb --quiet \
                2> "$DD/serve$mb.log" &
            spid=$!
            for _ in $(seq 100); do grep -q "listening on" "$DD/serve$mb.log" && break; sleep 0.2; done
            sport=$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$DD/serve$mb.log")
            echo "== serve --device cuda --max-batch $mb, convnext_tiny 224: $(timeout "$(limit 40)" python3 "$ROOT/bench/gpu/serve_batch_load.py" \
                "http://127.0.0.1:$sport" "$(ls "$DD"/d640/test/*.jpg | head -n 1)" 16 20 2>&1 | tail -n 1)"
            kill "$spid"; wait "$spid" 2> /dev/null
        done
    } > "$LOGS/decode_gpu.log" 2>&1
    fence "$LOGS/decode_gpu.log"
fi

printf '\nTotal time %d s (budget %d s).\n' $(($(date +%s) - START)) "$BUDGET" >> "$RES"

# the acceptance goal in one line, at the top of the table: base bf16 training beside PyTorch AMP
VERDICT=$(bash "$ROOT/bench/gpu/verdict.sh" "$LOGS/models_bf16.md" "$OUT/pytorch.json" 2>&1)
[ -z "$FALLBACK" ] || VERDICT="$VERDICT (measured with $FALLBACK: a default path failed its tests)"
{ head -n 1 "$RES"; printf '\n**Goal**: %s; cuda tests: %s\n' "$VERDICT" "$(head -1 "$LOGS/ctest_summary.txt")"; tail -n +2 "$RES"; } > "$RES.tmp" &&
    mv "$RES.tmp" "$RES"
say "goal: $VERDICT"
say "done: $RES"
