// Mask specs and head selection for the causal experiments.
#include "niah/head_selection.h"

#include "model/head_mask_spec.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "io/builtin_data.h"
#include "io/error.h"
#include "io/text.h"

namespace rhead {

namespace {

int parse_count(const std::string& text, const std::string& spec) {
  int k = -1;
  char extra = 0;
  if (text.empty() || std::sscanf(text.c_str(), "%d%c", &k, &extra) != 1 || k < 0)
    throw Error("--mask '" + spec + "': '" + text + "' is not a head count");
  return k;
}

void check_shape(const analysis::ScoreMap& scores, const ModelConfig& config) {
  if (scores.n_layer != config.n_layer || scores.n_head != config.n_head)
    throw Error(scores.source + ": head scores cover " + std::to_string(scores.n_layer) + " layers x " +
                std::to_string(scores.n_head) + " heads, the model has " + std::to_string(config.n_layer) + " x " +
                std::to_string(config.n_head));
}

}  // namespace

MaskSpec parse_mask_spec(const std::string& spec) {
  MaskSpec m;
  m.text = spec;
  if (spec.empty() || spec == "none") return m;
  const size_t colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  const std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (kind == "top" || kind == "random") {
    m.kind = kind == "top" ? MaskKind::top : MaskKind::random;
    m.k = parse_count(arg, spec);
    if (m.k == 0) m.kind = MaskKind::none;
    return m;
  }
  if ((kind == "heads" || kind == "kv") && !arg.empty()) {
    m.kind = MaskKind::heads;
    return m;
  }
  throw Error("--mask '" + spec + "': expected none, top:K, random:K, heads:L-H,... or kv:L-G,...");
}

std::pair<MaskKind, std::vector<int>> parse_sweep_spec(const std::string& spec) {
  MaskKind kind = MaskKind::top;
  std::string list = spec;
  const size_t colon = spec.find(':');
  if (colon != std::string::npos) {
    const std::string name = spec.substr(0, colon);
    if (name == "top") kind = MaskKind::top;
    else if (name == "random") kind = MaskKind::random;
    else throw Error("--sweep '" + spec + "': expected top:K1,K2,... or random:K1,K2,...");
    list = spec.substr(colon + 1);
  }
  std::vector<int> ks;
  for (const auto& item : split_on(list, ',')) ks.push_back(parse_count(item, spec));
  if (ks.empty()) throw Error("--sweep '" + spec + "': no K given");
  return {kind, ks};
}

std::vector<HeadPair> top_k_heads(const analysis::ScoreMap& scores, const ModelConfig& config, int k) {
  check_shape(scores, config);
  if (k < 0 || static_cast<size_t>(k) > scores.head_count())
    throw Error("top:" + std::to_string(k) + ": the model has only " + std::to_string(scores.head_count()) + " heads");
  const std::vector<size_t> order = analysis::heads_by_mean(scores);
  std::vector<HeadPair> out;
  for (int i = 0; i < k; ++i) {
    const analysis::HeadId id = scores.head_at(order[i]);
    out.emplace_back(id.layer, id.head);
  }
  return out;
}

std::vector<HeadPair> random_exclusions(const analysis::ScoreMap& scores, int exclude_top) {
  const std::vector<size_t> order = analysis::heads_by_mean(scores);
  std::vector<HeadPair> out;
  for (size_t i = 0; i < order.size() && static_cast<int>(i) < exclude_top; ++i) {
    if (!(scores.mean[order[i]] > 0)) break;  // sorted: the rest score 0 too
    const analysis::HeadId id = scores.head_at(order[i]);
    out.emplace_back(id.layer, id.head);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<HeadPair> random_k_heads(const analysis::ScoreMap& scores, const ModelConfig& config, int k,
                                     uint64_t seed, int exclude_top) {
  check_shape(scores, config);
  const std::vector<HeadPair> excluded = random_exclusions(scores, exclude_top);
  const std::set<HeadPair> skip(excluded.begin(), excluded.end());
  std::vector<HeadPair> pool;
  for (int l = 0; l < config.n_layer; ++l)
    for (int h = 0; h < config.n_head; ++h)
      if (!skip.count({l, h})) pool.emplace_back(l, h);
  if (k < 0 || static_cast<size_t>(k) > pool.size())
    throw Error("random:" + std::to_string(k) + ": only " + std::to_string(pool.size()) + " of the model's " +
                std::to_string(config.n_layer * config.n_head) + " heads are outside the top " +
                std::to_string(exclude_top) + " heads with a score above 0");
  // Partial Fisher-Yates with SplitMix64: the draw is the same on every platform.
  SplitMix64 rng(seed ^ 0x5EEDC0DE2404ULL);
  for (int i = 0; i < k; ++i) {
    const size_t j = i + static_cast<size_t>(rng.below(pool.size() - i));
    std::swap(pool[i], pool[j]);
  }
  std::vector<HeadPair> out(pool.begin(), pool.begin() + k);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<HeadPair> parse_head_list(const std::string& spec, const ModelConfig& config) {
  return parse_head_mask(spec, config).heads();
}

std::vector<HeadPair> select_heads(const MaskSpec& spec, const ModelConfig& config, const analysis::ScoreMap* scores,
                                   uint64_t seed) {
  switch (spec.kind) {
    case MaskKind::none:
      return {};
    case MaskKind::heads:
      return parse_head_list(spec.text, config);
    case MaskKind::top:
    case MaskKind::random:
      if (!scores) throw Error("--mask '" + spec.text + "' needs --scores (a head_score JSON or a detect directory)");
      return spec.kind == MaskKind::top ? top_k_heads(*scores, config, spec.k)
                                        : random_k_heads(*scores, config, spec.k, seed);
  }
  return {};
}

HeadMask make_head_mask(const std::vector<HeadPair>& heads, const ModelConfig& config, MaskMode mode, MaskPhase phase) {
  HeadMask m(config.n_layer, config.n_head);
  for (auto [l, h] : heads) m.add(l, h);
  m.mode = mode;
  m.phase = phase;
  return m;
}

std::vector<std::string> head_keys(const std::vector<HeadPair>& heads) {
  std::vector<std::string> out;
  for (auto [l, h] : heads) out.push_back(std::to_string(l) + "-" + std::to_string(h));
  return out;
}

}  // namespace rhead
