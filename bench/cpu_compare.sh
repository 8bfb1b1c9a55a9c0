#!/usr/bin/env bash
# Ours and PyTorch's on the same machine, in one session, under the same environment: the rows of
# bench/README.md. PyTorch runs at its fastest here (../shared/PERFORMANCE.md): the OpenMP build of
# OpenBLAS, no OPENBLAS_CORETYPE/L2 override, glibc malloc without mmap churn, 2 threads.
# The two run case by case, interleaved (PyTorch, ours, ours --recompute for training cases), so a
# slow spell of this shared VM lands on both sides of a ratio rather than on one.
#   bench/cpu_compare.sh [KERATRACK] [CASES] [OUTDIR]
# CASES: comma-separated yardstick names (default: every case of issue 3, convnext_base training
# included: about 15 minutes in all on 2 cores).
# Writes OUTDIR/pytorch.json (every PyTorch case), OUTDIR/table.md (ours beside PyTorch with
# ratios) and OUTDIR/load.txt; prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
kt=${1:-build/keratrack}
cases=${2:-infer_b1_atto,infer_b1_tiny,infer_b1_base,infer_b16_atto,infer_b16_tiny,infer_b16_base,train_b16_atto,train_b16_tiny,train_b16_base,train_b8_64_atto}
out=${3:-bench/results}
threads=${KT_BENCH_THREADS:-2}
[ -x "$kt" ] || { echo "cpu_compare.sh: $kt is not built (cmake --build build)" >&2; exit 1; }
mkdir -p "$out/cases"
run() {
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
      GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736 OMP_NUM_THREADS="$threads" "$@"
}
uptime > "$out/load.txt"
rows=()
for c in ${cases//,/ }; do
  echo "== $c: PyTorch" >&2
  run /usr/bin/python3 bench/pytorch_bench.py --threads "$threads" --cases "$c" --json "$out/cases/pytorch_$c.json" > /dev/null
  echo "== $c: keratrack" >&2
  row=$(run "$kt" bench model --threads "$threads" --cases "$c" --compare "$out/cases/pytorch_$c.json" \
        --json "$out/cases/keratrack_$c.json" | grep "^| $c ")
  rows+=("$row")
  if [[ $c == train* ]]; then
    echo "== $c: keratrack --recompute" >&2
    row=$(run "$kt" bench model --threads "$threads" --cases "$c" --recompute --compare "$out/cases/pytorch_$c.json" \
          | grep "^| $c " | sed "s/^| $c /| $c --recompute /")
    rows+=("$row")
  fi
done
uptime >> "$out/load.txt"
# one PyTorch file for `keratrack bench model --compare`
/usr/bin/python3 - "$out" ${cases//,/ } <<'EOF'
import json, sys
out, cases = sys.argv[1], sys.argv[2:]
parts = [json.load(open(f"{out}/cases/pytorch_{c}.json")) for c in cases]
json.dump({"environment": parts[0]["environment"], "command": "bench/cpu_compare.sh (case by case)",
           "results": [r for p in parts for r in p["results"]]}, open(f"{out}/pytorch.json", "w"), indent=1)
EOF
{
  echo "keratrack vs PyTorch, $threads threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%d)"
  echo
  echo "| case | median | images/s | GFLOP/s | peak RSS | arena | PyTorch median | PyTorch RSS | time ratio | memory ratio |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "command: bench/cpu_compare.sh $kt $cases $out"
  echo "load before / after: $(paste -sd'|' "$out/load.txt" | sed 's/  */ /g')"
} | tee "$out/table.md"
