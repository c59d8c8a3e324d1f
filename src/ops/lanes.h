// Float lanes for kernels written once for AVX2 (rhead::lanes8, 8 floats a vector) and
// AVX-512 (rhead::lanes16, 16 floats). Each namespace holds the same operations under the
// same names, compiled for its own instruction set (RHEAD_ISA_BEGIN), and then the kernels
// written on them (lanes_math.inc, included into both). A caller names the width it has
// checked the CPU for: lanes16::exp_shift_sum(...) after cpu_has_isa(KernelISA::AVX512).
// Everything is inline in an anonymous namespace: no code is shared across files.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <limits>

#include "ops/isa_target.h"

// The operations whose AVX2 and AVX-512 intrinsics differ only in their prefix and width.
// P: the prefix (_mm256_); W: the vector's bits (256); HP, HW: the same for the half-width
// integer vector that 8 or 16 f16/bf16 values fill.
#define RHEAD_LANE_OPS(P, W, HP, HW)                                                                             \
  using F = __m##W;                                                                                              \
  using I = __m##W##i;                                                                                           \
  constexpr int kLanes = W / 32;                                                                                 \
  inline F set1(float x) { return P##_set1_ps(x); }                                                              \
  inline F zero() { return P##_setzero_ps(); }                                                                   \
  inline F loadu(const float* p) { return P##_loadu_ps(p); }                                                     \
  inline void storeu(float* p, F x) { P##_storeu_ps(p, x); }                                                     \
  inline F add(F a, F b) { return P##_add_ps(a, b); }                                                            \
  inline F sub(F a, F b) { return P##_sub_ps(a, b); }                                                            \
  inline F mul(F a, F b) { return P##_mul_ps(a, b); }                                                            \
  inline F max(F a, F b) { return P##_max_ps(a, b); }                                                            \
  inline F fmadd(F a, F b, F c) { return P##_fmadd_ps(a, b, c); }                                                \
  inline F fnmadd(F a, F b, F c) { return P##_fnmadd_ps(a, b, c); }                                              \
  /* 2^n for integral n in float lanes, by the exponent bits */                                                  \
  inline F pow2(F n) {                                                                                           \
    return P##_castsi##W##_ps(P##_slli_epi32(P##_add_epi32(P##_cvtps_epi32(n), P##_set1_epi32(127)), 23));       \
  }                                                                                                              \
  /* kLanes f16 / bf16 values at p + 2 i as floats */                                                            \
  inline F load_f16(const uint8_t* p, int64_t i) {                                                               \
    return P##_cvtph_ps(HP##_loadu_si##HW(reinterpret_cast<const __m##HW##i*>(p + 2 * i)));                      \
  }                                                                                                              \
  inline F load_bf16(const uint8_t* p, int64_t i) {                                                              \
    const I v = P##_cvtepu16_epi32(HP##_loadu_si##HW(reinterpret_cast<const __m##HW##i*>(p + 2 * i)));           \
    return P##_castsi##W##_ps(P##_slli_epi32(v, 16));                                                            \
  }                                                                                                              \
  inline F load_f32(const uint8_t* p, int64_t i) { return P##_loadu_ps(reinterpret_cast<const float*>(p) + i); } \
  /* x as kLanes f16 values at p + 2 i, rounded to nearest even */                                               \
  inline void store_f16(uint8_t* p, int64_t i, F x) {                                                            \
    HP##_storeu_si##HW(reinterpret_cast<__m##HW##i*>(p + 2 * i),                                                 \
                       P##_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));                          \
  }

RHEAD_ISA_BEGIN("avx2,fma,f16c")
namespace rhead::lanes8 {
namespace {
RHEAD_LANE_OPS(_mm256, 256, _mm, 128)

inline F round_nearest(F x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
// y where x >= lo, else 0 (also where x is NaN).
inline F where_at_least(F x, F lo, F y) { return _mm256_and_ps(_mm256_cmp_ps(x, lo, _CMP_GE_OQ), y); }
inline float sum_lanes(F x) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(_mm_hadd_ps(s, s));
}
inline float max_lanes(F x) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}
// p[0 .. n) for n < kLanes, the other lanes `fill`; and the first n lanes of x back to p.
inline F load_part(const float* p, int64_t n, float fill) {
  alignas(32) float t[kLanes];
  for (int i = 0; i < kLanes; ++i) t[i] = i < n ? p[i] : fill;
  return _mm256_load_ps(t);
}
inline void store_part(float* p, int64_t n, F x) {
  alignas(32) float t[kLanes];
  _mm256_store_ps(t, x);
  for (int64_t i = 0; i < n; ++i) p[i] = t[i];
}

#include "ops/lanes_math.inc"
}  // namespace
}  // namespace rhead::lanes8
RHEAD_ISA_END

RHEAD_ISA_BEGIN("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c")
// GCC 12 warns inside its own AVX-512 intrinsics (their "undefined" pass-through operands).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
namespace rhead::lanes16 {
namespace {
RHEAD_LANE_OPS(_mm512, 512, _mm256, 256)

inline F round_nearest(F x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline F where_at_least(F x, F lo, F y) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ), y); }
inline float sum_lanes(F x) { return _mm512_reduce_add_ps(x); }
inline float max_lanes(F x) { return _mm512_reduce_max_ps(x); }
inline __mmask16 first(int64_t n) { return static_cast<__mmask16>((1u << n) - 1); }
inline F load_part(const float* p, int64_t n, float fill) { return _mm512_mask_loadu_ps(set1(fill), first(n), p); }
inline void store_part(float* p, int64_t n, F x) { _mm512_mask_storeu_ps(p, first(n), x); }

#include "ops/lanes_math.inc"
}  // namespace
}  // namespace rhead::lanes16
#pragma GCC diagnostic pop
RHEAD_ISA_END
