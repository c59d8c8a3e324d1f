// Prefill GEMMs over panels of weight rows, for the weights that are not f32 (those are
// decoded row by row into a panel first, so no f32 copy of the matrix is ever made):
//
// * bf16 products, for CPUs with AVX-512 BF16 (vdpbf16ps: twice the multiply-adds per
//   instruction of an f32 FMA). Both operands are rounded to bf16 (round to nearest even),
//   their products are exact in f32 and are summed in f32:
//     y[t * ldy + r] = sum_k bf16(x[t][k]) * bf16(w[r][k])
//   The rounding of the activations and weights to 8 significant bits is an error of about
//   0.3% of a dot product, like the int8 activations of the decode kernels.
// * f32 products (AVX-512 FMA), y[t * ldy + r] = sum_k x[t][k] * w[r][k], each term one fused
//   multiply-add in k order: the scalar twin (std::fma in the same order) gives the same bits.
//
// Both keep 2 x kPanelRows accumulators of 16 tokens each in registers: per k (bf16: per pair
// of k) they load 32 tokens' activations and broadcast each row's weight. The activations are
// packed once per matmul, tokens innermost, so those loads are contiguous.
//
// Layouts (a "pair" is two bf16 in one uint32, element 2i in the low half):
//   bf16 activations  blocks of kPanelTokens tokens: [block][K/2][kPanelTokens] pairs
//   f32 activations   [block][K][kPanelTokens] floats
//                     (tokens past T are zero, so a block is always computed whole)
//   bf16 panel        kPanelRows rows: [row][K/2] pairs
//   f32 panel         [row][K] floats (rows as dequantize_row writes them)
//   rows of a panel past n_rows are computed, not stored
#pragma once
#include <cstdint>

namespace rhead {

constexpr int64_t kPanelTokens = 32;
constexpr int64_t kPanelRows = 12;

// AVX-512 F+BW+VL+BF16 / AVX-512 F+BW+VL: the only ISAs with kernels here (callers fall back
// to OpenBLAS's sgemm).
bool cpu_has_bf16_gemm();
bool cpu_has_f32_panel_gemm();
// AMX tiles for the bf16 GEMM: the CPU has AMX-TILE and AMX-BF16 (and AVX-512 BF16, for the
// packing), Linux granted the process the tile data state (arch_prctl ARCH_REQ_XCOMP_PERM),
// and RHEAD_AMX is not "0". gemm_bf16_panel then runs on tiles where K is a multiple of 32.
bool cpu_has_amx_bf16_gemm();

// uint32 elements of the packed activations of T tokens of K (K even).
int64_t bf16_activations_size(int64_t T, int64_t K);
void pack_bf16_activations(const float* x, int64_t T, int64_t K, uint32_t* out);
// Row r (< kPanelRows) of a panel [kPanelRows][K/2] from K floats.
void pack_bf16_panel_row(const float* row, int64_t r, int64_t K, uint32_t* panel);
// y[t * ldy + r] for t < T, r < n_rows, from packed activations and one panel.
void gemm_bf16_panel(const uint32_t* xp, int64_t T, int64_t K, const uint32_t* panel, int64_t n_rows, float* y,
                     int64_t ldy);

// f32: packed activations (floats), and the GEMM over one panel [kPanelRows][K].
int64_t f32_activations_size(int64_t T, int64_t K);
void pack_f32_activations(const float* x, int64_t T, int64_t K, float* out);
void gemm_f32_panel(const float* xp, int64_t T, int64_t K, const float* panel, int64_t n_rows, float* y, int64_t ldy);
void gemm_f32_panel_ref(const float* xp, int64_t T, int64_t K, const float* panel, int64_t n_rows, float* y,
                        int64_t ldy);

// bf16 scalar twins (the same roundings; sums in the kernel's order: pair by pair, element 2i + 1
// of a pair then 2i, each product exact).
void pack_bf16_activations_ref(const float* x, int64_t T, int64_t K, uint32_t* out);
void pack_bf16_panel_row_ref(const float* row, int64_t r, int64_t K, uint32_t* panel);
void gemm_bf16_panel_ref(const uint32_t* xp, int64_t T, int64_t K, const uint32_t* panel, int64_t n_rows, float* y,
                         int64_t ldy);
// The AMX twin: TDPBF16PS's order, pair by pair, element 2i then 2i + 1, each a fused
// multiply-add rounded to nearest even, with bf16 denormals read as zero and f32 denormal sums
// flushed to zero (as the instruction does, whatever MXCSR says).
void gemm_bf16_panel_amx_ref(const uint32_t* xp, int64_t T, int64_t K, const uint32_t* panel, int64_t n_rows, float* y,
                             int64_t ldy);

// The tile kernel's rows and tokens that exist, from a block's [kPanelRows][kPanelTokens]
// sums, to y (shared by the AVX-512 and AMX kernels).
inline void store_panel_block(const float (&tile)[kPanelRows][kPanelTokens], int64_t b, int64_t T, int64_t n_rows,
                              float* y, int64_t ldy) {
  const int64_t nt = T - b * kPanelTokens < kPanelTokens ? T - b * kPanelTokens : kPanelTokens;
  for (int64_t j = 0; j < nt; ++j) {
    float* yt = y + (b * kPanelTokens + j) * ldy;
    for (int64_t r = 0; r < n_rows; ++r) yt[r] = tile[r][j];
  }
}

namespace detail {
void pack_bf16_activations_avx512(const float* x, int64_t T, int64_t K, uint32_t* out);
void pack_bf16_panel_row_avx512(const float* row, int64_t r, int64_t K, uint32_t* panel);
void gemm_bf16_panel_avx512(const uint32_t* xp, int64_t T, int64_t K, const uint32_t* panel, int64_t n_rows, float* y,
                            int64_t ldy);
// The tile loop of gemm_panel_tiles.inc on AMX (only after cpu_has_amx_bf16_gemm()), and on
// the software model of the tiles (any CPU; for the tests).
void gemm_bf16_panel_amx(const uint32_t* xp, int64_t T, int64_t K, const uint32_t* panel, int64_t n_rows, float* y,
                         int64_t ldy);
// One step of TDPBF16PS: acc + a * b (bf16 a, b) fused and rounded to nearest even, a bf16
// denormal read as zero, an f32 denormal result flushed to zero.
float amx_bf16_fma(uint16_t a, uint16_t b, float acc);
void gemm_bf16_panel_amx_model(const uint32_t* xp, int64_t T, int64_t K, const uint32_t* panel, int64_t n_rows,
                               float* y, int64_t ldy);
void gemm_f32_panel_avx512(const float* xp, int64_t T, int64_t K, const float* panel, int64_t n_rows, float* y,
                           int64_t ldy);
}  // namespace detail

}  // namespace rhead
