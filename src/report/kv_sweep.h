// The KV sweep of a niah / qa / cot run: each KV condition's mean score against the cache it
// kept, as kv_sweep.json, kv_sweep.tsv, a terminal table and a figure.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rhead {

// One point of the KV sweep: a condition's mean score against what it kept.
struct KvSweepPoint {
  std::string curve;  // "retrieval" (top:K full), "random" (random:K full, mean over seeds), "none" (K = 0),
                      // "full" (no policy: the whole cache, the reference)
  int64_t window = 0;
  int k = 0;
  int conditions = 0;      // conditions averaged (seeds)
  double kv_kept_pct = 0;  // mean over tests, per KV head (the real memory)
  double query_kept_pct = 0;
  double mean_score = 0;
};

// Sweep points from per-condition summaries {kv_policy: {...}, kv_kept_fraction, query_kept_fraction,
// mean_score}; sorted by curve, then KV kept.
std::vector<KvSweepPoint> kv_sweep_points(const std::vector<nlohmann::json>& condition_summaries);
nlohmann::json kv_sweep_json(const std::vector<KvSweepPoint>& points);
// kv_sweep.json read back.
std::vector<KvSweepPoint> read_kv_sweep_points(const std::string& path);
std::string format_kv_sweep(const std::vector<KvSweepPoint>& points, const std::string& score_name);
// Writes kv_sweep.json, kv_sweep.tsv and kv_sweep.{png,svg} into `dir`; returns the paths.
std::vector<std::string> write_kv_sweep(const std::string& dir, const std::vector<KvSweepPoint>& points,
                                        const std::string& title, const std::string& score_name);

}  // namespace rhead
