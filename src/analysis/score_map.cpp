// Score maps from the reference head_score JSON and from rhead detect directories.
#include "analysis/score_map.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "analysis/run_files.h"
#include "io/json.h"
#include "io/json_range.h"
#include "io/checked.h"
#include "io/duo_pattern.h"
#include "io/error.h"

namespace rhead::analysis {

namespace fs = std::filesystem;

std::size_t ScoreMap::test_count() const {
  std::size_t n = 0;
  for (const auto& list : lists) n = std::max(n, list.size());
  return n;
}

namespace {

// "head_score.<method>.json" -> method; any other name holds the copy score.
std::string method_of_score_file(const std::string& where) {
  const std::string name = fs::path(where).filename().string();
  const std::string prefix = "head_score.", suffix = ".json";
  if (name.size() <= prefix.size() + suffix.size() || name.rfind(prefix, 0) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return "copy";
  return name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
}

}  // namespace

ScoreMap score_map_from_reference_json(const nlohmann::json& doc, const std::string& where) {
  // The qrhead method's file holds calibrated scores, which go below 0; every other score file
  // (the copy score and the synthetic detectors) holds scores in [0, kMaxHeadScore].
  const std::string method = method_of_score_file(where);
  const double lowest = method == kQrheadScoreFileMethod ? -kMaxHeadScore : 0.0;
  if (!doc.is_object()) fail(where, "expected a JSON object {\"<layer>-<head>\": [scores...]}");
  if (doc.empty()) fail(where, "no heads in the score file");
  std::vector<std::pair<HeadId, const nlohmann::json*>> entries;
  entries.reserve(doc.size());
  int max_layer = 0, max_head = 0;
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const HeadId id = HeadId::parse(it.key(), where);
    if (!it.value().is_array()) fail(where, "value of head \"" + it.key() + "\" is not a list of scores");
    max_layer = std::max(max_layer, id.layer);
    max_head = std::max(max_head, id.head);
    entries.emplace_back(id, &it.value());
  }
  ScoreMap map;
  map.source = where;
  map.label = fs::path(where).stem().string();
  map.method = method;
  map.n_layer = max_layer + 1;
  map.n_head = max_head + 1;
  check_head_grid(map.n_layer, map.n_head, where);
  if (entries.size() != map.head_count()) {
    fail(where, "has " + std::to_string(entries.size()) + " heads but its keys span " + std::to_string(map.n_layer) +
                    " layers x " + std::to_string(map.n_head) + " heads; every head of the grid must be present");
  }
  map.lists.assign(map.head_count(), {});
  map.mean = HeadGrid<double>(map.n_layer, map.n_head);
  map.frequency = HeadGrid<double>(map.n_layer, map.n_head);
  for (const auto& [id, values] : entries) {
    auto& list = map.lists[map.index(id.layer, id.head)];
    list.reserve(values->size());
    for (const auto& v : *values) {
      if (!v.is_number()) fail(where, "head \"" + id.key() + "\" has a non-numeric score " + v.dump());
      list.push_back(json_number_in(v, where, "head \"" + id.key() + "\" score", lowest, kMaxHeadScore));
    }
  }
  for (std::size_t i = 0; i < map.head_count(); ++i) {
    const auto& list = map.lists[i];
    if (list.empty()) continue;
    map.mean[i] = std::accumulate(list.begin(), list.end(), 0.0) / static_cast<double>(list.size());
    map.frequency[i] = static_cast<double>(std::count_if(list.begin(), list.end(), [](double s) { return s > 0; })) /
                       static_cast<double>(list.size());
  }
  return map;
}

ScoreMap read_head_score_json(const std::string& path) {
  return score_map_from_reference_json(read_json_file(path), path);
}

namespace {

// A summary.json from rhead detect has a "heads" array.
bool is_detect_summary(const nlohmann::json& doc) { return doc.is_object() && doc.contains("heads"); }

ScoreMap load_from_results(const std::string& results_path) {
  const fs::path dir = fs::path(results_path).parent_path();
  int n_layer = 0, n_head = 0;
  const fs::path summary = dir / "summary.json";
  if (fs::exists(summary)) {
    DetectSummary s = read_detect_summary(summary.string());
    n_layer = s.n_layer;
    n_head = s.n_head;
  }
  ScoreMap map = score_map_from_detect_results(read_detect_results(results_path), n_layer, n_head, results_path);
  return map;
}

std::string directory_label(const fs::path& dir) {
  fs::path clean = dir;
  if (clean.filename().empty()) clean = clean.parent_path();
  return clean.filename().string();
}

}  // namespace

ScoreMap score_map_from_head_list(const std::vector<HeadId>& heads, const std::string& where) {
  int max_layer = 0, max_head = 0;
  for (const HeadId& h : heads) max_layer = std::max(max_layer, h.layer), max_head = std::max(max_head, h.head);
  check_head_grid(static_cast<long long>(max_layer) + 1, static_cast<long long>(max_head) + 1, where);
  ScoreMap map;
  map.source = where;
  map.label = fs::path(where).stem().string();
  map.n_layer = max_layer + 1;
  map.n_head = max_head + 1;
  map.mean = HeadGrid<double>(map.n_layer, map.n_head);
  map.frequency = HeadGrid<double>(map.n_layer, map.n_head);
  const double n = static_cast<double>(heads.size());
  for (std::size_t r = 0; r < heads.size(); ++r) map.mean[map.index(heads[r].layer, heads[r].head)] = (n - r) / n;
  return map;
}

namespace {

// A published head list (model/heads.h parse_head_list): a file whose text starts with a
// digit (QRHead) or with '[' (ReDeEP).
bool is_head_list_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char c = 0;
  while (in.get(c))
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return c == '[' || (c >= '0' && c <= '9');
  return false;
}

}  // namespace

ScoreMap score_map_from_duo_pattern(const std::string& dir) {
  const DuoPattern d = read_duo_pattern(dir);
  check_head_grid(d.n_layer, d.n_kv_head, dir);
  ScoreMap map;
  map.source = dir;
  map.label = directory_label(fs::path(dir));
  map.n_layer = d.n_layer;
  map.n_head = d.n_kv_head;
  map.kv_heads = true;
  map.mean = HeadGrid<double>(d.n_layer, d.n_kv_head);
  map.frequency = HeadGrid<double>(d.n_layer, d.n_kv_head);
  for (int l = 0; l < d.n_layer; ++l)
    for (int g = 0; g < d.n_kv_head; ++g) {
      map.mean.at(l, g) = d.gate(l, g);
      map.frequency.at(l, g) = d.is_full(l, g) ? 1.0 : 0.0;
    }
  return map;
}

ScoreMap kv_head_map(const ScoreMap& q, int n_kv_head) {
  if (n_kv_head < 1 || q.n_head % n_kv_head != 0)
    fail(q.source,
         std::to_string(q.n_head) + " query heads do not split into " + std::to_string(n_kv_head) + " KV head groups");
  const int group = q.n_head / n_kv_head;
  ScoreMap kv;
  kv.label = q.label;
  kv.source = q.source;
  kv.n_layer = q.n_layer;
  kv.n_head = n_kv_head;
  kv.kv_heads = true;
  kv.mean = HeadGrid<double>(q.n_layer, n_kv_head);
  kv.frequency = HeadGrid<double>(q.n_layer, n_kv_head);
  for (int l = 0; l < q.n_layer; ++l)
    for (int g = 0; g < n_kv_head; ++g)
      for (int h = g * group; h < (g + 1) * group; ++h) {
        kv.mean.at(l, g) = std::max(kv.mean.at(l, g), q.mean_at(l, h));
        kv.frequency.at(l, g) = std::max(kv.frequency.at(l, g), q.frequency[q.index(l, h)]);
      }
  return kv;
}

ScoreMap load_score_map(const std::string& path) {
  const fs::path p(path);
  if (!fs::exists(p)) fail(path, "no such file or directory");
  if (is_duo_pattern_dir(path)) return score_map_from_duo_pattern(path);
  if (p.filename() == kDuoHeadsFile)
    return score_map_from_duo_pattern(p.has_parent_path() ? p.parent_path().string() : std::string("."));
  if (fs::is_directory(p)) {
    ScoreMap map;
    if (fs::exists(p / "head_score.json")) {
      map = read_head_score_json((p / "head_score.json").string());
    } else if (fs::exists(p / "results.jsonl")) {
      map = load_from_results((p / "results.jsonl").string());
    } else if (fs::exists(p / "summary.json")) {
      map = score_map_from_detect_summary((p / "summary.json").string());
    } else {
      fail(path, "directory has no head_score.json, results.jsonl or summary.json");
    }
    map.label = directory_label(p);
    map.source = path;
    return map;
  }
  if (p.extension() == ".jsonl") {
    ScoreMap map = load_from_results(path);
    map.label = directory_label(p.parent_path());
    return map;
  }
  if (is_head_list_file(path)) return score_map_from_head_list(read_head_list(path), path);
  nlohmann::json doc = read_json_file(path);
  if (is_detect_summary(doc)) {
    ScoreMap map = score_map_from_detect_summary(path);
    map.label = directory_label(p.parent_path());
    return map;
  }
  return score_map_from_reference_json(doc, path);
}

void check_head_grid(long long n_layer, long long n_head, const std::string& where) {
  if (n_layer < 1 || n_head < 1 || n_layer > static_cast<long long>(kMaxHeadGrid) ||
      n_head > static_cast<long long>(kMaxHeadGrid) ||
      static_cast<std::size_t>(n_layer) * static_cast<std::size_t>(n_head) > kMaxHeadGrid)
    fail(where, "a head grid of " + std::to_string(n_layer) + " layers x " + std::to_string(n_head) +
                    " heads is outside [1, 2^20] heads");
}

std::size_t count_above(const ScoreMap& map, double threshold) {
  return static_cast<std::size_t>(
      std::count_if(map.mean.begin(), map.mean.end(), [&](double m) { return m > threshold; }));
}

ScoreBuckets bucket_scores(const ScoreMap& map, double threshold) {
  ScoreBuckets buckets;
  for (double m : map.mean) {
    if (m <= 0)
      ++buckets.zero;
    else if (m <= threshold)
      ++buckets.low;
    else
      ++buckets.high;
  }
  return buckets;
}

}  // namespace rhead::analysis
