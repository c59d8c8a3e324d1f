// Detect result lines and head_score.json.
#include "records/results.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "io/error.h"
#include "model/heads.h"
#include "io/json.h"
#include "io/json_range.h"

namespace rhead {

using nlohmann::json;

json to_json(const TestResult& r) {
  json j;
  j["test_id"] = r.test_id;
  j["needle_id"] = r.needle_id;
  j["length"] = r.length;
  j["depth"] = r.depth;
  j["needle_span"] = {r.span_begin, r.span_end};
  j["answer"] = r.answer;
  j["rouge_recall"] = r.rouge_recall;
  j["counted"] = r.counted;
  j["head_scores"] = r.head_scores;
  j["seconds"] = r.seconds;
  j["prompt_tokens"] = r.prompt_tokens;
  j["generated_tokens"] = r.generated_tokens;
  j["timing"] = {{"prefill", r.prefill_seconds}, {"decode", r.decode_seconds}, {"scoring", r.scoring_seconds}};
  j["reused_tokens"] = r.reused_tokens;
  add_observation_fields(observations_of(r), j);
  if (!r.method_scores.empty()) j["method_scores"] = r.method_scores;
  return j;
}

TestObservations observations_of(const TestResult& r) {
  TestObservations o;
  o.error = r.error;
  o.copy_steps_inside_span = r.copy_steps_inside_span;
  o.copy_steps_outside_span = r.copy_steps_outside_span;
  o.sink_mass_top_heads = r.sink_mass_top_heads;
  o.steps = r.steps;
  o.sink_mass_by_head = r.sink_mass_by_head;
  o.support_share = r.support_share;
  return o;
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
    r.test_id = json_string_field(j, "test_id", where);
    r.needle_id = json_int_field(j, "needle_id", where);
    r.length = json_integer(json_required(j, "length", where), where, "field 'length'");
    r.depth = json_int_field(j, "depth", where);
    const auto& span = json_required(j, "needle_span", where);
    if (!span.is_array() || span.size() != 2) fail(where, "field 'needle_span' is not [begin, end]");
    r.span_begin = json_integer(span[0], where, "needle_span begin");
    r.span_end = json_integer(span[1], where, "needle_span end");
    r.answer = json_string_field(j, "answer", where);
    r.rouge_recall = json_number_in(json_required(j, "rouge_recall", where), where, "field 'rouge_recall'", 0.0, 100.0);
    r.counted = json_bool(json_required(j, "counted", where), where, "field 'counted'");
    const json& scores = json_required(j, "head_scores", where);
    if (!scores.is_object()) fail(where, "field 'head_scores' is not an object");
    for (const auto& [key, v] : scores.items()) {
      HeadId::parse(key, where);
      r.head_scores[key] = json_number_in(v, where, "head_scores['" + key + "']", 0.0, kMaxHeadScore);
    }
    r.seconds = json_number_field(j, "seconds", where, 0.0);
    r.prompt_tokens = json_int_field(j, "prompt_tokens", where, 0);
    r.generated_tokens = json_int_field(j, "generated_tokens", where, 0);
    if (const json* timing = json_field(j, "timing", where)) {
      if (!timing->is_object()) fail(where, "field 'timing' is not an object");
      r.prefill_seconds = json_number_field(*timing, "prefill", where, 0.0);
      r.decode_seconds = json_number_field(*timing, "decode", where, 0.0);
      r.scoring_seconds = json_number_field(*timing, "scoring", where, 0.0);
    }
    if (const json* v = json_field(j, "reused_tokens", where))
      r.reused_tokens = json_integer(*v, where, "field 'reused_tokens'");
    TestObservations o = observations_from_json(j, where);
    r.error = std::move(o.error);
    r.copy_steps_inside_span = o.copy_steps_inside_span;
    r.copy_steps_outside_span = o.copy_steps_outside_span;
    r.sink_mass_top_heads = o.sink_mass_top_heads;
    r.steps = std::move(o.steps);
    r.sink_mass_by_head = std::move(o.sink_mass_by_head);
    r.support_share = o.support_share;
    if (const json* methods = json_field(j, "method_scores", where)) {
      if (!methods->is_object()) fail(where, "field 'method_scores' is not an object");
      for (const auto& [name, list] : methods->items()) {
        if (!list.is_array()) fail(where, "method_scores['" + name + "'] is not a list");
        std::vector<double>& out = r.method_scores[name];
        for (const auto& v : list) {
          if (!v.is_number()) fail(where, "method_scores['" + name + "'] holds a value that is not a number");
          out.push_back(v.get<double>());
        }
      }
    }
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
