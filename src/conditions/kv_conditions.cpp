// KV-policy conditions, accounting fields, kv-plan and the KV sweep.
#include "conditions/kv_conditions.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "io/checked.h"
#include "io/error.h"
#include "io/json.h"
#include "io/json_range.h"
#include "io/mapped_file.h"
#include "io/text.h"
#include "records/results.h"

namespace rhead {

using nlohmann::json;

namespace {

std::string window_label(int64_t window, int64_t sink) {
  return "kv W" + std::to_string(window) + " S" + std::to_string(sink);
}

}  // namespace

json KvSetting::to_json() const {
  return {{"label", label},
          {"window", policy.active() ? policy.window : 0},
          {"sink", policy.active() ? policy.sink : 0},
          {"full_kind", full_kind},
          {"full_k", k},
          {"seed", seed},
          {"full_heads", head_keys(policy.full_heads())},
          {"full_kv_heads", head_keys(policy.full_kv_groups())}};
}

std::vector<HeadId> kv_full_heads(const std::string& spec, const ModelConfig& config, const analysis::ScoreMap* scores,
                                  uint64_t seed) {
  HeadSelection parsed;
  try {
    parsed = parse_head_selection(spec);
  } catch (const Error&) {
    throw Error("--kv-full '" + spec + "': expected none, all, top:K, random:K, heads:L-H,... or kv:L-G,...");
  }
  if (parsed.needs_scores() && !scores)
    throw Error("--kv-full '" + spec + "' needs --scores (a head_score JSON or a detect directory)");
  return select_heads(parsed, config, scores ? &scores->mean : nullptr, seed);
}

KvSetting make_kv_setting(int64_t window, int64_t sink, const std::string& full_spec, const ModelConfig& config,
                          const analysis::ScoreMap* scores, uint64_t seed) {
  KvSetting s;
  if (window <= 0) {
    if (full_spec != "none" && !full_spec.empty()) throw Error("--kv-full '" + full_spec + "' needs --kv-window W > 0");
    return s;
  }
  s.policy = KvPolicy(config, window, sink);
  const std::vector<HeadId> heads = kv_full_heads(full_spec, config, scores, seed);
  for (HeadId h : heads) s.policy.set_full(h.layer, h.head);
  s.k = static_cast<int>(heads.size());
  const std::string kind = full_spec.substr(0, full_spec.find(':'));
  s.full_kind = s.k == 0 ? "none" : kind == "kv" ? "heads" : kind;
  s.seed = s.full_kind == "random" ? seed : 0;
  std::string what;
  if (s.full_kind == "none")
    what = "none";
  else if (s.full_kind == "all")
    what = "all";
  else if (s.full_kind == "top")
    what = "top:" + std::to_string(s.k);
  else if (s.full_kind == "random")
    what = "random:" + std::to_string(s.k) + " seed " + std::to_string(seed);
  else
    what = full_spec;
  s.label = window_label(window, sink) + " full " + what;
  return s;
}

std::vector<int64_t> parse_window_list(const std::string& text) {
  std::vector<int64_t> out;
  for (const std::string& item : split_on(text, ',')) {
    char* end = nullptr;
    const long long w = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || w <= 0 || w > INT32_MAX)
      throw Error("--kv-sweep-window '" + text + "': '" + item + "' is not a positive window");
    out.push_back(w);
  }
  if (out.empty()) throw Error("--kv-sweep-window: no window given");
  return out;
}

std::vector<KvSetting> kv_settings(const KvRequest& r, const ModelConfig& config, const analysis::ScoreMap* scores) {
  if (r.sink < 0) throw Error("--kv-sink " + std::to_string(r.sink) + " is negative");
  if (r.window < 0) throw Error("--kv-window " + std::to_string(r.window) + " is negative");
  if (r.seeds.empty()) throw Error("no --seed given");
  const bool sweep = !r.sweep_windows.empty() || !r.sweep_full.empty();
  if (sweep) {
    if (r.sweep_windows.empty()) throw Error("--kv-sweep-full needs --kv-sweep-window");
    if (r.window > 0 || r.full != "none" || !r.policy_file.empty())
      throw Error("give either --kv-sweep-window or --kv-window / --kv-full / --kv-policy-file, not both");
    const std::string full = r.sweep_full.empty() ? "top:0" : r.sweep_full;
    const auto [kind, ks] = parse_sweep_spec(full);
    std::vector<KvSetting> out;
    std::set<std::string> seen;
    auto add = [&](KvSetting s) {
      if (seen.insert(s.label).second) out.push_back(std::move(s));
    };
    for (int64_t w : r.sweep_windows)
      for (int k : ks) {
        if (k == 0) {
          add(make_kv_setting(w, r.sink, "none", config, scores, 0));
          continue;
        }
        if (kind == SelectionKind::top) add(make_kv_setting(w, r.sink, "top:" + std::to_string(k), config, scores, 0));
        if (kind == SelectionKind::random || r.sweep_random)
          for (uint64_t seed : r.seeds)
            add(make_kv_setting(w, r.sink, "random:" + std::to_string(k), config, scores, seed));
      }
    return out;
  }
  if (!r.policy_file.empty()) {
    if (r.window > 0 || r.full != "none")
      throw Error("give either --kv-policy-file or --kv-window / --kv-full, not both");
    KvSetting s;
    s.policy = read_head_policy(r.policy_file, config);
    s.full_kind = "plan";
    s.k = s.policy.full_query_heads();
    s.label = window_label(s.policy.window, s.policy.sink) + " plan " + r.policy_file;
    return {s};
  }
  const bool random = r.full.rfind("random:", 0) == 0;
  std::vector<KvSetting> out;
  if (random && r.window > 0)
    for (uint64_t seed : r.seeds) out.push_back(make_kv_setting(r.window, r.sink, r.full, config, scores, seed));
  else
    out.push_back(make_kv_setting(r.window, r.sink, r.full, config, scores, 0));
  return out;
}

json kv_accounting_json(const KvAccounting& a, const KvPolicy& p) {
  return {{"length", a.length},
          {"window", p.active() ? p.window : 0},
          {"sink", p.active() ? p.sink : 0},
          {"full_query_heads", a.full_query_heads},
          {"full_kv_heads", a.full_kv_heads},
          {"query_kept_fraction", a.query_kept_fraction()},
          {"kv_kept_fraction", a.kv_kept_fraction()},
          {"query_bytes_kept", a.query_bytes_kept()},
          {"query_bytes_full", a.query_bytes_full()},
          {"kv_bytes_kept", a.kv_bytes_kept()},
          {"kv_bytes_full", a.kv_bytes_full()},
          {"kv_bytes_held_predicted", a.kv_bytes_held()}};
}

void add_kv_fields(const KvSetting& s, int head_dim, KvType kv_type, int64_t chunk, int64_t length, json& line) {
  line["kv_policy"] = s.to_json();
  line["kv_cache"] = kv_accounting_json(kv_accounting(s.policy, head_dim, kv_type, length, chunk), s.policy);
}

// --- kv-plan ---

KvPlan plan_kv_cache(const analysis::ScoreMap& scores, const ModelConfig& config, const KvPlanRequest& r) {
  if (scores.n_layer != config.n_layer || scores.n_head != config.n_head)
    throw Error(scores.source + ": head scores cover " + std::to_string(scores.n_layer) + " layers x " +
                std::to_string(scores.n_head) + " heads, the model has " + std::to_string(config.n_layer) + " x " +
                std::to_string(config.n_head));
  if (!(r.budget > 0 && r.budget <= 1)) throw Error("--budget must be a fraction in (0, 1], e.g. 0.25");
  if (r.length <= 0) throw Error("--length must be positive");
  if (r.window <= 0) throw Error("--kv-window must be positive for a plan");
  KvPlan plan;
  plan.request = r;
  const int group = config.group_size();
  const analysis::ScoreMap by_kv_head = analysis::kv_head_map(scores, config.n_kv_head);
  for (int l = 0; l < config.n_layer; ++l)
    for (int g = 0; g < config.n_kv_head; ++g) plan.ranking.push_back({l, g, by_kv_head.mean_at(l, g)});
  std::stable_sort(plan.ranking.begin(), plan.ranking.end(),
                   [](const KvGroupScore& a, const KvGroupScore& b) { return a.score > b.score; });
  plan.policy = KvPolicy(config, r.window, r.sink);
  plan.predicted = kv_accounting(plan.policy, config.head_dim, r.kv_type, r.length, r.chunk);
  plan.floor_fraction = plan.predicted.kv_kept_fraction();
  if (plan.floor_fraction > r.budget) {
    char buf[256];
    std::snprintf(
        buf, sizeof buf,
        "budget %.1f%% is below the %.1f%% that window %lld + sink %lld keep at length %lld with no full head",
        100 * r.budget, 100 * plan.floor_fraction, static_cast<long long>(r.window), static_cast<long long>(r.sink),
        static_cast<long long>(r.length));
    throw Error(buf);
  }
  for (const KvGroupScore& s : plan.ranking) {
    if (!(s.score > 0)) break;
    KvPolicy trial = plan.policy;
    for (int h = s.kv_head * group; h < (s.kv_head + 1) * group; ++h) trial.set_full(s.layer, h);
    const KvAccounting a = kv_accounting(trial, config.head_dim, r.kv_type, r.length, r.chunk);
    if (a.kv_kept_fraction() > r.budget) break;  // every KV head costs the same: none after fits either
    plan.policy = std::move(trial);
    plan.predicted = a;
    plan.full.push_back(s);
  }
  return plan;
}

json kv_plan_json(const KvPlan& plan, const ModelConfig& config, const std::string& model_source,
                  const std::string& scores_source) {
  const int group = config.group_size();
  json full = json::array(), ranking = json::array();
  for (const KvGroupScore& s : plan.full) {
    std::vector<int> heads;
    for (int h = s.kv_head * group; h < (s.kv_head + 1) * group; ++h) heads.push_back(h);
    full.push_back({{"layer", s.layer}, {"kv_head", s.kv_head}, {"query_heads", heads}, {"score", s.score}});
  }
  for (const KvGroupScore& s : plan.ranking)
    ranking.push_back({{"layer", s.layer}, {"kv_head", s.kv_head}, {"score", s.score}});
  const KvAccounting& a = plan.predicted;
  return {{"format", "rhead-head-policy"},
          {"version", 1},
          {"model",
           {{"source", model_source},
            {"n_layer", config.n_layer},
            {"n_head", config.n_head},
            {"n_kv_head", config.n_kv_head},
            {"head_dim", config.head_dim}}},
          {"window", plan.request.window},
          {"sink", plan.request.sink},
          {"length", plan.request.length},
          {"budget", plan.request.budget},
          {"kv_dtype", kv_type_name(plan.request.kv_type)},
          {"full_kv_heads", full},
          {"full_query_heads", head_keys(plan.policy.full_heads())},
          {"predicted",
           {{"kv_bytes_full", a.kv_bytes_full()},
            {"kv_bytes_kept", a.kv_bytes_kept()},
            {"kv_bytes_held", a.kv_bytes_held()},
            {"prefill_chunk", plan.request.chunk},
            {"kv_kept_fraction", a.kv_kept_fraction()},
            {"query_kept_fraction", a.query_kept_fraction()},
            {"kv_kept_fraction_no_full_head", plan.floor_fraction}}},
          {"ranking", ranking},
          {"scores", scores_source}};
}

KvPolicy kv_policy_from_duo(const DuoPattern& d, const ModelConfig& config, const std::string& where) {
  if (d.n_layer != config.n_layer || d.n_kv_head != config.n_kv_head)
    fail(where, "the pattern has " + std::to_string(d.n_layer) + " layers x " + std::to_string(d.n_kv_head) +
                    " KV heads, the model " + std::to_string(config.n_layer) + " x " +
                    std::to_string(config.n_kv_head));
  KvPolicy p(config, d.recent_size, d.sink_size);
  const int group = config.group_size();
  for (int l = 0; l < d.n_layer; ++l)
    for (int g = 0; g < d.n_kv_head; ++g)
      if (d.is_full(l, g))
        for (int h = g * group; h < (g + 1) * group; ++h) p.set_full(l, h);
  return p;
}

DuoPattern duo_pattern_of_plan(const KvPlan& plan, const ModelConfig& config, DuoGates gates) {
  DuoPattern d;
  d.n_layer = config.n_layer;
  d.n_kv_head = config.n_kv_head;
  d.sink_size = plan.request.sink;
  d.recent_size = plan.request.window;
  d.gates.assign(static_cast<size_t>(d.n_layer) * d.n_kv_head, 0.0);
  const auto at = [&](const KvGroupScore& s) -> double& {
    return d.gates[static_cast<size_t>(s.layer) * d.n_kv_head + s.kv_head];
  };
  if (gates == DuoGates::binary) {
    for (const KvGroupScore& s : plan.full) at(s) = 1.0;
    return d;
  }
  double lowest_full = 2.0, highest_streaming = -1.0;
  for (const KvGroupScore& s : plan.ranking) at(s) = std::clamp(s.score, 0.0, 1.0);
  for (const KvGroupScore& s : plan.ranking) {
    const bool full = std::any_of(plan.full.begin(), plan.full.end(),
                                  [&](const KvGroupScore& f) { return f.layer == s.layer && f.kv_head == s.kv_head; });
    if (full)
      lowest_full = std::min(lowest_full, at(s));
    else
      highest_streaming = std::max(highest_streaming, at(s));
  }
  if (lowest_full <= highest_streaming)
    throw Error("--duo-gates score: a streaming KV head scores " + std::to_string(highest_streaming) +
                ", as high as the lowest full one; no threshold separates them (use --duo-gates binary)");
  // No full head: a threshold above every gate (gates are clipped to [0, 1]).
  d.threshold = plan.full.empty() ? 2.0 : lowest_full;
  return d;
}

KvPolicy read_head_policy(const std::string& path, const ModelConfig& config) {
  if (is_duo_pattern_dir(path)) return kv_policy_from_duo(read_duo_pattern(path), config, path);
  if (std::filesystem::is_directory(path))
    fail(path, std::string("a folder without ") + kDuoHeadsFile +
                   " (expected a head_policy.json or a DuoAttention "
                   "pattern folder)");
  // Strict: integers are JSON integers in range (no 1.9 for 1, no 2^32 + 3 for 3), the version
  // is exactly 1, a key is given once (parse_json), and the redundant fields agree.
  const json doc = read_json_file(path);
  return guard_input(path, [&] {
    if (!doc.is_object() || json_string_field(doc, "format", path, "") != "rhead-head-policy")
      fail(path, "not a head policy (expected \"format\": \"rhead-head-policy\")");
    const json* version = json_field(doc, "version", path);
    if (!version || !version->is_number_integer() || version->get<int64_t>() != 1)
      fail(path,
           "unsupported head policy version " + (version ? version->dump() : std::string("(none)")) + " (expected 1)");
    const json& m = json_required(doc, "model", path);
    const int64_t n_layer = json_integer(json_required(m, "n_layer", path), path, "model.n_layer", 1, kMaxModelCount);
    const int64_t n_head = json_integer(json_required(m, "n_head", path), path, "model.n_head", 1, kMaxModelCount);
    const int64_t n_kv_head =
        json_integer(json_required(m, "n_kv_head", path), path, "model.n_kv_head", 1, kMaxModelCount);
    if (n_layer != config.n_layer || n_head != config.n_head || n_kv_head != config.n_kv_head)
      fail(path, "the policy is for " + std::to_string(n_layer) + " layers x " + std::to_string(n_head) +
                     " query heads x " + std::to_string(n_kv_head) + " KV heads, the model has " +
                     std::to_string(config.n_layer) + " x " + std::to_string(config.n_head) + " x " +
                     std::to_string(config.n_kv_head));
    const int64_t window =
        json_integer(json_required(doc, "window", path), path, "field 'window'", 1, kMaxTensorElements);
    const int64_t sink = json_integer(json_required(doc, "sink", path), path, "field 'sink'", 0, kMaxTensorElements);
    if (const json* length = json_field(doc, "length", path))
      json_integer(*length, path, "field 'length'", 1, kMaxTensorElements);
    if (const json* budget = json_field(doc, "budget", path)) json_number_in(*budget, path, "field 'budget'", 0.0, 1.0);
    KvPolicy p(config, window, sink);
    const int group = config.group_size();
    const json& full = json_required(doc, "full_kv_heads", path);
    if (!full.is_array()) fail(path, "field 'full_kv_heads' must be an array");
    std::set<std::pair<int, int>> seen;
    for (const json& g : full) {
      const int l = json_int(json_required(g, "layer", path), path, "full_kv_heads layer", 0, config.n_layer - 1);
      const int kv =
          json_int(json_required(g, "kv_head", path), path, "full_kv_heads kv_head", 0, config.n_kv_head - 1);
      if (!seen.emplace(l, kv).second) fail(path, "full KV head " + HeadId{l, kv}.key() + " is listed twice");
      for (int h = kv * group; h < (kv + 1) * group; ++h) p.set_full(l, h);
    }
    // full_query_heads repeats full_kv_heads for other readers; it must say the same.
    if (const json* q = json_field(doc, "full_query_heads", path)) {
      if (!q->is_array()) fail(path, "field 'full_query_heads' must be an array");
      std::vector<std::string> listed;
      for (const json& k : *q) listed.push_back(json_string(k, path, "full_query_heads entry"));
      std::sort(listed.begin(), listed.end());
      std::vector<std::string> derived = head_keys(p.full_heads());
      std::sort(derived.begin(), derived.end());
      if (listed != derived) fail(path, "field 'full_query_heads' does not match the query heads of 'full_kv_heads'");
    }
    return p;
  });
}

// --- sweep ---

}  // namespace rhead
