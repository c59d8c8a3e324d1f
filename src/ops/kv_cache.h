// KvCache: where a Session keeps every layer's keys and values, in the memory of its backend
// (host for the CPU backend, GPU for CUDA). The layout is one contiguous block per tensor:
//   k, v: [n_layer][n_kv_head][capacity][row] rows of head_dim values: f16 or f32, or, for
//         q8_0, Q8_0 blocks (32 values: an f16 scale and 32 int8, 34 bytes); a q8_0 row is
//         ceil(head_dim / 32) blocks, the last one zero-padded when head_dim is not a multiple
//         of 32 (head_dim 16: one block, 34 bytes for 16 values, more than f16's 32)
// so that one KV head's rows are contiguous (what the attention kernels stream through).
// Rows are written by Backend::kv_append; view(layer) gives the attention kernel its inputs.
//
// Compacted layout (a KV policy, either backend; model/session.cpp): every (layer, KV head)
// has its own K and V rows, found through heads[] instead of the contiguous block: a KV head
// kept whole grows with the sequence (kv_rows_allocated), a windowed one holds its sink and
// a ring (ops/kv_visibility.h's KvRowMap). Positions stay absolute either way.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ops/kv_visibility.h"

namespace rhead {

enum class KvType { f16, f32, q8_0 };

inline const char* kv_type_name(KvType t) { return t == KvType::f16 ? "f16" : t == KvType::f32 ? "f32" : "q8_0"; }

// Bytes of one cache row of `head_dim` values.
inline int64_t kv_row_bytes(KvType t, int64_t head_dim) {
  return t == KvType::f16 ? 2 * head_dim : t == KvType::f32 ? 4 * head_dim : (head_dim + 31) / 32 * 34;
}

// q8_0 rows: one row of head_dim values into its blocks (the padding quantizes zeros), and
// `rows` consecutive rows back to f32 ([rows][head_dim]).
void kv_quantize_row_q8_0(const float* src, int64_t head_dim, void* dst);
void kv_dequantize_rows_q8_0(const void* src, int64_t rows, int64_t head_dim, float* dst);

// Rows one KV head of the compacted layout allocates to hold `length` positions: a head kept
// whole (full) rounds up to steps of 1/16 of the power of two below `length` (at least 256
// rows), never past `limit`; a windowed head grows the same way up to sink + ring rows, ring
// = window + chunk (the keys a chunk of `chunk` queries can still see). Positions below
// sink + ring sit at their own row, so growing never moves a row.
int64_t kv_rows_allocated(int64_t length, bool full, int64_t window, int64_t sink, int64_t chunk, int64_t limit);

// One KV head of the compacted layout.
struct KvHeadRows {
  void* k = nullptr;  // [rows][row], backend memory
  void* v = nullptr;
  int64_t rows = 0;  // allocated
  KvRowMap map;
};

// One layer of the cache, as the attention kernel reads it.
struct KvLayerView {
  const void* k = nullptr;  // [n_kv_head][capacity][head_dim]
  const void* v = nullptr;
  bool f16 = true;
  int64_t head_stride = 0;  // elements between consecutive KV heads (capacity * head_dim)
  KvType type = KvType::f16;
  const KvHeadRows* heads = nullptr;  // compacted layout: [n_kv_head], k and v unused
};

struct KvCache {
  KvType type = KvType::f16;
  int n_layer = 0, n_kv_head = 0, head_dim = 0;
  int64_t capacity = 0;  // positions per KV head
  void* k = nullptr;     // backend memory, owned by the Session (contiguous layout)
  void* v = nullptr;
  std::vector<KvHeadRows> heads;  // compacted layout: [n_layer * n_kv_head]; empty: contiguous

  bool compacted() const { return !heads.empty(); }
  const KvHeadRows& head(int layer, int g) const { return heads[static_cast<size_t>(layer) * n_kv_head + g]; }
  // K (or V) row of position `pos` of KV head g in `layer`, in either layout.
  uint8_t* row(int layer, int g, int64_t pos, bool value) const {
    const int64_t rb = kv_row_bytes(type, head_dim);
    if (compacted()) {
      const KvHeadRows& h = head(layer, g);
      return static_cast<uint8_t*>(value ? h.v : h.k) + h.map.row(pos) * rb;
    }
    return static_cast<uint8_t*>(value ? v_layer(layer) : k_layer(layer)) + row_offset(g, pos);
  }

  int64_t head_stride() const { return capacity * head_dim; }
  // Byte offset of row `pos` of KV head `g` within a layer.
  size_t row_offset(int g, int64_t pos) const {
    return static_cast<size_t>((static_cast<int64_t>(g) * capacity + pos) * kv_row_bytes(type, head_dim));
  }
  size_t layer_bytes() const { return static_cast<size_t>(n_kv_head * capacity * kv_row_bytes(type, head_dim)); }
  size_t bytes() const { return layer_bytes() * n_layer; }  // of k (v is the same)
  // Bytes of K and V the cache holds (allocated) now, in either layout.
  int64_t held_bytes() const {
    if (!compacted()) return 2 * static_cast<int64_t>(bytes());
    int64_t rows = 0;
    for (const KvHeadRows& h : heads) rows += h.rows;
    return 2 * rows * kv_row_bytes(type, head_dim);
  }
  void* k_layer(int layer) const { return static_cast<uint8_t*>(k) + layer * layer_bytes(); }
  void* v_layer(int layer) const { return static_cast<uint8_t*>(v) + layer * layer_bytes(); }
  KvLayerView view(int layer) const {
    if (compacted()) return {nullptr, nullptr, type == KvType::f16, 0, type, &head(layer, 0)};
    return {k_layer(layer), v_layer(layer), type == KvType::f16, head_stride(), type};
  }
};

}  // namespace rhead
