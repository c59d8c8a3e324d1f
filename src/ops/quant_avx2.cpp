// AVX2+FMA+F16C row kernels: each block is decoded to f32 in registers and either
// stored (dequantize_row) or multiplied into accumulators against x (dot_row).
// The whole file is compiled for AVX2; it is only entered after a CPU check
// (quant.cpp), and it defines no inline or template code shared with other files.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "ops/quant.h"

// Every function below is compiled for these ISA extensions (clang and gcc spell it differently).
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

namespace rhead::detail {
namespace {

inline float f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

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

// 32 signed bytes (elements 0-15 in a, 16-31 in b) -> put(scale * q + offset); a zero
// offset is folded away by the compiler where the callers pass a constant.
template <class Sink>
inline void put_bytes(Sink& s, int64_t i, __m128i a, __m128i b, __m256 scale, __m256 offset) {
  s.put(i, _mm256_fmadd_ps(scale, i8_to_ps(a), offset),
        _mm256_fmadd_ps(scale, i8_to_ps(_mm_srli_si128(a, 8)), offset),
        _mm256_fmadd_ps(scale, i8_to_ps(b), offset),
        _mm256_fmadd_ps(scale, i8_to_ps(_mm_srli_si128(b, 8)), offset));
}

template <class Sink>
inline void put_bytes(Sink& s, int64_t i, __m128i a, __m128i b, __m256 scale) {
  s.put(i, _mm256_mul_ps(scale, i8_to_ps(a)), _mm256_mul_ps(scale, i8_to_ps(_mm_srli_si128(a, 8))),
        _mm256_mul_ps(scale, i8_to_ps(b)), _mm256_mul_ps(scale, i8_to_ps(_mm_srli_si128(b, 8))));
}

inline void split_nibbles(const uint8_t* qs, __m128i& lo, __m128i& hi) {
  __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  __m128i m = _mm_set1_epi8(0x0f);
  lo = _mm_and_si128(v, m);
  hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
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

template <class Sink>
void run_q8_0(const uint8_t* p, int64_t n, Sink& s) {
  for (int64_t b = 0; b < n / 32; ++b, p += 34) {
    __m256 d = _mm256_set1_ps(f16(p));
    __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
    __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 18));
    put_bytes(s, b * 32, q0, q1, d);
  }
}

template <class Sink>
void run_q4_0(const uint8_t* p, int64_t n, Sink& s) {
  const __m128i eight = _mm_set1_epi8(8);
  for (int64_t b = 0; b < n / 32; ++b, p += 18) {
    __m256 d = _mm256_set1_ps(f16(p));
    __m128i lo, hi;
    split_nibbles(p + 2, lo, hi);
    put_bytes(s, b * 32, _mm_sub_epi8(lo, eight), _mm_sub_epi8(hi, eight), d);
  }
}

template <class Sink>
void run_q4_1(const uint8_t* p, int64_t n, Sink& s) {
  for (int64_t b = 0; b < n / 32; ++b, p += 20) {
    __m256 d = _mm256_set1_ps(f16(p)), m = _mm256_set1_ps(f16(p + 2));
    __m128i lo, hi;
    split_nibbles(p + 4, lo, hi);
    put_bytes(s, b * 32, lo, hi, d, m);
  }
}

template <class Sink, bool kHasMin>
void run_q5(const uint8_t* p, int64_t n, Sink& s) {
  const int64_t block_bytes = kHasMin ? 24 : 22;
  for (int64_t b = 0; b < n / 32; ++b, p += block_bytes) {
    __m256 d = _mm256_set1_ps(f16(p));
    const uint8_t* h = p + (kHasMin ? 4 : 2);
    __m256i high = fifth_bits(h);
    __m128i lo, hi;
    split_nibbles(h + 4, lo, hi);
    lo = _mm_or_si128(lo, _mm256_castsi256_si128(high));
    hi = _mm_or_si128(hi, _mm256_extracti128_si256(high, 1));
    if constexpr (kHasMin) {
      put_bytes(s, b * 32, lo, hi, d, _mm256_set1_ps(f16(p + 2)));
    } else {
      const __m128i sixteen = _mm_set1_epi8(16);
      put_bytes(s, b * 32, _mm_sub_epi8(lo, sixteen), _mm_sub_epi8(hi, sixteen), d);
    }
  }
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

template <class Sink, bool kFifthBit>
void run_q45_k(const uint8_t* p, int64_t n, Sink& s) {
  const int64_t block_bytes = kFifthBit ? 176 : 144;
  const __m256i low4 = _mm256_set1_epi8(0x0f), bit4 = _mm256_set1_epi8(0x10);
  for (int64_t b = 0; b < n / 256; ++b, p += block_bytes) {
    float step[8], base[8];
    k_scales(p, step, base);
    const uint8_t* qs = p + (kFifthBit ? 48 : 16);
    // qh is shifted right by 2 per chunk so that bits 0 and 1 of each byte are always the
    // current pair; bits entering a byte from its neighbour land at bit 6 and up.
    __m256i qh = kFifthBit ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16))
                           : _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c));
      __m256i q0 = _mm256_and_si256(v, low4);
      __m256i q1 = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
      if constexpr (kFifthBit) {
        q0 = _mm256_or_si256(q0, _mm256_and_si256(_mm256_slli_epi16(qh, 4), bit4));
        q1 = _mm256_or_si256(q1, _mm256_and_si256(_mm256_slli_epi16(qh, 3), bit4));
        qh = _mm256_srli_epi16(qh, 2);
      }
      int64_t i = b * 256 + 64 * c;
      __m256 st0 = _mm256_set1_ps(step[2 * c]), bs0 = _mm256_set1_ps(-base[2 * c]);
      __m256 st1 = _mm256_set1_ps(step[2 * c + 1]), bs1 = _mm256_set1_ps(-base[2 * c + 1]);
      put_bytes(s, i, _mm256_castsi256_si128(q0), _mm256_extracti128_si256(q0, 1), st0, bs0);
      put_bytes(s, i + 32, _mm256_castsi256_si128(q1), _mm256_extracti128_si256(q1, 1), st1, bs1);
    }
  }
}

template <class Sink>
void run_q6_k(const uint8_t* p, int64_t n, Sink& s) {
  const __m256i low4 = _mm256_set1_epi8(0x0f), top2 = _mm256_set1_epi8(0x30),
                thirty_two = _mm256_set1_epi8(32);
  for (int64_t b = 0; b < n / 256; ++b, p += 210) {
    float d = f16(p + 208);
    const int8_t* sc = reinterpret_cast<const int8_t*>(p + 192);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = p + 64 * h;
      __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 128 + 32 * h));
      __m256i q[4];
      q[0] = _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), top2));
      q[1] = _mm256_or_si256(_mm256_and_si256(l1, low4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), top2));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4), _mm256_and_si256(hb, top2));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                             _mm256_and_si256(_mm256_srli_epi16(hb, 2), top2));
      for (int k = 0; k < 4; ++k) {
        __m256i v = _mm256_sub_epi8(q[k], thirty_two);
        __m128i a = _mm256_castsi256_si128(v), c = _mm256_extracti128_si256(v, 1);
        // Elements [32k, 32k+16) use scale 2k, the next 16 use scale 2k+1.
        __m256 s0 = _mm256_set1_ps(d * sc[8 * h + 2 * k]), s1 = _mm256_set1_ps(d * sc[8 * h + 2 * k + 1]);
        s.put(b * 256 + 128 * h + 32 * k, _mm256_mul_ps(s0, i8_to_ps(a)),
              _mm256_mul_ps(s0, i8_to_ps(_mm_srli_si128(a, 8))), _mm256_mul_ps(s1, i8_to_ps(c)),
              _mm256_mul_ps(s1, i8_to_ps(_mm_srli_si128(c, 8))));
      }
    }
  }
}

// Plain floats: 8 at a time, the tail one by one.
inline __m256 load_f32(const uint8_t* p, int64_t i) {
  return _mm256_loadu_ps(reinterpret_cast<const float*>(p) + i);
}
inline __m256 load_f16(const uint8_t* p, int64_t i) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i)));
}
inline __m256 load_bf16(const uint8_t* p, int64_t i) {
  __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
inline float one_f32(const uint8_t* p, int64_t i) {
  float v;
  std::memcpy(&v, p + 4 * i, 4);
  return v;
}
inline float one_f16(const uint8_t* p, int64_t i) { return f16(p + 2 * i); }
inline float one_bf16(const uint8_t* p, int64_t i) {
  uint32_t bits = 0;
  std::memcpy(reinterpret_cast<uint8_t*>(&bits) + 2, p + 2 * i, 2);
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

using Load = __m256 (*)(const uint8_t*, int64_t);
using LoadOne = float (*)(const uint8_t*, int64_t);

template <Load load, LoadOne load_one>
void dequant_float(const uint8_t* p, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load(p, i));
  for (; i < n; ++i) dst[i] = load_one(p, i);
}

template <Load load, LoadOne load_one>
float dot_float(const uint8_t* p, const float* x, int64_t n) {
  Dot acc{x};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) acc.put(i, load(p, i), load(p, i + 8), load(p, i + 16), load(p, i + 24));
  for (; i + 8 <= n; i += 8) acc.acc0 = _mm256_fmadd_ps(load(p, i), _mm256_loadu_ps(x + i), acc.acc0);
  float sum = acc.sum();
  for (; i < n; ++i) sum += load_one(p, i) * x[i];
  return sum;
}

template <class Sink>
void run_blocks(DType t, const uint8_t* p, int64_t n, Sink& s) {
  switch (t) {
    case DType::Q8_0: return run_q8_0(p, n, s);
    case DType::Q4_0: return run_q4_0(p, n, s);
    case DType::Q4_1: return run_q4_1(p, n, s);
    case DType::Q5_0: return run_q5<Sink, false>(p, n, s);
    case DType::Q5_1: return run_q5<Sink, true>(p, n, s);
    case DType::Q4_K: return run_q45_k<Sink, false>(p, n, s);
    case DType::Q5_K: return run_q45_k<Sink, true>(p, n, s);
    case DType::Q6_K: return run_q6_k(p, n, s);
    default: return;
  }
}

// 32 unsigned bytes w times 32 signed bytes x -> 8 int32 sums of 4 products. The int16
// stage cannot saturate: |w| <= 128 and |x| <= 127 give pairs of at most 32512.
inline __m256i dot32(__m256i w, __m256i x) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
}

#include "ops/quant_int8_kernels.inc"

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

void dequantize_row_avx2(DType t, const void* row, float* dst, int64_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(row);
  switch (t) {
    case DType::F32: return dequant_float<load_f32, one_f32>(p, dst, n);
    case DType::F16: return dequant_float<load_f16, one_f16>(p, dst, n);
    case DType::BF16: return dequant_float<load_bf16, one_bf16>(p, dst, n);
    default: {
      Store s{dst};
      run_blocks(t, p, n, s);
    }
  }
}

float dot_row_avx2(DType t, const void* row, const float* x, int64_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(row);
  switch (t) {
    case DType::F32: return dot_float<load_f32, one_f32>(p, x, n);
    case DType::F16: return dot_float<load_f16, one_f16>(p, x, n);
    case DType::BF16: return dot_float<load_bf16, one_bf16>(p, x, n);
    default: {
      Dot s{x};
      run_blocks(t, p, n, s);
      return s.sum();
    }
  }
}

}  // namespace rhead::detail

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
