// Typed result lines of the masked tasks (`rhead qa`, `rhead cot`): one struct per line kind
// with one to_json (what cmd_qa / cmd_cot append to results.jsonl) and one from_json (what
// experiments/qa_run and cot_run summarize). The mask and KV fields every masked line carries
// are one sub-record, niah/niah_records' LineCondition, as in NIAH lines.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "records/niah_records.h"

namespace rhead {

// One `rhead qa` line: an item answered under one condition.
// What qa and cot lines share: the item, its prompt and answer sizes, the condition.
struct ItemLine {
  std::string test_id;  // the run key (set by the run driver; empty before)
  std::string item_id, question;
  int64_t prompt_tokens = 0, generated_tokens = 0;
  double seconds = 0;
  LineCondition condition;
};

struct QaLine : ItemLine {
  std::vector<std::string> answers;
  std::string prediction;
  double exact_match = 0;  // 0 or 1
  double f1 = 0;           // 0..1
  int64_t context_tokens_dropped = 0;
  std::optional<double> support_share;  // absent when no support heads were given
};
nlohmann::json to_json(const QaLine& line);
// Errors name `where` ("DIR/results.jsonl:N").
QaLine qa_line_from_json(const nlohmann::json& j, const std::string& where);

// One `rhead cot` line: an item answered in one prompting style under one condition.
struct CotLine : ItemLine {
  std::string style;  // cot_style_name: answer_only | cot
  double gold = 0;
  std::string completion;
  std::optional<double> predicted;  // written as null when no number was found
  bool correct = false;
};
nlohmann::json to_json(const CotLine& line);
// Errors name `where` ("DIR/results.jsonl:N").
CotLine cot_line_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace rhead
