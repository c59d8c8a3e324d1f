// Typed result lines of the masked tasks (`rhead qa`, `rhead cot`): one struct per line kind
// with one to_json (what cmd_qa / cmd_cot append to results.jsonl) and one from_json (what
// experiments/qa_run and cot_run summarize). The mask and KV fields every masked line carries
// are one sub-record, LineCondition, written by niah/causal's add_mask_fields and
// niah/kv_conditions' add_kv_fields as NIAH lines are.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "niah/causal.h"

namespace rhead {

// The condition a line ran under: mask, mask_kind, mask_k, mask_seed, mask_heads ("L-H"),
// kv_policy (KvSetting::to_json) and kv_cache (kv_accounting_json at the prompt length).
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

// The condition of `mask` for a prompt of `length` tokens in a cache of `element_bytes`.
LineCondition line_condition(const MaskSetting& mask, int head_dim, int element_bytes, int64_t length);
// Adds the condition's fields to `line`.
void add_condition_fields(const LineCondition& c, nlohmann::json& line);
// Reads them back; errors name `where`.
LineCondition condition_from_json(const nlohmann::json& line, const std::string& where);

// One `rhead qa` line: an item answered under one condition.
struct QaLine {
  std::string test_id;  // the run key (set by the run driver; empty before)
  std::string item_id, question;
  std::vector<std::string> answers;
  std::string prediction;
  double exact_match = 0;  // 0 or 1
  double f1 = 0;           // 0..1
  int64_t prompt_tokens = 0, generated_tokens = 0, context_tokens_dropped = 0;
  double seconds = 0;
  std::optional<double> support_share;  // absent when no support heads were given
  LineCondition condition;
};
nlohmann::json to_json(const QaLine& line);
// Errors name `where` ("DIR/results.jsonl:N").
QaLine qa_line_from_json(const nlohmann::json& j, const std::string& where);

// One `rhead cot` line: an item answered in one prompting style under one condition.
struct CotLine {
  std::string test_id;  // the run key (set by the run driver; empty before)
  std::string style;    // cot_style_name: answer_only | cot
  std::string item_id, question;
  double gold = 0;
  std::string completion;
  std::optional<double> predicted;  // written as null when no number was found
  bool correct = false;
  int64_t prompt_tokens = 0, generated_tokens = 0;
  double seconds = 0;
  LineCondition condition;
};
nlohmann::json to_json(const CotLine& line);
// Errors name `where` ("DIR/results.jsonl:N").
CotLine cot_line_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace rhead
