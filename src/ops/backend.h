// Backend: where a Session's tensors live and how the ops of its forward pass run. The CPU
// backend is the ops/ kernels on host memory; the CUDA backend (built with RHEAD_CUDA) runs
// the same ops on one GPU. A forward pass is written once against this interface:
//
//   be.rmsnorm(act.x, w.attn_norm, act.xn, T, D, eps);   // xn: [T, D]
//   be.matmul(w.wq, act.xn, T, act.q);                   // q:  [T, n_head, head_dim]
//   ...
//   be.attention(args);                                  // out: [T, n_head, head_dim]
//
// The families' layer forwards (model/blocks.h, model/arch_*.cpp) are written against it;
// a mixture of experts routes on the host (the router logits come back with to_host) and
// runs each chosen expert's mat-muls on the backend.
//
// Memory rule: every `float*` activation argument, and the q / k / v / out pointers of
// AttentionArgs, are backend memory (from alloc). Weights (Weight, norm and bias vectors) are
// the Model's host views: the backend finds its own copy of them (the CUDA backend uploads a
// host tensor the first time an op reads it, and keeps it while any backend uses it). Every
// small per-head array of AttentionArgs (overrides, head_means, head_window, obs_slot) and
// every probe output and head_out_sum are host memory. Tokens, and the row indices and weights
// of gather_rows / add_rows_weighted, are host memory.
//
// Ops run in order on one queue; to_host waits for everything before it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "ops/attention.h"
#include "ops/kv_cache.h"
#include "ops/ops.h"
#include "ops/weight.h"

namespace rhead {

enum class Device { cpu, cuda };

const char* device_name(Device d);
// "cpu" or "cuda"; throws Error naming the value otherwise.
Device parse_device(std::string_view name);
// True when rhead was built with RHEAD_CUDA and a CUDA device can be used now.
bool cuda_available();
// Why CUDA cannot be used ("built without RHEAD_CUDA", "no CUDA device: ..."); empty when it can.
std::string cuda_unavailable_reason();
// cuda when available, else cpu.
Device default_device();
// Peak bytes of GPU memory rhead has allocated in this process (weights, KV caches,
// activations, scratch); 0 without CUDA.
size_t cuda_peak_bytes();

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;

  // ---- memory ----
  virtual void* alloc(size_t bytes) = 0;  // zero-filled backend memory
  virtual void free(void* p) = 0;
  virtual void zero(void* p, size_t bytes) = 0;
  virtual void to_host(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void from_host(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // within backend memory

  // ---- ops (shapes row-major; T = n_tokens) ----
  // x[t, :] = row tokens[t] of table, as f32.                      x: [T, table.cols]
  virtual void embed(const Weight& table, const int32_t* tokens, int64_t n_tokens, float* x) = 0;
  // y[t, :] = x[t, :] / rms(x[t, :]) * w.                           x, y: [n_rows, n]
  virtual void rmsnorm(const float* x, std::span<const float> w, float* y, int64_t n_rows, int64_t n, float eps) = 0;
  // y = x · Wᵀ.                                                     x: [T, w.cols], y: [T, w.rows]
  virtual void matmul(const Weight& w, const float* x, int64_t n_tokens, float* y) = 0;
  // job.y = x · job.wᵀ for every job (weights of one width sharing x: q/k/v, gate/up); the CPU
  // runs them as one parallel pass (ops.h matmul_group). By default one matmul each.
  virtual void matmul_group(std::span<const MatmulJob> jobs, const float* x, int64_t n_tokens) {
    for (const MatmulJob& j : jobs) matmul(*j.w, x, n_tokens, j.y);
  }
  // x[r, :] += b.                                                   x: [n_rows, b.size()]
  virtual void add_bias(float* x, std::span<const float> b, int64_t n_rows) = 0;
  // RoPE in place; token t is at position pos0 + t.                 x: [T, n_heads, head_dim]
  virtual void rope(float* x, int64_t n_tokens, int n_heads, int head_dim, int64_t pos0,
                    std::span<const float> inv_freq, bool pairing_half) = 0;
  // g[i] = silu(g[i]) * u[i].                                       g, u: [n]
  virtual void silu_mul(float* g, const float* u, int64_t n) = 0;
  // g[i] = gelu_tanh(g[i]) * u[i] (GeGLU).                          g, u: [n]
  virtual void gelu_tanh_mul(float* g, const float* u, int64_t n) = 0;
  // x[i] += y[i].                                                   x, y: [n]
  virtual void add(float* x, const float* y, int64_t n) = 0;
  // x[i] *= s.                                                      x: [n]
  virtual void scale(float* x, float s, int64_t n) = 0;
  // x[i] = cap * tanh(x[i] / cap) (logit soft-cap).                 x: [n]
  virtual void softcap(float* x, float cap, int64_t n) = 0;
  // dst[i, :] = src[rows[i], :]; rows: host memory.                 dst: [rows.size(), width]
  virtual void gather_rows(const float* src, std::span<const int32_t> rows, int64_t width, float* dst) = 0;
  // acc[rows[i], :] += weights[i] * src[i, :] in double; rows and weights: host memory.
  //                                                      src: [rows.size(), width], acc: f64
  virtual void add_rows_weighted(double* acc, const float* src, std::span<const int32_t> rows,
                                 std::span<const double> weights, int64_t width) = 0;
  // y[i] = float(acc[i]).                                           acc: f64 [n], y: [n]
  virtual void narrow(const double* acc, float* y, int64_t n) = 0;
  // Writes positions pos0..pos0+T-1 of `layer`.                     k, v: [T, n_kv_head, head_dim]
  virtual void kv_append(const KvCache& kv, int layer, int64_t pos0, int64_t n_tokens, const float* k,
                         const float* v) = 0;
  // The attention contract of ops/attention.h (attention_ref is the oracle), probes included.
  virtual void attention(const AttentionArgs& a) = 0;
};

// A new backend of that device; throws Error when the device cannot be used.
std::unique_ptr<Backend> make_backend(Device device);

}  // namespace rhead
