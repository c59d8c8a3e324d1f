#!/usr/bin/env bash
# Packs what scripts/gpu_check.sh needs on a GPU machine that cannot build rhead (no -dev
# packages there): the binaries of a CUDA build made here, the shared libraries they load that
# such a machine may lack, and a copy of the shared test data. Everything goes to ./.gpu_carry
# (ignored by git, about 25 MB); send that folder along with the checkout.
#
#   bash scripts/gpu_pack_prebuilt.sh           # configures and builds build-gpu (sm_90) if needed
#   BUILD=build bash scripts/gpu_pack_prebuilt.sh   # or the binaries of an existing CUDA build
#
# The test binaries name the shared folder, the tests/data folder and the rhead binary by the
# paths they were built with; gpu_check.sh recreates those paths on the GPU machine
# (bin/paths.env).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-gpu}
TARGETS="rhead test_cuda bench_gpu make_bench_model"
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DRHEAD_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
fi
if ! grep -q '^RHEAD_CUDA:BOOL=ON' "$BUILD/CMakeCache.txt"; then
  echo "gpu_pack_prebuilt: $BUILD is not a CUDA build (RHEAD_CUDA is OFF)" >&2
  exit 1
fi
cmake --build "$BUILD" -j"${JOBS:-2}" --target $TARGETS
BUILD=$(cd "$BUILD" && pwd)
SHARED=$(grep '^RHEAD_SHARED_DIR:' "$BUILD/CMakeCache.txt" | cut -d= -f2)
SOURCE=$(grep '^CMAKE_HOME_DIRECTORY:' "$BUILD/CMakeCache.txt" | cut -d= -f2)
rm -rf .gpu_carry
mkdir -p .gpu_carry
T=$(mktemp -d)
mkdir -p "$T/bin" "$T/lib"
for b in $TARGETS; do
  cp "$BUILD/$b" "$T/bin/"
  strip "$T/bin/$b"
done
for lib in libopenblas.so.0 libgfortran.so.5 libquadmath.so.0 libpcre2-8.so.0 libpng16.so.16; do
  p=$(ldd "$BUILD/test_cuda" "$BUILD/rhead" | grep "$lib " | head -1 | awk '{print $3}')
  if [ -n "$p" ]; then cp -L "$p" "$T/lib/"; fi
done
printf 'BUILT_SHARED=%s\nBUILT_RHEAD=%s/rhead\nBUILT_TEST_DATA=%s/tests/data\nBUILT_COMMIT=%s\nBUILT_ARCH="%s"\n' \
  "$SHARED" "$BUILD" "$SOURCE" "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src tests bench || echo '+changes')" \
  "$(grep '^CMAKE_CUDA_ARCHITECTURES:' "$BUILD/CMakeCache.txt" | cut -d= -f2)" >"$T/bin/paths.env"
tar -czf .gpu_carry/prebuilt.tar.gz -C "$T" bin lib
rm -rf "$T"
(cd "$SHARED" && tar -cJf - models/fmt-tiny/fmt-tiny-f32.gguf models/fmt-tiny/fmt-tiny-f16.gguf \
  models/fmt-tiny/fmt-tiny-q8_0.gguf models/fmt-tiny/hf-bf16 models/niah-tiny/niah-tiny-f32.gguf \
  models/niah-tiny/niah-tiny-f16.gguf models/niah-tiny/needles.jsonl data/haystack/paul_graham_essays) \
  >.gpu_carry/shared.tar.xz
du -sh .gpu_carry/*
