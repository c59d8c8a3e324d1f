// Which heads a causal experiment masks: mask specs ("none", "top:K", "random:K",
// "heads:L-H,...", "kv:L-G,..."), the top-K heads of a retrieval-score map, and the
// random-K baseline drawn among heads that are not retrieval heads. Heads are
// (layer, query head) pairs over the model's real shape.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "analysis/score_map.h"
#include "model/config.h"
#include "model/probes.h"

namespace rhead {

using HeadPair = std::pair<int, int>;  // (layer, query head)

enum class MaskKind { none, top, random, heads };

// A parsed --mask value.
struct MaskSpec {
  MaskKind kind = MaskKind::none;
  int k = 0;          // top / random: number of heads
  std::string text;   // the spec as given (heads: / kv: lists are resolved against a model)
};

// Parses "none", "top:K", "random:K", "heads:..." and "kv:...". Error on anything else.
MaskSpec parse_mask_spec(const std::string& spec);

// A sweep list "top:0,5,10" (or "random:0,5" or "0,5,10") -> the Ks, ascending as given.
// Returns the kind named ("top" when none is).
std::pair<MaskKind, std::vector<int>> parse_sweep_spec(const std::string& spec);

// Random-K excludes every head ranked among the reference's top 100 whose score is > 0.
inline constexpr int kRandomExcludeTop = 100;

// The K heads of highest mean score (ties in layer-major order). Error when the map's shape
// is not the model's or K exceeds the number of heads.
std::vector<HeadPair> top_k_heads(const analysis::ScoreMap& scores, const ModelConfig& config, int k);

// The heads random-K never draws: the top `exclude_top` heads by mean whose mean is > 0.
std::vector<HeadPair> random_exclusions(const analysis::ScoreMap& scores, int exclude_top = kRandomExcludeTop);

// K heads drawn uniformly without replacement (seeded, portable generator) from every
// (layer, head) of the model not in random_exclusions. Sorted. Same seed, same heads.
// Error when fewer than K heads are eligible or the map's shape is not the model's.
std::vector<HeadPair> random_k_heads(const analysis::ScoreMap& scores, const ModelConfig& config, int k,
                                     uint64_t seed, int exclude_top = kRandomExcludeTop);

// "heads:L-H,..." / "kv:L-G,..." -> heads, checked against the model's shape. A KV group
// stands for all the query heads that share it.
std::vector<HeadPair> parse_head_list(const std::string& spec, const ModelConfig& config);

// Resolves a spec to its heads. `scores` may be null unless the spec is top/random.
std::vector<HeadPair> select_heads(const MaskSpec& spec, const ModelConfig& config,
                                   const analysis::ScoreMap* scores, uint64_t seed);

// A HeadMask over the model's shape holding `heads`.
HeadMask make_head_mask(const std::vector<HeadPair>& heads, const ModelConfig& config, MaskMode mode,
                        MaskPhase phase);

// "2-0" style keys of heads.
std::vector<std::string> head_keys(const std::vector<HeadPair>& heads);

}  // namespace rhead
