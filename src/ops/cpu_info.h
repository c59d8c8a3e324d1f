// What a benchmark ran on: the CPU's model name and the instruction set that each run-time
// dispatch of ops/ picks on it, so that figures from different machines are never compared
// unawares.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace rhead {

// The CPU's brand string (cpuid leaves 0x80000002-4), else /proc/cpuinfo's "model name",
// else "unknown".
std::string cpu_model();

// (dispatch, what it runs here) for every kernel family with a run-time choice:
//   isa_row_kernels      dequantize_row / dot_row (prefill's dequantization, f16/bf16 decode)
//   isa_int8_dot         integer row dots (decode of Q8_0, Q4_0, Q4_K, Q6_K weights)
//   isa_quantize_vector  x to int8 before those dots
//   isa_attention        the attention kernels
//   prefill_gemm_*       prefill's matmul of block-quantized / f16 and bf16 weights (panel
//                        GEMMs of ops/gemm_panel.h, else OpenBLAS sgemm on tiles)
//   blas_core            OpenBLAS's own choice for prefill's sgemm (f32 weights)
std::vector<std::pair<std::string, std::string>> kernel_isas();

}  // namespace rhead
