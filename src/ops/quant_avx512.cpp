// AVX-512 (F+BW+VL) row kernels: each block is decoded to f32 in registers and either
// stored (dequantize_row) or multiplied into accumulators against x (dot_row).
// The whole file is compiled for AVX-512; it is only entered after a CPU check
// (quant.cpp), and it defines no inline or template code shared with other files.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "ops/quant.h"

// Every function below is compiled for these ISA extensions (clang and gcc spell it differently).
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")
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

// 16 signed / unsigned bytes -> 16 floats.
inline __m512 i8_to_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)); }

// Receivers of decoded values. put(i, w0, w1) gets elements [i, i+32) of the row.
struct Store {
  float* dst;
  void put(int64_t i, __m512 w0, __m512 w1) {
    _mm512_storeu_ps(dst + i, w0);
    _mm512_storeu_ps(dst + i + 16, w1);
  }
};

struct Dot {
  const float* x;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  void put(int64_t i, __m512 w0, __m512 w1) {
    acc0 = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + i), acc0);
    acc1 = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + i + 16), acc1);
  }
  float sum() const { return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)); }
};

// Bytes of a 16-byte nibble array: low nibbles -> lo, high nibbles -> hi.
inline void split_nibbles(const uint8_t* qs, __m128i& lo, __m128i& hi) {
  __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  __m128i m = _mm_set1_epi8(0x0f);
  lo = _mm_and_si128(v, m);
  hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
}

template <class Sink>
void run_q8_0(const uint8_t* p, int64_t n, Sink& s) {
  for (int64_t b = 0; b < n / 32; ++b, p += 34) {
    __m512 d = _mm512_set1_ps(f16(p));
    __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
    __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 18));
    s.put(b * 32, _mm512_mul_ps(d, i8_to_ps(q0)), _mm512_mul_ps(d, i8_to_ps(q1)));
  }
}

template <class Sink>
void run_q4_0(const uint8_t* p, int64_t n, Sink& s) {
  const __m128i eight = _mm_set1_epi8(8);
  for (int64_t b = 0; b < n / 32; ++b, p += 18) {
    __m512 d = _mm512_set1_ps(f16(p));
    __m128i lo, hi;
    split_nibbles(p + 2, lo, hi);
    lo = _mm_sub_epi8(lo, eight);
    hi = _mm_sub_epi8(hi, eight);
    s.put(b * 32, _mm512_mul_ps(d, i8_to_ps(lo)), _mm512_mul_ps(d, i8_to_ps(hi)));
  }
}

template <class Sink>
void run_q4_1(const uint8_t* p, int64_t n, Sink& s) {
  for (int64_t b = 0; b < n / 32; ++b, p += 20) {
    __m512 d = _mm512_set1_ps(f16(p)), m = _mm512_set1_ps(f16(p + 2));
    __m128i lo, hi;
    split_nibbles(p + 4, lo, hi);
    s.put(b * 32, _mm512_fmadd_ps(d, i8_to_ps(lo), m), _mm512_fmadd_ps(d, i8_to_ps(hi), m));
  }
}

// Q5_0 / Q5_1: bit i of qh is the fifth bit of element i; a mask register adds it.
template <class Sink, bool kHasMin>
void run_q5(const uint8_t* p, int64_t n, Sink& s) {
  const int64_t block_bytes = kHasMin ? 24 : 22;
  const __m512i sixteen = _mm512_set1_epi32(16);
  for (int64_t b = 0; b < n / 32; ++b, p += block_bytes) {
    __m512 d = _mm512_set1_ps(f16(p));
    const uint8_t* h = p + (kHasMin ? 4 : 2);
    uint32_t qh;
    std::memcpy(&qh, h, 4);
    __m128i lo, hi;
    split_nibbles(h + 4, lo, hi);
    __m512i q0 = _mm512_cvtepu8_epi32(lo), q1 = _mm512_cvtepu8_epi32(hi);
    q0 = _mm512_mask_add_epi32(q0, __mmask16(qh & 0xffff), q0, sixteen);
    q1 = _mm512_mask_add_epi32(q1, __mmask16(qh >> 16), q1, sixteen);
    if constexpr (kHasMin) {
      __m512 m = _mm512_set1_ps(f16(p + 2));
      s.put(b * 32, _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(q0), m),
            _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(q1), m));
    } else {
      q0 = _mm512_sub_epi32(q0, sixteen);
      q1 = _mm512_sub_epi32(q1, sixteen);
      s.put(b * 32, _mm512_mul_ps(d, _mm512_cvtepi32_ps(q0)), _mm512_mul_ps(d, _mm512_cvtepi32_ps(q1)));
    }
  }
}

// Q4_K / Q5_K: 6-bit scales and mins of the 8 sub-blocks, as floats times d and dmin.
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

// One sub-block of 32 codes (bytes, 0..31) -> put(step * q - base).
template <class Sink>
inline void put_k_sub(Sink& s, int64_t i, __m256i q, float step, float base) {
  __m512 st = _mm512_set1_ps(step), bs = _mm512_set1_ps(base);
  __m512 w0 = _mm512_fmsub_ps(st, i8_to_ps(_mm256_castsi256_si128(q)), bs);
  __m512 w1 = _mm512_fmsub_ps(st, i8_to_ps(_mm256_extracti128_si256(q, 1)), bs);
  s.put(i, w0, w1);
}

template <class Sink, bool kFifthBit>
void run_q45_k(const uint8_t* p, int64_t n, Sink& s) {
  const int64_t block_bytes = kFifthBit ? 176 : 144;
  const __m256i low4 = _mm256_set1_epi8(0x0f), sixteen = _mm256_set1_epi8(16);
  for (int64_t b = 0; b < n / 256; ++b, p += block_bytes) {
    float step[8], base[8];
    k_scales(p, step, base);
    const uint8_t* qs = p + (kFifthBit ? 48 : 16);
    __m256i qh = kFifthBit ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16))
                           : _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c));
      __m256i q0 = _mm256_and_si256(v, low4);
      __m256i q1 = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
      if constexpr (kFifthBit) {
        __mmask32 h0 = _mm256_test_epi8_mask(qh, _mm256_set1_epi8(char(1 << (2 * c))));
        __mmask32 h1 = _mm256_test_epi8_mask(qh, _mm256_set1_epi8(char(2 << (2 * c))));
        q0 = _mm256_mask_add_epi8(q0, h0, q0, sixteen);
        q1 = _mm256_mask_add_epi8(q1, h1, q1, sixteen);
      }
      int64_t i = b * 256 + 64 * c;
      put_k_sub(s, i, q0, step[2 * c], base[2 * c]);
      put_k_sub(s, i + 32, q1, step[2 * c + 1], base[2 * c + 1]);
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
        // Elements [32k, 32k+16) use scale 2k, the next 16 use scale 2k+1.
        __m512 s0 = _mm512_set1_ps(d * sc[8 * h + 2 * k]), s1 = _mm512_set1_ps(d * sc[8 * h + 2 * k + 1]);
        s.put(b * 256 + 128 * h + 32 * k, _mm512_mul_ps(s0, i8_to_ps(_mm256_castsi256_si128(v))),
              _mm512_mul_ps(s1, i8_to_ps(_mm256_extracti128_si256(v, 1))));
      }
    }
  }
}

// Plain floats: 32 elements at a time, then the tail in a masked step.
inline __m512 load_f32(const uint8_t* p, int64_t i) {
  return _mm512_loadu_ps(reinterpret_cast<const float*>(p) + i);
}
inline __m512 load_f16(const uint8_t* p, int64_t i) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2 * i)));
}
inline __m512 load_bf16(const uint8_t* p, int64_t i) {
  __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2 * i)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}
inline __m512 load_f32_masked(const uint8_t* p, int64_t i, __mmask16 k) {
  return _mm512_maskz_loadu_ps(k, reinterpret_cast<const float*>(p) + i);
}
inline __m512 load_f16_masked(const uint8_t* p, int64_t i, __mmask16 k) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, p + 2 * i));
}
inline __m512 load_bf16_masked(const uint8_t* p, int64_t i, __mmask16 k) {
  __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, p + 2 * i));
  return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

using Load = __m512 (*)(const uint8_t*, int64_t);
using LoadMasked = __m512 (*)(const uint8_t*, int64_t, __mmask16);

template <Load load, LoadMasked load_masked>
void dequant_float(const uint8_t* p, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, load(p, i));
  if (i < n) {
    __mmask16 k = __mmask16((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(dst + i, k, load_masked(p, i, k));
  }
}

template <Load load, LoadMasked load_masked>
float dot_float(const uint8_t* p, const float* x, int64_t n) {
  // Four accumulators hide the FMA latency.
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_fmadd_ps(load(p, i), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(load(p, i + 16), _mm512_loadu_ps(x + i + 16), a1);
    a2 = _mm512_fmadd_ps(load(p, i + 32), _mm512_loadu_ps(x + i + 32), a2);
    a3 = _mm512_fmadd_ps(load(p, i + 48), _mm512_loadu_ps(x + i + 48), a3);
  }
  for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(load(p, i), _mm512_loadu_ps(x + i), a0);
  if (i < n) {
    __mmask16 k = __mmask16((1u << (n - i)) - 1);
    a1 = _mm512_fmadd_ps(load_masked(p, i, k), _mm512_maskz_loadu_ps(k, x + i), a1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
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

}  // namespace

void dequantize_row_avx512(DType t, const void* row, float* dst, int64_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(row);
  switch (t) {
    case DType::F32: return dequant_float<load_f32, load_f32_masked>(p, dst, n);
    case DType::F16: return dequant_float<load_f16, load_f16_masked>(p, dst, n);
    case DType::BF16: return dequant_float<load_bf16, load_bf16_masked>(p, dst, n);
    default: {
      Store s{dst};
      run_blocks(t, p, n, s);
    }
  }
}

float dot_row_avx512(DType t, const void* row, const float* x, int64_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(row);
  switch (t) {
    case DType::F32: return dot_float<load_f32, load_f32_masked>(p, x, n);
    case DType::F16: return dot_float<load_f16, load_f16_masked>(p, x, n);
    case DType::BF16: return dot_float<load_bf16, load_bf16_masked>(p, x, n);
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
