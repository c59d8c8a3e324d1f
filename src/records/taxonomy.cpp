// Error taxonomy of failed NIAH tests.
#include "records/taxonomy.h"

#include "io/enum_names.h"
#include "io/error.h"
#include "model/heads.h"

namespace rhead {

constexpr EnumName<ErrorKind> kErrorKinds[] = {{ErrorKind::none, "none"},
                                                {ErrorKind::incomplete, "incomplete"},
                                                {ErrorKind::hallucination, "hallucination"},
                                                {ErrorKind::wrong_extraction, "wrong_extraction"}};

const char* error_kind_name(ErrorKind kind) { return name_in(kErrorKinds, kind); }

std::optional<ErrorKind> error_kind_from_name(const std::string& name) { return find_in(kErrorKinds, name); }

const std::vector<ErrorKind>& failure_kinds() {
  static const std::vector<ErrorKind> kinds = {ErrorKind::incomplete, ErrorKind::hallucination,
                                               ErrorKind::wrong_extraction};
  return kinds;
}

CopyTally tally_copies(const std::vector<StepCopies>& steps) {
  CopyTally t;
  for (const auto& s : steps) {
    if (!s.content) continue;
    ++t.content_steps;
    if (s.span > 0)
      ++t.span_steps;
    else if (s.needle == 0 && s.haystack > 0)
      ++t.haystack_steps;
  }
  return t;
}

ErrorKind classify_error(double score, const std::vector<StepCopies>& steps) {
  if (score > kPassScore) return ErrorKind::none;
  const CopyTally t = tally_copies(steps);
  if (t.haystack_steps > t.span_steps) return ErrorKind::wrong_extraction;
  if (score > 0.0 && t.span_steps > 0) return ErrorKind::incomplete;
  return ErrorKind::hallucination;
}

std::vector<StepCopies> steps_from_json(const nlohmann::json& steps) {
  std::vector<StepCopies> out;
  if (steps.is_null()) return out;
  if (!steps.is_array()) throw Error("step records: expected a list");
  for (const auto& j : steps) {
    if (!j.is_object()) throw Error("step record " + j.dump() + " is not an object");
    try {
      StepCopies s;
      s.token = j.value("token", -1);
      s.content = j.value("content", true);
      s.span = j.value("span", 0);
      s.needle = j.value("needle", 0);
      s.haystack = j.value("haystack", 0);
      s.other = j.value("other", 0);
      s.sink = j.value("sink", -1.0);
      out.push_back(s);
    } catch (const nlohmann::json::exception& e) {
      throw Error("step record " + j.dump() + ": " + e.what());
    }
  }
  return out;
}

nlohmann::json steps_to_json(const std::vector<StepCopies>& steps) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : steps) {
    nlohmann::json j = {
        {"content", s.content}, {"span", s.span}, {"needle", s.needle}, {"haystack", s.haystack}, {"other", s.other}};
    if (s.token >= 0) j["token"] = s.token;
    if (s.sink >= 0) j["sink"] = s.sink;
    out.push_back(std::move(j));
  }
  return out;
}

double mean_sink_mass(const std::vector<StepCopies>& steps) {
  double sum = 0;
  int n = 0;
  for (const auto& s : steps)
    if (s.sink >= 0) sum += s.sink, ++n;
  return n ? sum / n : -1.0;
}

}  // namespace rhead
