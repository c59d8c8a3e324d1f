#!/usr/bin/env bash
# Usage: check_no_gpu_libs.sh RHEAD SHARED_DIR
# Runs commands that never touch the GPU with the dynamic loader's log on and fails when any
# of them opens a CUDA library (runtime, driver, cuBLAS), as a link or as a dlopen.
set -uo pipefail
rhead=$1 shared=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
scores="$shared/data/head_scores/llama-2-7b-80k.json"
status=0
check() {  # check NAME ARGS...
  local name=$1
  shift
  LD_DEBUG=libs "$rhead" "$@" >"$scratch/out" 2>"$scratch/log"
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "FAIL $name: exit $rc: $(tail -n 1 "$scratch/out")"
    status=1
  elif grep -E 'calling init: .*lib(cuda|cudart|cublas|cublasLt)\.so' "$scratch/log" >/dev/null; then
    echo "FAIL $name loads a GPU library:"
    grep -E 'calling init: .*lib(cuda|cudart|cublas)' "$scratch/log" | sed 's/^ *[0-9]*: *//' | sort -u
    status=1
  else
    echo "ok   $name: no GPU library"
  fi
}
check "--help" --help
check "detect --help" detect --help
if [[ -f "$scores" ]]; then
  check "plot" plot "$scores" -o "$scratch/plots"
  check "compare" compare "$scores" "$scores"
elif [[ "${CI:-}" == true ]]; then
  echo "FAIL missing $scores (shared data)"
  status=1
else
  echo "skip plot/compare: missing $scores"
fi
exit $status
