#include "ops/cpu_info.h"

#include <cblas.h>
#include <cpuid.h>

#include <cstring>
#include <fstream>

#include "ops/gemm_panel.h"
#include "ops/quant.h"

namespace rhead {

namespace {
std::string trimmed(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}
}  // namespace

std::string cpu_model() {
  unsigned regs[12] = {};
  if (__get_cpuid_max(0x80000000u, nullptr) >= 0x80000004u) {
    for (unsigned i = 0; i < 3; ++i)
      __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
    char brand[49] = {};
    std::memcpy(brand, regs, 48);
    const std::string name = trimmed(brand);
    if (!name.empty()) return name;
  }
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos)
      return trimmed(line.substr(line.find(':') + 1));
  return "unknown";
}

std::vector<std::pair<std::string, std::string>> kernel_isas() {
  const KernelISA int8 = best_int8_isa();
  return {
      {"isa_row_kernels", isa_name(best_isa())},
      {"isa_int8_dot", int8 == KernelISA::AVX512 ? "avx512-vnni" : isa_name(int8)},
      {"isa_quantize_vector", isa_name(quantize_vector_isa())},
      {"isa_attention", isa_name(best_isa())},
      {"prefill_gemm_quantized", cpu_has_amx_bf16_gemm()    ? "panels, amx-bf16"
                                 : cpu_has_bf16_gemm()      ? "panels, avx512-bf16"
                                 : cpu_has_f32_panel_gemm() ? "panels, avx512 f32"
                                                            : "sgemm tiles"},
      {"prefill_gemm_f16", cpu_has_f32_panel_gemm() ? "panels, avx512 f32" : "sgemm tiles"},
      {"blas_core", std::string("OpenBLAS ") + openblas_get_corename()},
  };
}

}  // namespace rhead
