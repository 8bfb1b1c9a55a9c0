#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a trained model and its report:
# installs the missing packages, builds (Release), writes a synthetic Roboflow-format dataset,
# trains a small ConvNeXt on it with the full recipe (stratified K-fold, AdamW + OneCycleLR,
# label smoothing, best checkpoint per fold, out-of-fold and test reports with plots), then
# evaluates the fold ensemble on the test split and predicts one image.
#   ./setup.sh                 everything (about 1.5 minutes of training on 2 cores)
#   ./setup.sh --build-only    packages and build only
#   KT_DEMO_DIR=/tmp/x ./setup.sh   put the demo run elsewhere (default runs/demo)
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
./build/keratrack info
[[ "${1:-}" == "--build-only" ]] && exit 0

demo=${KT_DEMO_DIR:-runs/demo}
echo
echo "== 1/4 a synthetic dataset: 4 classes of drawn shapes, 64x64 JPEGs ($demo/data)"
./build/keratrack synth --out "$demo/data" --classes 4 --per-class 120 --size 64 --seed 7 --force
echo
echo "== 2/4 training convnext_atto from scratch, 3-fold, 10 epochs per fold ($demo/run)"
echo "   (about 1.5 min on 2 cores; a from-scratch ConvNeXt on ~500 small images reaches roughly 40-50%"
echo "   test accuracy on these 4 classes, chance being 25%: bench/README.md has a real dataset)"
rm -rf "$demo/run"
./build/keratrack train --data "$demo/data" --out "$demo/run" --model convnext_atto --img-size 64 \
    --folds 3 --epochs 10 --batch 16 --lr 2e-3 --seed 42
echo
echo "== 3/4 the fold ensemble on the test split ($demo/eval)"
./build/keratrack eval --model "$demo"/run/convnext_atto_fold*_best.safetensors --data "$demo/data" \
    --split test --temperature auto --out "$demo/eval"
echo
echo "== 4/4 one prediction, with a Grad-CAM heat map"
imgs=("$demo"/data/test/*.jpg) # a glob, not ls | head: under pipefail a SIGPIPE'd ls would end the script
img=${imgs[0]}
./build/keratrack predict --model "$demo"/run/convnext_atto_fold1_best.safetensors "$img" \
    --gradcam "$demo/gradcam.png"
echo
echo "Done. Reports: $demo/run/convnext_atto/{oof,test}/ and $demo/eval/ (eval_report.json,"
echo "classification_report.txt, confusion matrices, calibration curve); curves:"
echo "$demo/run/convnext_atto/learning_curves.png. Next: ./build/keratrack --help"
