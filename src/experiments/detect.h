// `rhead detect`: the retrieval-head detection run. Runs the NIAH grid (or one shard of it),
// appends each finished test to OUT/results.jsonl, skips tests already there, and rebuilds
// OUT/head_score.json and OUT/summary.json from the JSONL.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/heads.h"
#include "io/run_dir.h"
#include "experiments/experiment.h"
#include "experiments/runner.h"
#include "records/detect_summary.h"

namespace rhead {

struct DetectOptions : RunFolderOptions {
  std::string merge_into;   // extend this reference head_score file with the run's lists, once per test
                            // (OUT/merged_into.json records the tests each file received)
  nlohmann::json settings;  // recorded in run.json and summary.json
  // --until-stable: run the grid in stratified_order and stop at the first check where the
  // top-K set is stable (stable_rule_holds). stable_k 0: the top 5% of the heads.
  bool until_stable = false;
  int stable_k = 0;
  // The NIAH-pass detectors (experiments/head_methods.h): part of the run's fingerprint when on.
  bool qrhead = false, lookback = false;
  std::function<void(int tests, bool stable)> stable_check;  // told after each check of the rule
  std::function<void(int done, int total, const TestResult& last, double elapsed_s)> progress;
};

// The order of detect --until-stable, a property of the key list (so shards and resume keep
// it): round r (one per depth) visits every (needle set, length) cell once, lengths outer and
// needle sets inner, and cell c of round r takes depth index (p(r) + c) mod D, where p spreads
// the rounds over the depths (the depths in the order of the base-2 radical inverse). After
// each round every cell holds the same number of tests and the depths are spread evenly.
std::vector<NiahTask> stratified_order(const std::vector<NiahTask>& tasks);
// The number of (needle set, length) cells of `tasks`: --until-stable checks its rule each
// time a directory's line count reaches a multiple of it.
int stratified_cells(const std::vector<NiahTask>& tasks);
// The stopping rule of --until-stable: with the two-way cluster bootstrap of
// analysis/head_stats.h over the counted tests, every head has P(in top-K) >= 0.95 or <= 0.05,
// and the counted tests span two needle sets and two lengths (where `results` has them).
inline constexpr double kStableHigh = 0.95, kStableLow = 0.05;
bool stable_rule_holds(const std::vector<TestResult>& results, int n_layer, int n_head, int k,
                       const std::string& where);

// Model description written to run.json / summary.json.
nlohmann::json model_info_json(const Model& model);

// Runs the (shard of the) grid, resuming from OUT/results.jsonl. Returns the summary of
// everything in the output directory.
DetectSummary run_detect(NiahRunner& runner, const DetectOptions& options);

// Rebuilds head_score.json, head_stats.json and summary.json of a detect run directory from its
// lines, and head_score.<method>.json for each NIAH-pass method its lines hold.
DetectSummary write_detect_outputs(const RunDir& dir);

// Joins shard directories into `out_dir` (results deduplicated by test id).
DetectSummary merge_runs(const std::vector<std::string>& shard_dirs, const std::string& out_dir);

// The printed table: top heads, share of retrieval heads (kRetrievalThreshold), per-KV-group view, NIAH accuracy.
std::string format_summary(const DetectSummary& s, int top_n = 20);

}  // namespace rhead
