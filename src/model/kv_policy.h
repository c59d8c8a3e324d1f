// KV-cache policies: a streaming cache (attention sink + recent window) for most heads, the
// whole cache for a chosen set of "full" heads, and what each policy keeps in memory.
//
// Semantics (every phase, prefill and decode, like a real streaming cache):
//   a restricted query head at absolute position i sees key j iff j <= i and (j < sink or i - j < window);
//   a full query head sees every j <= i.
// The attention kernel applies this per query head (AttentionArgs::head_window / head_sink);
// probes report over the keys the head saw.
//
// Memory. After `length` positions a restricted head needs min(length, sink + window) rows
// of K and V (the keys the next query can still see), a full head needs `length`. Heads are
// query heads, but the cache is stored per KV head: under GQA a KV head must stay whole as
// soon as one of its query heads is full. Both views are reported:
//   per query head: as if every query head had its own K/V rows (the policy's intent);
//   per KV head:    the memory a real engine would hold.
// With the policy active, a Session on the CPU compacts its cache (ops/kv_cache.h): a
// windowed KV head holds its sink and a ring of window + prefill-chunk rows, a full one grows
// with the sequence; kv_rows_held predicts what it allocates, rounding included.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "model/config.h"
#include "model/heads.h"
#include "ops/kv_cache.h"

namespace rhead {

struct KvPolicy {
  int64_t window = 0;  // W: positions a restricted head keeps before the current one (incl.); 0: no policy
  int64_t sink = 4;    // S: first positions every head keeps
  int n_layer = 0, n_head = 0, n_kv_head = 0;
  std::vector<uint8_t> full;  // [n_layer * n_head], layer-major: 1 = query head keeps the whole cache

  KvPolicy() = default;
  // A policy over the model's shape with no full head.
  KvPolicy(const ModelConfig& config, int64_t window, int64_t sink);

  bool active() const { return window > 0; }
  bool is_full(int layer, int head) const { return full[static_cast<size_t>(layer) * n_head + head] != 0; }
  void set_full(int layer, int head);
  // A KV head is full when any query head of its group is.
  bool kv_is_full(int layer, int kv_head) const;
  int full_query_heads() const;
  int full_kv_heads() const;
  std::vector<HeadId> full_heads() const;      // sorted (layer, query head)
  std::vector<HeadId> full_kv_groups() const;  // sorted (layer, KV head), keys "L-G"

  // AttentionArgs::head_window of one layer: [n_head], W for a restricted head, 0 for a full
  // one. Empty when the policy is inactive (no windows at all).
  std::vector<int32_t> head_windows(int layer) const;
  // True when the policy changes no attention row up to `length` positions (inactive, every
  // head full, or sink + window covers every prefix).
  bool is_identity_up_to(int64_t length) const;
};

// Prefill chunk of the CPU backend (SessionOptions::prefill_chunk 0 picks it): the ring of a
// compacted windowed head has window + chunk rows.
constexpr int64_t kCpuPrefillChunk = 256;

// Whether a restricted head at query position i sees key j (j <= i assumed).
inline bool kv_visible(int64_t i, int64_t j, int64_t window, int64_t sink) {
  return kv_policy_sees<int64_t>(i, j, window, sink);
}

// Rows of K (and of V) one head keeps after `length` positions.
int64_t kv_rows_kept(int64_t length, bool full, int64_t window, int64_t sink);

// What a policy keeps after `length` positions. Rows count one head's K row (its V row goes
// with it); bytes count K and V: rows * 2 * head_dim * element size.
struct KvAccounting {
  int64_t length = 0;
  int64_t bytes_per_row = 0;                         // 2 (K and V) * head_dim * element bytes
  int64_t query_rows_kept = 0, query_rows_full = 0;  // summed over (layer, query head)
  int64_t kv_rows_kept = 0, kv_rows_full = 0;        // summed over (layer, KV head)
  int full_query_heads = 0, full_kv_heads = 0;
  // Rows the compacted cache allocates (kv_rows_allocated, summed over (layer, KV head)), for
  // prefill chunks of `chunk` rows; inactive policy: kv_rows_full (the cache sized to `length`).
  int64_t kv_rows_held = 0;

  int64_t query_bytes_kept() const { return query_rows_kept * bytes_per_row; }
  int64_t query_bytes_full() const { return query_rows_full * bytes_per_row; }
  int64_t kv_bytes_kept() const { return kv_rows_kept * bytes_per_row; }
  int64_t kv_bytes_full() const { return kv_rows_full * bytes_per_row; }
  int64_t kv_bytes_held() const { return kv_rows_held * bytes_per_row; }
  double query_kept_fraction() const { return query_rows_full ? double(query_rows_kept) / query_rows_full : 1.0; }
  double kv_kept_fraction() const { return kv_rows_full ? double(kv_rows_kept) / kv_rows_full : 1.0; }
};

// Accounting of `policy` (inactive: everything kept) after `length` positions, for a cache of
// `head_dim` values per row stored as `kv_type` (kv_row_bytes: f16 2 bytes a value, f32 4,
// q8_0 34 per block of 32); kv_rows_held for a session prefilling `chunk` tokens at a time
// with room for `limit` positions (0: `length`).
KvAccounting kv_accounting(const KvPolicy& policy, int head_dim, KvType kv_type, int64_t length,
                           int64_t chunk = kCpuPrefillChunk, int64_t limit = 0);

}  // namespace rhead
