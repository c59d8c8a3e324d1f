// KV-cache policy grid and its memory accounting.
#include "model/kv_policy.h"

#include <algorithm>

#include "io/error.h"

namespace rhead {

KvPolicy::KvPolicy(const ModelConfig& config, int64_t window_, int64_t sink_)
    : window(window_),
      sink(sink_),
      n_layer(config.n_layer),
      n_head(config.n_head),
      n_kv_head(config.n_kv_head),
      full(static_cast<size_t>(config.n_layer) * config.n_head, 0) {
  if (window < 0) throw Error("--kv-window " + std::to_string(window) + " is negative");
  if (sink < 0) throw Error("--kv-sink " + std::to_string(sink) + " is negative");
  if (window > INT32_MAX) throw Error("--kv-window " + std::to_string(window) + " is too large");
}

void KvPolicy::set_full(int layer, int head) {
  if (layer < 0 || layer >= n_layer || head < 0 || head >= n_head)
    throw Error("KV policy: head " + std::to_string(layer) + "-" + std::to_string(head) + " is outside a model of " +
                std::to_string(n_layer) + " layers x " + std::to_string(n_head) + " heads");
  full[static_cast<size_t>(layer) * n_head + head] = 1;
}

bool KvPolicy::kv_is_full(int layer, int kv_head) const {
  const int group = n_head / n_kv_head;
  for (int h = kv_head * group; h < (kv_head + 1) * group; ++h)
    if (is_full(layer, h)) return true;
  return false;
}

int KvPolicy::full_query_heads() const { return static_cast<int>(std::count(full.begin(), full.end(), 1)); }

int KvPolicy::full_kv_heads() const { return static_cast<int>(full_kv_groups().size()); }

std::vector<HeadId> KvPolicy::full_heads() const {
  return heads_where(n_layer, n_head, [&](int l, int h) { return is_full(l, h); });
}

std::vector<HeadId> KvPolicy::full_kv_groups() const {
  return heads_where(n_layer, n_kv_head, [&](int l, int g) { return kv_is_full(l, g); });
}

std::vector<int32_t> KvPolicy::head_windows(int layer) const {
  if (!active()) return {};
  std::vector<int32_t> w(static_cast<size_t>(n_head));
  for (int h = 0; h < n_head; ++h) w[h] = is_full(layer, h) ? 0 : static_cast<int32_t>(window);
  return w;
}

bool KvPolicy::is_identity_up_to(int64_t length) const {
  if (!active() || length <= sink + window) return true;
  return full_query_heads() == n_layer * n_head;
}

int64_t kv_rows_kept(int64_t length, bool full, int64_t window, int64_t sink) {
  if (full || window <= 0) return length;
  return std::min(length, sink + window);
}

KvAccounting kv_accounting(const KvPolicy& p, int head_dim, KvType kv_type, int64_t length, int64_t chunk,
                           int64_t limit) {
  KvAccounting a;
  a.length = length;
  a.bytes_per_row = 2 * kv_row_bytes(kv_type, head_dim);
  const int64_t window = p.active() ? p.window : 0;
  for (int l = 0; l < p.n_layer; ++l) {
    for (int h = 0; h < p.n_head; ++h) {
      const bool full = p.is_full(l, h);
      a.query_rows_kept += kv_rows_kept(length, full, window, p.sink);
      a.query_rows_full += length;
    }
    for (int g = 0; g < p.n_kv_head; ++g) {
      const bool full = p.kv_is_full(l, g);
      a.kv_rows_kept += kv_rows_kept(length, full, window, p.sink);
      a.kv_rows_full += length;
      a.kv_rows_held +=
          p.active() ? kv_rows_allocated(length, full, window, p.sink, chunk, limit > 0 ? limit : length) : length;
    }
  }
  if (p.active()) {
    a.full_query_heads = p.full_query_heads();
    a.full_kv_heads = p.full_kv_heads();
  } else {
    a.full_query_heads = p.n_layer * p.n_head;
    a.full_kv_heads = p.n_layer * p.n_kv_head;
  }
  return a;
}

}  // namespace rhead
