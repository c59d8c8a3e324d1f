// Result files of a detection run. results.jsonl is append-only: one JSON line per finished
// test, written with a single write() and synced before the next test starts, so a killed
// run loses at most the test in flight. Aggregates (head_score.json, summary.json) are
// rebuilt from it and replaced atomically (write to a temp file, rename).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include "io/atomic_file.h"

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

// Appends lines to results.jsonl.
class ResultsWriter {
 public:
  explicit ResultsWriter(const std::string& path);
  ~ResultsWriter();
  ResultsWriter(const ResultsWriter&) = delete;
  ResultsWriter& operator=(const ResultsWriter&) = delete;
  void append(const nlohmann::json& line);  // one write(), then fdatasync

 private:
  std::string path_;
  int fd_ = -1;
};

// Reads every complete JSON line of a results file (a missing file reads as empty). A torn
// last line — a write interrupted by a kill — is cut off the file so appends stay clean.
// Later duplicates of a test_id are dropped.
std::vector<nlohmann::json> read_results_lines(const std::string& path, bool repair_tail);


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
