// The float-lane kernels of ops/lanes.h, written once and compiled for 8 (AVX2) and 16
// (AVX-512) lanes: each width against the C library (exp), against std::max_element and the
// scalar f16/bf16 conversions, and the two widths against each other bit for bit.
#include "ops/lanes.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "ops/ops.h"
#include "ops/quant.h"

namespace rhead {
namespace {

const float kNegInf = -std::numeric_limits<float>::infinity();

// Scores as a softmax sees them: spread over [-100, 0], some -inf (masked keys), m = 0.
std::vector<float> scores(int64_t n, unsigned seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> u(-100.0f, 0.0f);
  std::vector<float> p(static_cast<size_t>(n));
  for (float& x : p) x = g() % 7 == 0 ? kNegInf : u(g);
  return p;
}

struct Width {
  const char* name;
  bool available;
  float (*exp_shift_sum)(float*, int64_t, float);
  float (*max_of)(const float*, int64_t);
};

std::vector<Width> widths() {
  return {{"8 lanes", cpu_has_isa(KernelISA::AVX2), lanes8::exp_shift_sum, lanes8::max_of},
          {"16 lanes", cpu_has_isa(KernelISA::AVX512), lanes16::exp_shift_sum, lanes16::max_of}};
}

TEST(Lanes, ExpShiftSumFollowsTheCLibraryAtEveryLength) {
  for (const Width& w : widths()) {
    if (!w.available) continue;
    for (int64_t n = 0; n <= 70; ++n) {
      std::vector<float> p = scores(n, static_cast<unsigned>(n)), ref = p;
      const float m = 0.0f;  // every score is <= 0
      const float sum = w.exp_shift_sum(p.data(), n, m);
      double want = 0;
      for (int64_t j = 0; j < n; ++j) {
        const double e = ref[j] - m < -87.0f ? 0.0 : std::exp(static_cast<double>(ref[j] - m));
        EXPECT_NEAR(p[j], e, 2.5e-7 * e) << w.name << " n=" << n << " j=" << j << " x=" << ref[j] - m;
        want += p[j];
      }
      EXPECT_NEAR(sum, want, 1e-6 * std::max(1.0, want)) << w.name << " n=" << n;
    }
  }
}

TEST(Lanes, TheTwoWidthsGiveTheSameExpBits) {
  if (!cpu_has_isa(KernelISA::AVX512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  for (int64_t n : {1, 7, 8, 15, 16, 17, 64, 1000}) {
    std::vector<float> a = scores(n, 100 + static_cast<unsigned>(n)), b = a;
    const float m = *std::max_element(a.begin(), a.end());
    lanes8::exp_shift_sum(a.data(), n, m);
    lanes16::exp_shift_sum(b.data(), n, m);
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << "n=" << n;
  }
}

TEST(Lanes, MaxOfIsTheLargestElementAndMinusInfinityWhenEmpty) {
  for (const Width& w : widths()) {
    if (!w.available) continue;
    EXPECT_EQ(w.max_of(nullptr, 0), kNegInf) << w.name;
    for (int64_t n = 1; n <= 40; ++n) {
      std::vector<float> p = scores(n, 7 + static_cast<unsigned>(n));
      p[static_cast<size_t>(n - 1)] = 0.5f;  // the largest in the tail lanes
      EXPECT_EQ(w.max_of(p.data(), n), 0.5f) << w.name << " n=" << n;
      p[static_cast<size_t>(n - 1)] = kNegInf;
      EXPECT_EQ(w.max_of(p.data(), n), *std::max_element(p.begin(), p.end())) << w.name << " n=" << n;
    }
  }
}

// The lanes' f16 and bf16 loads of p, stored as floats (vector values cross no function
// boundary outside code compiled for their instruction set).
__attribute__((target("avx2,fma,f16c"))) void loads8(const uint8_t* p, float* f16, float* bf16) {
  lanes8::storeu(f16, lanes8::load_f16(p, 8));
  lanes8::storeu(bf16, lanes8::load_bf16(p, 0));
}
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c"))) void loads16(const uint8_t* p, float* f16,
                                                                                         float* bf16) {
  lanes16::storeu(f16, lanes16::load_f16(p, 0));
  lanes16::storeu(bf16, lanes16::load_bf16(p, 0));
}

TEST(Lanes, HalfPrecisionLoadsEqualTheScalarConversions) {
  std::mt19937 g(3);
  std::vector<uint16_t> h(16);
  for (uint16_t& x : h) x = static_cast<uint16_t>(g() & 0x7bff);  // finite f16 and bf16 values
  const auto* bytes = reinterpret_cast<const uint8_t*>(h.data());
  float f16[16], bf16[16];
  if (cpu_has_isa(KernelISA::AVX2)) {
    loads8(bytes, f16, bf16);
    for (int i = 0; i < 8; ++i) EXPECT_EQ(f16[i], f16_to_f32(h[8 + i])) << i;
    for (int i = 0; i < 8; ++i) EXPECT_EQ(bf16[i], bf16_to_f32(h[i])) << i;
  }
  if (cpu_has_isa(KernelISA::AVX512)) {
    loads16(bytes, f16, bf16);
    for (int i = 0; i < 16; ++i) EXPECT_EQ(f16[i], f16_to_f32(h[i])) << i;
    for (int i = 0; i < 16; ++i) EXPECT_EQ(bf16[i], bf16_to_f32(h[i])) << i;
  }
}

}  // namespace
}  // namespace rhead
