// Previous-token, duplicate-token and induction head detectors on repeated random tokens.
#include "experiments/synthetic_heads.h"

#include <set>

#include "analysis/score_map.h"
#include "analysis/stats.h"
#include "io/atomic_file.h"
#include "io/builtin_data.h"
#include "io/enum_names.h"
#include "io/error.h"
#include "model/session.h"
#include "tokenizer/tokenizer.h"

namespace rhead {

constexpr EnumName<SyntheticPattern> kSyntheticPatterns[] = {{SyntheticPattern::previous_token, "previous-token"},
                                                              {SyntheticPattern::duplicate_token, "duplicate-token"},
                                                              {SyntheticPattern::induction, "induction"}};

const char* synthetic_pattern_name(SyntheticPattern p) { return name_in(kSyntheticPatterns, p); }

const std::vector<SyntheticPattern>& synthetic_patterns() {
  static const std::vector<SyntheticPattern> all = {SyntheticPattern::previous_token, SyntheticPattern::duplicate_token,
                                                    SyntheticPattern::induction};
  return all;
}

SyntheticSequence synthetic_sequence(const Tokenizer& tok, int n_vocab, int64_t n, std::uint64_t seed, int index) {
  std::vector<int32_t> pool;
  for (int32_t id = 0; id < n_vocab; ++id)
    if (!tok.is_special(id) && id != tok.bos_id()) pool.push_back(id);
  if (n < 2 || static_cast<int64_t>(pool.size()) < n)
    throw Error("synthetic heads: need " + std::to_string(n) + " distinct non-special tokens, the vocabulary has " +
                std::to_string(pool.size()));
  // splitmix64, one stream per (seed, index): a partial Fisher-Yates shuffle of the pool.
  SplitMix64 rng(seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(index) + 1);
  for (int64_t i = 0; i < n; ++i) {
    const auto j =
        static_cast<std::size_t>(i) + static_cast<std::size_t>(rng.below(pool.size() - static_cast<std::size_t>(i)));
    std::swap(pool[static_cast<std::size_t>(i)], pool[j]);
  }
  SyntheticSequence s;
  s.n = n;
  if (tok.bos_id() >= 0) s.tokens.push_back(tok.bos_id());
  s.offset = static_cast<int64_t>(s.tokens.size());
  for (int copy = 0; copy < 2; ++copy) s.tokens.insert(s.tokens.end(), pool.begin(), pool.begin() + n);
  return s;
}

HeadGrid<double> synthetic_scores(const ProbeRecord& r, const SyntheticSequence& seq, SyntheticPattern pattern) {
  const int64_t total = static_cast<int64_t>(seq.tokens.size());
  if (r.n_obs != total || r.top_k < total)
    throw Error("synthetic heads: the probe record does not hold every full row");
  HeadGrid<double> out(r.n_layer, r.n_head);
  int rows = 0;
  for (int o = 0; o < r.n_obs; ++o) {
    const int64_t i = r.positions[o];
    int64_t target = -1;
    switch (pattern) {
      case SyntheticPattern::previous_token: target = i >= 1 ? i - 1 : -1; break;
      case SyntheticPattern::duplicate_token: target = i >= seq.offset + seq.n ? i - seq.n : -1; break;
      case SyntheticPattern::induction: target = i >= seq.offset + seq.n ? i - seq.n + 1 : -1; break;
    }
    if (target < 0) continue;
    ++rows;
    for (int l = 0; l < r.n_layer; ++l)
      for (int h = 0; h < r.n_head; ++h) {
        const int64_t base = r.index(o, l, h) * r.top_k;
        for (int k = 0; k < r.top_k; ++k)
          if (r.topk[base + k] == target) {
            out.at(l, h) += r.topk_weight[base + k];
            break;
          }
      }
  }
  for (auto& v : out.values) v /= rows;
  return out;
}

ProbeRecord full_attention_rows(const LoadedModel& lm, const std::vector<int32_t>& tokens) {
  Session session(lm.model);
  ProbeRequest req;
  req.argmax = false;
  req.top_k = static_cast<int>(tokens.size());
  for (int64_t i = 0; i < static_cast<int64_t>(tokens.size()); ++i) req.positions.push_back(i);
  ProbeRecord record;
  ForwardOptions fo;
  fo.probes = &req;
  fo.probe_out = &record;
  session.forward(tokens, fo);
  return record;
}

std::vector<nlohmann::json> detect_synthetic_heads(const LoadedModel& lm, const std::vector<SyntheticPattern>& patterns,
                                                   const SyntheticOptions& o) {
  if (!lm.tokenizer) throw Error("synthetic heads: the model has no tokenizer");
  const ModelConfig& c = lm.model->config;
  std::vector<nlohmann::json> out(patterns.size(), nlohmann::json::object());
  for (auto& j : out)
    for (int l = 0; l < c.n_layer; ++l)
      for (int h = 0; h < c.n_head; ++h) j[HeadId{l, h}.key()] = nlohmann::json::array();
  for (int s = 0; s < o.sequences; ++s) {
    const SyntheticSequence seq = synthetic_sequence(*lm.tokenizer, c.n_vocab, o.length, o.seed, s);
    const ProbeRecord record = full_attention_rows(lm, seq.tokens);
    for (std::size_t p = 0; p < patterns.size(); ++p) {
      const HeadGrid<double> scores = synthetic_scores(record, seq, patterns[p]);
      for (int l = 0; l < c.n_layer; ++l)
        for (int h = 0; h < c.n_head; ++h) out[p][HeadId{l, h}.key()].push_back(scores.at(l, h));
    }
  }
  return out;
}

DetectMethods parse_detect_methods(const std::string& list) {
  DetectMethods m;
  std::set<std::string> seen;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    const std::string name = list.substr(start, comma - start);
    start = comma + 1;
    if (!seen.insert(name).second) throw Error("--methods: '" + name + "' is listed twice");
    if (name == "copy") continue;
    bool known = false;
    for (SyntheticPattern p : synthetic_patterns())
      if (name == synthetic_pattern_name(p)) m.synthetic.push_back(p), known = true;
    if (known) continue;
    if (name == "qrhead" || name == "lookback")
      throw Error("--methods: '" + name +
                  "' is not implemented yet (copy, previous-token, duplicate-token, induction)");
    throw Error("--methods: unknown method '" + name + "' (copy, previous-token, duplicate-token, induction)");
  }
  if (!seen.count("copy")) throw Error("--methods: copy (the retrieval score) is always run; list it");
  return m;
}

nlohmann::json write_method_scores(const std::string& dir, const LoadedModel& lm, const DetectMethods& methods,
                                   const SyntheticOptions& options) {
  std::vector<analysis::ScoreMap> maps;
  maps.push_back(analysis::read_head_score_json(dir + "/head_score.json"));
  maps.back().label = "copy";
  const std::vector<nlohmann::json> scores = detect_synthetic_heads(lm, methods.synthetic, options);
  for (std::size_t i = 0; i < scores.size(); ++i) {
    const std::string name = synthetic_pattern_name(methods.synthetic[i]);
    const std::string path = dir + "/head_score." + name + ".json";
    write_file_atomic(path, scores[i].dump() + "\n");
    maps.push_back(analysis::score_map_from_reference_json(scores[i], path));
    maps.back().label = name;
  }
  nlohmann::json pairs = nlohmann::json::array(), names = nlohmann::json::array();
  for (const auto& m : maps) names.push_back(m.label);
  for (std::size_t a = 0; a < maps.size(); ++a)
    for (std::size_t b = a + 1; b < maps.size(); ++b) {
      const nlohmann::json c = analysis::to_json(analysis::compare_pair(maps[a], maps[b], false, {5, 10, 20}));
      pairs.push_back({{"a", c["a"]},
                       {"b", c["b"]},
                       {"spearman", c["spearman"]},
                       {"pearson", c["pearson"]},
                       {"top_k_overlap", c["top_k_overlap"]}});
    }
  return {{"methods", names},
          {"sequences", options.sequences},
          {"sequence_length", options.length},
          {"seed", options.seed},
          {"pairs", pairs}};
}

}  // namespace rhead
