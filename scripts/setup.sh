#!/usr/bin/env bash
# Installs everything rhead's build and tests need on a fresh Debian 12 machine, then builds.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" != 0 ] && SUDO=sudo
PACKAGES=(build-essential cmake pkg-config libgtest-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libpcre2-dev libopenblas-dev libpng-dev
  libsentencepiece-dev python3-sentencepiece sentencepiece
  python3-torch python3-nltk python3-numpy chromium clang-14 libfuzzer-14-dev clang-format-14
  python3-dev pybind11-dev python3-pybind11 python3-pytest)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
if ! command -v npm >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm
fi
# JavaScript port of HF tokenizers, used by the tokenizer tests as an oracle, and the
# tokenizer files it ships for models ../shared lacks (Gemma-2). Installed from the lock
# file; reinstalled when node_modules no longer satisfies package.json (npm ls fails).
if [ -f tests/oracle/package.json ] &&
  { [ ! -d tests/oracle/node_modules ] || ! (cd tests/oracle && npm ls >/dev/null 2>&1); }; then
  (cd tests/oracle && npm install --no-audit --no-fund --silent)
fi
# playwright-core drives Debian's chromium in the browser tests of HTML pages.
if [ -f tests/browser/package.json ] && [ ! -d tests/browser/node_modules ]; then
  (cd tests/browser && npm install --no-audit --no-fund --silent)
fi
# CI (CI=true) turns compiler warnings into errors.
WERROR=OFF
[ "${CI:-}" = true ] && WERROR=ON
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DRHEAD_WERROR=$WERROR >/dev/null
cmake --build build -j"$(nproc)"
