// Retrieval-score maps: the per-head scores of one model, read from the reference
// `{"L-H": [score, ...]}` JSON, from an rhead detect directory (head_score.json,
// results.jsonl or summary.json), and the per-head statistics derived from them.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/heads.h"

namespace rhead::analysis {

// Scores of every head of one model, stored layer-major: index = layer * n_head + head.
struct ScoreMap {
  std::string label;   // short name for tables and legends (file stem or directory name)
  std::string source;  // the path it was read from
  int n_layer = 0;
  int n_head = 0;
  HeadGrid<double> mean;       // mean retrieval score of each head
  HeadGrid<double> frequency;  // share of tests with score > 0, 0..1
  // [n_layer * n_head][tests] per-test scores; empty when the source only has means
  // (a summary.json).
  std::vector<std::vector<double>> lists;
  // The grid is (layer, KV head), e.g. a DuoAttention pattern's gates; keys "L-G".
  bool kv_heads = false;
  // The detector that wrote the scores: "copy" (the retrieval score), or the <method> of a
  // head_score.<method>.json (qrhead, lookback, induction, ...).
  std::string method = "copy";

  // What the scores are called in figures: "retrieval score", or "<method> score".
  std::string score_name() const { return method == "copy" ? "retrieval score" : method + " score"; }

  std::size_t head_count() const { return static_cast<std::size_t>(n_layer) * n_head; }
  std::size_t index(int layer, int head) const { return static_cast<std::size_t>(layer) * n_head + head; }
  HeadId head_at(std::size_t index) const {
    return {static_cast<int>(index / n_head), static_cast<int>(index % n_head)};
  }
  double mean_at(int layer, int head) const { return mean[index(layer, head)]; }
  // Largest number of per-test scores any head holds (0 without lists).
  std::size_t test_count() const;
};

// Builds a map from the reference format already parsed into `doc`. The shape is
// inferred from the keys (max layer + 1, max head + 1) and every head of that grid
// must be present. Mean of an empty list is 0.
ScoreMap score_map_from_reference_json(const nlohmann::json& doc, const std::string& where);

// Reads the reference head_score JSON file.
ScoreMap read_head_score_json(const std::string& path);

// A ranked head list (QRHead's "L-H,..." or ReDeEP's [[L, H], ...]; model/heads.h) as a map:
// the grid spans the listed heads (max layer + 1 x max head + 1), the head ranked r of n
// (from 0) scores (n - r) / n, unlisted heads 0; no per-test lists.
ScoreMap score_map_from_head_list(const std::vector<HeadId>& heads, const std::string& where);

// A DuoAttention pattern folder's gates as a map over (layer, KV head) (kv_heads set): mean =
// the gate, frequency = 1 for a full head (gate >= threshold), else 0; no per-test lists.
ScoreMap score_map_from_duo_pattern(const std::string& dir);

// A query-head map seen per KV head: each KV head scores what the best query head of its
// group scores (the rule kv-plan ranks KV heads by). `n_kv_head` must divide n_head.
ScoreMap kv_head_map(const ScoreMap& query_map, int n_kv_head);

// Loads a score map from whatever `path` is: a reference JSON file, an rhead detect
// summary.json or results.jsonl, a published head list, a DuoAttention pattern folder (or its
// full_attention_heads.tsv), or a detect output directory (head_score.json is preferred, then
// results.jsonl, then summary.json).
ScoreMap load_score_map(const std::string& path);

// Largest head grid (layers x heads) a score map may have: far above real models
// (128 x 128), far below what a corrupt file could make rhead allocate.
inline constexpr std::size_t kMaxHeadGrid = std::size_t{1} << 20;
// Error "where: ..." unless 1 <= n_layer, n_head and n_layer * n_head <= kMaxHeadGrid.
void check_head_grid(long long n_layer, long long n_head, const std::string& where);

// Number of heads with mean > threshold.
std::size_t count_above(const ScoreMap& map, double threshold = kRetrievalThreshold);

// Score buckets of Figure 3: mean == 0, 0 < mean <= 0.1, mean > 0.1.
struct ScoreBuckets {
  std::size_t zero = 0;
  std::size_t low = 0;
  std::size_t high = 0;
};
ScoreBuckets bucket_scores(const ScoreMap& map, double threshold = kRetrievalThreshold);

}  // namespace rhead::analysis
