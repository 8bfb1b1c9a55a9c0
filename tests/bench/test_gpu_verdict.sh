#!/bin/bash
# bench/gpu/verdict.sh on run 5's committed tables (H100, commit 534999a: 1.12x the images/s in
# 1.01x the memory, goal not met), on the same with our memory lowered (met), and on missing data.
#   bash tests/bench/test_gpu_verdict.sh CLI SOURCE_DIR BINARY_DIR
set -u
SRC=$2
V="$SRC/bench/gpu/verdict.sh"
R="$SRC/bench/results/gpu"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { # what, want rc, want text, got rc, got text
    if [ "$4" -ne "$2" ] || ! grep -qF -- "$3" <<< "$5"; then
        echo "FAIL $1: rc $4 (want $2), output: $5 (want to contain: $3)"
        fail=1
    else echo "ok   $1: $5"; fi
}
out=$(bash "$V" "$R/h100_2026-11-27_run5.md" "$R/pytorch_h100_run5.json"); rc=$?
check "run 5" 1 "1106.4 img/s in 9391 MiB, PyTorch AMP bf16 985.2 img/s in 9261 MiB: 1.12x the images/s in 1.01x the memory: goal NOT MET" $rc "$out"
sed 's/| train:convnext_base:64:224 | bf16 GEMMs | 57.84 ms | 1106.4 | 101.92 | 9391 |/| train:convnext_base:64:224 | bf16 GEMMs | 57.84 ms | 1106.4 | 101.92 | 8777 |/' \
    "$R/h100_2026-11-27_run5.md" > "$T/ours.md"
out=$(bash "$V" "$T/ours.md" "$R/pytorch_h100_run5.json"); rc=$?
check "less memory" 0 "1.12x the images/s in 0.95x the memory: goal MET" $rc "$out"
grep -v 'train:convnext_base:64:224 | bf16 GEMMs |' "$R/h100_2026-11-27_run5.md" > "$T/none.md"
out=$(bash "$V" "$T/none.md" "$R/pytorch_h100_run5.json"); rc=$?
check "no base bf16 row" 2 "has no measured train:convnext_base:64:224 bf16 row" $rc "$out"
echo '[]' > "$T/empty.json"
out=$(bash "$V" "$R/h100_2026-11-27_run5.md" "$T/empty.json"); rc=$?
check "no PyTorch entry" 2 "has no train_b64_base amp_bf16 entry" $rc "$out"
out=$(bash "$V" "$R/h100_2026-11-27_run5.md" "$T/absent.json"); rc=$?
check "PyTorch not measured" 2 "cannot read $T/absent.json" $rc "$out"
exit $fail
