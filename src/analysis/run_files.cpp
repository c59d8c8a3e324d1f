// Readers for rhead detect and niah output directories. Every field is checked for
// its JSON type so that a malformed file ends in one line naming file, line and field.
#include "analysis/run_files.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "io/checked.h"
#include "io/error.h"
#include "io/json.h"
#include "io/json_range.h"
#include "io/jsonl.h"
#include "io/mapped_file.h"
#include "model/heads.h"

namespace rhead::analysis {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

ModelInfo read_model_info(const json& doc, const std::string& where) {
  ModelInfo info;
  if (!doc.contains("model")) return info;
  const json& m = doc["model"];
  if (m.is_string()) {  // some writers store only the model path
    info.path = m.get<std::string>();
    info.raw = json{{"path", info.path}};
    return info;
  }
  if (!m.is_object()) fail(where, "field \"model\" is not an object");
  const std::string mw = where + ": model";
  info.raw = m;
  info.path = json_string_field(m, "path", mw, "");
  info.architecture = json_string_field(m, "architecture", mw, "");
  info.n_layer = json_int_field(m, "n_layer", mw, 0);
  info.n_head = json_int_field(m, "n_head", mw, 0);
  info.n_kv_head = json_int_field(m, "n_kv_head", mw, 0);
  info.head_dim = json_int_field(m, "head_dim", mw, 0);
  info.n_vocab = json_int_field(m, "n_vocab", mw, 0);
  info.n_ctx = json_int_field(m, "n_ctx", mw, 0);
  return info;
}

json read_settings(const json& doc, const std::string& where) {
  if (!doc.contains("settings")) return json::object();
  if (!doc["settings"].is_object()) fail(where, "field \"settings\" is not an object");
  return doc["settings"];
}

json read_object_file(const std::string& path) {
  json doc = read_json_file(path);
  if (!doc.is_object()) fail(path, "expected a JSON object");
  return doc;
}

}  // namespace

std::vector<TestResult> read_detect_results(const std::string& path) {
  std::vector<TestResult> tests;
  for_each_jsonl_object(read_text_file(path), path, [&](const json& obj, const std::string& where, int) {
    tests.push_back(test_result_from_json(obj, where));
  });
  return tests;
}

DetectSummary read_detect_summary(const std::string& path) {
  return detect_summary_from_json(read_object_file(path), path);
}

ScoreMap score_map_from_detect_results(const std::vector<TestResult>& tests, int n_layer, int n_head,
                                       const std::string& source) {
  int max_layer = -1, max_head = -1;
  for (const auto& t : tests)
    for (const auto& [key, score] : t.head_scores) {
      const HeadId id = HeadId::parse(key, source);
      max_layer = std::max(max_layer, id.layer);
      max_head = std::max(max_head, id.head);
    }
  if (n_layer <= 0 || n_head <= 0) {
    if (max_layer < 0) fail(source, "cannot infer the number of layers and heads: no summary.json and no head scores");
    n_layer = max_layer + 1;
    n_head = max_head + 1;
  } else if (max_layer >= n_layer || max_head >= n_head) {
    fail(source, "head " + std::to_string(max_layer) + "-" + std::to_string(max_head) + " lies outside the model's " +
                     std::to_string(n_layer) + " x " + std::to_string(n_head) + " heads");
  }
  ScoreMap map;
  map.source = source;
  map.label = fs::path(source).stem().string();
  check_head_grid(n_layer, n_head, source);
  map.n_layer = n_layer;
  map.n_head = n_head;
  map.lists.assign(map.head_count(), {});
  for (const auto& t : tests) {
    if (!t.counted) continue;
    for (auto& list : map.lists) list.push_back(0.0);
    for (const auto& [key, score] : t.head_scores) {
      const HeadId id = HeadId::parse(key, source);
      map.lists[map.index(id.layer, id.head)].back() = score;
    }
  }
  map.mean = HeadGrid<double>(map.n_layer, map.n_head);
  map.frequency = HeadGrid<double>(map.n_layer, map.n_head);
  for (std::size_t i = 0; i < map.head_count(); ++i) {
    const auto& list = map.lists[i];
    if (list.empty()) continue;
    double sum = 0;
    std::size_t active = 0;
    for (double s : list) {
      sum += s;
      active += s > 0;
    }
    map.mean[i] = sum / static_cast<double>(list.size());
    map.frequency[i] = static_cast<double>(active) / static_cast<double>(list.size());
  }
  return map;
}

ScoreMap score_map_from_detect_summary(const std::string& path) {
  const DetectSummary s = read_detect_summary(path);
  if (!read_object_file(path).contains("heads")) fail(path, "missing field 'heads'");
  int max_layer = -1, max_head = -1;
  for (const auto& h : s.heads) {
    max_layer = std::max(max_layer, h.id.layer);
    max_head = std::max(max_head, h.id.head);
  }
  ScoreMap map;
  map.source = path;
  map.label = fs::path(path).stem().string();
  map.n_layer = s.n_layer > 0 ? s.n_layer : max_layer + 1;
  map.n_head = s.n_head > 0 ? s.n_head : max_head + 1;
  check_head_grid(map.n_layer, map.n_head, path);
  if (max_layer >= map.n_layer || max_head >= map.n_head) fail(path, "\"heads\" does not match n_layer/n_head");
  map.mean = HeadGrid<double>(map.n_layer, map.n_head);
  map.frequency = HeadGrid<double>(map.n_layer, map.n_head);
  std::vector<bool> seen(map.head_count(), false);
  for (const auto& h : s.heads) {
    const std::size_t i = map.index(h.id.layer, h.id.head);
    seen[i] = true;
    map.mean[i] = h.mean;
    map.frequency[i] = h.frequency;
  }
  // A run with no counted test lists no head: every score is undefined, read as 0.
  if ((s.counted > 0 || !s.heads.empty()) && std::find(seen.begin(), seen.end(), false) != seen.end())
    fail(path, "\"heads\" does not list every head of the model");
  return map;
}

std::vector<NiahLine> read_niah_results(const std::string& path) {
  std::vector<NiahLine> tests;
  for_each_jsonl_object(read_text_file(path), path, [&](const json& obj, const std::string& where, int) {
    tests.push_back(niah_line_from_json(obj, where));
  });
  return tests;
}

std::vector<SupportSplit> support_splits(const std::vector<NiahLine>& tests) {
  std::map<std::string, SupportSplit> by_mask;
  for (const auto& t : tests) {
    if (t.observed.support_share < 0) continue;
    const std::string mask = t.condition.mask == "none" ? "" : t.condition.mask;
    SupportSplit& s = by_mask[mask];
    s.mask = mask;
    (t.score > kPassScore ? s.passed : s.failed).push_back(t.observed.support_share);
  }
  std::vector<SupportSplit> out;
  for (auto& [mask, split] : by_mask) out.push_back(std::move(split));
  return out;
}

NiahSummary read_niah_summary(const std::string& path) {
  const json doc = read_object_file(path);
  NiahSummary s;
  s.raw = doc;
  s.model = read_model_info(doc, path);
  s.settings = read_settings(doc, path);
  s.mean_score = json_number_field(doc, "mean_score", path, 0.0);
  return s;
}

std::vector<SweepSeries> read_sweep(const std::string& path) {
  const json doc = read_object_file(path);
  std::vector<SweepSeries> series;
  for (const char* name : {"top", "random"}) {
    if (!doc.contains(name)) continue;
    const json& points = doc[name];
    const std::string where = path + ": " + name;
    if (!points.is_array()) fail(where, "is not a list of [K, mean_score]");
    SweepSeries s;
    s.name = name;
    for (const auto& p : points) {
      if (!p.is_array() || p.size() != 2 || !p[0].is_number() || !p[1].is_number())
        fail(where, "entry " + p.dump() + " is not [K, mean_score]");
      s.points.emplace_back(p[0].get<double>(), p[1].get<double>());
    }
    std::sort(s.points.begin(), s.points.end());
    if (s.name == "random" && doc.contains("random_seeds")) {
      const std::string sw = path + ": random_seeds";
      if (!doc["random_seeds"].is_array()) fail(sw, "is not a list");
      for (const auto& e : doc["random_seeds"]) {
        SweepSeries::Seed seed;
        seed.k = json_int_field(e, "k", sw);
        seed.seed = static_cast<uint64_t>(json_int_field(e, "seed", sw));
        seed.score = json_number_field(e, "score", sw);
        if (const json* heads = json_field(e, "heads", sw)) {
          if (!heads->is_array()) fail(sw, "field 'heads' is not a list");
          for (const auto& h : *heads) {
            if (!h.is_string()) fail(sw, "field 'heads' holds a non-string");
            seed.heads.push_back(h.get<std::string>());
          }
        }
        s.seeds.push_back(std::move(seed));
      }
    }
    series.push_back(std::move(s));
  }
  if (series.empty()) fail(path, "has neither \"top\" nor \"random\"");
  return series;
}

namespace {

struct CellKey {
  int depth, length;
  auto operator<=>(const CellKey&) const = default;
};

NiahGrid make_grid(std::string mask, const std::vector<std::tuple<int, int, double>>& cells) {
  NiahGrid grid;
  grid.mask = std::move(mask);
  std::set<int> lengths, depths;
  std::map<CellKey, std::pair<double, int>> sums;
  double total = 0;
  for (const auto& [length, depth, score] : cells) {
    lengths.insert(length);
    depths.insert(depth);
    auto& cell = sums[{depth, length}];
    cell.first += score;
    cell.second += 1;
    total += score;
  }
  grid.lengths.assign(lengths.begin(), lengths.end());
  grid.depths.assign(depths.begin(), depths.end());
  grid.score.assign(grid.depths.size(), std::vector<double>(grid.lengths.size(), std::nan("")));
  for (std::size_t r = 0; r < grid.depths.size(); ++r)
    for (std::size_t c = 0; c < grid.lengths.size(); ++c) {
      auto it = sums.find({grid.depths[r], grid.lengths[c]});
      if (it != sums.end()) grid.score[r][c] = it->second.first / it->second.second;
    }
  grid.tests = static_cast<int>(cells.size());
  grid.mean_score = cells.empty() ? 0 : total / static_cast<double>(cells.size());
  return grid;
}

}  // namespace

std::vector<NiahGrid> niah_grids(const std::vector<NiahLine>& tests) {
  std::map<std::string, std::vector<std::tuple<int, int, double>>> by_mask;
  for (const auto& t : tests) {
    const std::string mask = t.condition.mask == "none" ? "" : t.condition.mask;
    by_mask[mask].emplace_back(static_cast<int>(t.context_length), t.depth_percent, t.score);
  }
  std::vector<NiahGrid> grids;  // std::map orders "" (unmasked) first
  for (const auto& [mask, cells] : by_mask) grids.push_back(make_grid(mask, cells));
  return grids;
}

NiahGrid detect_accuracy_grid(const std::vector<TestResult>& tests) {
  std::vector<std::tuple<int, int, double>> cells;
  for (const auto& t : tests) cells.emplace_back(static_cast<int>(t.length), t.depth, t.rouge_recall);
  return make_grid("", cells);
}

RunKind detect_run_kind(const std::string& dir) {
  const fs::path summary = fs::path(dir) / "summary.json";
  if (fs::exists(summary)) {
    const json doc = read_json_file(summary.string());
    if (doc.is_object() && doc.contains("heads")) return RunKind::detect;
    if (doc.is_object() && doc.contains("mean_score")) return RunKind::niah;
  }
  const fs::path results = fs::path(dir) / "results.jsonl";
  if (fs::exists(results)) {
    std::ifstream in(results);
    std::string line;
    while (std::getline(in, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      json obj;
      try {
        obj = parse_json(line, results.string());
      } catch (const Error&) {  // not JSON: not a run this reader knows
      }
      if (obj.is_object() && obj.contains("head_scores")) return RunKind::detect;
      if (obj.is_object() && obj.contains("context_length")) return RunKind::niah;
      break;
    }
  }
  if (fs::exists(fs::path(dir) / "head_score.json")) return RunKind::detect;
  return RunKind::unknown;
}

std::vector<MethodAgreement> method_agreement_from_json(const json& summary, const std::string& where) {
  std::vector<MethodAgreement> out;
  const json* methods = json_field(summary, "methods", where);
  if (!methods) return out;
  const std::string at = where + ": methods";
  const json& pairs = json_required(*methods, "pairs", at);
  if (!pairs.is_array()) fail(at, "field 'pairs' is not a list");
  // A correlation is null when one map is constant.
  const auto correlation = [&](const json& p, const char* key) {
    if (!p.contains(key)) fail(at, std::string("missing field '") + key + "'");
    const json& v = p[key];
    return v.is_null() ? std::nan("") : json_number_in(v, at, std::string("field '") + key + "'", -1.0, 1.0);
  };
  for (const json& p : pairs) {
    if (!p.is_object()) fail(at, "a pair is not an object");
    MethodAgreement m;
    m.a = json_string_field(p, "a", at);
    m.b = json_string_field(p, "b", at);
    m.spearman = correlation(p, "spearman");
    m.pearson = correlation(p, "pearson");
    const json& overlap = json_required(p, "top_k_overlap", at);
    if (!overlap.is_array()) fail(at, "field 'top_k_overlap' is not a list");
    for (const json& o : overlap) {
      MethodAgreement::Overlap x;
      x.k = json_int_field(o, "k", at);
      x.shared = json_int_field(o, "shared", at);
      if (x.k < 1 || x.shared < 0 || x.shared > x.k) fail(at, "a top-K overlap is not 0 <= shared <= K with K >= 1");
      m.top_k.push_back(x);
    }
    out.push_back(std::move(m));
  }
  return out;
}

DetectRun read_detect_run(const std::string& dir) {
  DetectRun run;
  run.dir = dir;
  const fs::path p(dir);
  if (fs::exists(p / "summary.json")) {
    const std::string path = (p / "summary.json").string();
    run.summary = read_detect_summary(path);
    run.agreement = method_agreement_from_json(read_object_file(path), path);
  }
  if (fs::exists(p / "results.jsonl")) run.tests = read_detect_results((p / "results.jsonl").string());
  if (fs::exists(p / "head_score.json") || fs::exists(p / "results.jsonl") || run.summary)
    run.scores = load_score_map(dir);
  if (fs::exists(p / "head_stats.json")) run.stats = read_head_stats((p / "head_stats.json").string());
  return run;
}

NiahRun read_niah_run(const std::string& dir) {
  NiahRun run;
  run.dir = dir;
  const fs::path p(dir);
  if (fs::exists(p / "summary.json")) run.summary = read_niah_summary((p / "summary.json").string());
  if (fs::exists(p / "results.jsonl")) run.tests = read_niah_results((p / "results.jsonl").string());
  if (fs::exists(p / "sweep.json")) run.sweep = read_sweep((p / "sweep.json").string());
  return run;
}

}  // namespace rhead::analysis
