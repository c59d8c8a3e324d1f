// The vocabulary for attention heads that every layer above model/ uses: a head's name
// (HeadId, "L-H"), a layer-major grid of per-head values (HeadGrid), the one head-selection
// grammar of every option that picks heads, the copy-paste rule, and the two thresholds of
// the method. Heads are always query heads; a KV group is a view on top (kv:L-G).
//
// Head-selection grammar (one table in heads.cpp; a new kind is one more row there):
//   none                 no head
//   all                  every query head of the model
//   heads:L-H[,L-H...]   the listed (layer, query head) pairs
//   kv:L-G[,L-G...]      every query head that reads KV group G of layer L
//                        (query heads G*group_size .. (G+1)*group_size-1)
//   top:K                the K heads of highest score (needs a score grid)
//   file:PATH            the heads of a published ranked head list (parse_head_list)
//   random:K             K heads drawn with a seed among the heads that are not retrieval
//                        heads: the top kRandomExcludeTop heads by score whose score is > 0
//                        are never drawn (needs a score grid)
// Layers, heads and groups count from 0. top:0 and random:0 select no head.
#pragma once
#include <compare>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "model/config.h"

namespace rhead {

// A head is a retrieval head when its mean retrieval score exceeds this (METHOD.md §3.5).
inline constexpr double kRetrievalThreshold = 0.1;
// A NIAH test passes (and its head scores count) when ROUGE-1 recall x 100 exceeds this.
inline constexpr double kPassScore = 50;
// random:K never draws a head ranked among the top this-many by score with a score > 0.
inline constexpr int kRandomExcludeTop = 100;

// One (layer, query head) pair, written "L-H" (e.g. "2-0") in every file and option.
struct HeadId {
  int layer = 0;
  int head = 0;
  auto operator<=>(const HeadId&) const = default;
  std::string key() const;  // "L-H"
  // "L-H" -> head; rhead::Error starting with `what` unless the text is two non-negative
  // integers joined by '-'.
  static HeadId parse(std::string_view text, std::string_view what = "head");
};

// The heads (l, h) of an n_layer x n_head grid for which `in(l, h)` holds, layer-major.
template <typename In>
std::vector<HeadId> heads_where(int n_layer, int n_head, In&& in) {
  std::vector<HeadId> out;
  for (int l = 0; l < n_layer; ++l)
    for (int h = 0; h < n_head; ++h)
      if (in(l, h)) out.push_back({l, h});
  return out;
}

// "L-H" keys of `heads`, in their order.
std::vector<std::string> head_keys(const std::vector<HeadId>& heads);

// One value per query head, layer-major: index = layer * n_head + head.
template <class T>
struct HeadGrid {
  int n_layer = 0, n_head = 0;
  std::vector<T> values;  // [n_layer * n_head]

  HeadGrid() = default;
  HeadGrid(int layers, int heads, T fill = T{})
      : n_layer(layers), n_head(heads), values(static_cast<std::size_t>(layers) * heads, fill) {}

  std::size_t size() const { return values.size(); }
  std::size_t index(int layer, int head) const { return static_cast<std::size_t>(layer) * n_head + head; }
  std::size_t index(HeadId h) const { return index(h.layer, h.head); }
  HeadId head_at(std::size_t i) const { return {static_cast<int>(i / n_head), static_cast<int>(i % n_head)}; }
  T& operator[](std::size_t i) { return values[i]; }
  const T& operator[](std::size_t i) const { return values[i]; }
  T& at(int layer, int head) { return values[index(layer, head)]; }
  const T& at(int layer, int head) const { return values[index(layer, head)]; }
  T& operator[](HeadId h) { return values[index(h)]; }
  const T& operator[](HeadId h) const { return values[index(h)]; }
  auto begin() { return values.begin(); }
  auto end() { return values.end(); }
  auto begin() const { return values.begin(); }
  auto end() const { return values.end(); }
  bool same_shape(int layers, int heads) const { return n_layer == layers && n_head == heads; }
};

// Grid indices ordered by value, highest first; ties keep layer-major order.
std::vector<std::size_t> heads_by_score(const HeadGrid<double>& scores);

// --- head selection ---

enum class SelectionKind { none, all, heads, kv, top, random };
const char* selection_kind_name(SelectionKind kind);  // "none", "all", "heads", "kv", "top", "random"

// A parsed selection, not yet resolved against a model.
struct HeadSelection {
  SelectionKind kind = SelectionKind::none;
  int k = 0;                  // top / random: number of heads
  std::vector<HeadId> items;  // heads: (layer, head); kv: (layer, KV group)
  std::string text;           // the spec as written
  bool needs_scores() const { return kind == SelectionKind::top || kind == SelectionKind::random; }
};

// Published ranked head lists, best first, in two shapes, told apart by the first character:
//   QRHead: "L-H,L-H,..." (a text file; spaces and line breaks around items are allowed);
//   ReDeEP: its top-k heads JSON, a list of [layer, head] pairs: [[L, H], [L, H], ...].
// Error naming `where` on anything else, a head listed twice, or an empty list.
std::vector<HeadId> parse_head_list(std::string_view text, const std::string& where);
std::vector<HeadId> read_head_list(const std::string& path);
std::string qrhead_head_list(const std::vector<HeadId>& heads);  // "L-H,L-H,...\n"
std::string redeep_head_list(const std::vector<HeadId>& heads);  // "[[L, H], ...]\n"

// Parses the grammar above; rhead::Error naming the spec on anything else.
HeadSelection parse_head_selection(std::string_view spec);

// Resolves a selection to heads of a model of shape `config`: sorted (layer, head), except
// top:K, which lists heads by score, highest first. `scores` ([n_layer, n_head], e.g. mean
// retrieval scores) is needed by top / random only; `seed` by random only. Error on heads
// outside the model, a score grid of another shape, or K above the heads available.
std::vector<HeadId> select_heads(const HeadSelection& selection, const ModelConfig& config,
                                 const HeadGrid<double>* scores = nullptr, uint64_t seed = 0);
std::vector<HeadId> select_heads(std::string_view spec, const ModelConfig& config,
                                 const HeadGrid<double>* scores = nullptr, uint64_t seed = 0);

// The heads random:K never draws: the top `exclude_top` heads by score whose score is > 0.
// Sorted.
std::vector<HeadId> random_exclusions(const HeadGrid<double>& scores, int exclude_top = kRandomExcludeTop);

// --- the copy-paste rule ---

// A head copies at a decode step when its top-1 attention position `argmax_position` holds
// the token the model emits at that step (`tokens` holds the token at every position the
// step could see). A head overridden by a mask at that step (`overridden`) never copies:
// its output does not reach the model, so where its probe points says nothing about what
// the model used. Every copy count (retrieval score, NIAH copy tallies, `rhead attn`) uses
// this rule.
bool is_copy(int64_t argmax_position, std::span<const int32_t> tokens, int32_t emitted, bool overridden);

// A sweep list "top:0,5,10" (or "random:0,5" or "0,5,10") -> the kind named ("top" when
// none is) and the Ks as given.
std::pair<SelectionKind, std::vector<int>> parse_sweep_spec(const std::string& spec);

}  // namespace rhead
