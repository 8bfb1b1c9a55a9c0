#!/usr/bin/env bash
# The whole test suite from scratch: install what is missing, build, run ctest; then build again
# with AddressSanitizer + UBSan (leak checking on) and run every test once more.
#   ./test.sh            both passes
#   ./test.sh --quick    the plain pass only (reusing build-test/)
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh --tests
jobs=$(nproc)
quick=0; [[ "${1:-}" == "--quick" ]] && quick=1

if [[ $quick -eq 0 ]]; then rm -rf build-test build-asan; fi
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-test -j"$jobs"
(cd build-test && ctest --output-on-failure -j"$jobs")
[[ $quick -eq 1 ]] && exit 0

# The sanitized pass leaves CUDA out: nvcc code is not instrumented, the plain pass already
# compiles and links it, and the CUDA runtime's own allocations confuse LeakSanitizer.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DKT_SANITIZE=ON -DKT_CUDA=OFF >/dev/null
cmake --build build-asan -j"$jobs"
# protect_shadow_gap=0 lets the CUDA runtime map its memory under ASan; the suppressions list
# only leaks inside system libraries we do not own (driver, fontconfig), never ours.
export ASAN_OPTIONS="protect_shadow_gap=0:detect_leaks=1:abort_on_error=0"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export KT_SANITIZED=1
(cd build-asan && ctest --output-on-failure -j"$jobs")
echo "test.sh: all tests passed (plain and sanitized builds)"
