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
#include "niah/runner.h"

namespace rhead {

// One head's row of a detect summary.
struct HeadStat {
  HeadId id;
  double mean = 0;       // retrieval score: mean over counted tests
  double frequency = 0;  // share of counted tests where the head copied at least one token
};

// summary.json of a detect run: written by write_detect_outputs, read by analysis/.
struct DetectSummary {
  nlohmann::json model = nlohmann::json::object();     // model_info_json of the run's model
  nlohmann::json settings = nlohmann::json::object();  // the run's settings (run.json)
  int n_layer = 0, n_head = 0, n_kv_head = 0;
  int tests = 0, counted = 0;
  double niah_accuracy = 0;     // counted / tests
  double mean_rouge_recall = 0; // over all tests, 0..100
  std::vector<HeadStat> heads;  // sorted by mean, descending (ties: layer, head)
  int count_above_0_1 = 0;
  double share_above_0_1 = 0;
  nlohmann::json to_json() const;  // also "kv_groups": each KV group's sum and best head
};

// Reads summary.json; every field is optional (a missing head grid comes from "model"), but
// types are strict. Errors name `where`.
DetectSummary detect_summary_from_json(const nlohmann::json& j, const std::string& where);

// Head statistics over a set of results.
DetectSummary summarize(const std::vector<TestResult>& results, int n_layer, int n_head, int n_kv_head);

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
