// Typed qa / cot result lines: writers and strict readers over one field list each.
#include "records/task_records.h"

#include "io/json.h"
#include "io/json_fields.h"

namespace rhead {

using nlohmann::json;

namespace {

constexpr FieldSpec kCount = in_range(0, std::numeric_limits<double>::infinity());
constexpr FieldSpec kUnit = in_range(0, 1);

template <class Fields, class Line>
void item_fields(Fields& f, Line& l) {
  f("test_id", l.test_id, kOmitEmpty);
  f("item_id", l.item_id);
  f("question", l.question);
  f("prompt_tokens", l.prompt_tokens, kCount);
  f("generated_tokens", l.generated_tokens, kCount);
  f("seconds", l.seconds);
}

template <class Fields, class Line>
void qa_fields(Fields& f, Line& l) {
  f("answers", l.answers);
  f("prediction", l.prediction);
  f("exact_match", l.exact_match, kUnit);
  f("f1", l.f1, kUnit);
  f("context_tokens_dropped", l.context_tokens_dropped, kCount);
  f("support_share", l.support_share, in_range(0, 1, Presence::omit_empty));
}

template <class Fields, class Line>
void cot_fields(Fields& f, Line& l) {
  f("style", l.style);
  f("gold", l.gold);
  f("completion", l.completion);
  f("predicted", l.predicted, kOptional);  // null when no number was found
  f("correct", l.correct);
}

template <class Line, class Visit>
json line_to_json(const Line& l, Visit visit) {
  json line;
  JsonWriter w(line);
  item_fields(w, l);
  visit(w, l);
  add_condition_fields(l.condition, line);
  return line;
}

template <class Line, class Visit>
Line line_from_json(const json& j, const std::string& where, const char* what, Visit visit) {
  return guard_input(where, [&] {
    if (!j.is_object()) fail(where, std::string("a ") + what + " line must be a JSON object");
    Line l;
    JsonReader r(j, where);
    item_fields(r, l);
    visit(r, l);
    l.condition = condition_from_json(j, where);
    return l;
  });
}

}  // namespace

json to_json(const QaLine& l) {
  return line_to_json(l, [](auto& f, auto& line) { qa_fields(f, line); });
}

QaLine qa_line_from_json(const json& j, const std::string& where) {
  return line_from_json<QaLine>(j, where, "qa", [](auto& f, auto& line) { qa_fields(f, line); });
}

json to_json(const CotLine& l) {
  return line_to_json(l, [](auto& f, auto& line) { cot_fields(f, line); });
}

CotLine cot_line_from_json(const json& j, const std::string& where) {
  return line_from_json<CotLine>(j, where, "cot", [](auto& f, auto& line) { cot_fields(f, line); });
}

}  // namespace rhead
