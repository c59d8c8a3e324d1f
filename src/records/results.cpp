// Detect result lines and head_score.json.
#include "records/results.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "io/error.h"
#include "model/heads.h"
#include "io/json.h"
#include "io/json_fields.h"

namespace rhead {

using nlohmann::json;

namespace {

// A detect line's own fields; "steps", "error" and the other observations are
// add_observation_fields' (fields after "counted" are optional to read).
template <class Fields, class Result>
void test_result_fields(Fields& f, Result& r) {
  f("test_id", r.test_id);
  f("needle_id", r.needle_id);
  f("length", r.length);
  f("depth", r.depth);
  f.span("needle_span", r.span_begin, r.span_end);
  f("answer", r.answer);
  f("rouge_recall", r.rouge_recall, in_range(0, 100));
  f("counted", r.counted);
  f("head_scores", r.head_scores, in_range(0, kMaxHeadScore));
  f("seconds", r.seconds, kOptional);
  f("prompt_tokens", r.prompt_tokens, kOptional);
  f("generated_tokens", r.generated_tokens, kOptional);
  f.object(
      "timing",
      [&](auto& g) {
        g("prefill", r.prefill_seconds, kOptional);
        g("decode", r.decode_seconds, kOptional);
        g("scoring", r.scoring_seconds, kOptional);
      },
      kOptional);
  f("reused_tokens", r.reused_tokens, kOptional);
  f("method_scores", r.method_scores, kOmitEmpty);
}

}  // namespace

json to_json(const TestResult& r) {
  json j;
  JsonWriter w(j);
  test_result_fields(w, r);
  add_observation_fields(r, j);
  return j;
}

void add_observation_fields(const TestObservations& o, json& line) {
  if (!o.error.empty()) line["error"] = o.error;
  line["copy_steps_inside_span"] = o.copy_steps_inside_span;
  line["copy_steps_outside_span"] = o.copy_steps_outside_span;
  if (o.sink_mass_top_heads >= 0) line["sink_mass_top_heads"] = o.sink_mass_top_heads;
  if (o.steps) {
    line["steps"] = steps_to_json(*o.steps);
    line["sink_mass_by_head"] = o.sink_mass_by_head;
  }
  if (o.support_share >= 0) line["support_share"] = o.support_share;
}

TestObservations observations_from_json(const json& j, const std::string& where) {
  TestObservations o;
  o.support_share = json_fraction_field(j, "support_share", where, -1.0);
  o.error = json_string_field(j, "error", where, "");
  if (const json* v = json_field(j, "copy_steps_inside_span", where))
    o.copy_steps_inside_span = json_integer(*v, where, "field 'copy_steps_inside_span'");
  if (const json* v = json_field(j, "copy_steps_outside_span", where))
    o.copy_steps_outside_span = json_integer(*v, where, "field 'copy_steps_outside_span'");
  o.sink_mass_top_heads = json_fraction_field(j, "sink_mass_top_heads", where, -1.0);
  if (const json* steps = json_field(j, "steps", where)) {
    try {
      o.steps = steps_from_json(*steps);
    } catch (const Error& e) {
      fail(where, e.what());
    }
  }
  if (const json* by_head = json_field(j, "sink_mass_by_head", where)) {
    if (!by_head->is_object()) fail(where, "field 'sink_mass_by_head' is not an object");
    for (const auto& [key, v] : by_head->items())
      o.sink_mass_by_head[key] = json_number_in(v, where, "sink_mass_by_head['" + key + "']", 0.0, 1.0);
  }
  return o;
}

TestResult test_result_from_json(const json& j, const std::string& where) {
  TestResult r;
  try {
    // Strict types: a depth of 2.5 or a needle_id of true is a corrupt line, not 2 or 1.
    JsonReader in(j, where);
    test_result_fields(in, r);
    for (const auto& [key, v] : r.head_scores) HeadId::parse(key, where);
    static_cast<TestObservations&>(r) = observations_from_json(j, where);
  } catch (const json::exception& e) {
    fail(where, "malformed result line: " + json_error_text(e));
  }
  return r;
}

json head_score_json(const std::vector<TestResult>& results, int n_layer, int n_head) {
  json out = json::object();
  for (int l = 0; l < n_layer; ++l)
    for (int h = 0; h < n_head; ++h) {
      const std::string key = HeadId{l, h}.key();
      json list = json::array();
      for (const auto& r : results) {
        if (!r.counted) continue;
        auto it = r.head_scores.find(key);
        list.push_back(it == r.head_scores.end() ? 0.0 : it->second);
      }
      out[key] = list;
    }
  return out;
}

json head_scores_merged_with(const std::string& path, const json& scores) {
  json existing = json::object();
  if (std::filesystem::exists(path)) {
    existing = read_json_file(path);
    if (!existing.is_object()) fail(path, "not a head_score object");
    for (auto& [k, v] : scores.items())
      if (!existing.contains(k)) fail(path, "has no head " + k + ": the score maps have different shapes");
    for (auto& [k, v] : existing.items())
      if (!scores.contains(k)) fail(path, "head " + k + " is not in this run: the score maps have different shapes");
  }
  for (auto& [k, v] : scores.items()) {
    json& list = existing[k];
    if (list.is_null()) list = json::array();
    for (const auto& s : v) list.push_back(s);
  }
  return existing;
}

json method_score_json(const std::vector<TestResult>& results, const std::string& method, int n_layer, int n_head,
                       const std::string& where) {
  json out = json::object();
  std::vector<const std::vector<double>*> lists;
  const size_t heads = static_cast<size_t>(n_layer) * n_head;
  for (const auto& r : results) {
    auto it = r.method_scores.find(method);
    if (it == r.method_scores.end()) continue;
    if (it->second.size() != heads)
      fail(where, "test " + r.test_id + ": method_scores['" + method + "'] holds " + std::to_string(it->second.size()) +
                      " scores for " + std::to_string(heads) + " heads");
    lists.push_back(&it->second);
  }
  for (int l = 0; l < n_layer; ++l)
    for (int h = 0; h < n_head; ++h) {
      json list = json::array();
      for (const auto* v : lists) list.push_back((*v)[static_cast<size_t>(l) * n_head + h]);
      out[HeadId{l, h}.key()] = std::move(list);
    }
  return out;
}

void merge_head_scores_into(const std::string& path, const json& scores) {
  write_file_atomic(path, head_scores_merged_with(path, scores).dump());
}

void sort_results(std::vector<TestResult>& results) {
  std::stable_sort(results.begin(), results.end(), [](const TestResult& a, const TestResult& b) {
    return std::tie(a.needle_id, a.length, a.depth) < std::tie(b.needle_id, b.length, b.depth);
  });
}

}  // namespace rhead
