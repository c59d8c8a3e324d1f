// Result records of a detection run: one TestResult per finished NIAH test (one line of
// results.jsonl in a run directory, io/run_dir.h) and the reference head_score.json built
// from them.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include "io/atomic_file.h"
#include "io/run_dir.h"

namespace rhead {

struct TestResult {
  std::string test_id;
  int needle_id = 0;
  int64_t length = 0;
  int depth = 0;
  int64_t span_begin = -1, span_end = -1;  // needle span in prompt positions (-1: not found)
  std::string answer;
  double rouge_recall = 0;   // ROUGE-1 recall x 100
  bool counted = false;      // recall > 50: the test's head scores enter head_score.json
  std::map<std::string, double> head_scores;  // "L-H" -> score, nonzero only
  double seconds = 0;
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0, scoring_seconds = 0;
  // Share of answer tokens that the support heads copied from the context
  // (experiments/explain.h); -1 when no support heads were given.
  double support_share = -1;
  nlohmann::json extra;      // command-specific fields (niah: mask, taxonomy, ...)
};

nlohmann::json to_json(const TestResult& r);
TestResult test_result_from_json(const nlohmann::json& j, const std::string& where);

// Reference head_score format: {"L-H": [score of each counted test, ...]}, all heads,
// tests in the given order.
nlohmann::json head_score_json(const std::vector<TestResult>& results, int n_layer, int n_head);

// Extends the lists of an existing reference file with `scores` (same keys); the file is
// replaced atomically. Error if the files' heads differ.
void merge_head_scores_into(const std::string& path, const nlohmann::json& scores);
// The head_score file at `path` (empty when missing) with `scores` appended, not written.
nlohmann::json head_scores_merged_with(const std::string& path, const nlohmann::json& scores);

// Orders results canonically: by needle, length, depth.
void sort_results(std::vector<TestResult>& results);

}  // namespace rhead
