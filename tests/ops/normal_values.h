// Seeded normal random values for the kernel tests of this folder.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace rhead::testing_ops {

inline std::vector<float> normal_values(int64_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace rhead::testing_ops
