// Result records of a detection run: one TestResult per finished NIAH test (one line of
// results.jsonl in a run directory, io/run_dir.h) and the reference head_score.json built
// from them.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include "io/atomic_file.h"
#include "io/run_dir.h"
#include "records/taxonomy.h"

namespace rhead {

// The fields both detect and niah lines carry beside their own, which TestResult extends:
// error, copy_steps_inside_span, copy_steps_outside_span, sink_mass_top_heads, steps +
// sink_mass_by_head, support_share (each written only when recorded; all optional to read).
struct TestObservations {
  std::string error;                                                // "needle span not found in the prompt", or empty
  int64_t copy_steps_inside_span = 0, copy_steps_outside_span = 0;  // head copies by source
  double sink_mass_top_heads = -1;                  // mean first-token mass of the sink heads; -1: none observed
  std::optional<std::vector<StepCopies>> steps;     // per decode step (NiahRunConfig::record_steps)
  std::map<std::string, double> sink_mass_by_head;  // "L-H" -> mean first-token mass, with steps
  // Share of answer tokens that the support heads copied from the context
  // (support/explain.h); -1 when no support heads were given.
  double support_share = -1;
};
// A detect test: its own fields and the observations niah lines carry too.
struct TestResult : TestObservations {
  std::string test_id;
  int needle_id = 0;
  int64_t length = 0;
  int depth = 0;
  int64_t span_begin = -1, span_end = -1;  // needle span in prompt positions (-1: not found)
  std::string answer;
  double rouge_recall = 0;                    // ROUGE-1 recall x 100
  bool counted = false;                       // recall > 50: the test's head scores enter head_score.json
  std::map<std::string, double> head_scores;  // "L-H" -> score, nonzero only
  double seconds = 0;
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0, scoring_seconds = 0;
  int64_t reused_tokens = 0;  // prompt tokens whose KV entries came from the previous test
  // Scores of the NIAH-pass detectors (detect --methods qrhead,lookback): method -> one score
  // per head, layer-major ("method_scores"; written only when present).
  std::map<std::string, std::vector<double>> method_scores;
};

// The one detect result line: the writer's and every reader's. Types are strict (a depth of
// 2.5 or a head key "a-b" is an error naming `where`); fields after "counted" are optional.
nlohmann::json to_json(const TestResult& r);
TestResult test_result_from_json(const nlohmann::json& j, const std::string& where);

void add_observation_fields(const TestObservations& o, nlohmann::json& line);
TestObservations observations_from_json(const nlohmann::json& j, const std::string& where);

// Reference head_score format: {"L-H": [score of each counted test, ...]}, all heads,
// tests in the given order.
nlohmann::json head_score_json(const std::vector<TestResult>& results, int n_layer, int n_head);

// The reference format for a NIAH-pass detector: {"L-H": [score of each test that holds
// `method`, ...]}, tests in the given order. Error naming `where` when a test's list does not
// have one score per head.
nlohmann::json method_score_json(const std::vector<TestResult>& results, const std::string& method, int n_layer,
                                 int n_head, const std::string& where);

// Extends the lists of an existing reference file with `scores` (same keys); the file is
// replaced atomically. Error if the files' heads differ.
void merge_head_scores_into(const std::string& path, const nlohmann::json& scores);
// The head_score file at `path` (empty when missing) with `scores` appended, not written.
nlohmann::json head_scores_merged_with(const std::string& path, const nlohmann::json& scores);

// Orders results canonically: by needle, length, depth.
void sort_results(std::vector<TestResult>& results);

}  // namespace rhead
