// AVX-512 VNNI integer dot products of block-quantized rows with an int8 x: the same kernels
// as the AVX2 ones in quant_avx2.cpp, with one vpdpbusd in place of the AVX2 multiply-add
// pair. Compiled for AVX-512 VNNI and entered only after a CPU check (quant.cpp).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "ops/quant.h"

// Every function below is compiled for these ISA extensions (clang and gcc spell it differently).
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")
#endif
// GCC 12 warns inside its own AVX-512 intrinsics (their "undefined" pass-through operands).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace rhead::detail {
namespace {

inline float f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline void k_scales(const uint8_t* b, float step[8], float base[8]) {
  float d = f16(b), dmin = f16(b + 2);
  const uint8_t* s = b + 4;
  for (int j = 0; j < 4; ++j) {
    step[j] = d * float(s[j] & 63);
    base[j] = dmin * float(s[j + 4] & 63);
    step[j + 4] = d * float((s[j + 8] & 0xf) | ((s[j] >> 6) << 4));
    base[j + 4] = dmin * float((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
  }
}

// 32 unsigned bytes w times 32 signed bytes x -> 8 int32 sums of 4 products.
inline __m256i dot32(__m256i w, __m256i x) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, x); }

#include "ops/quant_int8_kernels.inc"

}  // namespace

float dot_row_int8_vnni(DType t, const void* row, const int8_t* q, const float* d, const int32_t* sum16,
                        int64_t n) {
  return int8_dot(t, static_cast<const uint8_t*>(row), XView{q, d, sum16, n});
}

}  // namespace rhead::detail

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
