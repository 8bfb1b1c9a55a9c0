#!/bin/bash
# keratrack bench dwconv: three rows per shape (forward, data grad, weight grad) with a time and a
# rate; with --compare, PyTorch's time and the ratio for shapes the file has and dashes for the
# rest; bad shapes are usage errors, a bad --compare file a named failure.
#   bash tests/bench/test_bench_dwconv.sh CLI SOURCE_DIR BINARY_DIR
set -u
KT=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
out=$("$KT" bench dwconv --shapes 2x9x11x16,1x7x32 --threads 2 --reps 1 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "FAIL: exit $rc"; fail=1; }
for want in '^\| 2x9x11x16 \| forward \| [0-9.]+ ms \| [0-9.]+ \|$' '^\| 2x9x11x16 \| data grad \|' '^\| 2x9x11x16 \| weight grad \|' \
            '^\| 1x7x7x32 \| forward \|' '^\| 1x7x7x32 \| weight grad \|' '^command: keratrack bench dwconv --shapes 2x9x11x16,1x7x32'; do
    grep -qE -- "$want" <<< "$out" || { echo "FAIL: no line matching $want"; fail=1; }
done
[ "$(grep -c '^| [0-9]' <<< "$out")" -eq 6 ] || { echo "FAIL: want 6 rows"; fail=1; }
# PyTorch's numbers for one of the two shapes: 2 s each, so every ratio there is ours / 2 s
cat > "$tmp/torch.json" <<'JSON'
{"torch": "test", "results": [{"shape": "2x9x11x16", "kernel": 7, "forward_s": 2.0, "data_grad_s": 2.0, "weight_grad_s": 2.0}]}
JSON
out=$("$KT" bench dwconv --shapes 2x9x11x16,1x7x32 --threads 1 --reps 1 --compare "$tmp/torch.json" 2>&1); rc=$?
echo "$out"
[ $rc -eq 0 ] || { echo "FAIL: --compare exit $rc"; fail=1; }
grep -qE '^\| input N x H x W x C \| pass \| time \| GFLOP/s \| PyTorch time \| time ratio \|$' <<< "$out" || { echo "FAIL: no ratio header"; fail=1; }
[ "$(grep -cE '^\| 2x9x11x16 \| [a-z ]+ \| [0-9.]+ ms \| [0-9.]+ \| 2000\.000 ms \| 0\.[0-9]+ \|$' <<< "$out")" -eq 3 ] || { echo "FAIL: want 3 compared rows"; fail=1; }
[ "$(grep -cE '^\| 1x7x7x32 \| .* \| - \| - \|$' <<< "$out")" -eq 3 ] || { echo "FAIL: want 3 rows with dashes"; fail=1; }
# a --kernel the file does not have: dashes, not the 7x7 times
out=$("$KT" bench dwconv --shapes 2x9x11x16 --kernel 3 --reps 1 --compare "$tmp/torch.json" 2>&1)
[ "$(grep -cE '\| - \| - \|$' <<< "$out")" -eq 3 ] || { echo "FAIL: --kernel 3 took the 7x7 times: $out"; fail=1; }
for bad in "--shapes x" "--shapes 2x9" "--shapes 100000x100000x100000" "--shapes 2x9x9x9x9" "--shapes 0x7x8" "--shapes 1x7x8," "--kernel 8" "--reps 0"; do
    # shellcheck disable=SC2086
    msg=$("$KT" bench dwconv $bad 2>&1); rc=$?
    if [ $rc -ne 2 ] || ! grep -q "keratrack bench dwconv" <<< "$msg"; then echo "FAIL: '$bad': rc $rc: $msg"; fail=1; fi
done
echo "not json" > "$tmp/bad.json"
msg=$("$KT" bench dwconv --shapes 1x7x8 --compare "$tmp/bad.json" 2>&1); rc=$?
if [ $rc -ne 1 ] || ! grep -q "bad.json" <<< "$msg"; then echo "FAIL: bad --compare: rc $rc: $msg"; fail=1; fi
msg=$("$KT" bench dwconv --shapes 1x7x8 --compare "$tmp/none.json" 2>&1); rc=$?
if [ $rc -ne 1 ] || ! grep -q "none.json" <<< "$msg"; then echo "FAIL: missing --compare: rc $rc: $msg"; fail=1; fi
exit $fail
