// Dense kernels: RMSNorm, matmul (SIMD dot for decode, BLAS for prefill), RoPE, SwiGLU.
#include "ops/ops.h"

#include <cblas.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/gemm_panel.h"
#include "ops/quant.h"

namespace rhead {

void rmsnorm(const float* x, const float* w, float* y, int64_t n_rows, int64_t n, float eps) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    double ss = 0.0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float inv = 1.0f / std::sqrt(static_cast<float>(ss / n) + eps);
    for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * inv * w[i];
  }
}

namespace {
// Below this many tokens a GEMM does not pay for itself: one pass over the weights with
// SIMD dot products is memory-bound and optimal.
constexpr int64_t kGemmMinTokens = 4;
constexpr int64_t kTileRows = 128;
// Below this many multiply-adds (~30 us on one core) a parallel region costs more than it
// saves, and with more threads than free cores each barrier can cost milliseconds.
constexpr int64_t kMinParallelMacs = int64_t{1} << 18;
// Decode matvecs hand out rows in chunks of about kDecodeChunkBytes rather than one static
// half per thread: when another process shares a core, the thread on the free core takes
// more chunks instead of waiting at the barrier for the slowed one. A chunk must still be
// long enough for the hardware prefetchers to stream it: 1.1B q4_K decode went from 25 to
// 32 tokens/s and q8_0 from 21 to 28 when chunks grew from 36 KB (32 rows) to 128 KB.
constexpr int64_t kDecodeChunkBytes = int64_t{128} << 10;
int64_t decode_chunk_rows(int64_t row_bytes) { return std::max<int64_t>(16, kDecodeChunkBytes / row_bytes); }

void single_threaded_blas() {
  static const bool done = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)done;
}
// Block-quantized weights take the bf16 panel GEMM: their own rounding (Q8_0: 8 bits per
// weight and a shared scale) is coarser than bf16's, so the products lose little. F16 and
// BF16 weights take the f32 panel GEMM: bf16 activations alone move fmt-tiny's logits by 0.1,
// twice the tolerance of its f16 file against f32. F32 weights keep OpenBLAS's sgemm, which
// reads them in place.
enum class PanelGemm { none, bf16, f32 };
PanelGemm panel_gemm(const Weight& w) {
  if (w.type == DType::F32) return PanelGemm::none;
  const bool float_weights = w.type == DType::F16 || w.type == DType::BF16;
  if (!float_weights && w.cols % 2 == 0 && cpu_has_bf16_gemm()) return PanelGemm::bf16;
  return cpu_has_f32_panel_gemm() ? PanelGemm::f32 : PanelGemm::none;
}

// Prefill over panels (see gemm_panel.h): the activations are packed once, then OpenMP
// threads take panels of kPanelRows rows, decode each row to f32 into a panel of their own
// (rounded to bf16 for the bf16 GEMM) and run the panel over all tokens. Unlike tiles for
// sgemm, the activations are not packed again for every panel.
void matmul_panels(const Weight& w, const float* x, int64_t T, float* y, PanelGemm kind) {
  const int64_t rows = w.rows, cols = w.cols;
  const bool bf16 = kind == PanelGemm::bf16;
  std::vector<uint32_t> xb;
  std::vector<float> xf;
  if (bf16) {
    xb.resize(static_cast<size_t>(bf16_activations_size(T, cols)));
    pack_bf16_activations(x, T, cols, xb.data());
  } else {
    xf.resize(static_cast<size_t>(f32_activations_size(T, cols)));
    pack_f32_activations(x, T, cols, xf.data());
  }
  const int64_t n_panels = (rows + kPanelRows - 1) / kPanelRows;
#pragma omp parallel if (rows * cols * T >= kMinParallelMacs)
  {
    // Rows past a short last panel's n_rows stay zero: computed, never stored.
    std::vector<float> panel(static_cast<size_t>(kPanelRows * cols), 0.0f);
    std::vector<uint32_t> panel_b(bf16 ? static_cast<size_t>(kPanelRows * cols / 2) : 0, 0);
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < n_panels; ++i) {
      const int64_t r0 = i * kPanelRows, nr = std::min(kPanelRows, rows - r0);
      for (int64_t r = 0; r < nr; ++r) {
        float* dst = bf16 ? panel.data() : panel.data() + r * cols;
        dequantize_row(w.type, w.row(r0 + r), dst, cols);
        if (bf16) pack_bf16_panel_row(dst, r, cols, panel_b.data());
      }
      if (bf16)
        gemm_bf16_panel(xb.data(), T, cols, panel_b.data(), nr, y + r0, rows);
      else
        gemm_f32_panel(xf.data(), T, cols, panel.data(), nr, y + r0, rows);
    }
  }
}
}  // namespace

void matmul(const Weight& w, const float* x, int64_t T, float* y) {
  const int64_t rows = w.rows, cols = w.cols;
  if (T < kGemmMinTokens && has_int8_dot(w.type)) {
    // Block-quantized weights: quantize x to int8 once, then integer dot products per row
    // (as llama.cpp does; the error this adds is about 0.3% of a dot product).
    std::vector<QuantizedVector> qx(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) quantize_vector(x + t * cols, cols, qx[t]);
    const int64_t stride = row_bytes(w.type, cols), chunk = decode_chunk_rows(stride);
    const int64_t n_chunks = (rows + chunk - 1) / chunk;
#pragma omp parallel for schedule(dynamic, 1) if (rows * cols * T >= kMinParallelMacs)
    for (int64_t c = 0; c < n_chunks; ++c) {
      const int64_t r0 = c * chunk, nr = std::min(chunk, rows - r0);
      for (int64_t t = 0; t < T; ++t) dot_rows_int8(w.type, w.row(r0), stride, nr, qx[t], y + t * rows + r0);
    }
    return;
  }
  if (T < kGemmMinTokens) {
    const int64_t chunk = decode_chunk_rows(row_bytes(w.type, cols));
#pragma omp parallel for schedule(dynamic, chunk) if (rows * cols * T >= kMinParallelMacs)
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t* row = w.row(r);
      for (int64_t t = 0; t < T; ++t) y[t * rows + r] = dot_row(w.type, row, x + t * cols, cols);
    }
    return;
  }
  if (const PanelGemm kind = panel_gemm(w); kind != PanelGemm::none) return matmul_panels(w, x, T, y, kind);
  // Prefill: one thread system only. OpenMP threads each take tiles of rows, dequantize them
  // into their own buffer (F32 rows are used in place) and run a single-threaded sgemm on
  // them; BLAS's own threads stay off, since two thread pools on the same cores starve
  // each other.
  single_threaded_blas();
  const int64_t n_tiles = (rows + kTileRows - 1) / kTileRows;
#pragma omp parallel if (rows * cols * T >= kMinParallelMacs)
  {
    std::vector<float> tile;
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < n_tiles; ++i) {
      const int64_t r0 = i * kTileRows, nr = std::min(kTileRows, rows - r0);
      const float* wt;
      if (w.type == DType::F32) {
        wt = reinterpret_cast<const float*>(w.row(r0));
      } else {
        tile.resize(static_cast<size_t>(nr * cols));
        for (int64_t r = 0; r < nr; ++r) dequantize_row(w.type, w.row(r0 + r), tile.data() + r * cols, cols);
        wt = tile.data();
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(T), static_cast<int>(nr),
                  static_cast<int>(cols), 1.0f, x, static_cast<int>(cols), wt, static_cast<int>(cols), 0.0f, y + r0,
                  static_cast<int>(rows));
    }
  }
}

void matmul_ref(const Weight& w, const float* x, int64_t T, float* y) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < w.rows; ++r) y[t * w.rows + r] = dot_row_ref(w.type, w.row(r), x + t * w.cols, w.cols);
}

void rope(float* x, int64_t T, int n_heads, int hd, int64_t pos0, const float* inv_freq, bool pairing_half) {
  const int half = hd / 2;
  for (int64_t t = 0; t < T; ++t) {
    const double pos = static_cast<double>(pos0 + t);
    for (int i = 0; i < half; ++i) {
      // Angles in double: positions reach tens of thousands and f32 would lose the phase.
      const double angle = pos * inv_freq[i];
      const float c = static_cast<float>(std::cos(angle)), s = static_cast<float>(std::sin(angle));
      for (int h = 0; h < n_heads; ++h) {
        float* v = x + (t * n_heads + h) * hd;
        const int a = pairing_half ? i : 2 * i;
        const int b = pairing_half ? i + half : 2 * i + 1;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
      }
    }
  }
}

void silu_mul(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void gelu_tanh_mul(float* g, const float* u, int64_t n) {
  const float c = 0.7978845608028654f;  // sqrt(2 / pi)
  for (int64_t i = 0; i < n; ++i) {
    const float x = g[i];
    g[i] = 0.5f * x * (1.0f + std::tanh(c * (x + 0.044715f * x * x * x))) * u[i];
  }
}

void add_inplace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace rhead
