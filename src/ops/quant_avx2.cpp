// AVX2+FMA+F16C row kernels: each block is decoded to f32 in registers and either
// stored (dequantize_row) or multiplied into accumulators against x (dot_row).
// The whole file is compiled for AVX2; it is only entered after a CPU check
// (quant.cpp). What it shares with the other ISA files (the .inc files) it compiles inside
// its own anonymous namespace, so no inline or template code is shared across files.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "ops/isa_target.h"
#include "ops/lanes.h"
#include "ops/quant.h"

// Every function below is compiled for these ISA extensions.
RHEAD_ISA_BEGIN("avx2,fma,f16c")

namespace rhead::detail {
namespace {

#include "ops/quant_isa_shared.inc"

// The low 8 signed bytes of v -> 8 floats.
inline __m256 i8_to_ps(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }

// Receivers of decoded values. put(i, w0..w3) gets elements [i, i+32) of the row.
struct Store {
  float* dst;
  void put(int64_t i, __m256 w0, __m256 w1, __m256 w2, __m256 w3) {
    _mm256_storeu_ps(dst + i, w0);
    _mm256_storeu_ps(dst + i + 8, w1);
    _mm256_storeu_ps(dst + i + 16, w2);
    _mm256_storeu_ps(dst + i + 24, w3);
  }
};

struct Dot {
  const float* x;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  void put(int64_t i, __m256 w0, __m256 w1, __m256 w2, __m256 w3) {
    acc0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), acc0);
    acc1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(w2, _mm256_loadu_ps(x + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(w3, _mm256_loadu_ps(x + i + 24), acc3);
  }
  float sum() const {
    __m256 s = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
  }
};

// 32 signed bytes (elements 0-15 in a, 16-31 in b) -> put(scale * q + offset).
template <class Sink>
inline void put_affine(Sink& s, int64_t i, __m128i a, __m128i b, float scale_f, float offset_f) {
  const __m256 scale = _mm256_set1_ps(scale_f), offset = _mm256_set1_ps(offset_f);
  s.put(i, _mm256_fmadd_ps(scale, i8_to_ps(a), offset), _mm256_fmadd_ps(scale, i8_to_ps(_mm_srli_si128(a, 8)), offset),
        _mm256_fmadd_ps(scale, i8_to_ps(b), offset), _mm256_fmadd_ps(scale, i8_to_ps(_mm_srli_si128(b, 8)), offset));
}

// The same without an offset, elements 0-15 times sa and 16-31 times sb.
template <class Sink>
inline void put_scaled(Sink& s, int64_t i, __m128i a, __m128i b, float sa_f, float sb_f) {
  const __m256 sa = _mm256_set1_ps(sa_f), sb = _mm256_set1_ps(sb_f);
  s.put(i, _mm256_mul_ps(sa, i8_to_ps(a)), _mm256_mul_ps(sa, i8_to_ps(_mm_srli_si128(a, 8))),
        _mm256_mul_ps(sb, i8_to_ps(b)), _mm256_mul_ps(sb, i8_to_ps(_mm_srli_si128(b, 8))));
}

// The 32 bits of qh as 32 bytes, 0x10 where the bit is set (byte i <- bit i).
inline __m256i fifth_bits(const uint8_t* qh_bytes) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, 4);
  const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(0x8040201008040201LL);
  __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(int(qh)), spread);
  __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

template <class Sink, bool kHasMin>
void run_q5(const uint8_t* p, int64_t n, Sink& s) {
  const int64_t block_bytes = kHasMin ? 24 : 22;
  for (int64_t b = 0; b < n / 32; ++b, p += block_bytes) {
    const float d = f16(p);
    const uint8_t* h = p + (kHasMin ? 4 : 2);
    __m256i high = fifth_bits(h);
    __m128i lo, hi;
    split_nibbles(h + 4, lo, hi);
    lo = _mm_or_si128(lo, _mm256_castsi256_si128(high));
    hi = _mm_or_si128(hi, _mm256_extracti128_si256(high, 1));
    if constexpr (kHasMin) {
      put_affine(s, b * 32, lo, hi, d, f16(p + 2));
    } else {
      const __m128i sixteen = _mm_set1_epi8(16);
      put_scaled(s, b * 32, _mm_sub_epi8(lo, sixteen), _mm_sub_epi8(hi, sixteen), d, d);
    }
  }
}

// Plain floats: 8 at a time, the tail one by one.
using lanes8::load_bf16;
using lanes8::load_f16;
using lanes8::load_f32;
inline float tail_f32(const uint8_t* p, int64_t i) {
  float v;
  std::memcpy(&v, p + 4 * i, 4);
  return v;
}
inline float tail_f16(const uint8_t* p, int64_t i) { return f16(p + 2 * i); }
inline float tail_bf16(const uint8_t* p, int64_t i) {
  uint32_t bits = 0;
  std::memcpy(reinterpret_cast<uint8_t*>(&bits) + 2, p + 2 * i, 2);
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

using Load = __m256 (*)(const uint8_t*, int64_t);
using Tail = float (*)(const uint8_t*, int64_t);  // one element of the tail

template <Load load, Tail tail>
void dequant_float(const uint8_t* p, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load(p, i));
  for (; i < n; ++i) dst[i] = tail(p, i);
}

template <Load load, Tail tail>
float dot_float(const uint8_t* p, const float* x, int64_t n) {
  Dot acc{x};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) acc.put(i, load(p, i), load(p, i + 8), load(p, i + 16), load(p, i + 24));
  for (; i + 8 <= n; i += 8) acc.acc0 = _mm256_fmadd_ps(load(p, i), _mm256_loadu_ps(x + i), acc.acc0);
  float sum = acc.sum();
  for (; i < n; ++i) sum += tail(p, i) * x[i];
  return sum;
}

// 32 unsigned bytes w times 32 signed bytes x -> 8 int32 sums of 4 products. The int16
// stage cannot saturate: |w| <= 128 and |x| <= 127 give pairs of at most 32512.
inline __m256i dot32(__m256i w, __m256i x) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
}

#include "ops/quant_int8_kernels.inc"
#include "ops/quant_row_driver.inc"

}  // namespace

// quantize_vector's blocks in 8 lanes, with the scalar version's numbers: the running maximum
// keeps its old value where |x| is NaN (as std::max does), values are clamped to +-1e6 (NaN
// to -1e6) before rounding half to even, and codes to [-127, 127].
void quantize_vector_avx2(const float* x, int64_t n, int8_t* q, float* d, int32_t* sum16) {
  const __m256 magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 lo = _mm256_set1_ps(-1e6f), hi = _mm256_set1_ps(1e6f);
  const __m256i qlo = _mm256_set1_epi32(-127), qhi = _mm256_set1_epi32(127);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < n / 32; ++b, x += 32) {
    __m256 v[4], m = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm256_loadu_ps(x + 8 * i);
      m = _mm256_max_ps(_mm256_and_ps(v[i], magnitude), m);
    }
    m = _mm256_max_ps(m, _mm256_permute2f128_ps(m, m, 1));
    m = _mm256_max_ps(m, _mm256_shuffle_ps(m, m, 0x4e));
    m = _mm256_max_ps(m, _mm256_shuffle_ps(m, m, 0xb1));
    const float db = _mm256_cvtss_f32(m) / 127, id = db != 0 ? 1 / db : 0;
    d[b] = db;
    __m256i c[4];
    for (int i = 0; i < 4; ++i) {
      const __m256 y = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v[i], _mm256_set1_ps(id)), lo), hi);
      c[i] = _mm256_max_epi32(_mm256_min_epi32(_mm256_cvtps_epi32(y), qhi), qlo);
    }
    for (int h = 0; h < 2; ++h) {
      __m256i s = _mm256_add_epi32(c[2 * h], c[2 * h + 1]);
      __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
      t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
      t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
      sum16[2 * b + h] = _mm_cvtsi128_si32(t);
    }
    const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32 * b), _mm256_permutevar8x32_epi32(packed, order));
  }
}

void dot_rows_int8_avx2(DType t, const void* rows, int64_t stride, int64_t n_rows, const int8_t* q, const float* d,
                        const int32_t* sum16, int64_t n, float* y) {
  int8_rows(t, static_cast<const uint8_t*>(rows), stride, n_rows, XView{q, d, sum16, n}, y);
}

void dequantize_row_avx2(DType t, const void* row, float* dst, int64_t n) { dequantize_row_here(t, row, dst, n); }

float dot_row_avx2(DType t, const void* row, const float* x, int64_t n) { return dot_row_here(t, row, x, n); }

}  // namespace rhead::detail

RHEAD_ISA_END
