// Dense numeric kernels of the forward pass. Activations are f32, row-major.
#pragma once
#include <cstdint>
#include <span>

#include "ops/weight.h"

namespace rhead {

// y[t, :] = x[t, :] / rms(x[t, :]) * w, for t in [0, n_rows); each row has n elements.
void rmsnorm(const float* x, const float* w, float* y, int64_t n_rows, int64_t n, float eps);

// y[T, w.rows] = x[T, w.cols] · Wᵀ. Decode-sized T uses per-row SIMD dot products on all
// cores (block-quantized weights: against x quantized to int8 once); larger T goes through a
// panel GEMM (ops/gemm_panel.h; bf16 for block-quantized weights) or, for F32 weights and
// CPUs without AVX-512, BLAS sgemm on tiles of rows.
void matmul(const Weight& w, const float* x, int64_t n_tokens, float* y);
// Several matmuls of one x (a layer's q/k/v, gate/up): y_i = x · w_iᵀ for every job, the same
// results as one matmul each, run as one parallel pass (one thread fork and join, x quantized
// or packed once). Every weight has x's width.
struct MatmulJob {
  const Weight* w;
  float* y;
};
void matmul_group(std::span<const MatmulJob> jobs, const float* x, int64_t n_tokens);
// Scalar reference: y[t, r] = dot_row_ref(row r, x[t]).
void matmul_ref(const Weight& w, const float* x, int64_t n_tokens, float* y);

// RoPE rotation tables: inv_freq[i] for pair i in [0, head_dim/2).
// Rotates x: [n_tokens, n_heads, head_dim] in place; token t sits at position pos0 + t.
// pairing_half: pairs (i, i + head_dim/2) when true, (2i, 2i+1) when false.
void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, int64_t pos0, const float* inv_freq,
          bool pairing_half);

// g[i] = silu(g[i]) * u[i]
void silu_mul(float* g, const float* u, int64_t n);
// g[i] = gelu_tanh(g[i]) * u[i], gelu_tanh(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
void gelu_tanh_mul(float* g, const float* u, int64_t n);

// x[i] += y[i]
void add_inplace(float* x, const float* y, int64_t n);

}  // namespace rhead
