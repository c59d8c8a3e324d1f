// Panel GEMMs of prefill: the AVX-512 (BF16) kernels against their scalar twins, the bf16
// scalar twin against a double-precision product of the bf16-rounded operands, the f32 one
// against double sums, and matmul's prefill path against matmul_ref (f32 dots).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "io/error.h"
#include "ops/gemm_panel.h"
#include "ops/ops.h"
#include "normal_values.h"
#include "ops/quant.h"

namespace rhead {
namespace {

using testing_ops::normal_values;

float bf16_round(float f) { return bf16_to_f32(f32_to_bf16(f)); }

// The panels of a whole matrix [rows][K], packed by `pack_row`.
template <class PackRow>
std::vector<uint32_t> panels(const std::vector<float>& w, int64_t rows, int64_t K, PackRow pack_row) {
  const int64_t n = (rows + kPanelRows - 1) / kPanelRows;
  std::vector<uint32_t> out(static_cast<size_t>(n * kPanelRows * K / 2), 0);
  for (int64_t r = 0; r < rows; ++r)
    pack_row(w.data() + r * K, r % kPanelRows, K, out.data() + (r / kPanelRows) * kPanelRows * K / 2);
  return out;
}

TEST(GemmBf16, PackingMatchesScalarTwinBitForBit) {
  if (!cpu_has_bf16_gemm()) GTEST_SKIP() << "no AVX-512 BF16 on this CPU";
  // Odd shapes (a partial token block, pairs not a multiple of 16) and values that test the
  // rounding: ties, denormals, infinities, NaN.
  const int64_t T = 37, K = 2 * 23;
  std::vector<float> x = normal_values(T * K, 1);
  const uint32_t specials[] = {0x3f808000u, 0x3f818000u, 0x00000001u, 0x807fffffu,
                               0x7f800000u, 0xff800000u, 0x7fc00001u, 0x7f7fffffu};
  for (size_t i = 0; i < std::size(specials); ++i) std::memcpy(&x[i * 13], &specials[i], 4);
  std::vector<uint32_t> a(static_cast<size_t>(bf16_activations_size(T, K)), 7), b(a.size(), 9);
  pack_bf16_activations(x.data(), T, K, a.data());
  pack_bf16_activations_ref(x.data(), T, K, b.data());
  EXPECT_EQ(a, b);
  std::vector<uint32_t> pa(static_cast<size_t>(K / 2)), pb(pa.size());
  for (int64_t t = 0; t < T; ++t) {
    pack_bf16_panel_row(x.data() + t * K, 0, K, pa.data());
    pack_bf16_panel_row_ref(x.data() + t * K, 0, K, pb.data());
    ASSERT_EQ(pa, pb) << "row " << t;
  }
  // A pair holds element 2i in its low half.
  EXPECT_EQ(pb[1] & 0xffffu, f32_to_bf16(x[(T - 1) * K + 2]));
  EXPECT_EQ(pb[1] >> 16, f32_to_bf16(x[(T - 1) * K + 3]));
}

TEST(GemmBf16, ScalarTwinIsTheProductOfRoundedOperands) {
  const int64_t T = 45, K = 96, rows = kPanelRows;
  const auto x = normal_values(T * K, 2), w = normal_values(rows * K, 3);
  std::vector<uint32_t> xp(static_cast<size_t>(bf16_activations_size(T, K)));
  pack_bf16_activations_ref(x.data(), T, K, xp.data());
  const auto panel = panels(w, rows, K, pack_bf16_panel_row_ref);
  std::vector<float> y(static_cast<size_t>(T * rows));
  gemm_bf16_panel_ref(xp.data(), T, K, panel.data(), rows, y.data(), rows);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double exact = 0, mag = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double p = double(bf16_round(x[t * K + k])) * bf16_round(w[r * K + k]);
        exact += p;
        mag += std::fabs(p);
      }
      ASSERT_NEAR(y[t * rows + r], exact, 1e-6 * mag) << t << "," << r;
    }
}

using PanelGemm = void (*)(const uint32_t*, int64_t, int64_t, const uint32_t*, int64_t, float*, int64_t);

// Largest |gemm - twin| over the panel's rows, in units of the row's sum of |products|, for
// normal values (seed, seed + 1); -1 when gemm wrote past n_rows.
double panel_error(PanelGemm gemm, PanelGemm twin, int64_t T, int64_t K, int64_t n_rows, uint32_t seed) {
  const int64_t ldy = n_rows + 5;
  const auto x = normal_values(T * K, seed), w = normal_values(n_rows * K, seed + 1, 0.05f);
  std::vector<uint32_t> xp(static_cast<size_t>(bf16_activations_size(T, K)));
  pack_bf16_activations_ref(x.data(), T, K, xp.data());
  const auto panel = panels(w, n_rows, K, pack_bf16_panel_row_ref);
  std::vector<float> got(static_cast<size_t>(T * ldy), -1.0f), want(got.size(), -1.0f);
  gemm(xp.data(), T, K, panel.data(), n_rows, got.data(), ldy);
  twin(xp.data(), T, K, panel.data(), n_rows, want.data(), ldy);
  double worst = 0;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < ldy; ++r) {
      const float g = got[t * ldy + r], e = want[t * ldy + r];
      if (r >= n_rows) {
        if (g != -1.0f) return -1;
        continue;
      }
      double mag = 0;
      for (int64_t k = 0; k < K; ++k) mag += std::fabs(double(x[t * K + k]) * w[r * K + k]);
      worst = std::max(worst, std::fabs(double(g) - e) / mag);
    }
  return worst;
}

// Where the CPU has AMX, K = 2048 runs on tiles (gemm_bf16_panel's dispatch) and 2114 on
// AVX-512 BF16.
TEST(GemmBf16, KernelMatchesScalarTwin) {
  if (!cpu_has_bf16_gemm()) GTEST_SKIP() << "no AVX-512 BF16 on this CPU";
  for (int64_t K : {2048, 2048 + 66})
    for (int64_t T : {1, 31, 32, 70})
      for (int64_t n_rows : {int64_t{1}, kPanelRows - 3, kPanelRows}) {
        const double e = panel_error(gemm_bf16_panel, gemm_bf16_panel_ref, T, K, n_rows, 4);
        ASSERT_GE(e, 0.0) << "wrote past the panel's rows";
        // Only the f32 summation order may differ (the products are exact).
        ASSERT_LE(e, 1e-5) << "K " << K << " T " << T << " rows " << n_rows;
      }
}

// The AMX tile loop, run on the software model of the tiles (every CPU) and on the CPU's tiles
// where it has them, against the AMX scalar twin; the twin against the AVX-512 one.
double amx_error(PanelGemm gemm, int64_t T, int64_t K, int64_t n_rows, uint32_t seed) {
  return panel_error(gemm, gemm_bf16_panel_amx_ref, T, K, n_rows, seed);
}

TEST(GemmAmx, TileModelEqualsScalarTwinBitForBit) {
  for (int64_t K : {32, 2048 + 64})
    for (int64_t T : {1, 31, 32, 70})
      for (int64_t n_rows : {int64_t{1}, kPanelRows - 3, kPanelRows})
        ASSERT_EQ(amx_error(detail::gemm_bf16_panel_amx_model, T, K, n_rows, 11), 0.0)
            << "K " << K << " T " << T << " rows " << n_rows;
}

TEST(GemmAmx, TilesEqualScalarTwin) {
  if (!cpu_has_amx_bf16_gemm()) GTEST_SKIP() << "no AMX-BF16 on this CPU (the tile model is tested above)";
  // The products are exact and the order is the instruction's: the same bits are expected;
  // 1e-6 of the magnitude leaves room for a summation the reference does not pin down.
  for (int64_t K : {32, 2048 + 64})
    for (int64_t T : {1, 31, 32, 70})
      for (int64_t n_rows : {int64_t{1}, kPanelRows - 3, kPanelRows}) {
        const double e = amx_error(detail::gemm_bf16_panel_amx, T, K, n_rows, 12);
        ASSERT_GE(e, 0.0) << "wrote past the panel's rows";
        ASSERT_LE(e, 1e-6) << "K " << K << " T " << T << " rows " << n_rows;
      }
}

TEST(GemmAmx, TwinIsTheAvx512TwinUpToOrderAndDenormals) {
  const int64_t T = 33, K = 256;
  const auto x = normal_values(T * K, 13), w = normal_values(kPanelRows * K, 14);
  std::vector<uint32_t> xp(static_cast<size_t>(bf16_activations_size(T, K)));
  pack_bf16_activations_ref(x.data(), T, K, xp.data());
  const auto panel = panels(w, kPanelRows, K, pack_bf16_panel_row_ref);
  std::vector<float> amx(static_cast<size_t>(T * kPanelRows)), avx(amx.size());
  gemm_bf16_panel_amx_ref(xp.data(), T, K, panel.data(), kPanelRows, amx.data(), kPanelRows);
  gemm_bf16_panel_ref(xp.data(), T, K, panel.data(), kPanelRows, avx.data(), kPanelRows);
  int differ = 0;
  for (size_t i = 0; i < amx.size(); ++i) {
    ASSERT_NEAR(amx[i], avx[i], 1e-5 * (std::fabs(avx[i]) + 1));
    differ += amx[i] != avx[i];
  }
  EXPECT_GT(differ, 0) << "the two orders never rounded differently: the test does not see the order";

  // One step: bf16 denormals read as zero, a denormal f32 result is flushed to zero.
  const uint16_t one = f32_to_bf16(1.0f), tiny = 0x0001, small = f32_to_bf16(1e-20f);
  EXPECT_EQ(detail::amx_bf16_fma(tiny, f32_to_bf16(1e30f), 0.5f), 0.5f);
  EXPECT_EQ(detail::amx_bf16_fma(small, small, 0.0f), 0.0f);  // 1e-40 is an f32 denormal
  EXPECT_EQ(detail::amx_bf16_fma(one, one, 2.0f), 3.0f);
  EXPECT_EQ(detail::amx_bf16_fma(f32_to_bf16(3.0f), f32_to_bf16(-0.5f), 0.25f), -1.25f);
}

TEST(GemmF32, KernelEqualsScalarTwinAndDoubleSums) {
  for (int64_t T : {1, 33, 64}) {
    for (int64_t n_rows : {int64_t{1}, kPanelRows - 5, kPanelRows}) {
      const int64_t K = 300, ldy = n_rows + 2;
      const auto x = normal_values(T * K, 8), w = normal_values(kPanelRows * K, 9, 0.05f);
      std::vector<float> xp(static_cast<size_t>(f32_activations_size(T, K)), 5.0f);
      pack_f32_activations(x.data(), T, K, xp.data());
      std::vector<float> got(static_cast<size_t>(T * ldy), -1.0f), want(got.size(), -1.0f);
      gemm_f32_panel(xp.data(), T, K, w.data(), n_rows, got.data(), ldy);
      gemm_f32_panel_ref(xp.data(), T, K, w.data(), n_rows, want.data(), ldy);
      // One fused multiply-add per term in k order on both sides: the same bits.
      ASSERT_EQ(got, want) << "T " << T << " rows " << n_rows;
      for (int64_t t = 0; t < T; ++t)
        for (int64_t r = 0; r < ldy; ++r) {
          if (r >= n_rows) {
            ASSERT_EQ(got[t * ldy + r], -1.0f) << "wrote past the panel's rows";
            continue;
          }
          double exact = 0, mag = 0;
          for (int64_t k = 0; k < K; ++k) {
            exact += double(x[t * K + k]) * w[r * K + k];
            mag += std::fabs(double(x[t * K + k]) * w[r * K + k]);
          }
          ASSERT_NEAR(got[t * ldy + r], exact, 1e-6 * mag) << t << "," << r;
        }
    }
  }
}

// matmul's prefill path (T >= 4): f16 weights within f32 rounding of f32 dots, q8_0 weights
// within bf16's rounding where the CPU takes the bf16 GEMM.
TEST(GemmPanel, MatmulPrefillCloseToF32Dots) {
  const int64_t rows = 50, cols = 256, T = 40;
  const auto src = normal_values(rows * cols, 6, 0.02f), x = normal_values(T * cols, 7);
  for (DType t : {DType::F16, DType::Q8_0}) {
    std::vector<uint8_t> bytes(static_cast<size_t>(rows * row_bytes(t, cols)));
    for (int64_t r = 0; r < rows; ++r)
      quantize_row(t, src.data() + r * cols, bytes.data() + r * row_bytes(t, cols), cols);
    Weight w;
    w.type = t;
    w.rows = rows;
    w.cols = cols;
    w.data = bytes.data();
    std::vector<float> got(static_cast<size_t>(T * rows)), want(got.size());
    matmul(w, x.data(), T, got.data());
    matmul_ref(w, x.data(), T, want.data());
    double err = 0, norm = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      err = std::max(err, double(std::fabs(got[i] - want[i])));
      norm = std::max(norm, double(std::fabs(want[i])));
    }
    // bf16 keeps 8 significant bits: about 0.4% per operand, averaged over 256 products.
    EXPECT_LT(err, (t == DType::F16 ? 1e-5 : 0.01) * norm) << dtype_name(t);
    EXPECT_GT(norm, 0.05);
  }
}

// A group of matmuls sharing x (mixed weight types, some through the panel GEMMs, F32 through
// sgemm) gives the bits of one matmul each, on the decode and on the prefill path.
TEST(MatmulGroup, EqualsOneMatmulEach) {
  const int64_t cols = 512;
  const DType types[] = {DType::Q8_0, DType::F16, DType::F32, DType::Q4_K};
  const int64_t rows[] = {100, 37, 64, 300};
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<Weight> ws;
  for (size_t i = 0; i < std::size(types); ++i) {
    const auto src = normal_values(rows[i] * cols, 20 + uint32_t(i), 0.02f);
    bytes.emplace_back(static_cast<size_t>(rows[i] * row_bytes(types[i], cols)));
    for (int64_t r = 0; r < rows[i]; ++r)
      quantize_row(types[i], src.data() + r * cols, bytes.back().data() + r * row_bytes(types[i], cols), cols);
  }
  for (size_t i = 0; i < std::size(types); ++i) {
    Weight w;
    w.type = types[i];
    w.rows = rows[i];
    w.cols = cols;
    w.data = bytes[i].data();
    ws.push_back(w);
  }
  for (int64_t T : {1, 3, 40}) {
    const auto x = normal_values(T * cols, 30 + uint32_t(T));
    std::vector<std::vector<float>> got, want;
    std::vector<MatmulJob> jobs;
    for (const Weight& w : ws) {
      got.emplace_back(static_cast<size_t>(T * w.rows), -1.0f);
      want.emplace_back(static_cast<size_t>(T * w.rows), -2.0f);
      matmul(w, x.data(), T, want.back().data());
    }
    for (size_t i = 0; i < ws.size(); ++i) jobs.push_back({&ws[i], got[i].data()});
    matmul_group(jobs, x.data(), T);
    for (size_t i = 0; i < ws.size(); ++i) EXPECT_EQ(got[i], want[i]) << dtype_name(types[i]) << " T " << T;
  }
  Weight narrow = ws[0];
  narrow.cols = 256;
  std::vector<float> y(1000);
  const std::vector<float> x(cols, 1.0f);
  const MatmulJob mixed[] = {{&ws[0], y.data()}, {&narrow, y.data()}};
  EXPECT_THROW(matmul_group(mixed, x.data(), 1), Error);
}

}  // namespace
}  // namespace rhead
