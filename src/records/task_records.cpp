// Typed qa / cot result lines: writers and strict readers.
#include "records/task_records.h"

#include "io/json.h"
#include "io/json_range.h"

namespace rhead {

using nlohmann::json;

namespace {

std::vector<std::string> string_array_field(const json& j, const std::string& key, const std::string& where) {
  const json& v = json_required(j, key, where);
  if (!v.is_array()) fail(where, "field '" + key + "' must be an array of strings");
  std::vector<std::string> out;
  for (const auto& s : v) out.push_back(json_string(s, where, "an element of '" + key + "'"));
  return out;
}

int64_t count_field(const json& j, const std::string& key, const std::string& where) {
  return json_integer(json_required(j, key, where), where, "field '" + key + "'", 0);
}

}  // namespace

json to_json(const QaLine& l) {
  json line{{"item_id", l.item_id},
            {"question", l.question},
            {"answers", l.answers},
            {"prediction", l.prediction},
            {"exact_match", l.exact_match},
            {"f1", l.f1},
            {"prompt_tokens", l.prompt_tokens},
            {"generated_tokens", l.generated_tokens},
            {"context_tokens_dropped", l.context_tokens_dropped},
            {"seconds", l.seconds}};
  if (!l.test_id.empty()) line["test_id"] = l.test_id;
  if (l.support_share) line["support_share"] = *l.support_share;
  add_condition_fields(l.condition, line);
  return line;
}

QaLine qa_line_from_json(const json& j, const std::string& where) {
  return guard_input(where, [&] {
    if (!j.is_object()) fail(where, "a qa line must be a JSON object");
    QaLine l;
    l.test_id = json_string_field(j, "test_id", where, "");
    l.item_id = json_string_field(j, "item_id", where);
    l.question = json_string_field(j, "question", where);
    l.answers = string_array_field(j, "answers", where);
    l.prediction = json_string_field(j, "prediction", where);
    l.exact_match = json_number_in(json_required(j, "exact_match", where), where, "field 'exact_match'", 0.0, 1.0);
    l.f1 = json_number_in(json_required(j, "f1", where), where, "field 'f1'", 0.0, 1.0);
    l.prompt_tokens = count_field(j, "prompt_tokens", where);
    l.generated_tokens = count_field(j, "generated_tokens", where);
    l.context_tokens_dropped = count_field(j, "context_tokens_dropped", where);
    l.seconds = json_number_field(j, "seconds", where);
    if (const json* s = json_field(j, "support_share", where))
      l.support_share = json_number_in(*s, where, "field 'support_share'", 0.0, 1.0);
    l.condition = condition_from_json(j, where);
    return l;
  });
}

json to_json(const CotLine& l) {
  json line{{"style", l.style},
            {"item_id", l.item_id},
            {"question", l.question},
            {"gold", l.gold},
            {"completion", l.completion},
            {"predicted", l.predicted ? json(*l.predicted) : json()},
            {"correct", l.correct},
            {"prompt_tokens", l.prompt_tokens},
            {"generated_tokens", l.generated_tokens},
            {"seconds", l.seconds}};
  if (!l.test_id.empty()) line["test_id"] = l.test_id;
  add_condition_fields(l.condition, line);
  return line;
}

CotLine cot_line_from_json(const json& j, const std::string& where) {
  return guard_input(where, [&] {
    if (!j.is_object()) fail(where, "a cot line must be a JSON object");
    CotLine l;
    l.test_id = json_string_field(j, "test_id", where, "");
    l.style = json_string_field(j, "style", where);
    l.item_id = json_string_field(j, "item_id", where);
    l.question = json_string_field(j, "question", where);
    l.gold = json_number_field(j, "gold", where);
    l.completion = json_string_field(j, "completion", where);
    if (const json* p = json_field(j, "predicted", where)) l.predicted = json_number(*p, where, "field 'predicted'");
    l.correct = json_bool(json_required(j, "correct", where), where, "field 'correct'");
    l.prompt_tokens = count_field(j, "prompt_tokens", where);
    l.generated_tokens = count_field(j, "generated_tokens", where);
    l.seconds = json_number_field(j, "seconds", where);
    l.condition = condition_from_json(j, where);
    return l;
  });
}

}  // namespace rhead
