// What a benchmark ran on, in the header of its output (console and JSON "context"): the CPU
// model and the instruction set each run-time dispatch of ops/ picks on it (ops/cpu_info.h).
#pragma once
#include <benchmark/benchmark.h>

#include "ops/cpu_info.h"

inline void add_cpu_context() {
  benchmark::AddCustomContext("cpu", rhead::cpu_model());
  for (const auto& [key, value] : rhead::kernel_isas()) benchmark::AddCustomContext(key, value);
}
