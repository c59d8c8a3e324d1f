// NIAH result lines and the mask / KV condition of every masked line: writers and strict
// readers.
#include "records/niah_records.h"

#include <cmath>

#include "io/json.h"
#include "io/json_range.h"
#include "model/heads.h"

namespace rhead {

using nlohmann::json;

namespace {

double kv_cache_fraction(const json& kv_cache, const char* key) {
  if (!kv_cache.is_object()) return 1.0;
  const auto it = kv_cache.find(key);
  return it != kv_cache.end() && it->is_number() ? it->get<double>() : 1.0;
}

// An object field, or null when missing; Error when it is something else.
json object_field(const json& j, const std::string& key, const std::string& where) {
  const json* v = json_field(j, key, where);
  if (!v) return json();
  if (!v->is_object()) fail(where, "field '" + key + "' must be an object");
  return *v;
}

int64_t count_field(const json& j, const std::string& key, const std::string& where, int64_t fallback) {
  const json* v = json_field(j, key, where);
  return v ? json_integer(*v, where, "field '" + key + "'") : fallback;
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
  line["mask"] = c.mask;
  line["mask_kind"] = c.mask_kind;
  line["mask_k"] = c.mask_k;
  line["mask_seed"] = c.mask_seed;
  line["mask_heads"] = c.mask_heads;
  if (!c.kv_policy.is_null()) line["kv_policy"] = c.kv_policy;
  if (!c.kv_cache.is_null()) line["kv_cache"] = c.kv_cache;
}

LineCondition condition_from_json(const json& line, const std::string& where) {
  LineCondition c;
  c.mask = json_string_field(line, "mask", where);
  c.mask_kind = json_string_field(line, "mask_kind", where);
  c.mask_k = json_int(json_required(line, "mask_k", where), where, "field 'mask_k'", 0);
  const json& seed = json_required(line, "mask_seed", where);
  c.mask_seed = seed.is_number_unsigned() ? seed.get<uint64_t>()
                                          : static_cast<uint64_t>(json_integer(seed, where, "field 'mask_seed'", 0));
  const json& heads = json_required(line, "mask_heads", where);
  if (!heads.is_array()) fail(where, "field 'mask_heads' must be an array of strings");
  for (const auto& h : heads) c.mask_heads.push_back(json_string(h, where, "an element of 'mask_heads'"));
  c.kv_policy = object_field(line, "kv_policy", where);
  c.kv_cache = object_field(line, "kv_cache", where);
  return c;
}

json to_json(const NiahLine& l) {
  json j;
  j["test_id"] = l.test_id;
  j["model"] = l.model;
  j["context_length"] = l.context_length;
  j["depth_percent"] = l.depth_percent;
  j["needle"] = l.needle;
  j["model_response"] = l.model_response;
  j["score"] = l.score;
  j["grid_test_id"] = l.grid_test_id;
  j["needle_id"] = l.needle_id;
  add_condition_fields(l.condition, j);
  j["mask_mode"] = l.mask_mode;
  j["mask_phase"] = l.mask_phase;
  j["passed"] = l.passed;
  j["error_kind"] = l.error_kind == ErrorKind::none ? json() : json(error_kind_name(l.error_kind));
  j["copy_tally"] = {{"content_steps", l.copy_tally.content_steps},
                     {"span_steps", l.copy_tally.span_steps},
                     {"haystack_steps", l.copy_tally.haystack_steps}};
  j["span"] = {l.span_begin, l.span_end};
  j["prompt_tokens"] = l.prompt_tokens;
  j["generated_tokens"] = l.generated_tokens;
  j["seconds"] = l.seconds;
  add_observation_fields(l.observed, j);
  return j;
}

NiahLine niah_line_from_json(const json& j, const std::string& where) {
  return guard_input(where, [&] {
    if (!j.is_object()) fail(where, "a niah line must be a JSON object");
    NiahLine l;
    l.test_id = json_string_field(j, "test_id", where, "");
    l.model = json_string_field(j, "model", where, "");
    l.context_length = json_integer(json_required(j, "context_length", where), where, "field 'context_length'", 0);
    l.depth_percent = static_cast<int>(std::lround(json_number_field(j, "depth_percent", where)));
    l.needle = json_string_field(j, "needle", where, "");
    l.model_response = json_string_field(j, "model_response", where, "");
    l.score = json_number_in(json_required(j, "score", where), where, "field 'score'", 0.0, 100.0);
    l.grid_test_id = json_string_field(j, "grid_test_id", where, "");
    l.needle_id = json_int_field(j, "needle_id", where, 0);
    if (json_field(j, "mask_kind", where)) {
      l.condition = condition_from_json(j, where);
    } else {
      l.condition.mask = json_string_field(j, "mask", where, "none");
      l.condition.kv_policy = object_field(j, "kv_policy", where);
      l.condition.kv_cache = object_field(j, "kv_cache", where);
    }
    l.mask_mode = json_string_field(j, "mask_mode", where, "uniform");
    l.mask_phase = json_string_field(j, "mask_phase", where, "decode");
    l.passed = json_bool_field(j, "passed", where, l.score > kPassScore);
    if (const json* ek = json_field(j, "error_kind", where)) {
      const std::string name = json_string(*ek, where, "field 'error_kind'");
      const auto kind = error_kind_from_name(name);
      if (!kind) fail(where, "field 'error_kind': unknown error kind '" + name + "'");
      l.error_kind = *kind;
    }
    if (const json* tally = json_field(j, "copy_tally", where)) {
      if (!tally->is_object()) fail(where, "field 'copy_tally' must be an object");
      l.copy_tally.content_steps = json_int_field(*tally, "content_steps", where);
      l.copy_tally.span_steps = json_int_field(*tally, "span_steps", where);
      l.copy_tally.haystack_steps = json_int_field(*tally, "haystack_steps", where);
    }
    if (const json* span = json_field(j, "span", where)) {
      if (!span->is_array() || span->size() != 2) fail(where, "field 'span' is not [begin, end]");
      l.span_begin = json_integer((*span)[0], where, "span begin");
      l.span_end = json_integer((*span)[1], where, "span end");
    }
    l.prompt_tokens = count_field(j, "prompt_tokens", where, 0);
    l.generated_tokens = count_field(j, "generated_tokens", where, 0);
    l.seconds = json_number_field(j, "seconds", where, 0.0);
    l.observed = observations_from_json(j, where);
    return l;
  });
}

}  // namespace rhead
