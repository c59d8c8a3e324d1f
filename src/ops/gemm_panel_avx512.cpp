// AVX-512 kernels of the panel GEMMs (see gemm_panel.h). The bf16 ones are compiled for
// AVX-512 BF16, the f32 one for AVX-512 F; each is entered only after its CPU check
// (gemm_panel.cpp).
#include <immintrin.h>

#include <cstdint>

#include "ops/gemm_panel.h"
#include "ops/isa_target.h"

// What both kernels do around their k loops, compiled for AVX-512 F only (the bf16 region
// below may call it; the f32 kernel must not need BF16).
RHEAD_ISA_BEGIN("avx512f,avx512bw,avx512vl,avx2,fma")
namespace rhead::detail {
namespace {
constexpr int kR = static_cast<int>(kPanelRows);

// For every block b of kPanelTokens tokens: k_loop(b, out) fills out[r][h] with row r's sums
// for tokens b * kPanelTokens + 16h .. + 16; the rows and tokens that exist go to y.
template <class KLoop>
void for_each_block(int64_t T, int64_t n_rows, float* y, int64_t ldy, KLoop k_loop) {
  alignas(64) float tile[kR][kPanelTokens];
  const int64_t blocks = (T + kPanelTokens - 1) / kPanelTokens;
  for (int64_t b = 0; b < blocks; ++b) {
    __m512 out[kR][2];
    k_loop(b, out);
    for (int r = 0; r < kR; ++r) {
      _mm512_store_ps(tile[r], out[r][0]);
      _mm512_store_ps(tile[r] + 16, out[r][1]);
    }
    store_panel_block(tile, b, T, n_rows, y, ldy);
  }
}
}  // namespace
}  // namespace rhead::detail
RHEAD_ISA_END

RHEAD_ISA_BEGIN("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace rhead::detail {
namespace {

// 16 floats at p, 16 at p + 16 -> 16 pairs (element 2i in the low half), rounded to nearest
// even as f32_to_bf16 does it (NaN stays a quiet NaN); integer arithmetic rather than
// vcvtne2ps2bf16, which flushes denormals: the bytes equal the scalar twin's.
inline __m512i pairs16(const float* p) {
  const __m512i lsb = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff), abs = _mm512_set1_epi32(0x7fffffff);
  const __m512i inf = _mm512_set1_epi32(0x7f800000), quiet = _mm512_set1_epi32(0x40);
  auto round = [&](__m512i bits) {
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, abs), inf);
    const __m512i up =
        _mm512_add_epi32(bits, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(bits, 16), lsb)));
    const __m512i nan_h = _mm512_or_si512(_mm512_srli_epi32(bits, 16), quiet);
    return _mm512_mask_mov_epi32(_mm512_srli_epi32(up, 16), nan, nan_h);  // bf16 in the low 16 bits
  };
  const __m512i a = round(_mm512_castps_si512(_mm512_loadu_ps(p)));
  const __m512i b = round(_mm512_castps_si512(_mm512_loadu_ps(p + 16)));
  // Pair i = element 2i | element 2i + 1 << 16: even elements from a's and b's low words.
  const __m512i lo =
      _mm512_permutex2var_epi32(a, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), b);
  const __m512i hi =
      _mm512_permutex2var_epi32(a, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), b);
  return _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
}

inline uint32_t pair_scalar(const float* p) {
  alignas(64) float v[32] = {p[0], p[1]};
  return static_cast<uint32_t>(_mm_cvtsi128_si32(_mm512_castsi512_si128(pairs16(v))));
}

}  // namespace

void pack_bf16_activations_avx512(const float* x, int64_t T, int64_t K, uint32_t* out) {
  const int64_t blocks = (T + kPanelTokens - 1) / kPanelTokens, pairs = K / 2;
  alignas(64) uint32_t row[16];
  for (int64_t b = 0; b < blocks; ++b) {
    uint32_t* ob = out + b * pairs * kPanelTokens;
    for (int64_t j = 0; j < kPanelTokens; ++j) {
      const int64_t t = b * kPanelTokens + j;
      if (t >= T) {
        for (int64_t p = 0; p < pairs; ++p) ob[p * kPanelTokens + j] = 0;
        continue;
      }
      const float* xt = x + t * K;
      int64_t p = 0;
      for (; p + 16 <= pairs; p += 16) {
        _mm512_store_si512(row, pairs16(xt + 2 * p));
        for (int i = 0; i < 16; ++i) ob[(p + i) * kPanelTokens + j] = row[i];
      }
      for (; p < pairs; ++p) ob[p * kPanelTokens + j] = pair_scalar(xt + 2 * p);
    }
  }
}

void pack_bf16_panel_row_avx512(const float* row, int64_t r, int64_t K, uint32_t* panel) {
  const int64_t pairs = K / 2;
  uint32_t* out = panel + r * pairs;
  int64_t p = 0;
  for (; p + 16 <= pairs; p += 16) _mm512_storeu_si512(out + p, pairs16(row + 2 * p));
  for (; p < pairs; ++p) out[p] = pair_scalar(row + 2 * p);
}

void gemm_bf16_panel_avx512(const uint32_t* xp, int64_t T, int64_t K, const uint32_t* panel, int64_t n_rows, float* y,
                            int64_t ldy) {
  const int64_t pairs = K / 2;
  for_each_block(T, n_rows, y, ldy, [&](int64_t b, __m512(&out)[kR][2]) {
    const uint32_t* xb = xp + b * pairs * kPanelTokens;
    __m512 acc[kR][2];  // a local array: the compiler keeps it in registers
#pragma GCC unroll 12
    for (int r = 0; r < kR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t p = 0; p < pairs; ++p) {
      const __m512bh x0 = (__m512bh)_mm512_loadu_si512(xb + p * kPanelTokens);
      const __m512bh x1 = (__m512bh)_mm512_loadu_si512(xb + p * kPanelTokens + 16);
#pragma GCC unroll 12
      for (int r = 0; r < kR; ++r) {
        const __m512bh w = (__m512bh)_mm512_set1_epi32(static_cast<int>(panel[r * pairs + p]));
        acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x0, w);
        acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x1, w);
      }
    }
#pragma GCC unroll 12
    for (int r = 0; r < kR; ++r) out[r][0] = acc[r][0], out[r][1] = acc[r][1];
  });
}

}  // namespace rhead::detail

RHEAD_ISA_END

// The f32 kernel needs AVX-512 F only.
RHEAD_ISA_BEGIN("avx512f,avx512bw,avx512vl,avx2,fma")

namespace rhead::detail {

void gemm_f32_panel_avx512(const float* xp, int64_t T, int64_t K, const float* panel, int64_t n_rows, float* y,
                           int64_t ldy) {
  for_each_block(T, n_rows, y, ldy, [&](int64_t b, __m512(&out)[kR][2]) {
    const float* xb = xp + b * K * kPanelTokens;
    __m512 acc[kR][2];  // a local array: the compiler keeps it in registers
#pragma GCC unroll 12
    for (int r = 0; r < kR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; ++k) {
      const __m512 x0 = _mm512_loadu_ps(xb + k * kPanelTokens), x1 = _mm512_loadu_ps(xb + k * kPanelTokens + 16);
#pragma GCC unroll 12
      for (int r = 0; r < kR; ++r) {
        const __m512 w = _mm512_set1_ps(panel[r * K + k]);
        acc[r][0] = _mm512_fmadd_ps(x0, w, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(x1, w, acc[r][1]);
      }
    }
#pragma GCC unroll 12
    for (int r = 0; r < kR; ++r) out[r][0] = acc[r][0], out[r][1] = acc[r][1];
  });
}

}  // namespace rhead::detail

RHEAD_ISA_END
