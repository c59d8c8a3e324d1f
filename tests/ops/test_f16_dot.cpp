// f16 weights against x rounded to f16 (ops/quant.h's round_x_to_f16 and dot_rows_f16_f16, the
// decode matvecs of f16 weights): the vector rounding against the scalar f32_to_f16 bit for bit,
// what it refuses, the row kernel against its double-precision scalar twin, and matmul's decode
// path against f32 dots within what rounding x to 11 significant bits allows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "normal_values.h"
#include "ops/cpu_info.h"
#include "ops/lanes.h"
#include "ops/ops.h"
#include "ops/quant.h"

namespace rhead {
namespace {

using testing_ops::normal_values;

bool have_kernel() { return cpu_has_isa(KernelISA::AVX2); }

std::vector<uint16_t> f16_row(const std::vector<float>& v) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = f32_to_f16(v[i]);
  return h;
}

TEST(F16Dot, RoundingMatchesTheScalarConversionBitForBit) {
  if (!have_kernel()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::vector<float> x = normal_values(4096, 1, 3.0f);
  // Ties, subnormal halves, the largest half, signed zeros, values that round up to a power.
  const float special[] = {65504.0f, -65504.0f, 6.0e-8f,  -3.0e-7f, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 2047.5f,
                           0.0f,     -0.0f,     65519.0f, 1e-10f,   5.9604645e-08f};
  std::memcpy(x.data(), special, sizeof special);
  for (int64_t i = 100; i < 200; ++i) x[i] = std::ldexp(x[i], -20);  // the subnormal range
  std::vector<uint16_t> h;
  ASSERT_TRUE(round_x_to_f16(x.data(), static_cast<int64_t>(x.size()), h));
  ASSERT_EQ(h.size(), x.size());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(h[i], f32_to_f16(x[i])) << "x[" << i << "] = " << x[i];
  std::vector<uint16_t> h8(x.size());  // the 8-lane conversion too (the dispatcher may take 16)
  lanes8::to_f16(x.data(), static_cast<int64_t>(x.size()), h8.data());
  EXPECT_EQ(h8, h);
}

TEST(F16Dot, RefusesWhatF16CannotHold) {
  if (!have_kernel()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::vector<float> x = normal_values(64, 2);
  std::vector<uint16_t> h;
  EXPECT_FALSE(round_x_to_f16(x.data(), 48 + 8, h)) << "not a multiple of 16";
  x[17] = 70000.0f;
  EXPECT_FALSE(round_x_to_f16(x.data(), 64, h)) << "overflows f16";
  x[17] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(round_x_to_f16(x.data(), 64, h)) << "NaN";
  x[17] = -65504.0f;
  EXPECT_TRUE(round_x_to_f16(x.data(), 64, h));
}

TEST(F16Dot, RowsAgainstTheScalarTwin) {
  if (!have_kernel()) GTEST_SKIP() << "no AVX2 on this CPU";
  for (int64_t n : {16, 48, 64, 80, 2048, 5632}) {
    const int64_t rows = 5;
    const std::vector<uint16_t> w = f16_row(normal_values(rows * n, 3 + static_cast<uint32_t>(n), 0.05f));
    const std::vector<uint16_t> h = f16_row(normal_values(n, 4 + static_cast<uint32_t>(n)));
    // The dispatcher and each width this CPU has.
    using Rows = void (*)(const void*, int64_t, int64_t, const uint16_t*, int64_t, float*);
    std::vector<std::pair<const char*, Rows>> kernels = {{"dispatch", dot_rows_f16_f16},
                                                         {"8 lanes", lanes8::dot_rows_f16_f16}};
    if (cpu_has_isa(KernelISA::AVX512)) kernels.emplace_back("16 lanes", lanes16::dot_rows_f16_f16);
    for (const auto& [name, kernel] : kernels) {
      std::vector<float> y(rows, -7.0f);
      kernel(w.data(), n * 2, rows, h.data(), n, y.data());
      for (int64_t r = 0; r < rows; ++r) {
        const double want = dot_row_f16_f16_ref(w.data() + r * n, h.data(), n);
        double scale = 0;  // sum of |w x|: what f32 sums can be off by, relative
        for (int64_t i = 0; i < n; ++i) scale += std::fabs(f16_to_f32(w[r * n + i]) * f16_to_f32(h[i]));
        EXPECT_NEAR(y[r], want, 1e-6 * scale + 1e-12) << name << " n=" << n << " row " << r;
      }
    }
  }
}

TEST(F16Dot, DecodeMatmulOfF16WeightsDotsRoundedX) {
  if (!have_kernel()) GTEST_SKIP() << "no AVX2 on this CPU";
  const int64_t rows = 300, cols = 1024;
  const std::vector<uint16_t> wh = f16_row(normal_values(rows * cols, 5, 0.02f));
  const std::vector<float> x = normal_values(cols, 6);
  Weight w;
  w.type = DType::F16;
  w.rows = rows;
  w.cols = cols;
  w.data = wh.data();
  std::vector<float> got(rows), f32x(rows), want(rows);
  matmul(w, x.data(), 1, got.data());
  matmul_ref(w, x.data(), 1, f32x.data());
  std::vector<uint16_t> h;
  ASSERT_TRUE(round_x_to_f16(x.data(), cols, h));
  dot_rows_f16_f16(wh.data(), cols * 2, rows, h.data(), cols, want.data());
  double diff = 0, norm = 0;
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_EQ(got[r], want[r]) << "row " << r << ": the decode path dots f16 x";
    diff = std::max(diff, double(std::fabs(got[r] - f32x[r])));
    norm = std::max(norm, double(std::fabs(f32x[r])));
  }
  // x to 11 significant bits: 2^-12 relative per element at most, far less on a sum of 1024.
  EXPECT_LT(diff, 2.5e-4 * norm);
  EXPECT_GT(diff, 0.0) << "x was not rounded";
}

}  // namespace
}  // namespace rhead
