#!/usr/bin/env bash
# The GPU check: one script, at most about 8 minutes on one H200. Takes the binaries packed by
# scripts/gpu_pack_prebuilt.sh (./.gpu_carry), or else builds rhead with the CUDA backend
# (-j16); runs the CUDA tests (every kernel against the CPU reference; whole models and every
# family against the CPU backend and transformers), then the benchmarks side by side with
# PyTorch on the same shapes, and writes every figure to one file, $OUT/gpu_results.md (every
# log goes to $OUT/gpu_logs.tar.gz).
#
#   OUT=/some/dir bash scripts/gpu_check.sh
#
# Environment:
#   OUT                 where results go (default ./gpu_out)
#   RHEAD_SHARED_DIR    the shared data folder (models, essays); default ../shared, else a copy
#                       unpacked from ./.gpu_carry/shared.tar.xz (for a machine without ../shared)
#   GPU_CHECK_BUDGET    seconds for the whole check (default 480); each step's limit is cut to
#                       what is left, and a step with no time left is recorded as left out
#   GPU_CHECK_PRESET    bench model shape: 7b (default) or 8b
#   GPU_CHECK_QUICK=1   short benchmark lengths (a smoke run)
#   GPU_CHECK_TESTS     gtest filter for the CUDA tests (default: all)
#   GPU_CHECK_SKIP      comma list of parts to leave out: bench, detect, torch
#   GPU_CHECK_FLASH     prefill attention kernel of the benchmarks and detection
#                       (RHEAD_CUDA_FLASH); default: the build's default when that is the
#                       register tensor-core kernel and its test passed, else tc if that one passed
#   GPU_CHECK_BUILD=1   build here even when ./.gpu_carry/prebuilt.tar.gz is present
# Order: tests, rhead benchmarks, detection, PyTorch last (its figures change least).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu_out}
mkdir -p "$OUT"
R=$OUT/gpu_results.md
: >"$R"
LOGS=$(mktemp -d /tmp/rhead_gpu_logs.XXXXXX)  # packed into $OUT at the end: few files come back
T0=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-480}
FENCE='```'
log() { echo "$*" | tee -a "$R"; }
since() { echo $(($(date +%s) - T0)); }
skip() { [[ ",${GPU_CHECK_SKIP:-}," == *",$1,"* ]]; }
# step NAME SECONDS CMD...: runs CMD with a time limit (cut to what is left of the budget),
# output to $LOGS/NAME.log, status to $R.
step() {
  local name=$1 limit=$2
  shift 2
  local t left rc
  t=$(date +%s)
  left=$((BUDGET - $(since) - 10))
  if [ "$left" -lt 10 ]; then
    : >"$LOGS/$name.log"
    log "- step \`$name\`: LEFT OUT (the budget of $BUDGET s is spent)"
    return 125
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  timeout --signal=INT --kill-after=10 "$limit" "$@" >"$LOGS/$name.log" 2>&1
  rc=$?
  log "- step \`$name\`: exit $rc in $(($(date +%s) - t)) s (limit $limit s, at $(since) s)$([ $rc = 124 ] && echo ' — TIME LIMIT')"
  return $rc
}
# figures NAME: copies the "name: value" lines of a step's log into the results file.
figures() {
  log "$FENCE"
  grep -E '^[a-zA-Z_]+[^:]*: ' "$LOGS/$1.log" | tee -a "$R" >/dev/null
  log "$FENCE"
}
finish() {
  log ""
  log "- total: $(since) s"
  nvidia-smi >"$LOGS/nvidia_smi.log" 2>&1
  tar -czf "$OUT/gpu_logs.tar.gz" -C "$LOGS" . 2>/dev/null
}

SHARED=${RHEAD_SHARED_DIR:-}
if [ -z "$SHARED" ]; then
  for d in "$ROOT/../shared" /work/shared; do
    [ -d "$d/models" ] && SHARED=$(cd "$d" && pwd) && break
  done
fi
if [ -z "$SHARED" ] && [ -f "$ROOT/.gpu_carry/shared.tar.xz" ]; then
  mkdir -p "$ROOT/.gpu_carry/shared" && tar -xJf "$ROOT/.gpu_carry/shared.tar.xz" -C "$ROOT/.gpu_carry/shared"
  SHARED=$ROOT/.gpu_carry/shared
fi
export RHEAD_SHARED_DIR=${SHARED:-/nonexistent}

log "# rhead GPU check"
log ""
log "- date: $(date -u +%FT%TZ); commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?') $(git log -1 --format=%s 2>/dev/null | cut -c1-80)"
log "- GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)"
log "- nvcc: $(nvcc --version 2>/dev/null | tail -1); cores: $(nproc); budget: $BUDGET s"
log "- shared data: $RHEAD_SHARED_DIR"
log ""
log "## Binaries"

BUILD=$ROOT/build-gpu
TARGETS="rhead test_cuda bench_gpu make_bench_model"
if [ "${GPU_CHECK_BUILD:-0}" != 1 ] && [ -f "$ROOT/.gpu_carry/prebuilt.tar.gz" ] &&
  tar -xzf "$ROOT/.gpu_carry/prebuilt.tar.gz" -C "$ROOT/.gpu_carry" && [ -x "$ROOT/.gpu_carry/bin/test_cuda" ]; then
  BIN=$ROOT/.gpu_carry/bin
  export LD_LIBRARY_PATH=$ROOT/.gpu_carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
  # Those binaries name the paths they were built with: the shared folder, tests/data, the CLI.
  [ -f "$BIN/paths.env" ] && . "$BIN/paths.env"
  log "- prebuilt elsewhere from commit ${BUILT_COMMIT:-unknown} (scripts/gpu_pack_prebuilt.sh), CUDA architectures ${BUILT_ARCH:-?}"
  if [ -n "${BUILT_SHARED:-}" ] && [ ! -e "$BUILT_SHARED" ]; then
    mkdir -p "$(dirname "$BUILT_SHARED")" && ln -s "$RHEAD_SHARED_DIR" "$BUILT_SHARED"
  fi
  if [ -n "${BUILT_TEST_DATA:-}" ] && [ ! -e "$BUILT_TEST_DATA" ]; then
    mkdir -p "$(dirname "$BUILT_TEST_DATA")" && ln -s "$ROOT/tests/data" "$BUILT_TEST_DATA"
  fi
  if [ -n "${BUILT_RHEAD:-}" ] && [ ! -e "$BUILT_RHEAD" ]; then
    mkdir -p "$(dirname "$BUILT_RHEAD")" && cp "$BIN/rhead" "$BUILT_RHEAD"
  fi
elif step configure 120 cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DRHEAD_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DRHEAD_SHARED_DIR="$RHEAD_SHARED_DIR" &&
  step build 420 cmake --build "$BUILD" -j16 --target $TARGETS; then
  log "- built from source here (sm_90)"
  BIN=$BUILD
else
  log "- NO BINARIES: no .gpu_carry/prebuilt.tar.gz and the build failed (configure.log / build.log):"
  log "$FENCE"
  tail -30 "$LOGS/configure.log" "$LOGS/build.log" 2>/dev/null | tee -a "$R"
  log "$FENCE"
  finish
  exit 1
fi

log ""
log "## Correctness (CUDA backend against the CPU reference and transformers)"
# The CPU-heavy detect comparison runs on its own, so that a slow one cannot cut the others.
DETECT_TEST=CudaModels.DetectHeadScoresMatchCpuOnNiahTinyGrid
if [ -n "${GPU_CHECK_TESTS:-}" ]; then
  step test_cuda 200 "$BIN/test_cuda" --gtest_color=no --gtest_filter="$GPU_CHECK_TESTS"
else
  step test_cuda 120 "$BIN/test_cuda" --gtest_color=no --gtest_filter="*-$DETECT_TEST"
  step test_cuda_detect 90 "$BIN/test_cuda" --gtest_color=no --gtest_filter="$DETECT_TEST"
fi
log "$FENCE"
cat "$LOGS"/test_cuda*.log | grep -E '^\[ +(OK|FAILED|SKIPPED) +\] [A-Za-z0-9/_.]+( |$)|cuda vs cpu|tests? (ran|passed)|Failure|Expected|Which is|Actual|skipped' |
  grep -v '^\[  SKIPPED \] [A-Za-z0-9/_.]*$' | head -150 | tee -a "$R" >/dev/null
log "$FENCE"

# The prefill kernel of the benchmarks: the build's default when it is the register-resident
# tensor-core kernel and its test passed; else the WMMA kernel (tc) when its test passed.
passed() { grep -q "^\[       OK \] CudaAttention.$1 " "$LOGS"/test_cuda*.log; }
FLASH=${GPU_CHECK_FLASH:-}
if [ -z "$FLASH" ] && passed RegisterFlashPrefillMatchesReference; then
  FLASH=mma
elif [ -z "$FLASH" ] && passed TensorCoreFlashPrefillMatchesReference; then
  FLASH=tc
fi
[ -n "$FLASH" ] && export RHEAD_CUDA_FLASH=$FLASH

PRESET=${GPU_CHECK_PRESET:-7b}
if [ "${GPU_CHECK_QUICK:-0}" = 1 ]; then
  PREFILL=4096,16384; DECODE_CTX=16384; DETECT_LENGTHS="4096"
else
  PREFILL=4096,16384,32768,51200; DECODE_CTX=32768; DETECT_LENGTHS="4096 16384 32768"
fi
# Bench model files go to local disk outside $OUT (far too large to come back).
MDIR=${GPU_CHECK_MODEL_DIR:-/tmp/rhead_bench_models}
mkdir -p "$MDIR"
M=$MDIR/$PRESET-bf16.gguf

if ! { skip bench && skip detect; }; then
  log ""
  log "## Benchmarks ($PRESET shape, bf16, random weights; prefill attention kernel: ${RHEAD_CUDA_FLASH:-default})"
  step make_model 90 "$BIN/make_bench_model" "$M" --type bf16 --preset "$PRESET" && figures make_model
fi
if ! skip bench; then
  step bench_rhead 150 "$BIN/bench_gpu" "$M" --device cuda --prefill "$PREFILL" --decode-context "$DECODE_CTX" \
    --decode-tokens 32
  figures bench_rhead
  # The other block shapes of the register tensor-core kernel, and the older WMMA kernel, at 32K.
  if [ "${RHEAD_CUDA_FLASH:-}" = mma ] && [ "${GPU_CHECK_QUICK:-0}" != 1 ]; then
    step bench_shape_4x16 45 env RHEAD_CUDA_FLASH_SHAPE=4x16 "$BIN/bench_gpu" "$M" --device cuda --prefill 32768 \
      --decode-tokens 0 && figures bench_shape_4x16
    step bench_shape_4x32 45 env RHEAD_CUDA_FLASH_SHAPE=4x32 "$BIN/bench_gpu" "$M" --device cuda --prefill 32768 \
      --decode-tokens 0 && figures bench_shape_4x32
  fi
fi

if ! skip detect; then
  log ""
  log "## Detection throughput (rhead detect, $PRESET shape, built-in needles and filler haystack, 1 depth; prefill attention kernel: ${RHEAD_CUDA_FLASH:-default})"
  for L in $DETECT_LENGTHS; do
    step "detect_$L" $((30 + L / 400)) "$BIN/rhead" detect -m "$M" --device cuda --lengths "$L:$L:1" --depths 1 -q \
      -o "$LOGS/detect_$L"
  done
  log "$FENCE"
  python3 - "$LOGS" $DETECT_LENGTHS <<'PY' 2>&1 | tee -a "$R"
# Tests per minute at each measured length, and the paper's full grid (3 needles x 20 lengths
# 1K..50K x 10 depths) projected from a fit t(L) = a + b L + c L^2 of the per-test seconds.
import json, sys
logs, lengths = sys.argv[1], [int(x) for x in sys.argv[2:]]
pts = []
for L in lengths:
    try:
        secs = [json.loads(l)["seconds"] for l in open(f"{logs}/detect_{L}/results.jsonl") if l.strip()]
    except Exception as e:
        print(f"detect L={L}: no results ({e})")
        continue
    if not secs:
        continue
    mean = sum(secs) / len(secs)
    pts.append((L, mean))
    print(f"detect_tests_per_min L={L}: {60 / mean:.2f} ({len(secs)} tests, {mean:.2f} s/test)")
if len(pts) >= 3:
    import numpy as np
    a = np.polyfit([p[0] for p in pts], [p[1] for p in pts], 2)
    grid = [round(1000 + i * (50000 - 1000) / 19) for i in range(20)]
    total = sum(max(float(np.polyval(a, L)), 0.0) for L in grid) * 3 * 10
    print(f"detect_full_grid_projected_min (600 tests, 1K-50K): {total / 60:.1f}")
elif pts:
    print("detect_full_grid_projected_min: needs three lengths")
PY
  log "$FENCE"
fi

if ! skip torch; then
  log ""
  log "## PyTorch on the same shape (transformers LlamaForCausalLM from config, bf16, SDPA)"
  step bench_torch 120 env PYTHONUNBUFFERED=1 python3 scripts/torch_gpu_bench.py --preset "$PRESET" --prefill "$PREFILL" \
    --decode-context "$DECODE_CTX" --decode-tokens 16
  figures bench_torch
fi
finish
exit 0
