#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers in tests/fuzz/fuzz_targets.h with clang's libFuzzer, under
# AddressSanitizer + UBSan. Builds build-fuzz/ (clang, -DKT_FUZZ=ON, no CUDA), then runs each target
# for SECONDS, starting from its stored inputs (tests/fuzz/corpus/<target>/ and the golden files the
# ctest test also uses). New inputs go to build-fuzz/corpus/<target>/, failures to
# build-fuzz/crashes/<target>/: copy a failure into tests/fuzz/corpus/<target>/ once fixed, so that
# every later ctest run replays it.
#   tests/fuzz/run_libfuzzer.sh [SECONDS per target, default 60] [TARGETS, default all, comma-separated]
# Targets: safetensors weights train_state csv image predict dataset diet meals http.
# Exit status: 0 nothing found, 1 a target crashed or broke an invariant, 2 build or usage error.
set -uo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
cd "$(dirname "$0")/../.."
secs=${1:-60}
targets=${2:-safetensors,weights,train_state,csv,image,predict,dataset,diet,meals,http}
case $secs in ''|*[!0-9]*) echo "run_libfuzzer.sh: SECONDS must be a whole number, got '$secs'" >&2; exit 2;; esac
command -v clang >/dev/null || { echo "run_libfuzzer.sh: clang is not installed (scripts/install-deps.sh --fuzz)" >&2; exit 2; }
b=build-fuzz
mkdir -p "$b"
CC=clang cmake -S . -B "$b" -DKT_FUZZ=ON -DKT_CUDA=OFF > "$b/configure.log" 2>&1 ||
  { cat "$b/configure.log" >&2; echo "run_libfuzzer.sh: configure failed" >&2; exit 2; }
for t in ${targets//,/ }; do
  cmake --build "$b" -j"$(nproc)" --target "fuzz_$t" > /dev/null || { echo "run_libfuzzer.sh: building fuzz_$t failed (is '$t' a target?)" >&2; exit 2; }
done
found=0
for t in ${targets//,/ }; do
  seeds=(tests/fuzz/corpus/"$t")
  case $t in
    safetensors) seeds+=(tests/golden/checkpoints);;
    csv) seeds+=(tests/serve/fixtures);;
    image) seeds+=(tests/golden/datasets);;
    predict) seeds+=(tests/fuzz/corpus/image tests/golden/datasets);;
  esac
  have=()
  for d in "${seeds[@]}"; do [ -d "$d" ] && have+=("$d"); done
  mkdir -p "$b/corpus/$t" "$b/crashes/$t"
  echo "== fuzz_$t: ${secs} s" >&2
  "$b/fuzz_$t" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=4096 -timeout=20 -dict=tests/fuzz/json.dict \
    -artifact_prefix="$b/crashes/$t/" -print_final_stats=1 "$b/corpus/$t" "${have[@]}" > "$b/fuzz_$t.log" 2>&1
  rc=$?
  runs=$(grep -o "stat::number_of_executed_units: *[0-9]*" "$b/fuzz_$t.log" | grep -o "[0-9]*$")
  cov=$(grep -o "cov: [0-9]*" "$b/fuzz_$t.log" | tail -1)
  if [ $rc -ne 0 ]; then
    found=1
    echo "fuzz_$t: FAILED after ${runs:-?} runs; input in $b/crashes/$t/, log $b/fuzz_$t.log:" >&2
    grep -m3 -E "ERROR|fuzz $t:|runtime error" "$b/fuzz_$t.log" >&2
  else
    echo "fuzz_$t: ${runs:-?} runs, $cov, nothing found (corpus $b/corpus/$t: $(ls "$b/corpus/$t" | wc -l) inputs)"
  fi
done
exit $found
