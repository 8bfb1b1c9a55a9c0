#!/usr/bin/env bash
# keratrack synth and keratrack bench loader end to end: a dataset is written, loads, benchmarks;
# bad options are usage errors (exit 2), an unreadable dataset is an error (exit 1).
# usage: test_synth_bench_cli.sh <keratrack> <source-dir> <build-dir>
set -u
kt=$1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # check <description> <file> <needle>
  if ! grep -qF -- "$3" "$2"; then echo "FAIL: $1: '$3' not in output:"; sed 's/^/    /' "$2" | head -30; fail=1; fi
}
expect_rc() { # expect_rc <description> <want> <got>
  if [[ "$3" != "$2" ]]; then echo "FAIL: $1: exit $3, want $2"; fail=1; fi
}

"$kt" synth --out "$tmp/shapes" --classes 3 --per-class 8 --size 32 --seed 5 >"$tmp/synth.txt" 2>&1
expect_rc "synth" 0 $?
check "synth summary" "$tmp/synth.txt" "3 classes (disk, square, triangle), single-label, train 24 / valid 6 / test 6"
check "train csv header" "$tmp/shapes/train/_classes.csv" "filename, disk, square, triangle"
[[ $(ls "$tmp/shapes/train" | grep -c '\.jpg$') == 24 ]] || { echo "FAIL: 24 train JPEGs expected"; fail=1; }
ls "$tmp" | grep -q tmp- && { echo "FAIL: a temporary folder was left behind"; fail=1; }

# Same seed, same bytes.
"$kt" synth --out "$tmp/again" --classes 3 --per-class 8 --size 32 --seed 5 >/dev/null 2>&1
cmp -s "$tmp/shapes/train/synth_train_00003.jpg" "$tmp/again/train/synth_train_00003.jpg" || {
  echo "FAIL: synth is not deterministic"; fail=1; }

"$kt" synth --out "$tmp/shapes" >"$tmp/exists.txt" 2>&1
expect_rc "synth over an existing dataset" 1 $?
check "synth over an existing dataset" "$tmp/exists.txt" "pass --force"
"$kt" synth --classes 3 >"$tmp/noout.txt" 2>&1
expect_rc "synth without --out" 2 $?
check "synth without --out" "$tmp/noout.txt" "--out DIR is required"
"$kt" synth --out "$tmp/x" --size 5 >"$tmp/size.txt" 2>&1
expect_rc "synth --size 5" 2 $?
"$kt" synth --help >"$tmp/help.txt" 2>&1
expect_rc "synth --help" 0 $?
check "synth --help" "$tmp/help.txt" "--multilabel"

"$kt" bench loader --data "$tmp/shapes" --workers 1 --img-size 32 --batch-size 4 --batches 3 --warmup 1 --eval \
  >"$tmp/bench.txt" 2>&1
expect_rc "bench loader" 0 $?
check "bench table" "$tmp/bench.txt" "images/s"
check "bench train row" "$tmp/bench.txt" "train (fast decode)"
check "bench eval row" "$tmp/bench.txt" "eval (PIL-exact)"
check "bench command line" "$tmp/bench.txt" "command: keratrack bench loader --data $tmp/shapes --workers 1"
"$kt" bench loader --data "$tmp/nothing" >"$tmp/nodata.txt" 2>&1
expect_rc "bench loader on a missing folder" 1 $?
check "bench loader on a missing folder" "$tmp/nodata.txt" "keratrack synth --out DIR"
"$kt" bench loader --workers -3 >/dev/null 2>&1
expect_rc "bench loader --workers -3" 2 $?
"$kt" bench nosuchcase >/dev/null 2>&1
expect_rc "bench nosuchcase" 2 $?
"$kt" bench --help >"$tmp/bhelp.txt" 2>&1
expect_rc "bench --help" 0 $?
check "bench --help lists loader" "$tmp/bhelp.txt" "loader"

exit $fail
