// KvCache: where a Session keeps every layer's keys and values, in the memory of its backend
// (host for the CPU backend, GPU for CUDA). The layout is one contiguous block per tensor:
//   k, v: [n_layer][n_kv_head][capacity][head_dim] elements of f16 or f32
// so that one KV head's rows are contiguous (what the attention kernels stream through).
// Rows are written by Backend::kv_append; view(layer) gives the attention kernel its inputs.
#pragma once
#include <cstddef>
#include <cstdint>

namespace rhead {

enum class KvType { f16, f32 };

// One layer of the cache, as the attention kernel reads it.
struct KvLayerView {
  const void* k = nullptr;   // [n_kv_head][capacity][head_dim]
  const void* v = nullptr;
  bool f16 = true;
  int64_t head_stride = 0;   // elements between consecutive KV heads (capacity * head_dim)
};

struct KvCache {
  KvType type = KvType::f16;
  int n_layer = 0, n_kv_head = 0, head_dim = 0;
  int64_t capacity = 0;      // positions per KV head
  void* k = nullptr;         // backend memory, owned by the Session
  void* v = nullptr;

  size_t elem_bytes() const { return type == KvType::f16 ? 2 : 4; }
  int64_t head_stride() const { return capacity * head_dim; }
  size_t layer_bytes() const { return static_cast<size_t>(n_kv_head) * capacity * head_dim * elem_bytes(); }
  size_t bytes() const { return layer_bytes() * n_layer; }  // of k (v is the same)
  void* k_layer(int layer) const { return static_cast<uint8_t*>(k) + layer * layer_bytes(); }
  void* v_layer(int layer) const { return static_cast<uint8_t*>(v) + layer * layer_bytes(); }
  KvLayerView view(int layer) const { return {k_layer(layer), v_layer(layer), type == KvType::f16, head_stride()}; }
};

}  // namespace rhead
