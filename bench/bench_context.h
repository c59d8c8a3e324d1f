// What a benchmark ran on, in the header of its output (console and JSON "context"): the CPU
// model and the instruction set each run-time dispatch of ops/ picks on it (ops/cpu_info.h).
#pragma once
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "ops/cpu_info.h"

// n token ids drawn uniformly from [3, vocab), the same for every run (seed 42).
inline std::vector<int32_t> bench_random_tokens(int64_t n, int vocab) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<int32_t> dist(3, vocab - 1);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = dist(rng);
  return t;
}

inline void add_cpu_context() {
  benchmark::AddCustomContext("cpu", rhead::cpu_model());
  for (const auto& [key, value] : rhead::kernel_isas()) benchmark::AddCustomContext(key, value);
}
