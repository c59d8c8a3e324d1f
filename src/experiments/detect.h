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
#include "experiments/runner.h"
#include "records/detect_summary.h"

namespace rhead {

struct DetectOptions {
  std::string output_dir;
  int shard_index = 0, shard_count = 1;
  bool grow_grid = false;  // --grow: the folder's run may have had a smaller grid
  std::string merge_into;  // extend this reference head_score file with the run's lists, once per test
                           // (OUT/merged_into.json records the tests each file received)
  nlohmann::json settings; // recorded in run.json and summary.json
  std::function<void(int done, int total, const TestResult& last, double elapsed_s)> progress;
};

// Model description written to run.json / summary.json.
nlohmann::json model_info_json(const Model& model);

// Runs the (shard of the) grid, resuming from OUT/results.jsonl. Returns the summary of
// everything in the output directory.
DetectSummary run_detect(NiahRunner& runner, const DetectOptions& options);

// Rebuilds head_score.json and summary.json of a detect run directory from its lines.
DetectSummary write_detect_outputs(const RunDir& dir);

// Joins shard directories into `out_dir` (results deduplicated by test id).
DetectSummary merge_runs(const std::vector<std::string>& shard_dirs, const std::string& out_dir);

// The printed table: top heads, share of retrieval heads (kRetrievalThreshold), per-KV-group view, NIAH accuracy.
std::string format_summary(const DetectSummary& s, int top_n = 20);

}  // namespace rhead
