// Device names, the CPU backend (the ops/ kernels on host memory), and the backend factory.
#include "ops/backend.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "io/error.h"
#include "ops/ops.h"
#include "ops/quant.h"

#ifdef RHEAD_CUDA
#include "cuda/backend_cuda.h"
#endif

namespace rhead {

const char* device_name(Device d) { return d == Device::cuda ? "cuda" : "cpu"; }

Device parse_device(std::string_view name) {
  if (name == "cpu") return Device::cpu;
  if (name == "cuda") return Device::cuda;
  throw Error("unknown device '" + std::string(name) + "' (expected cpu or cuda)");
}

std::string cuda_unavailable_reason() {
#ifdef RHEAD_CUDA
  return cuda_device_problem();
#else
  return "rhead was built without RHEAD_CUDA";
#endif
}

bool cuda_available() { return cuda_unavailable_reason().empty(); }

Device default_device() { return cuda_available() ? Device::cuda : Device::cpu; }

size_t cuda_peak_bytes() {
#ifdef RHEAD_CUDA
  return cuda_peak_allocated_bytes();
#else
  return 0;
#endif
}

namespace {

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::cpu; }

  void* alloc(size_t bytes) override {
    void* p = std::calloc(bytes ? bytes : 1, 1);
    if (!p) throw Error("out of host memory allocating " + std::to_string(bytes) + " bytes");
    return p;
  }
  void free(void* p) override { std::free(p); }
  void zero(void* p, size_t bytes) override { std::memset(p, 0, bytes); }
  void to_host(void* dst, const void* src, size_t bytes) override {
    if (dst != src) std::memcpy(dst, src, bytes);
  }
  void from_host(void* dst, const void* src, size_t bytes) override {
    if (dst != src) std::memcpy(dst, src, bytes);
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    if (dst != src && bytes) std::memcpy(dst, src, bytes);
  }

  void embed(const Weight& table, const int32_t* tokens, int64_t T, float* x) override {
    for (int64_t t = 0; t < T; ++t) dequantize_row(table.type, table.row(tokens[t]), x + t * table.cols, table.cols);
  }
  void rmsnorm(const float* x, std::span<const float> w, float* y, int64_t n_rows, int64_t n, float eps) override {
    rhead::rmsnorm(x, w.data(), y, n_rows, n, eps);
  }
  void matmul(const Weight& w, const float* x, int64_t T, float* y) override { rhead::matmul(w, x, T, y); }
  void matmul_group(std::span<const MatmulJob> jobs, const float* x, int64_t T) override {
    rhead::matmul_group(jobs, x, T);
  }
  void add_bias(float* x, std::span<const float> b, int64_t n_rows) override {
    const int64_t n = static_cast<int64_t>(b.size());
    for (int64_t r = 0; r < n_rows; ++r) add_inplace(x + r * n, b.data(), n);
  }
  void rope(float* x, int64_t T, int n_heads, int head_dim, int64_t pos0, std::span<const float> inv_freq,
            bool pairing_half) override {
    rhead::rope(x, T, n_heads, head_dim, pos0, inv_freq.data(), pairing_half);
  }
  void silu_mul(float* g, const float* u, int64_t n) override { rhead::silu_mul(g, u, n); }
  void gelu_tanh_mul(float* g, const float* u, int64_t n) override { rhead::gelu_tanh_mul(g, u, n); }
  void add(float* x, const float* y, int64_t n) override { add_inplace(x, y, n); }
  void scale(float* x, float s, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) x[i] *= s;
  }
  void softcap(float* x, float cap, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
  }
  void gather_rows(const float* src, std::span<const int32_t> rows, int64_t width, float* dst) override {
    for (size_t i = 0; i < rows.size(); ++i)
      std::copy(src + rows[i] * width, src + (rows[i] + 1) * width, dst + i * width);
  }
  void add_rows_weighted(double* acc, const float* src, std::span<const int32_t> rows, std::span<const double> weights,
                         int64_t width) override {
    for (size_t i = 0; i < rows.size(); ++i) {
      double* dst = acc + rows[i] * width;
      const float* s = src + i * width;
      for (int64_t d = 0; d < width; ++d) dst[d] += weights[i] * s[d];
    }
  }
  void narrow(const double* acc, float* y, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(acc[i]);
  }

  void kv_append(const KvCache& kv, int layer, int64_t pos0, int64_t T, const float* k, const float* v) override {
    const int64_t hd = kv.head_dim;
    for (int64_t t = 0; t < T; ++t)
      for (int g = 0; g < kv.n_kv_head; ++g) {
        uint8_t* kd_row = kv.row(layer, g, pos0 + t, false);  // either layout (ops/kv_cache.h)
        uint8_t* vd_row = kv.row(layer, g, pos0 + t, true);
        const float* ks = k + (t * kv.n_kv_head + g) * hd;
        const float* vs = v + (t * kv.n_kv_head + g) * hd;
        if (kv.type == KvType::q8_0) {
          kv_quantize_row_q8_0(ks, hd, kd_row);
          kv_quantize_row_q8_0(vs, hd, vd_row);
        } else if (kv.type == KvType::f16) {
          auto* kd = reinterpret_cast<uint16_t*>(kd_row);
          auto* vd = reinterpret_cast<uint16_t*>(vd_row);
          for (int64_t i = 0; i < hd; ++i) {
            kd[i] = f32_to_f16(ks[i]);
            vd[i] = f32_to_f16(vs[i]);
          }
        } else {
          std::memcpy(kd_row, ks, hd * 4);
          std::memcpy(vd_row, vs, hd * 4);
        }
      }
  }
  void attention(const AttentionArgs& a) override { rhead::attention(a); }
};

}  // namespace

std::unique_ptr<Backend> make_backend(Device device) {
  if (device == Device::cpu) return std::make_unique<CpuBackend>();
#ifdef RHEAD_CUDA
  const std::string why = cuda_device_problem();
  if (!why.empty()) throw Error("--device cuda: " + why);
  return make_cuda_backend();
#else
  throw Error("--device cuda: rhead was built without RHEAD_CUDA");
#endif
}

}  // namespace rhead
