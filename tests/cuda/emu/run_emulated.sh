#!/bin/bash
# Runs the cuda test suite on a host emulation of our CUDA kernels, for sessions without a GPU:
# kernels/cuda/*.cu (all but runtime.cu and blas_loader.cu, the CUDA runtime and dlopen wrappers, which
# emu.cpp replaces) are rewritten by prep.py and compiled as C++ with fake CUDA headers; cuBLAS,
# cuBLASLt and cuDNN's convolution API are emulated from their documented semantics (emu_cublas.cpp,
# emu_cudnn.cpp: layouts, argument, workspace and alignment rules, TF32 rounding), so gemm.cu's and
# conv_cudnn.cu's calls are checked. It finds index, coverage (NaN poison), reduction-order,
# vector-alignment and glue bugs, and (KT_EMU_DEVICES=N GPUs, which tests set) a thread touching one
# GPU's buffers or library handles while another GPU is its current device; it says nothing about
# real-GPU speed, precision of CUDA's math functions, what the real libraries do beyond their
# documentation, or memory-model races between blocks.
#   bash tests/cuda/emu/run_emulated.sh BUILD_DIR [TEST_NAME...]
# BUILD_DIR: a built CUDA configuration (cmake -S . -B build-cuda && cmake --build build-cuda), whose
# libkeratrack.a (compiled with KT_HAVE_CUDA) is linked with the emulated kernels. Without test names
# every test of tests/cuda runs (~8 min on 2 cores).
#   bash tests/cuda/emu/run_emulated.sh BUILD_DIR --bench model --bf16 --plan-only train:convnext_base:64:224
# runs kt_gpu_bench on the emulator instead (--plan-only: the device memory a case plans, no step).
# KT_EMU_ASAN=1: the emulated kernels, the library emulations and the tests built with AddressSanitizer (work
# folder BUILD_DIR/cuemu-asan): a kernel reading or writing outside a device buffer (each its own
# host allocation) stops with ASan's report. About twice as slow.
# KT_EMU_ORDER=reverse: blocks, and a block's threads between barriers, run last first. A kernel
# that reads another thread's writes without a barrier between gets other values in one of the two
# orders, so a race the default order hides shows in the other: run the suite both ways.
# KT_EMU_SKIP="test ...": leave those tests out (tests/emu/test_cuda_emulated.sh, the ctest run).
set -eu
EMU=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$EMU/../../.." && pwd)
[ $# -ge 1 ] || { sed -n '2,24p' "$0"; exit 2; }
BUILD=$(cd "$1" && pwd)
shift
[ -f "$BUILD/libkeratrack.a" ] && grep -q 'KT_HAVE_CUDA' "$BUILD/CMakeFiles/keratrack.dir/flags.make" ||
    { echo "run_emulated: $BUILD is not a built CUDA configuration (libkeratrack.a with KT_HAVE_CUDA)" >&2; exit 2; }
# Always: UBSan's alignment check, so that a float4 (16 bytes) or 4 x 16-bit (8 bytes) access through
# a pointer the dispatch wrongly took as aligned stops here as it would fault on the GPU.
SAN="-fsanitize=alignment -fno-sanitize-recover=alignment"
if [ -n "${KT_EMU_ASAN:-}" ]; then
    SAN="$SAN -fsanitize=address -fno-omit-frame-pointer"
    # a device allocation too big for the card is an error cudaMalloc returns, not an abort; leaks
    # inside system libraries (fontconfig under Grad-CAM's caption) as in test.sh's sanitized pass
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}allocator_may_return_null=1"
    export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$SRC/tests/lsan.supp:print_suppressions=0"
fi
W=${KT_EMU_WORK:-$BUILD/cuemu${KT_EMU_ASAN:+-asan}} # KT_EMU_WORK: another work folder, to run two at once
mkdir -p "$W/gen" "$W/obj"
rm -f "$W"/obj/*.o # objects of files since removed must not reach the library
ARCHS=$(sed -n 's/^KT_CUDA_ARCHS:STRING=//p' "$BUILD/CMakeCache.txt" | tr ';' ',') # as CMakeLists.txt passes them
CXX="g++ -std=c++20 -O1 -g $SAN -Wall -Wno-unused-function -Wno-unknown-pragmas -I$EMU/fake -I$SRC -include cuemu.h -include vector"
CXX="$CXX -DKT_CUDA_ARCHS_STR=\"$ARCHS\""
for f in context gemm conv_cudnn elementwise reduce norm loss pool shape dwconv dwconv_tune patch; do
    python3 "$EMU/prep.py" "$SRC/kernels/cuda/$f.cu" "$W/gen/$f.cpp" 2> /dev/null
    $CXX -c "$W/gen/$f.cpp" -o "$W/obj/$f.o"
done
$CXX -c "$EMU/emu.cpp" -o "$W/obj/emu.o"
$CXX -c "$EMU/emu_cudnn.cpp" -o "$W/obj/emu_cudnn.o"
$CXX -c "$EMU/emu_cublas.cpp" -o "$W/obj/emu_cublas.o"
rm -f "$W/libemu.a"
ar rcs "$W/libemu.a" "$W"/obj/*.o
for t in "$SRC"/tests/cuda/*.c "$SRC/tests/kt_test_main.c" "$SRC/tests/kt_fixture.c"; do
    gcc -std=c17 -D_GNU_SOURCE -O1 -g $SAN -DKT_HAVE_CUDA=1 -I"$SRC" -I"$SRC/tests" -I"$BUILD/generated" -DKT_SOURCE_DIR="\"$SRC\"" \
        -DKT_BINARY_DIR="\"$W\"" -DKT_CLI_PATH="\"$BUILD/keratrack\"" -c "$t" -o "$W/obj_test_$(basename "$t" .c).o"
done
BLAS=$(sed -n 's/^KT_OPENBLAS_LIB:FILEPATH=//p' "$BUILD/CMakeCache.txt")
g++ $SAN "$W"/obj_test_*.o -o "$W/test_suite_cuda_emu" -Wl,-rpath,"$(dirname "$BLAS")" "$BUILD/libkeratrack.a" "$W/libemu.a" \
    "$BUILD/libkeratrack.a" -fopenmp "$BLAS" -lm -lturbojpeg -lspng -lz -lsqlite3 -lmicrohttpd -lsodium -lcjson -lcairo -lexif -lpthread
gcc -std=c17 -D_GNU_SOURCE -O1 -g $SAN -DKT_HAVE_CUDA=1 -I"$SRC" -c "$SRC/bench/gpu/gpu_bench.c" -o "$W/gpu_bench.o"
g++ $SAN "$W/gpu_bench.o" -o "$W/kt_gpu_bench_emu" -Wl,-rpath,"$(dirname "$BLAS")" "$BUILD/libkeratrack.a" "$W/libemu.a" \
    "$BUILD/libkeratrack.a" -fopenmp "$BLAS" -lm -lturbojpeg -lspng -lz -lsqlite3 -lmicrohttpd -lsodium -lcjson -lcairo -lexif -lpthread
if [ "${1:-}" = --bench ]; then # kt_gpu_bench on the emulator (model --plan-only: planned device memory)
    shift
    exec "$W/kt_gpu_bench_emu" "$@"
fi
tests=("$@")
[ ${#tests[@]} -gt 0 ] || mapfile -t tests < <("$W/test_suite_cuda_emu" --list)
if [ -n "${KT_EMU_SKIP:-}" ]; then # KT_EMU_SKIP="name ...": tests left out (each must exist)
    for s in $KT_EMU_SKIP; do
        printf '%s\n' "${tests[@]}" | grep -qx "$s" || { echo "run_emulated: KT_EMU_SKIP names '$s', which is not a cuda test" >&2; exit 2; }
    done
    mapfile -t tests < <(printf '%s\n' "${tests[@]}" | grep -vxF -f <(printf '%s\n' $KT_EMU_SKIP))
    echo "left out (KT_EMU_SKIP): $KT_EMU_SKIP"
fi
fails=0
T0=$SECONDS
for t in "${tests[@]}"; do
    t1=$SECONDS
    if (cd "$W" && KT_SOURCE_DIR="$SRC" OMP_NUM_THREADS=1 "$W/test_suite_cuda_emu" "$t"); then :; else fails=$((fails + 1)); fi
    echo "  ($t: $((SECONDS - t1)) s)"
done
echo "emulated cuda tests: ${#tests[@]} run, $fails failed ($((SECONDS - T0)) s)"
[ "$fails" -eq 0 ]
