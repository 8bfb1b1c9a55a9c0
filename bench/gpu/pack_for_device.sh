#!/bin/bash
# Packs a CUDA build for a GPU machine that cannot build it: the lent machines have CUDA, cuDNN and
# PyTorch but none of our other libraries (OpenBLAS, libspng, libmicrohttpd, ...) and no package
# registry. Builds (Release, -DKT_CUDA=ON) in BUILD, then puts the three programs the GPU checks run
# (test_suite_cuda, kt_gpu_bench, keratrack) and every shared library they need that is neither glibc
# nor CUDA/cuDNN nor the C++ runtime into one tar.xz. run_gpu_checks.sh unpacks it when
# KT_GPU_PREBUILT names it and finds CUDA/cuDNN on the machine itself.
# Usage: bench/gpu/pack_for_device.sh [TARBALL]   (default .devcarry/keratrack-gpu.tar.xz)
# Environment: BUILD (default <repo>/build-cuda).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-cuda}
TAR=${1:-$ROOT/.devcarry/keratrack-gpu.tar.xz}
PROGS="test_suite_cuda kt_gpu_bench keratrack"

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DKT_CUDA=ON > /dev/null
cmake --build "$BUILD" -j"$(nproc)" --target test_suite_cuda kt_gpu_bench keratrack_cli 2>&1 | grep -E 'error|warning' || true
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/bin" "$STAGE/lib"
for p in $PROGS; do
    [ -x "$BUILD/$p" ] || { echo "pack_for_device: $BUILD/$p was not built" >&2; exit 1; }
    strip -o "$STAGE/bin/$p" "$BUILD/$p"
done
# Libraries the machine must provide itself: glibc's, the C++ runtime, and CUDA's (the driver's
# version must match its own toolkit's libraries, and cuDNN's engine libraries are hundreds of MB).
SYSTEM='/(libc|libm|libdl|libpthread|librt|libresolv|ld-linux-x86-64|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcublasLt|libcudnn[a-z_]*)\.so'
for p in $PROGS; do ldd "$BUILD/$p"; done | awk '$3 ~ /^\// {print $3}' | sort -u | while read -r lib; do
    if echo "$lib" | grep -Eq "$SYSTEM"; then continue; fi
    cp -L "$lib" "$STAGE/lib/"
done
{
    echo "commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo ' (with local changes)')"
    echo "built $(date -u '+%Y-%m-%d %H:%M UTC') on $(. /etc/os-release && echo "$PRETTY_NAME"), $(ldd --version | head -1)"
    grep -E '^(KT_CUDA_ARCHS|CMAKE_BUILD_TYPE|CMAKE_CUDA_COMPILER_VERSION)' "$BUILD/CMakeCache.txt" || true
    echo "needs from the machine: $(for p in $PROGS; do ldd "$BUILD/$p"; done | awk '$3 ~ /^\// {print $1}' | grep -E "$(echo "$SYSTEM" | sed 's|^/||')" | sort -u | tr '\n' ' ')"
} > "$STAGE/BUILD_INFO"
mkdir -p "$(dirname "$TAR")"
tar -C "$STAGE" -cJf "$TAR" bin lib BUILD_INFO
echo "pack_for_device: $TAR ($(du -h "$TAR" | cut -f1)): $(ls "$STAGE/lib" | wc -l) libraries"
cat "$STAGE/BUILD_INFO"
