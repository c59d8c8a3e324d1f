// summary.json of a detect run: the per-head statistics over a set of test results, its JSON
// form (written by write_detect_outputs) and its strict reader (used by analysis/).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/heads.h"
#include "records/results.h"

namespace rhead {

// What a detect run with no counted test says instead of a ranking (terminal, summary.json
// "note", report).
inline constexpr const char* kNoCountedTestsNote =
    "no test counted (no answer reached ROUGE-1 recall > 50): every head score is undefined, so no head is "
    "ranked. Try longer or shorter --lengths, another --prompt-template, or check the answers in results.jsonl.";

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
  double niah_accuracy = 0;      // counted / tests
  double mean_rouge_recall = 0;  // over all tests, 0..100
  std::vector<HeadStat> heads;   // sorted by mean, descending (ties: layer, head); empty when counted == 0
  int count_above_0_1 = 0;
  double share_above_0_1 = 0;
  // The bootstrap's expected top-K Jaccard (analysis/head_stats.h stability_json); null when
  // not computed.
  nlohmann::json stability;
  // detect --until-stable: the rule, its K and the grid's tests run and skipped; null otherwise.
  nlohmann::json until_stable;
  nlohmann::json to_json() const;  // also "kv_groups": each KV group's sum and best head
};

// Reads summary.json; every field is optional (a missing head grid comes from "model"), but
// types are strict. Errors name `where`.
DetectSummary detect_summary_from_json(const nlohmann::json& j, const std::string& where);

// Head statistics over a set of results.
DetectSummary summarize(const std::vector<TestResult>& results, int n_layer, int n_head, int n_kv_head);

}  // namespace rhead
