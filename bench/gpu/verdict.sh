#!/bin/bash
# Issue 7's acceptance goal from one device run: our ConvNeXt-Base bf16 training row (the table
# kt_gpu_bench model prints) against PyTorch AMP bf16's (pytorch_gpu_bench.py --json), both at batch
# 64 and 224 px on the same card.
#   bash bench/gpu/verdict.sh OURS.md PYTORCH.json
# Prints one line; exit 0 goal met (at least PyTorch's images/s in no more device memory), 1 not
# met, 2 a number missing (the line names the file and what it lacks).
set -u
[ $# -eq 2 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
ours=$1 pt=$2
[ -r "$ours" ] || { echo "verdict: cannot read $ours"; exit 2; }
[ -r "$pt" ] || { echo "verdict: cannot read $pt (PyTorch not measured?)"; exit 2; }
# | train:convnext_base:64:224 | bf16 GEMMs | 57.84 ms | 1106.4 | 101.92 | 9391 | 8018 |
read -r o_ips o_mib < <(awk -F'|' '$2 ~ /^ *train:convnext_base:64:224 *$/ && $3 ~ /^ *bf16 GEMMs *$/ && $4 ~ /ms/ {
    gsub(/ /, "", $5); gsub(/ /, "", $7); print $5, $7; exit }' "$ours")
[ -n "${o_ips:-}" ] && [ -n "${o_mib:-}" ] || { echo "verdict: $ours has no measured train:convnext_base:64:224 bf16 row"; exit 2; }
# the object with "case": "train_b64_base" and "mode": "amp_bf16"
read -r p_ips p_mib < <(awk '
    /"case":/ { c = $0; sub(/.*"case": *"/, "", c); sub(/".*/, "", c) }
    /"mode":/ { m = $0; sub(/.*"mode": *"/, "", m); sub(/".*/, "", m) }
    /"images_per_s":/ && c == "train_b64_base" && m == "amp_bf16" { v = $0; sub(/.*: */, "", v); sub(/,.*/, "", v); ips = v }
    /"peak_mib":/ && c == "train_b64_base" && m == "amp_bf16" { v = $0; sub(/.*: */, "", v); sub(/,.*/, "", v); mib = v }
    END { if (ips != "" && mib != "") print ips, mib }' "$pt")
[ -n "${p_ips:-}" ] && [ -n "${p_mib:-}" ] || { echo "verdict: $pt has no train_b64_base amp_bf16 entry"; exit 2; }
awk -v oi="$o_ips" -v om="$o_mib" -v pi="$p_ips" -v pm="$p_mib" 'BEGIN {
    met = (oi + 0 >= pi + 0) && (om + 0 <= pm + 0)
    printf "ConvNeXt-Base bf16 training, batch 64 at 224: ours %.1f img/s in %.0f MiB, PyTorch AMP bf16 %.1f img/s in %.0f MiB: %.2fx the images/s in %.2fx the memory: goal %s (at least 1x the images/s in at most 1x the memory)\n",
        oi, om, pi, pm, oi / pi, om / pm, met ? "MET" : "NOT MET"
    exit met ? 0 : 1 }'
