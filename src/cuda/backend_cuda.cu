// The CUDA backend: device memory, the weight store (host weights uploaded once, in their
// stored type), and the dense ops of the forward pass. Matmuls:
//   - decode (fewer than kGemmMinTokens tokens): one warp per weight row, decoding 32
//     elements at a time in the stored type (F32, F16, BF16, Q8_0, Q4_K, Q6_K) and dotting them
//     with x in f32 — memory-bound, one pass over the weights;
//   - prefill: cuBLAS tensor-core GEMMs. F16 and BF16 weights are used as stored (x is rounded
//     to the weight's type, f32 accumulation); block-quantized weights are first expanded to
//     f16 in a scratch buffer; F32 weights go through plain f32 sgemm.
// Weight types without a GPU decoder (Q4_0, Q4_1, Q5_0, Q5_1, Q5_K) are expanded to F16 once,
// when they are uploaded.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <atomic>
#include <type_traits>
#include <cmath>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cuda/attention_cuda.cuh"
#include "cuda/backend_cuda.h"
#include "cuda/cublas_dl.cuh"
#include "cuda/cuda_common.cuh"
#include "ops/quant.h"

namespace rhead {
namespace cuda {

namespace {
std::atomic<size_t> g_bytes_in_use{0}, g_peak_bytes{0};
std::mutex g_alloc_mutex;
std::unordered_map<void*, size_t> g_alloc_sizes;
}  // namespace

void* device_alloc(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
  if (e != cudaSuccess)
    throw Error("out of GPU memory allocating " + std::to_string(bytes >> 20) + " MiB (" + cudaGetErrorString(e) + ")");
  std::lock_guard<std::mutex> lock(g_alloc_mutex);
  g_alloc_sizes[p] = bytes;
  const size_t now = g_bytes_in_use += bytes;
  if (now > g_peak_bytes) g_peak_bytes = now;
  return p;
}

void device_free(void* p) {
  if (!p) return;
  {
    std::lock_guard<std::mutex> lock(g_alloc_mutex);
    auto it = g_alloc_sizes.find(p);
    if (it != g_alloc_sizes.end()) {
      g_bytes_in_use -= it->second;
      g_alloc_sizes.erase(it);
    }
  }
  cudaFree(p);
}

namespace {

constexpr int64_t kGemmMinTokens = 8;

// ---- element decoding (layouts in ops/quant.h) ----

__device__ __forceinline__ float f16_bits(const uint8_t* p) {
  const uint16_t bits = static_cast<uint16_t>(p[0] | (p[1] << 8));
  return __half2float(__ushort_as_half(bits));
}

__device__ __forceinline__ void k_scale_min(int j, const uint8_t* s, int& sc, int& mn) {
  if (j < 4) {
    sc = s[j] & 63;
    mn = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
    mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

__device__ __forceinline__ float2 to_float2(__half2 h) { return __half22float2(h); }
__device__ __forceinline__ float2 to_float2(__nv_bfloat162 h) { return __bfloat1622float2(h); }

// The 32 elements [32 g, 32 g + 32) of an f16 (Pair = __half2) or bf16 row: four 16-byte loads.
template <class Pair>
__device__ __forceinline__ void decode32_pairs(const uint8_t* row, int64_t g, float* y) {
  const uint4* p = reinterpret_cast<const uint4*>(row) + g * 4;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    uint4 v = p[i];
    const Pair* h = reinterpret_cast<const Pair*>(&v);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float2 f = to_float2(h[e]);
      y[8 * i + 2 * e] = f.x;
      y[8 * i + 2 * e + 1] = f.y;
    }
  }
}

// The 32 elements [32 g, 32 g + 32) of a row of type TYPE.
template <DType TYPE>
__device__ __forceinline__ void decode32(const uint8_t* row, int64_t g, float* y) {
  switch (TYPE) {
    case DType::F32: {
      const float4* p = reinterpret_cast<const float4*>(row) + g * 8;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float4 v = p[i];
        y[4 * i] = v.x;
        y[4 * i + 1] = v.y;
        y[4 * i + 2] = v.z;
        y[4 * i + 3] = v.w;
      }
      return;
    }
    case DType::F16: return decode32_pairs<__half2>(row, g, y);
    case DType::BF16: return decode32_pairs<__nv_bfloat162>(row, g, y);
    case DType::Q8_0: {
      const uint8_t* b = row + g * 34;
      const float d = f16_bits(b);
      const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
#pragma unroll
      for (int i = 0; i < 32; ++i) y[i] = d * qs[i];
      return;
    }
    case DType::Q4_K: {
      const uint8_t* b = row + (g / 8) * 144;
      const int sb = static_cast<int>(g % 8), c = sb / 2;
      const float d = f16_bits(b), dmin = f16_bits(b + 2);
      int sc, mn;
      k_scale_min(sb, b + 4, sc, mn);
      const float dd = d * sc, mm = dmin * mn;
      const uint4* qp = reinterpret_cast<const uint4*>(b + 16 + 32 * c);
      uint4 q2[2] = {qp[0], qp[1]};
      const uint8_t* qs = reinterpret_cast<const uint8_t*>(q2);
      const int shift = (sb % 2) * 4;
#pragma unroll
      for (int l = 0; l < 32; ++l) y[l] = dd * ((qs[l] >> shift) & 0xf) - mm;
      return;
    }
    case DType::Q6_K: {
      const uint8_t* b = row + (g / 8) * 210;
      const int s32 = static_cast<int>(g % 8), h = s32 / 4, quarter = s32 % 4;
      const uint8_t* ql = b + 64 * h + (quarter & 1 ? 32 : 0);
      const uint8_t* qh = b + 128 + 32 * h;
      const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192) + 8 * h + 2 * quarter;
      const float d = f16_bits(b + 208);
      const int lshift = quarter >= 2 ? 4 : 0, hshift = 2 * quarter;
#pragma unroll
      for (int l = 0; l < 32; ++l) {
        const int q = (((ql[l] >> lshift) & 0xf) | (((qh[l] >> hshift) & 3) << 4)) - 32;
        y[l] = d * scales[l / 16] * q;
      }
      return;
    }
    default: return;
  }
}

__device__ __forceinline__ float warp_sum(float x) {
  for (int off = 16; off > 0; off >>= 1) x += __shfl_xor_sync(0xffffffffu, x, off);
  return x;
}

// y[t, r] = row r · x[t] for T < kGemmMinTokens tokens: one warp per row, 4 rows per block.
template <DType TYPE>
__global__ void matvec_kernel(const uint8_t* w, int64_t row_bytes, int64_t rows, int64_t cols, const float* x,
                              int64_t T, float* y) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * 4 + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const uint8_t* row = w + r * row_bytes;
  const int64_t groups = cols / 32;
  float acc[kGemmMinTokens];
#pragma unroll
  for (int t = 0; t < kGemmMinTokens; ++t) acc[t] = 0.0f;
  for (int64_t g = lane; g < groups; g += 32) {
    float wv[32];
    decode32<TYPE>(row, g, wv);
#pragma unroll
    for (int t = 0; t < kGemmMinTokens; ++t) {
      if (t >= T) break;
      const float4* xp = reinterpret_cast<const float4*>(x + t * cols + g * 32);
      float s = 0.0f;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float4 v = xp[i];
        s += wv[4 * i] * v.x + wv[4 * i + 1] * v.y + wv[4 * i + 2] * v.z + wv[4 * i + 3] * v.w;
      }
      acc[t] += s;
    }
  }
#pragma unroll
  for (int t = 0; t < kGemmMinTokens; ++t) {
    if (t >= T) break;
    const float s = warp_sum(acc[t]);
    if (lane == 0) y[t * rows + r] = s;
  }
}

// dst[r, :] = row r of w as f16 (one thread per 32 elements).
template <DType TYPE>
__global__ void dequant_f16_kernel(const uint8_t* w, int64_t row_bytes, int64_t rows, int64_t cols, __half* dst) {
  const int64_t groups = cols / 32;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * groups) return;
  const int64_t r = i / groups, g = i % groups;
  float v[32];
  decode32<TYPE>(w + r * row_bytes, g, v);
  __half* o = dst + r * cols + g * 32;
#pragma unroll
  for (int e = 0; e < 32; ++e) o[e] = __float2half_rn(v[e]);
}

// x[t, :] = row tokens[t] of the table, as f32 (one thread per 32 elements).
template <DType TYPE>
__global__ void embed_kernel(const uint8_t* table, int64_t row_bytes, int64_t cols, const int32_t* tokens, int64_t T,
                             float* x) {
  const int64_t groups = cols / 32;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= T * groups) return;
  const int64_t t = i / groups, g = i % groups;
  float v[32];
  decode32<TYPE>(table + tokens[t] * row_bytes, g, v);
#pragma unroll
  for (int e = 0; e < 32; ++e) x[t * cols + g * 32 + e] = v[e];
}

// Embedding rows of an F32 table of any width (one thread per element).
__global__ void embed_f32_kernel(const float* table, int64_t cols, const int32_t* tokens, int64_t T, float* x) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= T * cols) return;
  x[i] = table[tokens[i / cols] * cols + i % cols];
}

template <typename T>
__global__ void convert_kernel(const float* x, T* y, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  if constexpr (std::is_same_v<T, __half>)
    y[i] = __float2half_rn(x[i]);
  else
    y[i] = __float2bfloat16_rn(x[i]);
}

// One block per row; the sum of squares in double, as on the CPU.
__global__ void rmsnorm_kernel(const float* x, const float* w, float* y, int64_t n, float eps) {
  const float* xr = x + blockIdx.x * n;
  float* yr = y + blockIdx.x * n;
  double ss = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) ss += static_cast<double>(xr[i]) * xr[i];
  __shared__ double part[32];
  for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    double v = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : 0.0;
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    if (threadIdx.x == 0) part[0] = v;
  }
  __syncthreads();
  const float inv = 1.0f / sqrtf(static_cast<float>(part[0] / n) + eps);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] * inv * w[i];
}

__global__ void add_bias_kernel(float* x, const float* b, int64_t n, int64_t total) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < total) x[i] += b[i % n];
}

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] += y[i];
}

__global__ void silu_mul_kernel(float* g, const float* u, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

// gelu_tanh(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as on the CPU.
__global__ void gelu_tanh_mul_kernel(float* g, const float* u, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float x = g[i];
  g[i] = 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x))) * u[i];
}

__global__ void scale_kernel(float* x, float s, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= s;
}

__global__ void softcap_kernel(float* x, float cap, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] = cap * tanhf(x[i] / cap);
}

// dst[i, :] = src[rows[i], :]; one thread per element.
__global__ void gather_rows_kernel(const float* src, const int32_t* rows, int64_t n_rows, int64_t width, float* dst) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_rows * width) return;
  dst[i] = src[static_cast<int64_t>(rows[i / width]) * width + i % width];
}

// acc[rows[i], :] += weights[i] * src[i, :] in double, rounded like the CPU's multiply then
// add. The rows of one call are distinct
// (a token picks an expert once), so no two threads write one element.
__global__ void add_rows_weighted_kernel(double* acc, const float* src, const int32_t* rows, const double* weights,
                                         int64_t n_rows, int64_t width) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n_rows * width) return;
  const int64_t r = i / width;
  double& a = acc[static_cast<int64_t>(rows[r]) * width + i % width];
  a = __dadd_rn(a, __dmul_rn(weights[r], static_cast<double>(src[i])));  // no FMA: as on the CPU
}

__global__ void narrow_kernel(const double* acc, float* y, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) y[i] = static_cast<float>(acc[i]);
}

// One thread per (token, head, pair); angles in double, as on the CPU.
__global__ void rope_kernel(float* x, int64_t T, int n_heads, int hd, int64_t pos0, const float* inv_freq,
                            bool half_pairs) {
  const int half = hd / 2;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= T * n_heads * half) return;
  const int p = static_cast<int>(i % half);
  const int64_t th = i / half;
  const int64_t t = th / n_heads;
  const double angle = static_cast<double>(pos0 + t) * static_cast<double>(inv_freq[p]);
  const float c = static_cast<float>(cos(angle)), s = static_cast<float>(sin(angle));
  float* v = x + th * hd;
  const int a = half_pairs ? p : 2 * p, b = half_pairs ? p + half : 2 * p + 1;
  const float x0 = v[a], x1 = v[b];
  v[a] = x0 * c - x1 * s;
  v[b] = x0 * s + x1 * c;
}

// k, v: [T, n_kv, hd] f32 -> cache [n_kv][capacity][hd] at positions pos0...
template <typename KT>
__global__ void kv_append_kernel(const float* k, const float* v, void* kc, void* vc, const KvHeadRows* heads, int64_t T,
                                 int n_kv, int hd, int64_t capacity, int64_t pos0) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= T * n_kv * hd) return;
  const int d = static_cast<int>(i % hd);
  const int64_t tg = i / hd;
  const int g = static_cast<int>(tg % n_kv);
  const int64_t t = tg / n_kv;
  const DeviceKvHead<KT> head = device_kv_head<KT>(kc, vc, capacity * hd, heads, g);
  const int64_t dst = head.row(pos0 + t) * hd + d;
  if constexpr (std::is_same_v<KT, __half>) {
    head.k[dst] = __float2half_rn(k[i]);
    head.v[dst] = __float2half_rn(v[i]);
  } else {
    head.k[dst] = k[i];
    head.v[dst] = v[i];
  }
}

// Calls f(std::integral_constant<DType, T>{}) for a type with a GPU decoder.
template <class F>
void with_type(DType t, F&& f) {
  switch (t) {
    case DType::F32: return f(std::integral_constant<DType, DType::F32>{});
    case DType::F16: return f(std::integral_constant<DType, DType::F16>{});
    case DType::BF16: return f(std::integral_constant<DType, DType::BF16>{});
    case DType::Q8_0: return f(std::integral_constant<DType, DType::Q8_0>{});
    case DType::Q4_K: return f(std::integral_constant<DType, DType::Q4_K>{});
    case DType::Q6_K: return f(std::integral_constant<DType, DType::Q6_K>{});
    default: throw Error(std::string("CUDA: no kernel for weight type ") + dtype_name(t));
  }
}

unsigned blocks_for(int64_t n, int threads = 256) { return static_cast<unsigned>((n + threads - 1) / threads); }

bool has_gpu_decoder(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::Q8_0 || t == DType::Q4_K ||
         t == DType::Q6_K;
}

// ---- the weight store: one device copy per host tensor, shared by every backend ----

struct DeviceTensor {
  void* data = nullptr;
  DType type = DType::F32;
  int64_t row_bytes = 0;
  size_t bytes = 0;
  int users = 0;
};

std::mutex g_store_mutex;
std::unordered_map<const void*, DeviceTensor> g_store;

const DeviceTensor& acquire(const void* host, DType type, int64_t rows, int64_t cols,
                            std::unordered_set<const void*>& held) {
  std::lock_guard<std::mutex> lock(g_store_mutex);
  auto it = g_store.find(host);
  if (it != g_store.end()) {
    if (held.insert(host).second) ++it->second.users;
    return it->second;
  }
  DeviceTensor d;
  if (has_gpu_decoder(type) && (cols % 32 == 0 || type == DType::F32)) {
    d.type = type;
    d.row_bytes = row_bytes(type, cols);
    d.bytes = static_cast<size_t>(rows) * d.row_bytes;
    d.data = device_alloc(d.bytes);
    RHEAD_CUDA_CHECK(cudaMemcpy(d.data, host, d.bytes, cudaMemcpyHostToDevice));
  } else if (cols % 32 != 0) {
    // 16-bit rows whose length is no multiple of 32 (tiny models only): expand to F32 once.
    d.type = DType::F32;
    d.row_bytes = cols * 4;
    d.bytes = static_cast<size_t>(rows) * d.row_bytes;
    std::vector<float> f(static_cast<size_t>(rows) * cols);
    for (int64_t r = 0; r < rows; ++r)
      dequantize_row(type, static_cast<const uint8_t*>(host) + r * row_bytes(type, cols), &f[r * cols], cols);
    d.data = device_alloc(d.bytes);
    RHEAD_CUDA_CHECK(cudaMemcpy(d.data, f.data(), d.bytes, cudaMemcpyHostToDevice));
  } else {
    // No decoder on the GPU: expand to f16 once.
    d.type = DType::F16;
    d.row_bytes = cols * 2;
    d.bytes = static_cast<size_t>(rows) * d.row_bytes;
    std::vector<float> tmp(cols);
    std::vector<uint16_t> half(static_cast<size_t>(rows) * cols);
    const int64_t src_row = row_bytes(type, cols);
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(type, static_cast<const uint8_t*>(host) + r * src_row, tmp.data(), cols);
      for (int64_t c = 0; c < cols; ++c) half[r * cols + c] = f32_to_f16(tmp[c]);
    }
    d.data = device_alloc(d.bytes);
    RHEAD_CUDA_CHECK(cudaMemcpy(d.data, half.data(), d.bytes, cudaMemcpyHostToDevice));
  }
  d.users = 1;
  held.insert(host);
  return g_store.emplace(host, d).first->second;
}

void release_all(std::unordered_set<const void*>& held) {
  std::lock_guard<std::mutex> lock(g_store_mutex);
  for (const void* h : held) {
    auto it = g_store.find(h);
    if (it == g_store.end()) continue;
    if (--it->second.users == 0) {
      device_free(it->second.data);
      g_store.erase(it);
    }
  }
  held.clear();
}

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string("cuBLAS error in ") + what + ": status " + std::to_string(static_cast<int>(s)));
}

class CudaBackend final : public Backend {
 public:
  CudaBackend() {
    RHEAD_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    check_cublas(cublas().create(&blas_), "cublasCreate");
    check_cublas(cublas().set_stream(blas_, stream_), "cublasSetStream");
  }
  ~CudaBackend() override {
    cudaStreamSynchronize(stream_);
    release_all(held_);
    attn_.release();
    for (Scratch* s : {&tokens_, &x16_, &w16_, &inv_freq_, &rows_, &row_weights_, &kv_heads_}) s->release();
    cublas().destroy(blas_);
    cudaStreamDestroy(stream_);
  }

  Device device() const override { return Device::cuda; }

  void* alloc(size_t bytes) override {
    void* p = device_alloc(bytes);
    RHEAD_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_));
    return p;
  }
  void free(void* p) override {
    cudaStreamSynchronize(stream_);
    device_free(p);
  }
  void zero(void* p, size_t bytes) override { RHEAD_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream_)); }
  void to_host(void* dst, const void* src, size_t bytes) override {
    RHEAD_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    RHEAD_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void from_host(void* dst, const void* src, size_t bytes) override {
    RHEAD_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
    RHEAD_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    if (dst != src && bytes) RHEAD_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
  }

  void embed(const Weight& table, const int32_t* tokens, int64_t T, float* x) override {
    const DeviceTensor& w = weight(table);
    int32_t* d_tok = tokens_.get<int32_t>(T);
    RHEAD_CUDA_CHECK(cudaMemcpyAsync(d_tok, tokens, T * 4, cudaMemcpyHostToDevice, stream_));
    if (table.cols % 32 != 0) {  // F32 rows of any width (acquire made them F32)
      embed_f32_kernel<<<blocks_for(T * table.cols), 256, 0, stream_>>>(static_cast<const float*>(w.data), table.cols,
                                                                        d_tok, T, x);
      RHEAD_CUDA_LAUNCHED("embed_f32_kernel");
      return;
    }
    const int64_t n = T * (table.cols / 32);
    with_type(w.type, [&](auto type) {
      embed_kernel<decltype(type)::value><<<blocks_for(n), 256, 0, stream_>>>(static_cast<const uint8_t*>(w.data),
                                                                              w.row_bytes, table.cols, d_tok, T, x);
    });
    RHEAD_CUDA_LAUNCHED("embed_kernel");
  }

  void rmsnorm(const float* x, std::span<const float> w, float* y, int64_t n_rows, int64_t n, float eps) override {
    const float* dw = vector(w);
    rmsnorm_kernel<<<static_cast<unsigned>(n_rows), 256, 0, stream_>>>(x, dw, y, n, eps);
    RHEAD_CUDA_LAUNCHED("rmsnorm_kernel");
  }

  void matmul(const Weight& host_w, const float* x, int64_t T, float* y) override {
    const DeviceTensor& w = weight(host_w);
    const int64_t rows = host_w.rows, cols = host_w.cols;
    if (T < kGemmMinTokens && cols % 32 == 0) {
      with_type(w.type, [&](auto type) {
        matvec_kernel<decltype(type)::value><<<static_cast<unsigned>((rows + 3) / 4), 128, 0, stream_>>>(
            static_cast<const uint8_t*>(w.data), w.row_bytes, rows, cols, x, T, y);
      });
      RHEAD_CUDA_LAUNCHED("matvec_kernel");
      return;
    }
    const float one = 1.0f, zero = 0.0f;
    if (w.type == DType::F32) {  // every F32 weight, and rows of any width
      // Column-major view: Y (rows x T) = W^T (rows x cols) . X (cols x T).
      check_cublas(cublas().sgemm(blas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows), static_cast<int>(T),
                                  static_cast<int>(cols), &one, static_cast<const float*>(w.data),
                                  static_cast<int>(cols), x, static_cast<int>(cols), &zero, y, static_cast<int>(rows)),
                   "cublasSgemm");
      return;
    }
    const void* a = w.data;
    cudaDataType_t ab_type = CUDA_R_16F;
    if (w.type == DType::BF16) {
      ab_type = CUDA_R_16BF;
      auto* xb = x16_.get<__nv_bfloat16>(T * cols);
      convert_kernel<__nv_bfloat16><<<blocks_for(T * cols), 256, 0, stream_>>>(x, xb, T * cols);
    } else {
      if (w.type != DType::F16) {
        __half* wh = w16_.get<__half>(rows * cols);
        with_type(w.type, [&](auto type) {
          dequant_f16_kernel<decltype(type)::value><<<blocks_for(rows * (cols / 32)), 256, 0, stream_>>>(
              static_cast<const uint8_t*>(w.data), w.row_bytes, rows, cols, wh);
        });
        RHEAD_CUDA_LAUNCHED("dequant_f16_kernel");
        a = wh;
      }
      auto* xh = x16_.get<__half>(T * cols);
      convert_kernel<__half><<<blocks_for(T * cols), 256, 0, stream_>>>(x, xh, T * cols);
    }
    RHEAD_CUDA_LAUNCHED("convert_kernel");
    check_cublas(cublas().gemm_ex(blas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows), static_cast<int>(T),
                                  static_cast<int>(cols), &one, a, ab_type, static_cast<int>(cols), x16_.ptr, ab_type,
                                  static_cast<int>(cols), &zero, y, CUDA_R_32F, static_cast<int>(rows),
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx");
  }

  void add_bias(float* x, std::span<const float> b, int64_t n_rows) override {
    const int64_t n = static_cast<int64_t>(b.size());
    add_bias_kernel<<<blocks_for(n * n_rows), 256, 0, stream_>>>(x, vector(b), n, n * n_rows);
    RHEAD_CUDA_LAUNCHED("add_bias_kernel");
  }

  void rope(float* x, int64_t T, int n_heads, int hd, int64_t pos0, std::span<const float> inv_freq,
            bool pairing_half) override {
    // The table is the Session's (a few dozen floats): uploaded when it changes.
    if (inv_freq_host_.size() != inv_freq.size() ||
        !std::equal(inv_freq.begin(), inv_freq.end(), inv_freq_host_.begin())) {
      inv_freq_host_.assign(inv_freq.begin(), inv_freq.end());
      float* d = inv_freq_.get<float>(inv_freq.size());
      RHEAD_CUDA_CHECK(cudaMemcpyAsync(d, inv_freq_host_.data(), inv_freq.size() * 4, cudaMemcpyHostToDevice, stream_));
    }
    const int64_t n = T * n_heads * (hd / 2);
    rope_kernel<<<blocks_for(n), 256, 0, stream_>>>(x, T, n_heads, hd, pos0, static_cast<const float*>(inv_freq_.ptr),
                                                    pairing_half);
    RHEAD_CUDA_LAUNCHED("rope_kernel");
  }

  void silu_mul(float* g, const float* u, int64_t n) override {
    silu_mul_kernel<<<blocks_for(n), 256, 0, stream_>>>(g, u, n);
    RHEAD_CUDA_LAUNCHED("silu_mul_kernel");
  }

  void gelu_tanh_mul(float* g, const float* u, int64_t n) override {
    gelu_tanh_mul_kernel<<<blocks_for(n), 256, 0, stream_>>>(g, u, n);
    RHEAD_CUDA_LAUNCHED("gelu_tanh_mul_kernel");
  }

  void scale(float* x, float s, int64_t n) override {
    scale_kernel<<<blocks_for(n), 256, 0, stream_>>>(x, s, n);
    RHEAD_CUDA_LAUNCHED("scale_kernel");
  }

  void softcap(float* x, float cap, int64_t n) override {
    softcap_kernel<<<blocks_for(n), 256, 0, stream_>>>(x, cap, n);
    RHEAD_CUDA_LAUNCHED("softcap_kernel");
  }

  void gather_rows(const float* src, std::span<const int32_t> rows, int64_t width, float* dst) override {
    const int64_t n = static_cast<int64_t>(rows.size());
    if (n == 0) return;
    int32_t* d_rows = rows_.get<int32_t>(n);
    RHEAD_CUDA_CHECK(cudaMemcpyAsync(d_rows, rows.data(), n * 4, cudaMemcpyHostToDevice, stream_));
    gather_rows_kernel<<<blocks_for(n * width), 256, 0, stream_>>>(src, d_rows, n, width, dst);
    RHEAD_CUDA_LAUNCHED("gather_rows_kernel");
  }

  void add_rows_weighted(double* acc, const float* src, std::span<const int32_t> rows, std::span<const double> weights,
                         int64_t width) override {
    const int64_t n = static_cast<int64_t>(rows.size());
    if (n == 0) return;
    // Indices and weights in one upload: [n] int32 (padded to 8 bytes), then [n] double.
    const int64_t idx_bytes = (n * 4 + 7) / 8 * 8;
    uint8_t* d = row_weights_.get<uint8_t>(idx_bytes + n * 8);
    staging_.resize(idx_bytes + n * 8);
    std::memcpy(staging_.data(), rows.data(), n * 4);
    std::memcpy(staging_.data() + idx_bytes, weights.data(), n * 8);
    RHEAD_CUDA_CHECK(cudaMemcpyAsync(d, staging_.data(), staging_.size(), cudaMemcpyHostToDevice, stream_));
    add_rows_weighted_kernel<<<blocks_for(n * width), 256, 0, stream_>>>(
        acc, src, reinterpret_cast<const int32_t*>(d), reinterpret_cast<const double*>(d + idx_bytes), n, width);
    RHEAD_CUDA_LAUNCHED("add_rows_weighted_kernel");
  }

  void narrow(const double* acc, float* y, int64_t n) override {
    narrow_kernel<<<blocks_for(n), 256, 0, stream_>>>(acc, y, n);
    RHEAD_CUDA_LAUNCHED("narrow_kernel");
  }

  void add(float* x, const float* y, int64_t n) override {
    add_kernel<<<blocks_for(n), 256, 0, stream_>>>(x, y, n);
    RHEAD_CUDA_LAUNCHED("add_kernel");
  }

  void kv_append(const KvCache& kv, int layer, int64_t pos0, int64_t T, const float* k, const float* v) override {
    const int64_t n = T * kv.n_kv_head * kv.head_dim;
    const KvLayerView lv = kv.view(layer);
    const KvHeadRows* heads = upload(kv_heads_, lv.heads, lv.heads ? kv.n_kv_head : 0, stream_);
    auto launch = [&](auto zero) {
      kv_append_kernel<decltype(zero)>
          <<<blocks_for(n), 256, 0, stream_>>>(k, v, const_cast<void*>(lv.k), const_cast<void*>(lv.v), heads, T,
                                               kv.n_kv_head, kv.head_dim, kv.capacity, pos0);
    };
    if (kv.type == KvType::f16)
      launch(__half{});
    else
      launch(float{});
    RHEAD_CUDA_LAUNCHED("kv_append_kernel");
  }

  void attention(const AttentionArgs& a) override { cuda::attention(a, attn_, stream_); }

 private:
  const DeviceTensor& weight(const Weight& w) { return acquire(w.data, w.type, w.rows, w.cols, held_); }
  const float* vector(std::span<const float> v) {
    return static_cast<const float*>(acquire(v.data(), DType::F32, 1, static_cast<int64_t>(v.size()), held_).data);
  }

  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  std::unordered_set<const void*> held_;  // host tensors this backend has read (store references)
  AttentionScratch attn_;
  Scratch tokens_, x16_, w16_, inv_freq_;
  Scratch rows_, row_weights_;    // gather_rows / add_rows_weighted: row indices (and weights)
  Scratch kv_heads_;              // kv_append: the layer's KvHeadRows (compacted cache)
  std::vector<uint8_t> staging_;  // host side of row_weights_
  std::vector<float> inv_freq_host_;
};

}  // namespace
}  // namespace cuda

std::string cuda_device_problem() {
  static const std::string problem = [] {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) return std::string("no CUDA device: ") + cudaGetErrorString(e);
    if (n == 0) return std::string("no CUDA device: none found");
    return std::string();
  }();
  return problem;
}

std::unique_ptr<Backend> make_cuda_backend() { return std::make_unique<cuda::CudaBackend>(); }

size_t cuda_peak_allocated_bytes() { return cuda::g_peak_bytes.load(); }

}  // namespace rhead
