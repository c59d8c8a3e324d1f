// Dense kernels: RMSNorm, matmul (SIMD dots for decode, panel GEMMs or BLAS for prefill), RoPE,
// SwiGLU.
#include "ops/ops.h"

#include <cblas.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/gemm_panel.h"
#include "io/error.h"
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

int64_t total_macs(std::span<const MatmulJob> jobs, int64_t T) {
  int64_t macs = 0;
  for (const MatmulJob& j : jobs) macs += j.w->rows * j.w->cols * T;
  return macs;
}

// Decode (T < kGemmMinTokens): rows in chunks of about kDecodeChunkBytes from every job, one
// parallel loop over all of them. Block-quantized weights dot int8 rows against x quantized
// to int8 once (as llama.cpp does; the error this adds is about 0.3% of a dot product); f16
// weights dot f16 x, rounded once (round_x_to_f16: 2^-11 relative per element; x's loads
// halve, and f16 decode runs about 1.15x faster, docs/cpu_results.md), unless x does not fit
// f16; the others f32 rows against x.
void matvec_group(std::span<const MatmulJob> jobs, const float* x, int64_t T) {
  const int64_t cols = jobs[0].w->cols;
  struct Chunk {
    const MatmulJob* job;
    int64_t r0, nr;
  };
  std::vector<Chunk> chunks;
  bool any_int8 = false;
  for (const MatmulJob& j : jobs) {
    any_int8 = any_int8 || has_int8_dot(j.w->type);
    const int64_t chunk = decode_chunk_rows(row_bytes(j.w->type, cols));
    for (int64_t r0 = 0; r0 < j.w->rows; r0 += chunk) chunks.push_back({&j, r0, std::min(chunk, j.w->rows - r0)});
  }
  std::vector<QuantizedVector> qx(any_int8 ? static_cast<size_t>(T) : 0);
  for (size_t t = 0; t < qx.size(); ++t) quantize_vector(x + static_cast<int64_t>(t) * cols, cols, qx[t]);
  std::vector<uint16_t> xh;  // x as f16 for the f16 weights, where x16
  const bool x16 = cols % 16 == 0 &&
                   std::any_of(jobs.begin(), jobs.end(), [](const MatmulJob& j) { return j.w->type == DType::F16; }) &&
                   round_x_to_f16(x, T * cols, xh);
  const int64_t n_chunks = static_cast<int64_t>(chunks.size());
#pragma omp parallel for schedule(dynamic, 1) if (total_macs(jobs, T) >= kMinParallelMacs)
  for (int64_t c = 0; c < n_chunks; ++c) {
    const Weight& w = *chunks[c].job->w;
    const int64_t r0 = chunks[c].r0, nr = chunks[c].nr, stride = row_bytes(w.type, cols);
    float* y = chunks[c].job->y;
    for (int64_t t = 0; t < T; ++t) {
      if (has_int8_dot(w.type))
        dot_rows_int8(w.type, w.row(r0), stride, nr, qx[t], y + t * w.rows + r0);
      else if (w.type == DType::F16 && x16)
        dot_rows_f16_f16(w.row(r0), stride, nr, xh.data() + t * cols, cols, y + t * w.rows + r0);
      else
        dot_rows(w.type, w.row(r0), stride, nr, x + t * cols, cols, y + t * w.rows + r0);
    }
  }
}

// Prefill over panels (see gemm_panel.h): the activations are packed once for all jobs, then
// OpenMP threads take panels of kPanelRows rows of any job, decode each row to f32 into a
// panel of their own (rounded to bf16 for the bf16 GEMM) and run the panel over all tokens.
// Unlike tiles for sgemm, the activations are not packed again for every panel.
void matmul_panels(std::span<const MatmulJob> jobs, std::span<const PanelGemm> kinds, const float* x, int64_t T) {
  const int64_t cols = jobs[0].w->cols;
  std::vector<uint32_t> xb;
  std::vector<float> xf;
  struct Panel {
    const MatmulJob* job;
    bool bf16;
    int64_t r0;
  };
  std::vector<Panel> panels;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (kinds[i] == PanelGemm::none) continue;
    const bool bf16 = kinds[i] == PanelGemm::bf16;
    if (bf16 && xb.empty()) xb.resize(static_cast<size_t>(bf16_activations_size(T, cols)));
    if (!bf16 && xf.empty()) xf.resize(static_cast<size_t>(f32_activations_size(T, cols)));
    for (int64_t r0 = 0; r0 < jobs[i].w->rows; r0 += kPanelRows) panels.push_back({&jobs[i], bf16, r0});
  }
  const int64_t n_panels = static_cast<int64_t>(panels.size());
  const int64_t n_blocks = (T + kPanelTokens - 1) / kPanelTokens;
#pragma omp parallel if (total_macs(jobs, T) >= kMinParallelMacs)
  {
    // The activations, a block of kPanelTokens tokens at a time (the packed layout is
    // [block][...]), by all threads; the loop's barrier ends it before any panel starts.
#pragma omp for schedule(static)
    for (int64_t b = 0; b < n_blocks; ++b) {
      const float* xt = x + b * kPanelTokens * cols;
      const int64_t nt = std::min(kPanelTokens, T - b * kPanelTokens);
      if (!xb.empty()) pack_bf16_activations(xt, nt, cols, xb.data() + b * (cols / 2) * kPanelTokens);
      if (!xf.empty()) pack_f32_activations(xt, nt, cols, xf.data() + b * cols * kPanelTokens);
    }
    // Rows past a short last panel's n_rows are computed, never stored: zero keeps them finite.
    std::vector<float> panel(static_cast<size_t>(kPanelRows * cols));
    std::vector<uint32_t> panel_b(xb.empty() ? 0 : static_cast<size_t>(kPanelRows * cols / 2));
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < n_panels; ++i) {
      const Panel& p = panels[static_cast<size_t>(i)];
      const Weight& w = *p.job->w;
      const int64_t nr = std::min(kPanelRows, w.rows - p.r0);
      for (int64_t r = 0; r < nr; ++r) {
        float* dst = p.bf16 ? panel.data() : panel.data() + r * cols;
        dequantize_row(w.type, w.row(p.r0 + r), dst, cols);
        if (p.bf16) pack_bf16_panel_row(dst, r, cols, panel_b.data());
      }
      if (p.bf16) {
        if (nr < kPanelRows) std::fill(panel_b.begin() + nr * (cols / 2), panel_b.end(), 0u);
        gemm_bf16_panel(xb.data(), T, cols, panel_b.data(), nr, p.job->y + p.r0, w.rows);
      } else {
        if (nr < kPanelRows) std::fill(panel.begin() + nr * cols, panel.end(), 0.0f);
        gemm_f32_panel(xf.data(), T, cols, panel.data(), nr, p.job->y + p.r0, w.rows);
      }
    }
  }
}

// Prefill of the weights without a panel GEMM (F32, or a CPU without AVX-512): one thread
// system only. OpenMP threads each take tiles of rows, dequantize them into their own buffer
// (F32 rows are used in place) and run a single-threaded sgemm on them; BLAS's own threads
// stay off, since two thread pools on the same cores starve each other.
void matmul_sgemm(const Weight& w, const float* x, int64_t T, float* y) {
  const int64_t rows = w.rows, cols = w.cols;
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
}  // namespace

void matmul_group(std::span<const MatmulJob> jobs, const float* x, int64_t T) {
  if (jobs.empty()) return;
  for (const MatmulJob& j : jobs)
    if (j.w->cols != jobs[0].w->cols) fail("matmul_group", "weights of different widths share one x");
  if (T < kGemmMinTokens) return matvec_group(jobs, x, T);
  std::vector<PanelGemm> kinds;
  bool any_panel = false;
  for (const MatmulJob& j : jobs) {
    kinds.push_back(panel_gemm(*j.w));
    any_panel = any_panel || kinds.back() != PanelGemm::none;
    if (kinds.back() == PanelGemm::none) matmul_sgemm(*j.w, x, T, j.y);
  }
  if (any_panel) matmul_panels(jobs, kinds, x, T);
}

void matmul(const Weight& w, const float* x, int64_t T, float* y) {
  const MatmulJob job{&w, y};
  matmul_group({&job, 1}, x, T);
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
