#!/bin/bash
# keratrack bench gemm: a table row per product, marking the products the engine splits into row
# pieces (16384+ rows with a small weight) and giving both rates; bad lists are usage errors.
#   bash tests/bench/test_bench_gemm.sh CLI SOURCE_DIR BINARY_DIR
set -u
KT=$1
fail=0
out=$("$KT" bench gemm --rows 300,16400 --channels 8 --threads 2 --reps 1 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "FAIL: exit $rc"; fail=1; }
# 2 row counts x fc1/fc2: four rows; the 16400-row ones in pieces, the 300-row ones whole
for want in '^| 300 | 8 | 32 | no | [0-9]+ | [0-9]+ | [0-9.]+ |$' '^| 300 | 32 | 8 | no |' \
            '^| 16400 | 8 | 32 | yes | [0-9]+ | [0-9]+ | [0-9.]+ |$' '^| 16400 | 32 | 8 | yes |' '^command: keratrack bench gemm --rows 300,16400'; do
    grep -qE -- "$want" <<< "$out" || { echo "FAIL: no line matching $want"; fail=1; }
done
[ "$(grep -c '^| [0-9]' <<< "$out")" -eq 4 ] || { echo "FAIL: want 4 rows"; fail=1; }
# one thread: no pieces (there is no second thread to give one to)
out=$("$KT" bench gemm --rows 16400 --channels 8 --threads 1 --reps 1 2>&1)
grep -qE '^\| 16400 \| 8 \| 32 \| no \|' <<< "$out" || { echo "FAIL: one thread still says pieces: $out"; fail=1; }
for bad in "--rows x" "--rows 5,,6" "--channels 0" "--reps 0" "--rows 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"; do
    # shellcheck disable=SC2086
    msg=$("$KT" bench gemm $bad 2>&1); rc=$?
    if [ $rc -ne 2 ] || ! grep -q "keratrack bench gemm" <<< "$msg"; then echo "FAIL: '$bad': rc $rc: $msg"; fail=1; fi
done
exit $fail
