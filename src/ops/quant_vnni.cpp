// AVX-512 VNNI integer dot products of block-quantized rows with an int8 x: the kernels of
// quant_avx2.cpp with one vpdpbusd in place of the AVX2 multiply-add pair, and for Q8_0, Q4_K
// and Q6_K (the types of decode's matvecs) kernels of their own in 512-bit registers, below.
// Compiled for AVX-512 VNNI and entered only after a CPU check (quant.cpp).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "ops/isa_target.h"
#include "ops/quant.h"

// Every function below is compiled for these ISA extensions.
RHEAD_ISA_BEGIN("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")
// GCC 12 warns inside its own AVX-512 intrinsics (their "undefined" pass-through operands).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace rhead::detail {
namespace {

#include "ops/quant_isa_shared.inc"

// 32 unsigned bytes w times 32 signed bytes x -> 8 int32 sums of 4 products.
inline __m256i dot32(__m256i w, __m256i x) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, x); }

struct XView;
float int8_q8_0_zmm(const uint8_t* p, const XView& x);
float int8_q4_k_zmm(const uint8_t* p, const XView& x);
float int8_q6_k_zmm(const uint8_t* p, const XView& x);
#define RHEAD_INT8_Q8_0 int8_q8_0_zmm
#define RHEAD_INT8_Q4_K int8_q4_k_zmm
#define RHEAD_INT8_Q6_K int8_q6_k_zmm

#include "ops/quant_int8_kernels.inc"

// Lanes 0-7 take scale 2c of `s`, lanes 8-15 scale 2c + 1: the scales of two blocks of 32 whose
// products share one 512-bit vector.
inline __m512 pair_scales(__m512 s, int c) {
  const __m512i half = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_permutexvar_ps(_mm512_add_epi32(half, _mm512_set1_epi32(2 * c)), s);
}

// Q8_0 two blocks to a 512-bit vector. vpdpbusd multiplies unsigned by signed bytes, so w's
// bytes are made unsigned by flipping their sign bit (w + 128); the 128 * (x's block sum) that
// this adds is taken out through x's sums per 16, with one FMA per 8 blocks. The 8 block
// scales (w's d times x's d) are one vector, spread over lanes by a permute.
float int8_q8_0_zmm(const uint8_t* p, const XView& x) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  __m256 offset = _mm256_setzero_ps();
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const int64_t nb = x.n / 32;
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8, p += 8 * 34) {
    alignas(16) uint16_t dw[8];
    for (int j = 0; j < 8; ++j) std::memcpy(dw + j, p + 34 * j, 2);
    const __m256 s8 =
        _mm256_mul_ps(_mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(dw))), _mm256_loadu_ps(x.d + b));
    offset = _mm256_fmadd_ps(s8, _mm256_cvtepi32_ps(x_block_sums(x, b)), offset);
    const __m512 s = _mm512_castps256_ps512(s8);
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const uint8_t* q = p + 68 * c + 2;
      const __m512i w =
          _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(load32(q)), load32(q + 34), 1), flip);
      const __m512i prod = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, _mm512_loadu_si512(x.q + 32 * (b + 2 * c)));
      if (c % 2 == 0)
        acc0 = _mm512_fmadd_ps(pair_scales(s, c), _mm512_cvtepi32_ps(prod), acc0);
      else
        acc1 = _mm512_fmadd_ps(pair_scales(s, c), _mm512_cvtepi32_ps(prod), acc1);
    }
  }
  const __m512 sum = _mm512_add_ps(acc0, acc1);
  float total = _mm512_reduce_add_ps(sum) - 128 * hsum8(offset);
  Acc4 tail;
  for (; b < nb; ++b, p += 34) q8_0_block(p, x, b, tail, 0);
  return total + tail.sum();
}

// Q4_K with 512-bit registers: the two sub-blocks that share 32 bytes of nibbles (2c in the
// low nibbles, 2c+1 in the high ones) are one 64-byte vector against 64 contiguous bytes of x,
// so each pair takes one vpdpbusd, one conversion and one FMA (scales of 2c in lanes 0-7 and
// of 2c+1 in lanes 8-15) instead of two of each.
float int8_q4_k_zmm(const uint8_t* p, const XView& x) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  __m256 offset = _mm256_setzero_ps();
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  for (int64_t b = 0; b < x.n / 256; ++b, p += 144) {
    const __m512 step = _mm512_castps256_ps512(q4_k_steps(p, x, b, offset));
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m256i v = load32(p + 16 + 32 * c);
      const __m512i w =
          _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1), low4);
      const __m512i xq = _mm512_loadu_si512(x.q + 32 * (8 * b + 2 * c));
      const __m512i prod = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, xq);
      const __m512 s = pair_scales(step, c);
      if (c % 2 == 0)
        acc0 = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(prod), acc0);
      else
        acc1 = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(prod), acc1);
    }
  }
  const __m512 total = _mm512_sub_ps(_mm512_add_ps(acc0, acc1), _mm512_zextps256_ps512(offset));
  return hsum8(_mm256_add_ps(_mm512_castps512_ps256(total),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(total), 1))));
}

// Q6_K with 512-bit registers. A half super-block (128 weights) is two 64-byte vectors of
// 6-bit codes: its 64 bytes of low nibbles (low halves, then high halves) with the matching
// 2-bit pairs of its 32 qh bytes shifted into bits 4-5, each against 64 contiguous bytes of x.
// Lane group i (4 int32 lanes, 16 weights) of a product is one sub-block of 16, so one
// vector of the 16 sub-block scales (d * scale * x's block scale) serves all four products
// through a lane permute, and the code offset 32 is taken out through x's sums per 16 with
// one FMA per super-block.
float int8_q6_k_zmm(const uint8_t* p, const XView& x) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), offset = _mm512_setzero_ps();
  const __m512i low4 = _mm512_set1_epi8(0x0f), top2 = _mm512_set1_epi8(0x30);
  // qh's bits 0-1 go to bits 4-5 for the first 32 weights of a vector (<< 4) and bits 2-3 for
  // the second 32 (<< 2); bits 4-5 stay for the third 32 and bits 6-7 come down (>> 2).
  const __m512i up = _mm512_set_epi16(2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  //
                                      4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4);
  const __m512i down = _mm512_set_epi16(2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  //
                                        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  // x's block scale of sub-block j is x.d[j / 2]; lane group i of product m takes scale 4m + i.
  const __m512i pair = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  const __m512i group = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  for (int64_t b = 0; b < x.n / 256; ++b, p += 210) {
    const __m512 xd = _mm512_permutexvar_ps(pair, _mm512_castps256_ps512(_mm256_loadu_ps(x.d + 8 * b)));
    const __m512 sc =
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 192))));
    const __m512 s = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(f16(p + 208)), sc), xd);
    offset = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(_mm512_loadu_si512(x.sum16 + 16 * b)), offset);
    const int8_t* xq = x.q + 256 * b;
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m512i l = _mm512_loadu_si512(p + 64 * h);
      const __m256i hb = load32(p + 128 + 32 * h);
      const __m512i hh = _mm512_inserti64x4(_mm512_castsi256_si512(hb), hb, 1);
      const __m512i qa = _mm512_or_si512(_mm512_and_si512(l, low4), _mm512_and_si512(_mm512_sllv_epi16(hh, up), top2));
      const __m512i qb = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), low4),
                                         _mm512_and_si512(_mm512_srlv_epi16(hh, down), top2));
      const __m512i pa = _mm512_dpbusd_epi32(_mm512_setzero_si512(), qa, _mm512_loadu_si512(xq + 128 * h));
      const __m512i pb = _mm512_dpbusd_epi32(_mm512_setzero_si512(), qb, _mm512_loadu_si512(xq + 128 * h + 64));
      const __m512 sa = _mm512_permutexvar_ps(_mm512_add_epi32(group, _mm512_set1_epi32(8 * h)), s);
      const __m512 sb = _mm512_permutexvar_ps(_mm512_add_epi32(group, _mm512_set1_epi32(8 * h + 4)), s);
      acc0 = _mm512_fmadd_ps(sa, _mm512_cvtepi32_ps(pa), acc0);
      acc1 = _mm512_fmadd_ps(sb, _mm512_cvtepi32_ps(pb), acc1);
    }
  }
  const __m512 total = _mm512_fnmadd_ps(_mm512_set1_ps(32.0f), offset, _mm512_add_ps(acc0, acc1));
  return _mm512_reduce_add_ps(total);
}

}  // namespace

void dot_rows_int8_vnni(DType t, const void* rows, int64_t stride, int64_t n_rows, const int8_t* q, const float* d,
                        const int32_t* sum16, int64_t n, float* y) {
  int8_rows(t, static_cast<const uint8_t*>(rows), stride, n_rows, XView{q, d, sum16, n}, y);
}

}  // namespace rhead::detail

RHEAD_ISA_END
