#!/usr/bin/env bash
# Hardening checks, in their own build folder (build-san/: clang-14, ASan + UBSan, libFuzzer
# coverage; RHEAD_FUZZ=ON):
#   1. the test suites that feed rhead hostile input run under the sanitizers: test_io
#      (GGUF/safetensors/llama2.c/config.json loaders and their malformed inputs),
#      test_analysis (head_score/results/summary readers) and test_tokenizer (tokenizer.json,
#      tokenizer.model, GGUF vocabularies). The model and NIAH suites run full forward passes
#      and decode loops that take too long under ASan on two cores, and read no input the
#      suites above do not already cover.
#   2. every fuzz target in fuzz/ runs SECONDS (default 30) from seeds that
#      scripts/fuzz_seeds.py cuts from the shared fixtures. A crash, sanitizer report, leak,
#      hang (> 10 s on one input) or allocation above 2 GB fails the script and leaves the
#      input in build-san/fuzz-crashes/.
# usage: scripts/sanitize_fuzz.sh [SECONDS]      SECONDS=0: sanitized tests only
#        scripts/sanitize_fuzz.sh 600 fuzz_gguf  one long run of the named targets
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-30}
shift || true
ONLY=("$@")
BUILD=build-san
if [ -n "${RHEAD_SHARED_DIR:-}" ]; then SHARED=$RHEAD_SHARED_DIR
elif [ -d ../shared ]; then SHARED=$(cd ../shared && pwd)
else SHARED=/work/shared; fi

start=$(date +%s)
# -O1: the usual level for sanitizer builds; it compiles much faster than -O3 on two cores.
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" \
  -DCMAKE_C_FLAGS_RELEASE="-O1 -DNDEBUG" -DRHEAD_FUZZ=ON -DRHEAD_CUDA=OFF \
  -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_C_COMPILER=clang-14 -DRHEAD_SHARED_DIR="$SHARED" >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target test_io test_analysis test_tokenizer fuzz_targets
echo "sanitize_fuzz: build took $(( $(date +%s) - start )) s"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export OMP_WAIT_POLICY=passive
if [ ${#ONLY[@]} -eq 0 ]; then
  t0=$(date +%s)
  pids=()
  for suite in test_io test_analysis test_tokenizer; do
    "$BUILD/$suite" --gtest_brief=1 >"$BUILD/$suite.log" 2>&1 & pids+=($!)
  done
  failed=0
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed=1; done
  for suite in test_io test_analysis test_tokenizer; do
    echo "sanitize_fuzz: $suite: $(grep -E '^\[  PASSED  \]|^\[  FAILED  \]|tests ran' "$BUILD/$suite.log" | tr '\n' ' ')"
  done
  if [ $failed -ne 0 ]; then
    for suite in test_io test_analysis test_tokenizer; do tail -n 40 "$BUILD/$suite.log"; done
    echo "sanitize_fuzz: a sanitized test suite failed" >&2
    exit 1
  fi
  echo "sanitize_fuzz: sanitized suites took $(( $(date +%s) - t0 )) s"
fi

[ "$SECONDS_PER_TARGET" -gt 0 ] || exit 0
python3 scripts/fuzz_seeds.py "$SHARED" "$BUILD/fuzz-seeds"
mkdir -p "$BUILD/fuzz-crashes"
targets=()
for src in fuzz/fuzz_*.cpp; do
  name=$(basename "$src" .cpp)
  if [ ${#ONLY[@]} -gt 0 ] && [[ ! " ${ONLY[*]} " == *" $name "* ]]; then continue; fi
  targets+=("$name")
done
run_target() {
  local name=$1 secs=$2 build=$3
  mkdir -p "$build/fuzz-corpus/$name" "$build/fuzz-seeds/$name"
  if "$build/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$build/fuzz-crashes/$name-" "$build/fuzz-corpus/$name" "$build/fuzz-seeds/$name" \
      >"$build/fuzz-$name.log" 2>&1; then
    echo "sanitize_fuzz: $name: $(grep -E '^stat::number_of_executed_units' "$build/fuzz-$name.log" | awk '{print $2}') executions in $secs s, no findings"
  else
    tail -n 60 "$build/fuzz-$name.log"
    echo "sanitize_fuzz: $name: FINDING (input saved under $build/fuzz-crashes/)" >&2
    return 1
  fi
}
export -f run_target
# Two targets at a time: one per core.
printf '%s\n' "${targets[@]}" | xargs -P 2 -I{} bash -c "run_target {} $SECONDS_PER_TARGET $BUILD"
echo "sanitize_fuzz: total $(( $(date +%s) - start )) s"
