#!/usr/bin/env bash
# Installs the Debian 12 packages Keratrack needs, only those that are missing.
#   scripts/install-deps.sh           build and run dependencies
#   scripts/install-deps.sh --tests   plus what the test suite drives (headless Chromium, wrk)
#   scripts/install-deps.sh --fuzz    plus clang and its libFuzzer runtime (tests/fuzz/run_libfuzzer.sh)
set -euo pipefail

pkgs=(build-essential cmake pkg-config git
      libopenblas-openmp-dev libturbojpeg0-dev libspng-dev zlib1g-dev libsqlite3-dev
      libmicrohttpd-dev libsodium-dev libcjson-dev libcairo2-dev libexif-dev)
case "${1:-}" in
  "") ;;
  --tests) pkgs+=(chromium chromium-driver python3-selenium wrk curl valgrind) ;;
  --fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
  *) echo "install-deps: unknown option '$1' (use --tests or --fuzz)" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
