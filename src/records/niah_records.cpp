// NIAH result lines and the mask / KV condition of every masked line: writers and strict
// readers.
#include "records/niah_records.h"

#include <cmath>

#include "io/json.h"
#include "io/json_fields.h"
#include "model/heads.h"

namespace rhead {

using nlohmann::json;

namespace {

double kv_cache_fraction(const json& kv_cache, const char* key) {
  if (!kv_cache.is_object()) return 1.0;
  const auto it = kv_cache.find(key);
  return it != kv_cache.end() && it->is_number() ? it->get<double>() : 1.0;
}

template <class Fields, class Condition>
void condition_fields(Fields& f, Condition& c) {
  f("mask", c.mask);
  f("mask_kind", c.mask_kind);
  f("mask_k", c.mask_k, in_range(0, std::numeric_limits<int>::max()));
  f("mask_seed", c.mask_seed);
  f("mask_heads", c.mask_heads);
  f("kv_policy", c.kv_policy, kOmitEmpty);
  f("kv_cache", c.kv_cache, kOmitEmpty);
}

// The fields of a niah line but its condition, error kind and observations. Lines of
// earlier runs lack some: those read as the struct's defaults.
template <class Fields, class Line>
void niah_fields(Fields& f, Line& l) {
  f("test_id", l.test_id, kOptional);
  f("model", l.model, kOptional);
  f("context_length", l.context_length, in_range(0, std::numeric_limits<double>::infinity()));
  f("needle", l.needle, kOptional);
  f("model_response", l.model_response, kOptional);
  f("score", l.score, in_range(0, 100));
  f("grid_test_id", l.grid_test_id, kOptional);
  f("needle_id", l.needle_id, kOptional);
  f("mask_mode", l.mask_mode, kOptional);
  f("mask_phase", l.mask_phase, kOptional);
  f("passed", l.passed, kOptional);
  f.object(
      "copy_tally",
      [&](auto& g) {
        g("content_steps", l.copy_tally.content_steps);
        g("span_steps", l.copy_tally.span_steps);
        g("haystack_steps", l.copy_tally.haystack_steps);
      },
      kOptional);
  f.span("span", l.span_begin, l.span_end, kOptional);
  f("prompt_tokens", l.prompt_tokens, kOptional);
  f("generated_tokens", l.generated_tokens, kOptional);
  f("seconds", l.seconds, kOptional);
}

}  // namespace

double LineCondition::kv_kept_fraction() const { return kv_cache_fraction(kv_cache, "kv_kept_fraction"); }
double LineCondition::query_kept_fraction() const { return kv_cache_fraction(kv_cache, "query_kept_fraction"); }

json LineCondition::summary_mask() const {
  json m = {{"label", mask}, {"kind", mask_kind}, {"k", mask_k}, {"seed", mask_seed}, {"heads", mask_heads}};
  if (kv_policy.is_object() && kv_policy.value("window", 0) > 0) m["kv_policy"] = kv_policy;
  return m;
}

void add_condition_fields(const LineCondition& c, json& line) {
  JsonWriter w(line);
  condition_fields(w, c);
}

LineCondition condition_from_json(const json& line, const std::string& where) {
  LineCondition c;
  JsonReader r(line, where);
  condition_fields(r, c);
  return c;
}

json to_json(const NiahLine& l) {
  json j;
  JsonWriter w(j);
  niah_fields(w, l);
  j["depth_percent"] = l.depth_percent;
  add_condition_fields(l.condition, j);
  j["error_kind"] = l.error_kind == ErrorKind::none ? json() : json(error_kind_name(l.error_kind));
  add_observation_fields(l.observed, j);
  return j;
}

NiahLine niah_line_from_json(const json& j, const std::string& where) {
  return guard_input(where, [&] {
    if (!j.is_object()) fail(where, "a niah line must be a JSON object");
    NiahLine l;
    JsonReader r(j, where);
    niah_fields(r, l);
    // The reference writes depth_percent as a float.
    l.depth_percent = static_cast<int>(std::lround(json_number_field(j, "depth_percent", where)));
    if (!json_field(j, "passed", where)) l.passed = l.score > kPassScore;
    if (json_field(j, "mask_kind", where)) {
      l.condition = condition_from_json(j, where);
    } else {  // an earlier line: only the mask label, and the KV fields
      JsonReader cr(j, where);
      cr("mask", l.condition.mask, kOptional);
      cr("kv_policy", l.condition.kv_policy, kOptional);
      cr("kv_cache", l.condition.kv_cache, kOptional);
    }
    if (const json* ek = json_field(j, "error_kind", where)) {
      const std::string name = json_string(*ek, where, "field 'error_kind'");
      const auto kind = error_kind_from_name(name);
      if (!kind) fail(where, "field 'error_kind': unknown error kind '" + name + "'");
      l.error_kind = *kind;
    }
    l.observed = observations_from_json(j, where);
    return l;
  });
}

}  // namespace rhead
