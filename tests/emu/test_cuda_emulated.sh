#!/usr/bin/env bash
# The CUDA kernels checked without a GPU: the cuda test suite on the host emulator
# (tests/cuda/emu/run_emulated.sh: our kernels compiled as C++ with UBSan's alignment check, cuBLAS
# and cuDNN as plain loops), in every build that compiles the CUDA backend, so that CI catches an
# index, coverage, alignment or reduction-order fault in a kernel on a machine with no GPU (~4 min
# on one core). The two 12-step training runs (3 minutes each emulated) are left to the full
# emulated suite and to the GPU; every kernel they use is in the tests run here.
#   test_cuda_emulated.sh CLI SOURCE_DIR BUILD_DIR      (ctest passes these)
set -u
SRC=$2
BIN=$3
if ! grep -qs 'KT_HAVE_CUDA' "$BIN/CMakeFiles/keratrack.dir/flags.make"; then
    echo "skipped: this build has no CUDA backend to emulate (configure with the CUDA toolkit present)"
    exit 77
fi
for tool in python3 g++; do
    command -v "$tool" > /dev/null || { echo "skipped: the emulator needs $tool"; exit 77; }
done
export KT_EMU_WORK="$BIN/cuemu-ctest"
export KT_EMU_SKIP="test_cuda_bf16_training_tracks_fp32 test_cuda_fp16_loss_scaled_training_tracks_fp32"
exec bash "$SRC/tests/cuda/emu/run_emulated.sh" "$BIN"
