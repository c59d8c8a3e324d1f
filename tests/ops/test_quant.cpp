// Row kernels: SIMD against scalar references, dot against dequantize-then-dot, quantizer
// error bounds, f16/bf16 bit patterns, and hand-built blocks of known values per type.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "io/error.h"
#include "io/gguf.h"
#include "normal_values.h"
#include "ops/quant.h"
#include "test_support.h"

namespace rhead {
namespace {

const DType kAllTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1,
                           DType::Q5_0, DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K};
const DType kBlockTypes[] = {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                             DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K};

using testing_ops::normal_values;

void put_f16(std::vector<uint8_t>& row, size_t at, float v) {
  uint16_t h = f32_to_f16(v);
  std::memcpy(row.data() + at, &h, 2);
}

// Byte offsets of the f16 scale fields inside one block.
std::vector<int> f16_fields(DType t) {
  switch (t) {
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q5_0: return {0};
    case DType::Q4_1:
    case DType::Q5_1:
    case DType::Q4_K:
    case DType::Q5_K: return {0, 2};
    case DType::Q6_K: return {208};
    default: return {};
  }
}

// A row of n elements whose code bytes are uniformly random (every bit pattern the decoder
// can meet) and whose f16 scales are finite, sized like real weights.
std::vector<uint8_t> random_row(DType t, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> row(size_t(row_bytes(t, n)));
  if (t == DType::F32 || t == DType::F16 || t == DType::BF16) {
    std::vector<float> v = normal_values(n, seed);
    quantize_row(t, v.data(), row.data(), n);
    return row;
  }
  for (auto& b : row) b = uint8_t(rng());
  std::normal_distribution<float> scale(0.0f, 0.05f);
  DTypeInfo info = dtype_info(t);
  for (int64_t b = 0; b < n / info.block_elems; ++b)
    for (int at : f16_fields(t)) put_f16(row, size_t(b * info.block_bytes + at), scale(rng));
  return row;
}

std::vector<KernelISA> simd_isas() {
  std::vector<KernelISA> out;
  for (KernelISA isa : {KernelISA::AVX2, KernelISA::AVX512})
    if (cpu_has_isa(isa)) out.push_back(isa);
  return out;
}

// Row lengths to try: odd numbers of blocks, and odd element counts for the float types.
std::vector<int64_t> test_lengths(DType t) {
  int64_t b = dtype_info(t).block_elems;
  if (b == 1) return {1, 7, 8, 15, 16, 17, 31, 33, 63, 65, 127, 1001};
  return {b, 3 * b, 5 * b, 7 * b, 33 * b};
}

double dot_f64(const std::vector<float>& w, const float* x) {
  double s = 0;
  for (size_t i = 0; i < w.size(); ++i) s += double(w[i]) * x[i];
  return s;
}
double abs_dot(const std::vector<float>& w, const float* x) {
  double s = 0;
  for (size_t i = 0; i < w.size(); ++i) s += std::fabs(double(w[i]) * x[i]);
  return s;
}

TEST(Quant, CpuHasAtLeastOneSimdSet) {
  // The engine expects a SIMD path on the machines it runs on; report which ones exist.
  for (KernelISA isa : simd_isas()) std::printf("simd kernels available: %s\n", isa_name(isa));
  EXPECT_TRUE(cpu_has_isa(KernelISA::Scalar));
  EXPECT_EQ(best_isa() == KernelISA::Scalar, simd_isas().empty());
}

TEST(Quant, SimdDequantizeMatchesReference) {
  for (DType t : kAllTypes)
    for (KernelISA isa : simd_isas())
      for (int64_t n : test_lengths(t)) {
        const int rows = 3;
        for (int r = 0; r < rows; ++r) {
          std::vector<uint8_t> row = random_row(t, n, uint32_t(1000 * n + r));
          std::vector<float> ref(static_cast<size_t>(n)), got(size_t(n), -12345.0f);
          dequantize_row_ref(t, row.data(), ref.data(), n);
          dequantize_row_isa(isa, t, row.data(), got.data(), n);
          float scale = 0;
          for (float v : ref) scale = std::max(scale, std::fabs(v));
          for (int64_t i = 0; i < n; ++i)
            ASSERT_NEAR(got[size_t(i)], ref[size_t(i)], 1e-6f * scale)
                << dtype_name(t) << " " << isa_name(isa) << " n=" << n << " row " << r << " i=" << i;
        }
      }
}

TEST(Quant, SimdDotMatchesReference) {
  for (DType t : kAllTypes)
    for (KernelISA isa : simd_isas())
      for (int64_t n : test_lengths(t))
        for (int r = 0; r < 3; ++r) {
          std::vector<uint8_t> row = random_row(t, n, uint32_t(7 * n + r));
          std::vector<float> x = normal_values(n, uint32_t(99 + r));
          std::vector<float> w(static_cast<size_t>(n));
          dequantize_row_ref(t, row.data(), w.data(), n);
          float ref = dot_row_ref(t, row.data(), x.data(), n);
          float got = dot_row_isa(isa, t, row.data(), x.data(), n);
          double tol = 1e-5 * abs_dot(w, x.data()) + 1e-30;
          ASSERT_NEAR(got, ref, tol) << dtype_name(t) << " " << isa_name(isa) << " n=" << n;
        }
}

// dot_rows (one check and dispatch per run of rows) gives dot_row's
// bits for every row, odd row counts and lengths with tails included.
TEST(Quant, DotRowsEqualsDotRowPerRow) {
  for (DType t : kAllTypes)
    for (int64_t n : test_lengths(t)) {
      const int64_t n_rows = 5, stride = row_bytes(t, n) + 6;  // rows not packed back to back
      std::vector<uint8_t> rows(static_cast<size_t>(n_rows * stride));
      for (int64_t r = 0; r < n_rows; ++r) {
        const std::vector<uint8_t> row = random_row(t, n, uint32_t(11 * n + r));
        std::copy(row.begin(), row.end(), rows.begin() + r * stride);
      }
      const std::vector<float> x = normal_values(n, uint32_t(5 + n));
      std::vector<float> got(static_cast<size_t>(n_rows));
      dot_rows(t, rows.data(), stride, n_rows, x.data(), n, got.data());
      for (int64_t r = 0; r < n_rows; ++r)
        ASSERT_EQ(got[r], dot_row(t, rows.data() + r * stride, x.data(), n))
            << dtype_name(t) << " n=" << n << " r=" << r;
    }
}

TEST(Quant, DotMatchesDequantizeThenDot) {
  for (DType t : kAllTypes)
    for (int64_t n : test_lengths(t)) {
      std::vector<float> src = normal_values(n, uint32_t(n), 0.02f);
      std::vector<uint8_t> row(size_t(row_bytes(t, n)));
      quantize_row(t, src.data(), row.data(), n);
      std::vector<float> x = normal_values(n, uint32_t(n + 5));
      std::vector<float> w(static_cast<size_t>(n));
      dequantize_row(t, row.data(), w.data(), n);
      double expect = dot_f64(w, x.data());
      double tol = 1e-5 * abs_dot(w, x.data()) + 1e-30;
      EXPECT_NEAR(dot_row(t, row.data(), x.data(), n), expect, tol) << dtype_name(t) << " n=" << n;
      EXPECT_NEAR(dot_row_ref(t, row.data(), x.data(), n), expect, tol) << dtype_name(t) << " n=" << n;
    }
}

TEST(Quant, RejectsPartialBlocks) {
  std::vector<uint8_t> row(1024);
  std::vector<float> x(300);
  EXPECT_THROW(dot_row(DType::Q4_K, row.data(), x.data(), 300), Error);
  EXPECT_THROW(dequantize_row(DType::Q8_0, row.data(), x.data(), 33), Error);
  EXPECT_THROW(quantize_row(DType::Q6_K, x.data(), row.data(), 128), Error);
  try {
    dot_row_ref(DType::Q5_0, row.data(), x.data(), 40);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a multiple of the Q5_0 block size 32"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------
// Integer dot products against an int8 x

const DType kInt8Types[] = {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K};

TEST(QuantInt8, QuantizeVector) {
  const int64_t n = 32 * 9;
  std::vector<float> x = normal_values(n, 5);
  x[40] = 0;  // a block's extreme values and zeros
  std::fill(x.begin() + 64, x.begin() + 96, 0.0f);
  QuantizedVector q;
  quantize_vector(x.data(), n, q);
  ASSERT_EQ(q.n, n);
  ASSERT_EQ(q.q.size(), size_t(n));
  ASSERT_EQ(q.d.size(), size_t(n / 32));
  ASSERT_EQ(q.sum16.size(), size_t(n / 16));
  EXPECT_EQ(q.d[2], 0.0f);
  for (int64_t b = 0; b < n / 32; ++b) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[size_t(32 * b + i)]));
    EXPECT_FLOAT_EQ(q.d[size_t(b)], amax / 127);
    for (int half = 0; half < 2; ++half) {
      int sum = 0;
      for (int i = 16 * half; i < 16 * half + 16; ++i) {
        int64_t at = 32 * b + i;
        sum += q.q[size_t(at)];
        EXPECT_LE(std::abs(int(q.q[size_t(at)])), 127);
        EXPECT_LE(std::fabs(q.d[size_t(b)] * q.q[size_t(at)] - x[size_t(at)]), q.d[size_t(b)] * 0.5001f);
      }
      EXPECT_EQ(q.sum16[size_t(2 * b + half)], sum);
    }
  }
  EXPECT_THROW(quantize_vector(x.data(), 48, q), Error);
}

TEST(QuantInt8, VectorQuantizerMatchesReference) {
  // Same bytes as the scalar quantizer, on normal values and on the edges of its rules:
  // exact halves (round half to even), NaN and infinities, an all-zero block, a block whose
  // scale underflows to a subnormal.
  const int64_t n = 32 * 12;
  std::vector<float> x = normal_values(n, 31);
  for (int i = 0; i < 32; ++i) x[size_t(i)] = (i - 16) * 0.5f;         // block 0: amax 8, halves of a step
  for (int i = 0; i < 32; ++i) x[size_t(32 + i)] = 127.0f - 2.5f * i;  // block 1: d = 1, codes at x.5
  x[70] = std::numeric_limits<float>::quiet_NaN();
  x[100] = std::numeric_limits<float>::infinity();
  x[130] = -std::numeric_limits<float>::infinity();
  std::fill(x.begin() + 160, x.begin() + 192, 0.0f);
  for (int i = 0; i < 32; ++i) x[size_t(192 + i)] = (i % 3 - 1) * 1e-40f;
  for (int i = 0; i < 32; ++i) x[size_t(224 + i)] = std::numeric_limits<float>::quiet_NaN();
  QuantizedVector got, want;
  quantize_vector(x.data(), n, got);
  quantize_vector_ref(x.data(), n, want);
  EXPECT_EQ(got.q, want.q);
  EXPECT_EQ(got.sum16, want.sum16);
  ASSERT_EQ(got.d.size(), want.d.size());
  for (size_t b = 0; b < got.d.size(); ++b)
    EXPECT_TRUE(got.d[b] == want.d[b] || (std::isnan(got.d[b]) && std::isnan(want.d[b]))) << "block " << b;
  EXPECT_EQ(want.q[size_t(32 + 1)], 124);  // 124.5 rounds to the even 124
  EXPECT_EQ(want.q[size_t(70)], -127);     // NaN
}

TEST(QuantInt8, SimdMatchesReference) {
  for (DType t : kInt8Types)
    for (KernelISA isa : {KernelISA::AVX2, KernelISA::AVX512}) {
      if (!cpu_has_int8_isa(isa)) continue;
      for (int64_t n : test_lengths(t))
        for (int r = 0; r < 3; ++r) {
          std::vector<uint8_t> row = random_row(t, n, uint32_t(11 * n + r));
          // Extreme codes: Q8_0's -128 and x's +-127 exercise the widest products.
          if (t == DType::Q8_0 && r == 2)
            for (int64_t b = 0; b < n / 32; ++b) row[size_t(34 * b + 2)] = 0x80;
          std::vector<float> xf = normal_values(n, uint32_t(r + 17));
          QuantizedVector x;
          quantize_vector(xf.data(), n, x);
          std::vector<float> w(static_cast<size_t>(n));
          dequantize_row_ref(t, row.data(), w.data(), n);
          std::vector<float> xd(static_cast<size_t>(n));
          for (int64_t i = 0; i < n; ++i) xd[size_t(i)] = x.d[size_t(i / 32)] * x.q[size_t(i)];
          float ref = dot_row_int8_ref(t, row.data(), x);
          EXPECT_NEAR(ref, dot_f64(w, xd.data()), 1e-6 * abs_dot(w, xd.data()) + 1e-30);
          float got = dot_row_int8_isa(isa, t, row.data(), x);
          ASSERT_NEAR(got, ref, 1e-5 * abs_dot(w, xd.data()) + 1e-30)
              << dtype_name(t) << " " << isa_name(isa) << " n=" << n << " row " << r;
        }
    }
}

TEST(QuantInt8, CloseToTheF32Dot) {
  // The only difference from dot_row is x's rounding: at most half a step of x per element.
  for (DType t : kInt8Types) {
    const int64_t n = 256 * 11;
    std::vector<float> src = normal_values(n, 21, 0.02f), xf = normal_values(n, 22);
    std::vector<uint8_t> row(size_t(row_bytes(t, n)));
    quantize_row(t, src.data(), row.data(), n);
    QuantizedVector x;
    quantize_vector(xf.data(), n, x);
    std::vector<float> w(static_cast<size_t>(n));
    dequantize_row(t, row.data(), w.data(), n);
    double bound = 0;
    for (int64_t i = 0; i < n; ++i) bound += std::fabs(w[size_t(i)]) * x.d[size_t(i / 32)] * 0.5;
    EXPECT_NEAR(dot_row_int8(t, row.data(), x), dot_row(t, row.data(), xf.data(), n), bound * 1.01) << dtype_name(t);
  }
}

TEST(QuantInt8, RejectsTypesWithoutKernel) {
  EXPECT_FALSE(has_int8_dot(DType::Q5_K));
  EXPECT_FALSE(has_int8_dot(DType::F16));
  std::vector<float> xf(256, 1.0f);
  QuantizedVector x;
  quantize_vector(xf.data(), 256, x);
  std::vector<uint8_t> row(1024);
  EXPECT_THROW(dot_row_int8(DType::Q5_K, row.data(), x), Error);
  EXPECT_THROW(dot_row_int8(DType::F32, row.data(), x), Error);
  QuantizedVector short_x;
  quantize_vector(xf.data(), 32, short_x);
  EXPECT_THROW(dot_row_int8(DType::Q4_K, row.data(), short_x), Error);  // 32 is not a whole Q4_K block
}

// ---------------------------------------------------------------------------------------
// Quantize -> dequantize error

struct ErrorBound {
  DType type;
  double max_rms;  // RMS error / RMS value, on N(0, 1) data
};

TEST(Quant, QuantizeDequantizeError) {
  // Relative RMS error of a uniform quantizer with k levels over a block's range is roughly
  // range / (k * sqrt(12)); these bounds leave a margin over what the simple quantizers reach.
  const ErrorBound bounds[] = {
      {DType::F32, 0.0},   {DType::F16, 4e-4},  {DType::BF16, 3e-3},  {DType::Q8_0, 0.006},
      {DType::Q4_0, 0.11}, {DType::Q4_1, 0.09}, {DType::Q5_0, 0.055}, {DType::Q5_1, 0.045},
      {DType::Q4_K, 0.10}, {DType::Q5_K, 0.05}, {DType::Q6_K, 0.03},
  };
  const int64_t n = 256 * 33;
  std::vector<float> src = normal_values(n, 42);
  for (const auto& b : bounds) {
    std::vector<uint8_t> row(size_t(row_bytes(b.type, n)));
    quantize_row(b.type, src.data(), row.data(), n);
    std::vector<float> back(static_cast<size_t>(n));
    dequantize_row_ref(b.type, row.data(), back.data(), n);
    double err = 0, ref = 0;
    for (int64_t i = 0; i < n; ++i) {
      err += std::pow(double(back[size_t(i)]) - src[size_t(i)], 2);
      ref += std::pow(double(src[size_t(i)]), 2);
    }
    double rel = std::sqrt(err / ref);
    std::printf("%-5s relative rms error %.5f\n", dtype_name(b.type), rel);
    EXPECT_LE(rel, b.max_rms) << dtype_name(b.type);
  }
}

TEST(Quant, LegacyQuantizersStayWithinOneStep) {
  // Per element: within half a step for Q8_0 (symmetric range), within one step for the 4/5-bit
  // types (the extreme value of the short side of an asymmetric range may clip by one step).
  const int64_t n = 32 * 41;
  std::vector<float> src = normal_values(n, 7, 3.0f);
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1}) {
    std::vector<uint8_t> row(size_t(row_bytes(t, n)));
    quantize_row(t, src.data(), row.data(), n);
    std::vector<float> back(static_cast<size_t>(n));
    dequantize_row_ref(t, row.data(), back.data(), n);
    for (int64_t b = 0; b < n / 32; ++b) {
      uint16_t h;
      std::memcpy(&h, row.data() + b * dtype_info(t).block_bytes, 2);
      double step = std::fabs(f16_to_f32(h));
      double allowed = (t == DType::Q8_0 ? 0.5 : 1.0) * step * 1.01 + 1e-3 * step;
      for (int64_t i = b * 32; i < b * 32 + 32; ++i)
        ASSERT_LE(std::fabs(back[size_t(i)] - src[size_t(i)]), allowed) << dtype_name(t) << " i=" << i;
    }
  }
}

TEST(Quant, QuantizeZerosAndConstants) {
  for (DType t : kAllTypes) {
    const int64_t n = 256;
    for (float c : {0.0f, 0.75f, -2.5f}) {
      std::vector<float> src(size_t(n), c), back(static_cast<size_t>(n));
      std::vector<uint8_t> row(size_t(row_bytes(t, n)));
      quantize_row(t, src.data(), row.data(), n);
      dequantize_row(t, row.data(), back.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(back[size_t(i)], c, 0.02 * std::fabs(c)) << dtype_name(t) << " c=" << c << " i=" << i;
    }
  }
}

// ---------------------------------------------------------------------------------------
// f16 / bf16

float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
uint32_t to_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

TEST(Half, DecodesKnownPatterns) {
  EXPECT_EQ(to_bits(f16_to_f32(0x0000)), 0x00000000u);
  EXPECT_EQ(to_bits(f16_to_f32(0x8000)), 0x80000000u);  // -0
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x3555), 0x1.554p-2f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0400), 0x1p-14f);  // smallest normal
  EXPECT_EQ(f16_to_f32(0x0001), 0x1p-24f);  // smallest subnormal
  EXPECT_EQ(f16_to_f32(0x03ff), 1023 * 0x1p-24f);
  EXPECT_EQ(f16_to_f32(0x8001), -0x1p-24f);
  EXPECT_EQ(f16_to_f32(0x7c00), INFINITY);
  EXPECT_EQ(f16_to_f32(0xfc00), -INFINITY);
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7c01)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0xfe00)));
}

TEST(Half, EncodesKnownPatterns) {
  EXPECT_EQ(f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65519.996f), 0x7bff);  // just below the tie: stays finite
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);    // the tie rounds to even = inf
  EXPECT_EQ(f32_to_f16(1e6f), 0x7c00);
  EXPECT_EQ(f32_to_f16(-1e30f), 0xfc00);
  EXPECT_EQ(f32_to_f16(INFINITY), 0x7c00);
  EXPECT_EQ(f32_to_f16(-INFINITY), 0xfc00);
  uint16_t nan = f32_to_f16(NAN);
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  EXPECT_NE(f32_to_f16(from_bits(0x7f800001u)) & 0x03ff, 0);  // signalling nan stays a nan
  // Round to nearest even in the normal range.
  EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f), 0x3c00);             // tie -> even (down)
  EXPECT_EQ(f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);         // tie -> even (up)
  EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);  // above the tie
  EXPECT_EQ(f32_to_f16(2.0f - 0x1p-12f), 0x4000);             // mantissa carry into exponent
  EXPECT_EQ(f32_to_f16(2.0f - 0x1p-10f), 0x3bff + 0x400);     // exactly representable
  // Subnormals.
  EXPECT_EQ(f32_to_f16(0x1p-24f), 0x0001);
  EXPECT_EQ(f32_to_f16(0x1p-25f), 0x0000);       // tie -> even (zero)
  EXPECT_EQ(f32_to_f16(0x1.0002p-25f), 0x0001);  // above the tie
  EXPECT_EQ(f32_to_f16(3 * 0x1p-25f), 0x0002);   // tie -> even (up)
  EXPECT_EQ(f32_to_f16(5 * 0x1p-25f), 0x0002);   // tie -> even (down)
  EXPECT_EQ(f32_to_f16(0x1p-14f), 0x0400);
  EXPECT_EQ(f32_to_f16(0x1p-14f - 0x1p-25f), 0x0400);  // largest subnormal + half: to normal
  EXPECT_EQ(f32_to_f16(-0x1p-20f), 0x8010);
  EXPECT_EQ(f32_to_f16(1e-30f), 0x0000);
  EXPECT_EQ(f32_to_f16(from_bits(1)), 0x0000);  // f32 subnormal
}

TEST(Half, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = f16_to_f32(uint16_t(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f)))) << h;
      continue;
    }
    ASSERT_EQ(f32_to_f16(f), h) << "half 0x" << std::hex << h;
  }
}

TEST(Half, EncodingIsNearest) {
  // For random finite f32 in the half range, no neighbour of the result is closer.
  std::mt19937 rng(3);
  std::uniform_int_distribution<uint32_t> bits(0, 0x477fe000u);
  for (int i = 0; i < 200000; ++i) {
    float f = from_bits(bits(rng) | (rng() & 0x80000000u));
    uint16_t h = f32_to_f16(f);
    double err = std::fabs(double(f16_to_f32(h)) - f);
    uint16_t mag = h & 0x7fff;
    for (int delta : {-1, 1}) {
      int nb = int(mag) + delta;
      if (nb < 0 || nb > 0x7bff) continue;
      uint16_t other = uint16_t(nb) | (h & 0x8000);
      double other_err = std::fabs(double(f16_to_f32(other)) - f);
      ASSERT_LE(err, other_err) << "f=" << f;
      if (err == other_err) ASSERT_EQ(h & 1, 0) << "tie not to even, f=" << f;
    }
  }
}

TEST(BFloat16, KnownPatterns) {
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xc040), -3.0f);
  EXPECT_EQ(bf16_to_f32(0x7f80), INFINITY);
  EXPECT_EQ(bf16_to_f32(0x0001), from_bits(0x00010000u));  // subnormal
  EXPECT_TRUE(std::isnan(bf16_to_f32(0x7fc0)));
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(-1.0f), 0xbf80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808000u)), 0x3f80);  // tie -> even (down)
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f818000u)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f808001u)), 0x3f81);  // above the tie
  EXPECT_EQ(f32_to_bf16(from_bits(0x3f807fffu)), 0x3f80);  // below the tie
  EXPECT_EQ(f32_to_bf16(from_bits(0x7f7fffffu)), 0x7f80);  // largest float rounds to inf
  EXPECT_EQ(f32_to_bf16(INFINITY), 0x7f80);
  EXPECT_EQ(f32_to_bf16(-INFINITY), 0xff80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x00008000u)), 0x0000);  // subnormal tie -> even
  EXPECT_EQ(f32_to_bf16(from_bits(0x00018000u)), 0x0002);
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
  uint16_t nan = f32_to_bf16(from_bits(0x7f800001u));  // a nan whose payload sits in the low half
  EXPECT_EQ(nan & 0x7f80, 0x7f80);
  EXPECT_NE(nan & 0x007f, 0);
  EXPECT_EQ(f32_to_bf16(NAN) & 0x7fc0, 0x7fc0);
}

// ---------------------------------------------------------------------------------------
// Hand-built blocks: bytes written from the format description, values worked out from it.

void expect_decodes_to(DType t, const std::vector<uint8_t>& block, const std::vector<float>& expect) {
  int64_t n = int64_t(expect.size());
  ASSERT_EQ(int64_t(block.size()), row_bytes(t, n));
  std::vector<float> got(static_cast<size_t>(n));
  std::vector<std::pair<const char*, KernelISA>> kernels = {{"scalar", KernelISA::Scalar}};
  for (KernelISA isa : simd_isas()) kernels.push_back({isa_name(isa), isa});
  for (auto [name, isa] : kernels) {
    dequantize_row_isa(isa, t, block.data(), got.data(), n);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_FLOAT_EQ(got[size_t(i)], expect[size_t(i)]) << dtype_name(t) << " " << name << " element " << i;
    // And the dot with a one-hot x picks out each element.
    std::vector<float> x(size_t(n), 0.0f);
    for (int64_t i = 0; i < n; i += 37) {
      x[size_t(i)] = 1.0f;
      ASSERT_FLOAT_EQ(dot_row_isa(isa, t, block.data(), x.data(), n), expect[size_t(i)])
          << dtype_name(t) << " " << name << " dot element " << i;
      x[size_t(i)] = 0.0f;
    }
  }
}

void set_u16(std::vector<uint8_t>& b, size_t at, uint16_t v) { std::memcpy(b.data() + at, &v, 2); }

TEST(HandBuilt, F32F16BF16) {
  std::vector<uint8_t> f32(8);
  float v[2] = {1.5f, -0.25f};
  std::memcpy(f32.data(), v, 8);
  expect_decodes_to(DType::F32, f32, {1.5f, -0.25f});
  expect_decodes_to(DType::F16, {0x00, 0x3e, 0x00, 0xb4, 0x01, 0x00}, {1.5f, -0.25f, 0x1p-24f});
  expect_decodes_to(DType::BF16, {0xc0, 0x3f, 0x80, 0xbe}, {1.5f, -0.25f});
}

TEST(HandBuilt, Q8_0) {
  std::vector<uint8_t> b(34);
  set_u16(b, 0, 0x3800);  // d = 0.5
  std::vector<float> expect;
  for (int i = 0; i < 32; ++i) {
    int q = i * 8 - 128 + (i == 0 ? 1 : 0);  // -127 .. 120
    b[2 + i] = uint8_t(int8_t(q));
    expect.push_back(0.5f * q);
  }
  expect_decodes_to(DType::Q8_0, b, expect);
}

TEST(HandBuilt, Q4_0) {
  std::vector<uint8_t> b(18);
  set_u16(b, 0, 0x3800);  // d = 0.5
  for (int j = 0; j < 16; ++j) b[2 + j] = uint8_t(j | ((15 - j) << 4));
  std::vector<float> expect(32);
  for (int j = 0; j < 16; ++j) {
    expect[j] = (j - 8) * 0.5f;              // low nibbles: elements 0..15
    expect[j + 16] = ((15 - j) - 8) * 0.5f;  // high nibbles: elements 16..31
  }
  expect_decodes_to(DType::Q4_0, b, expect);
}

TEST(HandBuilt, Q4_1) {
  std::vector<uint8_t> b(20);
  set_u16(b, 0, 0x3400);  // d = 0.25
  set_u16(b, 2, 0xbc00);  // m = -1
  for (int j = 0; j < 16; ++j) b[4 + j] = uint8_t(j | ((15 - j) << 4));
  std::vector<float> expect(32);
  for (int j = 0; j < 16; ++j) {
    expect[j] = 0.25f * j - 1;
    expect[j + 16] = 0.25f * (15 - j) - 1;
  }
  expect_decodes_to(DType::Q4_1, b, expect);
}

TEST(HandBuilt, Q5_0AndQ5_1) {
  const uint32_t qh = 0x9249'2493u;  // an irregular pattern: bit i decides element i's fifth bit
  for (bool with_min : {false, true}) {
    DType t = with_min ? DType::Q5_1 : DType::Q5_0;
    std::vector<uint8_t> b(with_min ? 24 : 22);
    set_u16(b, 0, 0x3800);                // d = 0.5
    if (with_min) set_u16(b, 2, 0x4000);  // m = 2
    size_t qh_at = with_min ? 4 : 2;
    std::memcpy(b.data() + qh_at, &qh, 4);
    for (int j = 0; j < 16; ++j) b[qh_at + 4 + j] = uint8_t(((j * 5) & 15) | ((15 - j) << 4));
    std::vector<float> expect(32);
    for (int i = 0; i < 32; ++i) {
      int nibble = i < 16 ? (i * 5) & 15 : 15 - (i - 16);
      int q = nibble + 16 * int((qh >> i) & 1);
      expect[size_t(i)] = with_min ? 0.5f * q + 2 : 0.5f * (q - 16);
    }
    expect_decodes_to(t, b, expect);
  }
}

// Scales 1,2,3,4,17,18,19,20 and mins 5,6,7,8,33,34,35,36 packed by hand:
// bytes 0-3 = scale j | (scale j+4 >> 4) << 6; bytes 4-7 the same for mins;
// bytes 8-11 = (scale j+4 & 15) | (min j+4 & 15) << 4.
const uint8_t kPackedScales[12] = {0x41, 0x42, 0x43, 0x44, 0x85, 0x86, 0x87, 0x88, 0x11, 0x22, 0x33, 0x44};
const int kScales[8] = {1, 2, 3, 4, 17, 18, 19, 20};
const int kMins[8] = {5, 6, 7, 8, 33, 34, 35, 36};

TEST(HandBuilt, Q4_K) {
  std::vector<uint8_t> b(144);
  set_u16(b, 0, 0x3c00);  // d = 1
  set_u16(b, 2, 0x3800);  // dmin = 0.5
  std::memcpy(b.data() + 4, kPackedScales, 12);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) b[16 + 32 * c + l] = uint8_t((l & 15) | (((l + c) & 15) << 4));
  std::vector<float> expect(256);
  for (int i = 0; i < 256; ++i) {
    int s = i / 32, l = i % 32, c = s / 2;
    int q = s % 2 == 0 ? (l & 15) : ((l + c) & 15);
    expect[size_t(i)] = 1.0f * kScales[s] * q - 0.5f * kMins[s];
  }
  expect_decodes_to(DType::Q4_K, b, expect);
}

TEST(HandBuilt, Q5_K) {
  std::vector<uint8_t> b(176);
  set_u16(b, 0, 0x3800);  // d = 0.5
  set_u16(b, 2, 0x3400);  // dmin = 0.25
  std::memcpy(b.data() + 4, kPackedScales, 12);
  for (int l = 0; l < 32; ++l) b[16 + l] = uint8_t(l * 37 + 11);  // qh
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) b[48 + 32 * c + l] = uint8_t(((l * 3) & 15) | (((l + 5 * c) & 15) << 4));
  std::vector<float> expect(256);
  for (int i = 0; i < 256; ++i) {
    int s = i / 32, l = i % 32, c = s / 2;
    int nibble = s % 2 == 0 ? (l * 3) & 15 : (l + 5 * c) & 15;
    int fifth = (uint8_t(l * 37 + 11) >> s) & 1;
    expect[size_t(i)] = 0.5f * kScales[s] * (nibble + 16 * fifth) - 0.25f * kMins[s];
  }
  expect_decodes_to(DType::Q5_K, b, expect);
}

TEST(HandBuilt, Q6_K) {
  std::vector<uint8_t> b(210);
  for (int i = 0; i < 128; ++i) b[size_t(i)] = uint8_t(i * 29 + 3);               // ql
  for (int i = 0; i < 64; ++i) b[size_t(128 + i)] = uint8_t(i * 53 + 7);          // qh
  for (int s = 0; s < 16; ++s) b[size_t(192 + s)] = uint8_t(int8_t(s * 9 - 70));  // int8 scales
  set_u16(b, 208, 0x3400);                                                        // d = 0.25, stored last
  std::vector<float> expect(256);
  for (int i = 0; i < 256; ++i) {
    // Element i: half h, position r in the half; r = 32k + l.
    int h = i / 128, r = i % 128, k = r / 32, l = r % 32;
    uint8_t ql = b[size_t(64 * h + 32 * (k % 2) + l)];
    int low = k < 2 ? ql & 15 : ql >> 4;
    int high = (b[size_t(128 + 32 * h + l)] >> (2 * k)) & 3;
    int scale = int8_t(b[size_t(192 + 8 * h + r / 16)]);
    expect[size_t(i)] = 0.25f * scale * ((low | (high << 4)) - 32);
  }
  expect_decodes_to(DType::Q6_K, b, expect);
}

TEST(HandBuilt, BlocksFollowEachOther) {
  // Two Q4_0 blocks: the second block's scale applies to elements 32..63 only.
  std::vector<uint8_t> b(36);
  set_u16(b, 0, 0x3c00);                                     // 1
  set_u16(b, 18, 0x4000);                                    // 2
  for (int j = 0; j < 16; ++j) b[2 + j] = b[20 + j] = 0x9a;  // low 10, high 9
  std::vector<float> expect(64);
  for (int i = 0; i < 64; ++i) expect[size_t(i)] = (i < 32 ? 1.0f : 2.0f) * ((i % 32) < 16 ? 2 : 1);
  expect_decodes_to(DType::Q4_0, b, expect);
}

// ---------------------------------------------------------------------------------------
// Files written by llama.cpp's tools decode to the same weights.

TEST(RealFiles, Q8_0AndF16MatchF32) {
  const std::string dir = testing::shared_path("models/fmt-tiny/");
  RHEAD_REQUIRE_FILE(dir + "fmt-tiny-f32.gguf");
  RHEAD_REQUIRE_FILE(dir + "fmt-tiny-q8_0.gguf");
  RHEAD_REQUIRE_FILE(dir + "fmt-tiny-f16.gguf");
  GGUFFile f32 = GGUFFile::open(dir + "fmt-tiny-f32.gguf");
  int checked_q8 = 0, checked_f16 = 0;
  for (const char* other_name : {"fmt-tiny-q8_0.gguf", "fmt-tiny-f16.gguf"}) {
    GGUFFile other = GGUFFile::open(dir + other_name);
    for (const auto& t : other.tensors) {
      const GGUFTensorInfo* ref = f32.find_tensor(t.name);
      ASSERT_NE(ref, nullptr) << t.name;
      ASSERT_EQ(ref->dims, t.dims) << t.name;
      if (t.type == DType::F32) continue;
      int64_t n = t.dims[0], rows = t.n_elements() / n;
      std::vector<float> got(static_cast<size_t>(n)), want(static_cast<size_t>(n));
      for (int64_t r = 0; r < rows; ++r) {
        dequantize_row(t.type, t.data + r * row_bytes(t.type, n), got.data(), n);
        dequantize_row(DType::F32, ref->data + r * row_bytes(DType::F32, n), want.data(), n);
        for (int64_t b = 0; b < n; b += 32) {
          float amax = 0;
          for (int64_t i = b; i < std::min(n, b + 32); ++i) amax = std::max(amax, std::fabs(want[size_t(i)]));
          // Q8_0: half a step of amax/127, plus up to 127 times the f16 rounding of the step
          // (llama.cpp codes against the f32 step, then stores it as f16); F16: the f32 value
          // rounded to nearest even.
          float tol = t.type == DType::Q8_0 ? amax / 127 * (0.5f + 127 * 0x1p-11f) + 1e-7f : 0.0f;
          for (int64_t i = b; i < std::min(n, b + 32); ++i) {
            float w = want[size_t(i)];
            if (t.type == DType::F16) w = f16_to_f32(f32_to_f16(w));  // subnormals round
            ASSERT_NEAR(got[size_t(i)], w, tol) << other_name << " " << t.name << " row " << r;
          }
        }
      }
      (t.type == DType::Q8_0 ? checked_q8 : checked_f16) += 1;
    }
  }
  EXPECT_GT(checked_q8, 0);
  EXPECT_GT(checked_f16, 0);
}

}  // namespace
}  // namespace rhead
