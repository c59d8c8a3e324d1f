// ops/cpu_info against the kernel's own account of the CPU (/proc/cpuinfo), which is read
// independently of the cpuid and __builtin_cpu_supports calls the dispatch uses.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "ops/cpu_info.h"

using namespace rhead;

namespace {
// The first processor's "model name" and "flags" lines of /proc/cpuinfo (empty if absent).
std::map<std::string, std::string> proc_cpuinfo() {
  std::map<std::string, std::string> fields;
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    key.erase(key.find_last_not_of(" \t") + 1);
    const size_t start = line.find_first_not_of(' ', colon + 1);
    fields[key] = start == std::string::npos ? "" : line.substr(start);
  }
  return fields;
}

std::set<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::set<std::string> out;
  for (std::string w; in >> w;) out.insert(w);
  return out;
}
}  // namespace

TEST(CpuInfo, ModelMatchesProcCpuinfo) {
  const auto info = proc_cpuinfo();
  if (!info.count("model name")) GTEST_SKIP() << "no model name in /proc/cpuinfo";
  // /proc/cpuinfo prints the same cpuid brand string, trimmed.
  EXPECT_EQ(cpu_model(), info.at("model name"));
}

TEST(CpuInfo, DispatchMatchesProcFlags) {
  const auto info = proc_cpuinfo();
  if (!info.count("flags")) GTEST_SKIP() << "no flags in /proc/cpuinfo";
  const std::set<std::string> f = words(info.at("flags"));
  const bool avx2 = f.count("avx2") && f.count("fma") && f.count("f16c");
  const bool avx512 = avx2 && f.count("avx512f") && f.count("avx512bw") && f.count("avx512vl");
  const bool vnni = avx512 && f.count("avx512_vnni");
  std::map<std::string, std::string> got;
  for (const auto& [k, v] : kernel_isas()) got[k] = v;
  const std::string wide = avx512 ? "avx512" : avx2 ? "avx2" : "scalar";
  EXPECT_EQ(got.at("isa_row_kernels"), wide);
  EXPECT_EQ(got.at("isa_attention"), wide);
  EXPECT_EQ(got.at("isa_int8_dot"), vnni ? "avx512-vnni" : avx2 ? "avx2" : "scalar");
  EXPECT_EQ(got.at("isa_quantize_vector"), avx2 ? "avx2" : "scalar");
  // The bf16 panel GEMM needs AVX-512 BF16 (cpuid leaf 7.1; /proc's flag "avx512_bf16").
  const bool bf16 = avx512 && f.count("avx512_bf16");
  EXPECT_EQ(got.at("prefill_gemm_quantized"), bf16     ? "panels, avx512-bf16"
                                              : avx512 ? "panels, avx512 f32"
                                                       : "sgemm tiles");
  EXPECT_EQ(got.at("prefill_gemm_f16"), avx512 ? "panels, avx512 f32" : "sgemm tiles");
  EXPECT_EQ(got.at("blas_core").rfind("OpenBLAS ", 0), 0u);
  EXPECT_GT(got.at("blas_core").size(), std::string("OpenBLAS ").size());
}
