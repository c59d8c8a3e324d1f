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

// ---- Integer dot products against an int8 x (see QuantizedVector) ----
// Each block of 32 weights is widened to unsigned bytes and multiplied with x's bytes into
// 8 int32 sums of 4 neighbouring products (lanes 0-3: elements 0-15, lanes 4-7: 16-31);
// offsets (Q4_0's 8, Q4_K's mins, Q6_K's 32) are taken out through x's sums per 16.
// quant_avx2.cpp holds the same kernels over a different dot32.

// QuantizedVector's arrays as plain pointers (no std::vector code is compiled for this target).
struct XView {
  const int8_t* q;
  const float* d;
  const int32_t* sum16;
  int64_t n;
};

inline float hsum8(__m256 s) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

inline __m256i load32(const void* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

float int8_q8_0(const uint8_t* p, const XView& x) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < x.n / 32; ++b, p += 34) {
    __m256i w = load32(p + 2), q = load32(x.q + 32 * b);
    // |w| as unsigned bytes, x with w's sign moved onto it: the products keep their sign.
    __m256i prod = dot32(_mm256_sign_epi8(w, w), _mm256_sign_epi8(q, w));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(p) * x.d[size_t(b)]), _mm256_cvtepi32_ps(prod), acc);
  }
  return hsum8(acc);
}

float int8_q4_0(const uint8_t* p, const XView& x) {
  __m256 acc = _mm256_setzero_ps();
  float offset = 0;
  const __m128i low4 = _mm_set1_epi8(0x0f);
  for (int64_t b = 0; b < x.n / 32; ++b, p += 18) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
    __m256i w = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), low4), _mm_and_si128(v, low4));
    __m256i prod = dot32(w, load32(x.q + 32 * b));
    float s = f16(p) * x.d[size_t(b)];
    acc = _mm256_fmadd_ps(_mm256_set1_ps(s), _mm256_cvtepi32_ps(prod), acc);
    offset += s * 8 * float(x.sum16[size_t(2 * b)] + x.sum16[size_t(2 * b + 1)]);
  }
  return hsum8(acc) - offset;
}

float int8_q4_k(const uint8_t* p, const XView& x) {
  // Per super-block of 256: the 8 sub-block scales and mins are decoded to integers once and
  // turned into one vector each (times d or dmin and x's 8 block scales), so the loop body is
  // integer dots and FMAs; the min terms (min * x's block sums) go into a vector accumulator
  // instead of a scalar chain.
  __m256 acc = _mm256_setzero_ps(), offset = _mm256_setzero_ps();
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  alignas(32) float step[8];
  for (int64_t b = 0; b < x.n / 256; ++b, p += 144) {
    // The 12 scale bytes as three words; rearranged so that bytes 0-7 hold the 8 scales and
    // bytes 8-15 the 8 mins, all in registers (no store-to-load round trip).
    uint32_t w0, w1, w2;
    std::memcpy(&w0, p + 4, 4);
    std::memcpy(&w1, p + 8, 4);
    std::memcpy(&w2, p + 12, 4);
    const uint32_t sc_lo = w0 & 0x3f3f3f3fu, mn_lo = w1 & 0x3f3f3f3fu;
    const uint32_t sc_hi = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4);
    const uint32_t mn_hi = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4);
    const __m128i packed = _mm_set_epi32(static_cast<int>(mn_hi), static_cast<int>(mn_lo), static_cast<int>(sc_hi),
                                         static_cast<int>(sc_lo));
    const __m256 xd = _mm256_loadu_ps(x.d + 8 * b);
    const __m256 scale = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(packed));
    const __m256 mins = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(packed, 8)));
    _mm256_store_ps(step, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(f16(p)), scale), xd));
    // x's sums over each sub-block of 32: pairs of its sums over 16, back in sub-block order.
    const __m256i s16a = load32(x.sum16 + 16 * b), s16b = load32(x.sum16 + 16 * b + 8);
    const __m256i sum32 = _mm256_permute4x64_epi64(_mm256_hadd_epi32(s16a, s16b), 0xD8);
    offset = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(f16(p + 2)), mins), xd),
                             _mm256_cvtepi32_ps(sum32), offset);
    for (int c = 0; c < 4; ++c) {
      __m256i v = load32(p + 16 + 32 * c);
      int64_t xb = 8 * b + 2 * c;  // x block of sub-block 2c; 2c+1 is the next
      __m256i p0 = dot32(_mm256_and_si256(v, low4), load32(x.q + 32 * xb));
      __m256i p1 = dot32(_mm256_and_si256(_mm256_srli_epi16(v, 4), low4), load32(x.q + 32 * xb + 32));
      acc = _mm256_fmadd_ps(_mm256_broadcast_ss(step + 2 * c), _mm256_cvtepi32_ps(p0), acc);
      acc = _mm256_fmadd_ps(_mm256_broadcast_ss(step + 2 * c + 1), _mm256_cvtepi32_ps(p1), acc);
    }
  }
  return hsum8(acc) - hsum8(offset);
}

float int8_q6_k(const uint8_t* p, const XView& x) {
  __m256 acc = _mm256_setzero_ps();
  float offset = 0;
  const __m256i low4 = _mm256_set1_epi8(0x0f), top2 = _mm256_set1_epi8(0x30);
  for (int64_t b = 0; b < x.n / 256; ++b, p += 210) {
    float d = f16(p + 208);
    const int8_t* sc = reinterpret_cast<const int8_t*>(p + 192);
    for (int h = 0; h < 2; ++h) {
      __m256i l0 = load32(p + 64 * h), l1 = load32(p + 64 * h + 32), hb = load32(p + 128 + 32 * h);
      __m256i q[4];  // codes 0..63, before the -32
      q[0] = _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), top2));
      q[1] = _mm256_or_si256(_mm256_and_si256(l1, low4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), top2));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4), _mm256_and_si256(hb, top2));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                             _mm256_and_si256(_mm256_srli_epi16(hb, 2), top2));
      for (int k = 0; k < 4; ++k) {
        int64_t xb = 8 * b + 4 * h + k;
        __m256i prod = dot32(q[k], load32(x.q + 32 * xb));
        float dx = d * x.d[size_t(xb)];
        float s0 = dx * sc[8 * h + 2 * k], s1 = dx * sc[8 * h + 2 * k + 1];
        __m256 scale = _mm256_set_m128(_mm_set1_ps(s1), _mm_set1_ps(s0));
        acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(prod), acc);
        offset += 32 * (s0 * float(x.sum16[size_t(2 * xb)]) + s1 * float(x.sum16[size_t(2 * xb + 1)]));
      }
    }
  }
  return hsum8(acc) - offset;
}

float int8_dot(DType t, const uint8_t* p, const XView& x) {
  switch (t) {
    case DType::Q8_0: return int8_q8_0(p, x);
    case DType::Q4_0: return int8_q4_0(p, x);
    case DType::Q4_K: return int8_q4_k(p, x);
    case DType::Q6_K: return int8_q6_k(p, x);
    default: return 0;
  }
}

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
