// Causal prefill attention on the tensor cores with register-resident softmax (f16 cache,
// head_dim 64 or 128, sm_80 and newer): a prefill kernel of attention_cuda.cu, selected with
// RHEAD_CUDA_FLASH=mma until it has run on a GPU. Same contract as ops/attention.h for the outputs (visibility, scale,
// soft-cap, head overrides); probes and calibration sums stay with the caller (attention_cuda.cu runs the observed rows
// through its row kernel afterwards).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/kv_cache.h"

namespace rhead::cuda {

// Every pointer is device memory.
struct FlashPrefillArgs {
  const float* q = nullptr;  // [n_tokens, n_head, head_dim], RoPE applied
  const void* k = nullptr;   // f16 cache of the layer: [n_kv_head][capacity][head_dim]
  const void* v = nullptr;
  int64_t head_stride = 0;  // elements between consecutive KV heads
  float* out = nullptr;     // [n_tokens, n_head, head_dim]
  int64_t n_tokens = 0, pos0 = 0;
  int n_head = 0, n_kv_head = 0, head_dim = 0;
  int64_t window = 0;                    // model sliding window (0: none)
  const int32_t* head_window = nullptr;  // [n_head] or null
  int64_t head_sink = 0;
  const uint8_t* overrides = nullptr;  // [n_head] HeadOverride or null
  const float* head_means = nullptr;   // [n_head, head_dim] for HeadOverride::mean
  float scale = 0.0f;                  // already resolved (never 0)
  float softcap = 0.0f;
  const KvHeadRows* kv_heads = nullptr;  // compacted cache: the layer's [n_kv_head] heads (device copy); k, v unused
};

// True when this kernel serves the call: f16 cache, head_dim 64 or 128, a GPU of compute
// capability 8.0 or newer, and RHEAD_CUDA_FLASH not naming an older kernel ("f32" or "tc").
bool flash_prefill_selected(int head_dim, bool kv_f16);

void flash_prefill(const FlashPrefillArgs& a, cudaStream_t stream);

}  // namespace rhead::cuda
