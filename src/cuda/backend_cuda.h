// The CUDA backend's entry points (plain C++: included by ops/backend.cpp when built with
// RHEAD_CUDA). Everything CUDA-specific stays inside src/cuda/*.cu.
#pragma once
#include <memory>
#include <string>

#include "ops/backend.h"

namespace rhead {

// Empty when a CUDA device can be used; else why not ("no CUDA device: ...").
std::string cuda_device_problem();
// A backend on the current CUDA device. Weights are uploaded in their stored type the first
// time an op reads them and shared by every CUDA backend of the process while any uses them.
std::unique_ptr<Backend> make_cuda_backend();
// Bytes of GPU memory in use by this process's allocations through rhead (weights, caches,
// activations, scratch) at its peak so far.
size_t cuda_peak_allocated_bytes();

}  // namespace rhead
