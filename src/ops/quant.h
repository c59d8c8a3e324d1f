// Row kernels for every weight type: dequantize a row, and dot a row with an f32 vector.
// Each has a scalar reference (`*_ref`) and a fast SIMD version picked at run time
// (AVX-512 / AVX2 where the CPU has them). Tests compare the two on random data.
#pragma once
#include <cstdint>

#include "ops/dtype.h"

namespace rhead {

// f16 / bf16 scalar conversions (round-to-nearest-even on the way down).
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);

// dst[0..n) = row as f32. n must be a multiple of the type's block size.
void dequantize_row(DType t, const void* row, float* dst, int64_t n);
void dequantize_row_ref(DType t, const void* row, float* dst, int64_t n);

// sum_i row[i] * x[i] over n elements.
float dot_row(DType t, const void* row, const float* x, int64_t n);
float dot_row_ref(DType t, const void* row, const float* x, int64_t n);

// Quantize n f32 values into a row of type t (used by tests and the bench model writer).
// Supported for every DType.
void quantize_row(DType t, const float* src, void* row, int64_t n);

}  // namespace rhead
