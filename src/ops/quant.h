// Row kernels for every weight type: dequantize a row, and dot a row with an f32 vector.
// Each has a scalar reference (`*_ref`) and a fast SIMD version picked at run time
// (AVX-512 / AVX2 where the CPU has them). Tests compare the two on random data.
//
// Block layouts (ggml's, little-endian; "f16" is an IEEE half; x = decoded value):
//   Q8_0  34 B / 32: f16 d | i8 qs[32]                      x[i] = d * qs[i]
//   Q4_0  18 B / 32: f16 d | u8 qs[16]                      x[j] = d * (lo(qs[j]) - 8),
//                                                           x[j+16] = d * (hi(qs[j]) - 8)
//   Q4_1  20 B / 32: f16 d | f16 m | u8 qs[16]              x = d * q + m (nibbles as Q4_0)
//   Q5_0  22 B / 32: f16 d | u32 qh | u8 qs[16]             q = nibble | bit i of qh << 4, x = d * (q - 16)
//   Q5_1  24 B / 32: f16 d | f16 m | u32 qh | u8 qs[16]     x = d * q + m
//   Q4_K 144 B / 256: f16 d | f16 dmin | u8 scales[12] | u8 qs[128]
//         8 sub-blocks of 32 with 6-bit scale sc and min m packed in `scales`;
//         x = d * sc * q - dmin * m. qs[32c + l] holds sub-block 2c (low nibble) and 2c+1 (high).
//   Q5_K 176 B / 256: as Q4_K plus u8 qh[32] before qs: bit s of qh[l] is the fifth bit of
//         element l of sub-block s.
//   Q6_K 210 B / 256: u8 ql[128] | u8 qh[64] | i8 scales[16] | f16 d
//         16 sub-blocks of 16; x = d * scales[s] * (q - 32) with 6-bit q (4 bits in ql, 2 in qh).
#pragma once
#include <cstdint>
#include <vector>

#include "io/dtype.h"

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
// y[i] = dot_row(t, rows + i * stride, x, n) for i in [0, n_rows), checked and dispatched once
// for the run of rows (the same bits as dot_row).
void dot_rows(DType t, const void* rows, int64_t stride, int64_t n_rows, const float* x, int64_t n, float* y);

// Quantize n f32 values into a row of type t (used by tests and the bench model writer).
// Supported for every DType.
void quantize_row(DType t, const float* src, void* row, int64_t n);

// Instruction sets the row kernels come in. dequantize_row / dot_row use the best one the
// CPU has; the *_isa forms pick one explicitly so that tests and benchmarks can compare them.
enum class KernelISA { Scalar, AVX2, AVX512 };
const char* isa_name(KernelISA isa);
bool cpu_has_isa(KernelISA isa);  // AVX2 means AVX2+FMA+F16C; AVX512 means F+BW+VL
KernelISA best_isa();
// Error if the CPU lacks `isa`.
void dequantize_row_isa(KernelISA isa, DType t, const void* row, float* dst, int64_t n);
float dot_row_isa(KernelISA isa, DType t, const void* row, const float* x, int64_t n);

// ---- Integer dot products against an int8-quantized x ----
// For a matrix-vector product, x is quantized once (blocks of 32, x[i] ~= d[i / 32] * q[i],
// q in [-127, 127]) and every row is dotted with it using 8-bit integer multiplies
// (AVX-512 VNNI / AVX2), as llama.cpp does. Faster than dot_row for the block types, at the
// cost of x's quantization error (about 0.3% relative).
struct QuantizedVector {
  int64_t n = 0;
  std::vector<int8_t> q;       // [n]
  std::vector<float> d;        // [n / 32] scale per block of 32
  std::vector<int32_t> sum16;  // [n / 16] sum of q over each 16 elements (for offset terms)
};
// n must be a multiple of 32. A NaN element becomes -127; the vector version (AVX2) gives
// the same bytes as the scalar reference.
void quantize_vector(const float* x, int64_t n, QuantizedVector& out);
void quantize_vector_ref(const float* x, int64_t n, QuantizedVector& out);
// Types with integer kernels: Q8_0, Q4_0, Q4_K, Q6_K.
bool has_int8_dot(DType t);
// sum_i row[i] * x.d[i / 32] * x.q[i]; n = x.n. Error for a type without an integer kernel.
float dot_row_int8(DType t, const void* row, const QuantizedVector& x);
float dot_row_int8_ref(DType t, const void* row, const QuantizedVector& x);
// y[i] = dot_row_int8(t, rows + i * stride, x) for i in [0, n_rows): one dispatch for a run
// of rows `stride` bytes apart (the rows of a matrix chunk).
void dot_rows_int8(DType t, const void* rows, int64_t stride, int64_t n_rows, const QuantizedVector& x, float* y);
// AVX512 here means AVX-512 VNNI (F+BW+VL+VNNI).
bool cpu_has_int8_isa(KernelISA isa);
// What dot_row_int8 / dot_rows_int8 and quantize_vector run here (see ops/cpu_info.h).
KernelISA best_int8_isa();
KernelISA quantize_vector_isa();
float dot_row_int8_isa(KernelISA isa, DType t, const void* row, const QuantizedVector& x);

// f16 weights against x rounded to f16 once (as llama.cpp's f16 dots do): each element of x to
// 11 significant bits, both operands widened exactly in the kernel, f32 sums. The decode
// matvecs of f16 weights use it (ops.cpp): the same weight bytes, half the bytes of x.
// round_x_to_f16 writes h (n values) and returns true when x fits f16 (every |x| below 65520,
// which rounds to a finite half; no NaN), n is a multiple of 16 and the CPU has AVX2 + F16C;
// else false, and the caller keeps f32 x. Its rounding is f32_to_f16's, bit for bit.
bool round_x_to_f16(const float* x, int64_t n, std::vector<uint16_t>& h);
// y[i] = sum_j f16 row i [j] * f16 h[j] for the n_rows rows `stride` bytes apart (after
// round_x_to_f16 said yes), and its scalar twin (double sums, one row).
void dot_rows_f16_f16(const void* rows, int64_t stride, int64_t n_rows, const uint16_t* h, int64_t n, float* y);
double dot_row_f16_f16_ref(const void* row, const uint16_t* h, int64_t n);

namespace detail {
// Integer kernels take QuantizedVector's arrays as pointers: q [n], d [n/32], sum16 [n/16].
void dot_rows_int8_avx2(DType t, const void* rows, int64_t stride, int64_t n_rows, const int8_t* q, const float* d,
                        const int32_t* sum16, int64_t n, float* y);
void dot_rows_int8_vnni(DType t, const void* rows, int64_t stride, int64_t n_rows, const int8_t* q, const float* d,
                        const int32_t* sum16, int64_t n, float* y);
void quantize_vector_avx2(const float* x, int64_t n, int8_t* q, float* d, int32_t* sum16);
// Per-ISA kernels (quant_avx2.cpp, quant_avx512.cpp). Callers check the CPU first.
void dequantize_row_avx2(DType t, const void* row, float* dst, int64_t n);
float dot_row_avx2(DType t, const void* row, const float* x, int64_t n);
void dequantize_row_avx512(DType t, const void* row, float* dst, int64_t n);
float dot_row_avx512(DType t, const void* row, const float* x, int64_t n);
}  // namespace detail

}  // namespace rhead
