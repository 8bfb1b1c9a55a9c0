#!/usr/bin/env bash
# Ours and PyTorch's on the same machine, in one session, under the same environment: the rows of
# bench/README.md. PyTorch runs at its fastest here (../shared/PERFORMANCE.md): the OpenMP build of
# OpenBLAS, no OPENBLAS_CORETYPE/L2 override, glibc malloc without mmap churn, 2 threads.
#   bench/cpu_compare.sh [KERATRACK] [CASES] [OUTDIR]
# CASES: comma-separated yardstick names (default: every case of issue 3 but base training).
set -euo pipefail
cd "$(dirname "$0")/.."
kt=${1:-build/keratrack}
cases=${2:-infer_b1_atto,infer_b1_tiny,infer_b1_base,infer_b16_atto,infer_b16_tiny,infer_b16_base,train_b16_atto,train_b16_tiny,train_b8_64_atto}
out=${3:-bench/results}
threads=${KT_BENCH_THREADS:-2}
mkdir -p "$out"
run() {
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
      GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736 OMP_NUM_THREADS="$threads" "$@"
}
echo "== PyTorch ($threads threads)"
run /usr/bin/python3 bench/pytorch_bench.py --threads "$threads" --cases "$cases" --json "$out/pytorch.json" | tee "$out/pytorch.md"
echo "== keratrack ($threads threads), with PyTorch's numbers beside"
run "$kt" bench model --threads "$threads" --cases "$cases" --compare "$out/pytorch.json" --json "$out/keratrack.json" \
  | tee "$out/keratrack.md"
echo "== with --recompute (training cases)"
tcases=$(echo "$cases" | tr ',' '\n' | grep '^train' | paste -sd, -)
[ -n "$tcases" ] && run "$kt" bench model --threads "$threads" --cases "$tcases" --recompute --compare "$out/pytorch.json" \
  | tee "$out/keratrack_recompute.md"
uptime | tee "$out/load.txt"
