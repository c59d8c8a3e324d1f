// Typed result lines of `rhead niah`: one NiahLine per grid test under one mask condition,
// with one to_json (what the run appends to results.jsonl) and one strict reader (what the
// summary, the analysis readers, the report and `rhead merge` read). The mask and KV fields
// that niah, qa and cot lines all carry are one sub-record, LineCondition, read by every
// summary through condition_from_json.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "records/results.h"
#include "records/taxonomy.h"

namespace rhead {

// The condition a niah / qa / cot line ran under, read back from its fields: mask, mask_kind,
// mask_k, mask_seed, mask_heads ("L-H"), kv_policy (KvSetting::to_json) and kv_cache
// (kv_accounting_json at the prompt length).
struct LineCondition {
  std::string mask = "none";       // the condition's label, unique in a run
  std::string mask_kind = "none";  // none | all | top | random | heads
  int mask_k = 0;                  // heads masked
  uint64_t mask_seed = 0;          // random only
  std::vector<std::string> mask_heads;
  nlohmann::json kv_policy;  // object, or null when the line has none
  nlohmann::json kv_cache;   // object, or null when the line has none

  // Fractions of the KV cache kept (kv_cache's kv_kept_fraction / query_kept_fraction; 1
  // without a kv_cache).
  double kv_kept_fraction() const;
  double query_kept_fraction() const;
  // The condition as summaries list it: {label, kind, k, seed, heads} plus kv_policy when
  // its window is > 0.
  nlohmann::json summary_mask() const;
};

// Adds the condition's fields to `line`.
void add_condition_fields(const LineCondition& c, nlohmann::json& line);
// Reads them back (all mask fields required; kv_policy and kv_cache optional); errors name
// `where`.
LineCondition condition_from_json(const nlohmann::json& line, const std::string& where);

// One `rhead niah` line. The six reference NIAH fields (model, context_length, depth_percent,
// needle, model_response, score) come first; lines of the reference tool carry only those
// (and sometimes "mask"), so every other field is optional to read, with the defaults below.
struct NiahLine {
  std::string test_id;  // the run key "<mask label>|<grid test id>"
  // Reference fields.
  std::string model;           // model file
  int64_t context_length = 0;  // tokens
  int depth_percent = 0;       // 0..100 (read rounded: the reference writes a float)
  std::string needle;
  std::string model_response;
  double score = 0;  // ROUGE-1 recall x 100
  // Ours.
  std::string grid_test_id;  // the test of the NIAH grid, without the mask
  int needle_id = 0;
  LineCondition condition;  // without mask_kind in the line: only the "mask" label (default "none")
  std::string mask_mode = "uniform", mask_phase = "decode";
  bool passed = false;                     // score > kPassScore (the default when absent)
  ErrorKind error_kind = ErrorKind::none;  // written as null for none
  CopyTally copy_tally;
  int64_t span_begin = -1, span_end = -1;  // needle span in prompt positions ("span")
  int64_t prompt_tokens = 0, generated_tokens = 0;
  double seconds = 0;
  TestObservations observed;
};
nlohmann::json to_json(const NiahLine& line);
// Strict types (a context_length of "300" or an error_kind of 3 is an error naming `where`,
// "DIR/results.jsonl:N"); context_length, depth_percent and score are required.
NiahLine niah_line_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace rhead
