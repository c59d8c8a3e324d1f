// AVX-512 (F+BW+VL) row kernels: each block is decoded to f32 in registers and either
// stored (dequantize_row) or multiplied into accumulators against x (dot_row).
// The whole file is compiled for AVX-512; it is only entered after a CPU check
// (quant.cpp). What it shares with the other ISA files (the .inc files) it compiles inside
// its own anonymous namespace, so no inline or template code is shared across files.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "ops/isa_target.h"
#include "ops/lanes.h"
#include "ops/quant.h"

// Every function below is compiled for these ISA extensions.
RHEAD_ISA_BEGIN("avx512f,avx512bw,avx512vl,avx2,fma,f16c")
// GCC 12 warns inside its own AVX-512 intrinsics (their "undefined" pass-through operands).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace rhead::detail {
namespace {

#include "ops/quant_isa_shared.inc"

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

// 32 signed bytes (elements 0-15 in a, 16-31 in b) -> put(scale * q + offset).
template <class Sink>
inline void put_affine(Sink& s, int64_t i, __m128i a, __m128i b, float scale_f, float offset_f) {
  const __m512 scale = _mm512_set1_ps(scale_f), offset = _mm512_set1_ps(offset_f);
  s.put(i, _mm512_fmadd_ps(scale, i8_to_ps(a), offset), _mm512_fmadd_ps(scale, i8_to_ps(b), offset));
}

// The same without an offset, elements 0-15 times sa and 16-31 times sb.
template <class Sink>
inline void put_scaled(Sink& s, int64_t i, __m128i a, __m128i b, float sa, float sb) {
  s.put(i, _mm512_mul_ps(_mm512_set1_ps(sa), i8_to_ps(a)), _mm512_mul_ps(_mm512_set1_ps(sb), i8_to_ps(b)));
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
      s.put(b * 32, _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(q0), m), _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(q1), m));
    } else {
      q0 = _mm512_sub_epi32(q0, sixteen);
      q1 = _mm512_sub_epi32(q1, sixteen);
      s.put(b * 32, _mm512_mul_ps(d, _mm512_cvtepi32_ps(q0)), _mm512_mul_ps(d, _mm512_cvtepi32_ps(q1)));
    }
  }
}

// Plain floats: 32 elements at a time, then the tail in a masked step.
using lanes16::load_bf16;
using lanes16::load_f16;
using lanes16::load_f32;
inline __m512 tail_f32(const uint8_t* p, int64_t i, __mmask16 k) {
  return _mm512_maskz_loadu_ps(k, reinterpret_cast<const float*>(p) + i);
}
inline __m512 tail_f16(const uint8_t* p, int64_t i, __mmask16 k) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, p + 2 * i));
}
inline __m512 tail_bf16(const uint8_t* p, int64_t i, __mmask16 k) {
  __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, p + 2 * i));
  return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

using Load = __m512 (*)(const uint8_t*, int64_t);
using Tail = __m512 (*)(const uint8_t*, int64_t, __mmask16);  // a masked load of the tail

template <Load load, Tail tail>
void dequant_float(const uint8_t* p, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, load(p, i));
  if (i < n) {
    __mmask16 k = __mmask16((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(dst + i, k, tail(p, i, k));
  }
}

template <Load load, Tail tail>
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
    a1 = _mm512_fmadd_ps(tail(p, i, k), _mm512_maskz_loadu_ps(k, x + i), a1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

#include "ops/quant_row_driver.inc"

}  // namespace

void dequantize_row_avx512(DType t, const void* row, float* dst, int64_t n) { dequantize_row_here(t, row, dst, n); }

float dot_row_avx512(DType t, const void* row, const float* x, int64_t n) { return dot_row_here(t, row, x, n); }

}  // namespace rhead::detail

RHEAD_ISA_END
