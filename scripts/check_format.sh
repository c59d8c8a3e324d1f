#!/usr/bin/env bash
# Fails when a tracked C++ or CUDA source differs from .clang-format's layout (clang-format 14).
# Fix with: clang-format-14 -i $(bash scripts/check_format.sh --list)
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files 'src/*.cpp' 'src/*.h' 'src/*.cu' 'src/*.cuh' 'src/*.inc' 'tests/*.cpp' 'tests/*.h' \
  'bench/*.cpp' 'bench/*.h' 'fuzz/*.cpp' 'fuzz/*.h' 'python/*.cpp')
if [ "${1:-}" = --list ]; then
  echo "$files"
  exit 0
fi
# shellcheck disable=SC2086
clang-format-14 --dry-run --Werror $files
echo "format: $(echo "$files" | wc -w) files match .clang-format"
