// Shared helpers of the CUDA translation units: error checks that throw rhead::Error, and a
// growable device scratch buffer.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "io/error.h"

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

}  // namespace rhead::cuda
