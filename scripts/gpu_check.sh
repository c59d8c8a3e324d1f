#!/usr/bin/env bash
# The GPU check: one script, about 8 minutes on one H200. Builds rhead with the CUDA backend
# (-j16), runs the CUDA tests (every kernel against the CPU reference, whole models against the
# CPU backend), then the benchmarks side by side with PyTorch on the same shapes, and writes
# every figure to one file, $OUT/gpu_results.md (every log goes to $OUT/gpu_logs.tar.gz).
#
#   OUT=/some/dir bash scripts/gpu_check.sh
#
# Environment:
#   OUT                 where results go (default ./gpu_out)
#   RHEAD_SHARED_DIR    the shared data folder (models, essays); default ../shared, else a copy
#                       unpacked from ./.gpu_carry/shared.tar.xz (for a machine without ../shared)
#   GPU_CHECK_PRESET    bench model shape: 7b (default) or 8b
#   GPU_CHECK_QUICK=1   short benchmark lengths (a smoke run)
#   GPU_CHECK_TESTS     gtest filter for the CUDA tests (default: all)
#   GPU_CHECK_SKIP      comma list of parts to leave out: torch, detect, hf
# If the build cannot be configured here (missing -dev packages) and ./.gpu_carry/prebuilt.tar.gz
# holds binaries built elsewhere from this source (bin/, lib/ for the shared libraries they
# need; scripts/gpu_pack_prebuilt.sh makes it), those are used instead, and the file says so.
# Each step has its own time limit, so that one slow step cannot take the figures of the
# others with it; a step that fails or runs out of time is recorded as such.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu_out}
mkdir -p "$OUT"
R=$OUT/gpu_results.md
: >"$R"
LOGS=$(mktemp -d /tmp/rhead_gpu_logs.XXXXXX)  # packed into $OUT at the end: few files come back
T0=$(date +%s)
FENCE='```'
log() { echo "$*" | tee -a "$R"; }
since() { echo $(($(date +%s) - T0)); }
# step NAME SECONDS CMD...: runs CMD with a time limit, output to $LOGS/NAME.log, status to $R.
step() {
  local name=$1 limit=$2
  shift 2
  local t
  t=$(date +%s)
  timeout --signal=INT --kill-after=10 "$limit" "$@" >"$LOGS/$name.log" 2>&1
  local rc=$?
  log "- step \`$name\`: exit $rc in $(($(date +%s) - t)) s (at $(since) s)$([ $rc = 124 ] && echo ' — TIME LIMIT')"
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
log "- nvcc: $(nvcc --version 2>/dev/null | tail -1); $(cmake --version | head -1); cores: $(nproc)"
log "- shared data: $RHEAD_SHARED_DIR"
log ""
log "## Build"

BUILD=$ROOT/build-gpu
TARGETS="rhead test_cuda bench_gpu make_bench_model"
if step configure 120 cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DRHEAD_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DRHEAD_SHARED_DIR="$RHEAD_SHARED_DIR" &&
  step build 420 cmake --build "$BUILD" -j16 --target $TARGETS; then
  log "- built from source here (sm_90)"
  BIN=$BUILD
elif [ -f "$ROOT/.gpu_carry/prebuilt.tar.gz" ] && tar -xzf "$ROOT/.gpu_carry/prebuilt.tar.gz" -C "$ROOT/.gpu_carry" &&
  [ -x "$ROOT/.gpu_carry/bin/test_cuda" ]; then
  log "- could not build here (configure.log / build.log): using binaries built elsewhere from this source (.gpu_carry/bin)"
  BIN=$ROOT/.gpu_carry/bin
  export LD_LIBRARY_PATH=$ROOT/.gpu_carry/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
  # Those binaries name the paths they were built with: the shared folder and the CLI.
  [ -f "$BIN/paths.env" ] && . "$BIN/paths.env"
  log "- prebuilt from commit ${BUILT_COMMIT:-unknown}, CUDA architectures ${BUILT_ARCH:-?}"
  if [ -n "${BUILT_SHARED:-}" ] && [ ! -e "$BUILT_SHARED" ]; then
    mkdir -p "$(dirname "$BUILT_SHARED")" && ln -s "$RHEAD_SHARED_DIR" "$BUILT_SHARED"
  fi
  if [ -n "${BUILT_RHEAD:-}" ] && [ ! -e "$BUILT_RHEAD" ]; then
    mkdir -p "$(dirname "$BUILT_RHEAD")" && cp "$BIN/rhead" "$BUILT_RHEAD"
  fi
else
  log "- BUILD FAILED and no prebuilt binaries (configure.log / build.log):"
  log "$FENCE"
  tail -30 "$LOGS/configure.log" "$LOGS/build.log" 2>/dev/null | tee -a "$R"
  log "$FENCE"
  finish
  exit 1
fi

log ""
log "## Correctness (CUDA backend against the CPU reference)"
step test_cuda 200 "$BIN/test_cuda" --gtest_color=no --gtest_filter="${GPU_CHECK_TESTS:-*}"
log "$FENCE"
grep -E '^\[ +(OK|FAILED|SKIPPED) +\]|cuda vs cpu|tests? (ran|passed)|Failure|Expected|Which is|Actual|skipped' \
  "$LOGS/test_cuda.log" | head -100 | tee -a "$R" >/dev/null
log "$FENCE"

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

log ""
log "## Benchmarks ($PRESET shape, bf16, random weights)"
step make_model 120 "$BIN/make_bench_model" "$M" --type bf16 --preset "$PRESET" && figures make_model
step bench_rhead 200 "$BIN/bench_gpu" "$M" --device cuda --prefill "$PREFILL" --decode-context "$DECODE_CTX" \
  --decode-tokens 32 --also-tc
figures bench_rhead
skip() { [[ ",${GPU_CHECK_SKIP:-}," == *",$1,"* ]]; }
skip torch || step bench_torch 150 env PYTHONUNBUFFERED=1 python3 scripts/torch_gpu_bench.py --preset "$PRESET" --prefill "$PREFILL" \
  --decode-context "$DECODE_CTX" --decode-tokens 16
skip torch || figures bench_torch

# Detection uses the tensor-core prefill only if its test passed above.
if grep -q '^\[       OK \] CudaAttention.TensorCoreFlashPrefillMatchesReference' "$LOGS/test_cuda.log"; then
  export RHEAD_CUDA_FLASH=tc
fi
log ""
log "## Detection throughput (rhead detect, $PRESET shape, built-in needles and filler haystack, 1 depth; prefill attention kernel: ${RHEAD_CUDA_FLASH:-f32})"
skip detect && DETECT_LENGTHS=""
for L in $DETECT_LENGTHS; do
  step "detect_$L" 90 "$BIN/rhead" detect -m "$M" --device cuda --lengths "$L:$L:1" --depths 1 -q -o "$LOGS/detect_$L"
done
log "$FENCE"
python3 - "$LOGS" $DETECT_LENGTHS <<'EOF' 2>&1 | tee -a "$R"
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
EOF
log "$FENCE"

# The HF reference outputs (another part of the project writes that script): packed into $OUT.
HF_REF=""
for f in scripts/hf_reference.py .gpu_carry/hf/hf_reference.py; do
  [ -f "$f" ] && HF_REF=$f && break
done
if [ -n "$HF_REF" ] && ! skip hf; then
  log ""
  log "## HF reference outputs ($HF_REF, packed in hf_reference.tar.gz)"
  step hf_reference 90 env PYTHONUNBUFFERED=1 python3 "$HF_REF" "$LOGS/hf_reference"
  log "$FENCE"
  tail -20 "$LOGS/hf_reference.log" | tee -a "$R" >/dev/null
  log "$FENCE"
  tar -czf "$OUT/hf_reference.tar.gz" -C "$LOGS" hf_reference 2>/dev/null
fi
finish
exit 0
