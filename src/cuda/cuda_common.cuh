// Shared helpers of the CUDA translation units: error checks that throw rhead::Error, a
// growable device scratch buffer and uploads into it, and one KV head's rows as kernels read
// them.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "io/error.h"
#include "ops/kv_cache.h"

namespace rhead::cuda {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw Error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}
#define RHEAD_CUDA_CHECK(call) ::rhead::cuda::check((call), #call)
#define RHEAD_CUDA_LAUNCHED(name) ::rhead::cuda::check(cudaGetLastError(), name)

// Tracks bytes allocated through device_alloc (for the peak-memory figure).
void* device_alloc(size_t bytes);
void device_free(void* p);

// A device buffer that grows to the largest size asked for; never shrinks.
struct Scratch {
  void* ptr = nullptr;
  size_t bytes = 0;
  template <class T>
  T* get(size_t n) {
    const size_t need = n * sizeof(T);
    if (need > bytes) {
      if (ptr) device_free(ptr);
      ptr = device_alloc(need);
      bytes = need;
    }
    return static_cast<T*>(ptr);
  }
  void release() {
    if (ptr) device_free(ptr);
    ptr = nullptr;
    bytes = 0;
  }
};

// n values from the host into s, queued on stream (nullptr for no values).
template <class T>
T* upload(Scratch& s, const T* host, size_t n, cudaStream_t stream) {
  if (!host) return nullptr;
  T* d = s.get<T>(n);
  RHEAD_CUDA_CHECK(cudaMemcpyAsync(d, host, n * sizeof(T), cudaMemcpyHostToDevice, stream));
  return d;
}

// KV head kvh of a layer as a kernel reads it: K and V rows and the map from positions to
// rows. The whole cache (heads == nullptr): rows at their positions, head_stride elements
// between KV heads; the compacted layout: the head's own rows (ops/kv_cache.h's KvHeadRows,
// a device copy of the layer's n_kv_head entries).
template <class KT>
struct DeviceKvHead {
  KT* k;
  KT* v;
  KvRowMap map;
  __device__ int64_t row(int64_t pos) const { return map.row(pos); }
};

template <class KT>
__device__ __forceinline__ DeviceKvHead<KT> device_kv_head(const void* k, const void* v, int64_t head_stride,
                                                           const KvHeadRows* heads, int kvh) {
  if (heads) return {static_cast<KT*>(heads[kvh].k), static_cast<KT*>(heads[kvh].v), heads[kvh].map};
  return {static_cast<KT*>(const_cast<void*>(k)) + kvh * head_stride,
          static_cast<KT*>(const_cast<void*>(v)) + kvh * head_stride, KvRowMap{}};
}

}  // namespace rhead::cuda
