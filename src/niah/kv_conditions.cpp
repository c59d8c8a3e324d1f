// KV-policy conditions, accounting fields, kv-plan and the KV sweep.
#include "niah/kv_conditions.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "io/checked.h"
#include "io/error.h"
#include "io/json.h"
#include "io/json_range.h"
#include "io/mapped_file.h"
#include "io/text.h"
#include "niah/causal.h"
#include "niah/results.h"
#include "report/drawing.h"
#include "report/plots.h"

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

std::vector<HeadId> kv_full_heads(const std::string& spec, const ModelConfig& config,
                                  const analysis::ScoreMap* scores, uint64_t seed) {
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
  if (s.full_kind == "none") what = "none";
  else if (s.full_kind == "all") what = "all";
  else if (s.full_kind == "top") what = "top:" + std::to_string(s.k);
  else if (s.full_kind == "random") what = "random:" + std::to_string(s.k) + " seed " + std::to_string(seed);
  else what = full_spec;
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
    if (r.window > 0 || r.full != "none") throw Error("give either --kv-policy-file or --kv-window / --kv-full, not both");
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
          {"kv_bytes_full", a.kv_bytes_full()}};
}

void add_kv_fields(const KvSetting& s, int head_dim, int element_bytes, int64_t length, json& line) {
  line["kv_policy"] = s.to_json();
  line["kv_cache"] = kv_accounting_json(kv_accounting(s.policy, head_dim, element_bytes, length), s.policy);
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
  for (int l = 0; l < config.n_layer; ++l)
    for (int g = 0; g < config.n_kv_head; ++g) {
      KvGroupScore s{l, g, 0.0};
      for (int h = g * group; h < (g + 1) * group; ++h) s.score = std::max(s.score, scores.mean_at(l, h));
      plan.ranking.push_back(s);
    }
  std::stable_sort(plan.ranking.begin(), plan.ranking.end(),
                   [](const KvGroupScore& a, const KvGroupScore& b) { return a.score > b.score; });
  plan.policy = KvPolicy(config, r.window, r.sink);
  plan.predicted = kv_accounting(plan.policy, config.head_dim, r.element_bytes, r.length);
  plan.floor_fraction = plan.predicted.kv_kept_fraction();
  if (plan.floor_fraction > r.budget) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "budget %.1f%% is below the %.1f%% that window %lld + sink %lld keep at length %lld with no full head",
                  100 * r.budget, 100 * plan.floor_fraction, static_cast<long long>(r.window),
                  static_cast<long long>(r.sink), static_cast<long long>(r.length));
    throw Error(buf);
  }
  for (const KvGroupScore& s : plan.ranking) {
    if (!(s.score > 0)) break;
    KvPolicy trial = plan.policy;
    for (int h = s.kv_head * group; h < (s.kv_head + 1) * group; ++h) trial.set_full(s.layer, h);
    const KvAccounting a = kv_accounting(trial, config.head_dim, r.element_bytes, r.length);
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
          {"kv_dtype", plan.request.element_bytes == 2 ? "f16" : "f32"},
          {"full_kv_heads", full},
          {"full_query_heads", head_keys(plan.policy.full_heads())},
          {"predicted",
           {{"kv_bytes_full", a.kv_bytes_full()},
            {"kv_bytes_kept", a.kv_bytes_kept()},
            {"kv_kept_fraction", a.kv_kept_fraction()},
            {"query_kept_fraction", a.query_kept_fraction()},
            {"kv_kept_fraction_no_full_head", plan.floor_fraction}}},
          {"ranking", ranking},
          {"scores", scores_source}};
}

KvPolicy read_head_policy(const std::string& path, const ModelConfig& config) {
  // Strict: integers are JSON integers in range (no 1.9 for 1, no 2^32 + 3 for 3), the version
  // is exactly 1, a key is given once (parse_json), and the redundant fields agree.
  const json doc = read_json_file(path);
  return guard_input(path, [&] {
    if (!doc.is_object() || json_string_field(doc, "format", path, "") != "rhead-head-policy")
      fail(path, "not a head policy (expected \"format\": \"rhead-head-policy\")");
    const json* version = json_field(doc, "version", path);
    if (!version || !version->is_number_integer() || version->get<int64_t>() != 1)
      fail(path, "unsupported head policy version " + (version ? version->dump() : std::string("(none)")) + " (expected 1)");
    const json& m = json_required(doc, "model", path);
    const int64_t n_layer = json_integer(json_required(m, "n_layer", path), path, "model.n_layer", 1, kMaxModelCount);
    const int64_t n_head = json_integer(json_required(m, "n_head", path), path, "model.n_head", 1, kMaxModelCount);
    const int64_t n_kv_head = json_integer(json_required(m, "n_kv_head", path), path, "model.n_kv_head", 1, kMaxModelCount);
    if (n_layer != config.n_layer || n_head != config.n_head || n_kv_head != config.n_kv_head)
      fail(path, "the policy is for " + std::to_string(n_layer) + " layers x " + std::to_string(n_head) +
                     " query heads x " + std::to_string(n_kv_head) + " KV heads, the model has " +
                     std::to_string(config.n_layer) + " x " + std::to_string(config.n_head) + " x " +
                     std::to_string(config.n_kv_head));
    const int64_t window = json_integer(json_required(doc, "window", path), path, "field 'window'", 1, kMaxTensorElements);
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
      const int kv = json_int(json_required(g, "kv_head", path), path, "full_kv_heads kv_head", 0, config.n_kv_head - 1);
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
      if (listed != derived)
        fail(path, "field 'full_query_heads' does not match the query heads of 'full_kv_heads'");
    }
    return p;
  });
}

// --- sweep ---

namespace {
int curve_order(const std::string& c) { return c == "retrieval" ? 0 : c == "random" ? 1 : c == "none" ? 2 : 3; }
}  // namespace

std::vector<KvSweepPoint> kv_sweep_points(const std::vector<json>& summaries) {
  struct Acc {
    KvSweepPoint p;
    double kv = 0, query = 0, score = 0;
  };
  std::map<std::tuple<std::string, int64_t, int>, Acc> acc;
  for (const json& s : summaries) {
    const json kv = s.value("kv_policy", json::object());
    const int64_t window = kv.value("window", int64_t{0});
    const std::string kind = kv.value("full_kind", std::string("none"));
    const std::string curve = window <= 0       ? "full"
                              : kind == "none"   ? "none"
                              : kind == "top"    ? "retrieval"
                              : kind == "random" ? "random"
                                                 : "";
    if (curve.empty()) continue;
    const int k = kv.value("full_k", 0);
    Acc& a = acc[{curve, window, k}];
    a.p.curve = curve;
    a.p.window = window;
    a.p.k = k;
    a.p.conditions += 1;
    a.kv += s.value("kv_kept_fraction", 1.0);
    a.query += s.value("query_kept_fraction", 1.0);
    a.score += s.value("mean_score", 0.0);
  }
  std::vector<KvSweepPoint> out;
  for (auto& [key, a] : acc) {
    a.p.kv_kept_pct = 100.0 * a.kv / a.p.conditions;
    a.p.query_kept_pct = 100.0 * a.query / a.p.conditions;
    a.p.mean_score = a.score / a.p.conditions;
    out.push_back(a.p);
  }
  std::stable_sort(out.begin(), out.end(), [&](const KvSweepPoint& a, const KvSweepPoint& b) {
    if (curve_order(a.curve) != curve_order(b.curve)) return curve_order(a.curve) < curve_order(b.curve);
    if (a.kv_kept_pct != b.kv_kept_pct) return a.kv_kept_pct < b.kv_kept_pct;
    return a.window < b.window;
  });
  return out;
}

json kv_sweep_json(const std::vector<KvSweepPoint>& points) {
  json j = json::object();
  for (const KvSweepPoint& p : points)
    j[p.curve].push_back({{"window", p.window},
                          {"full_k", p.k},
                          {"conditions", p.conditions},
                          {"kv_kept_pct", p.kv_kept_pct},
                          {"query_kept_pct", p.query_kept_pct},
                          {"mean_score", p.mean_score}});
  return j;
}

std::vector<KvSweepPoint> read_kv_sweep_points(const std::string& path) {
  json doc;
  try {
    doc = read_json_file(path);
  } catch (const json::exception& e) {
    fail(path, std::string("invalid JSON: ") + e.what());
  }
  std::vector<KvSweepPoint> out;
  if (!doc.is_object()) fail(path, "not a KV sweep (expected an object of curves)");
  try {
    for (const auto& [curve, list] : doc.items())
      for (const json& p : list) {
        KvSweepPoint k;
        k.curve = curve;
        k.window = p.at("window").get<int64_t>();
        k.k = p.at("full_k").get<int>();
        k.conditions = p.at("conditions").get<int>();
        k.kv_kept_pct = p.at("kv_kept_pct").get<double>();
        k.query_kept_pct = p.at("query_kept_pct").get<double>();
        k.mean_score = p.at("mean_score").get<double>();
        out.push_back(k);
      }
  } catch (const json::exception& e) {
    fail(path, std::string("malformed KV sweep: ") + e.what());
  }
  std::stable_sort(out.begin(), out.end(), [&](const KvSweepPoint& a, const KvSweepPoint& b) {
    return curve_order(a.curve) < curve_order(b.curve);
  });
  return out;
}

std::string format_kv_sweep(const std::vector<KvSweepPoint>& points, const std::string& score_name) {
  std::ostringstream out;
  char buf[256];
  std::snprintf(buf, sizeof buf, " %-10s %6s %6s %5s %13s %16s %10s\n", "full heads", "window", "K", "runs",
                "KV kept (%)", "query kept (%)", score_name.c_str());
  out << buf;
  for (const KvSweepPoint& p : points) {
    std::snprintf(buf, sizeof buf, " %-10s %6lld %6d %5d %13.1f %16.1f %10.1f\n", p.curve.c_str(),
                  static_cast<long long>(p.window), p.k, p.conditions, p.kv_kept_pct, p.query_kept_pct,
                  p.mean_score);
    out << buf;
  }
  return out.str();
}

std::vector<std::string> write_kv_sweep(const std::string& dir, const std::vector<KvSweepPoint>& points,
                                        const std::string& title, const std::string& score_name) {
  std::vector<std::string> written;
  write_file_atomic(dir + "/kv_sweep.json", kv_sweep_json(points).dump(2) + "\n");
  written.push_back(dir + "/kv_sweep.json");
  std::string tsv = "curve\twindow\tfull_k\tconditions\tkv_kept_pct\tquery_kept_pct\tmean_score\n";
  for (const KvSweepPoint& p : points) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s\t%lld\t%d\t%d\t%.3f\t%.3f\t%.3f\n", p.curve.c_str(),
                  static_cast<long long>(p.window), p.k, p.conditions, p.kv_kept_pct, p.query_kept_pct, p.mean_score);
    tsv += buf;
  }
  write_file_atomic(dir + "/kv_sweep.tsv", tsv);
  written.push_back(dir + "/kv_sweep.tsv");

  report::LinePlotSpec spec;
  spec.title = title;
  spec.x_label = "KV cache kept (% of the full cache, per KV head)";
  spec.y_label = score_name;
  spec.y_min = 0;
  spec.y_max = 100;
  size_t color = 0;
  // Each curve runs through its points in order of KV kept, across windows; the full cache
  // (no policy) is one reference point at 100%.
  for (const char* curve : {"retrieval", "random", "none", "full"}) {
    report::LineSeries s;
    s.name = std::string(curve) == "retrieval" ? "retrieval heads full (top-K)"
             : std::string(curve) == "random"  ? "random heads full (random-K)"
             : std::string(curve) == "none"    ? "no head full"
                                               : "full cache (no policy)";
    for (const KvSweepPoint& p : points)
      if (p.curve == curve) s.points.emplace_back(p.kv_kept_pct, p.mean_score);
    s.color = report::series_color(color++);
    s.dashed = std::string(curve) != "retrieval";
    if (!s.points.empty()) spec.series.push_back(std::move(s));
  }
  if (spec.series.empty()) return written;
  const report::Drawing d = report::line_plot(spec);
  for (const char* ext : {".png", ".svg"}) {
    report::save_figure(d, dir + "/kv_sweep" + ext);
    written.push_back(dir + "/kv_sweep" + ext);
  }
  return written;
}

}  // namespace rhead
