#!/usr/bin/env bash
# Images/s of `keratrack predict` on phone-sized photos (4032x3024 JPEGs, bench/make_photos.py):
# decoding such a photo costs more than convnext_atto's forward, so this times the decoding as much
# as the model. Each KERATRACK given is run in turn, twice, interleaved (A/B of two builds).
#   bench/predict_photos.sh --model CKPT [--photos N] [--threads N] [--device cpu] KERATRACK...
set -euo pipefail
model="" photos=32 threads=2 device=cpu bins=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --model) model=$2; shift 2;;
    --photos) photos=$2; shift 2;;
    --threads) threads=$2; shift 2;;
    --device) device=$2; shift 2;;
    -h|--help) sed -n 2,5p "$0"; exit 0;;
    -*) echo "predict_photos: unknown option $1" >&2; exit 2;;
    *) bins+=("$1"); shift;;
  esac
done
[[ -n $model && ${#bins[@]} -gt 0 ]] || { echo "usage: bench/predict_photos.sh --model CKPT [options] KERATRACK..." >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3; [[ -x $here/../.venv/bin/python ]] && py=$here/../.venv/bin/python
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$py" "$here/make_photos.py" "$tmp/src" 4 >/dev/null
for i in $(seq 0 $((photos - 1))); do ln -s "$tmp/src/photo$((i % 4)).jpg" "$tmp/p$i.jpg"; done
echo "keratrack predict, $photos photos of 4032x3024, --threads $threads --device $device, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "| binary | run | wall | images/s | peak RSS |"
echo "|---|---|---|---|---|"
for run in 1 2; do
  for b in "${bins[@]}"; do
    /usr/bin/time -f "%e %M" -o "$tmp/t" "$b" predict --model "$model" --threads "$threads" --device "$device" "$tmp"/p*.jpg >/dev/null
    read -r wall kb <"$tmp/t"
    echo "| $b | $run | $wall s | $(awk -v n="$photos" -v t="$wall" 'BEGIN { printf "%.1f", n / t }') | $((kb / 1024)) MB |"
  done
done
