// JSON parsing with a nesting limit, and strict typed readers.
#include "io/json.h"
#include "io/json_range.h"

#include <cmath>
#include <set>
#include <sstream>
#include <vector>

#include "io/error.h"
#include "io/mapped_file.h"

namespace rhead {

using nlohmann::json;

namespace {

// Deepest bracket nesting of `text`, stopping early once past `limit`. Brackets inside
// strings do not count. A linear scan with no recursion.
int nesting_depth(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) deepest = depth;
      if (deepest > limit) return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

std::string describe(const json& v) {
  std::string text = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

}  // namespace

std::string json_error_text(const std::exception& e) {
  std::string text = e.what();
  if (text.rfind("[json.exception.", 0) == 0) {
    const size_t close = text.find("] ");
    if (close != std::string::npos) text = text.substr(close + 2);
  }
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  return text;
}

json parse_json(std::string_view text, const std::string& where) {
  if (nesting_depth(text, kMaxJsonDepth) > kMaxJsonDepth)
    fail(where, "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  // The keys met so far in each open object: a key met twice is an error ("where: duplicate
  // key "k" in one JSON object"); the parser would keep the last value without a word.
  std::vector<std::set<std::string>> open_objects;
  auto on_event = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start: open_objects.emplace_back(); break;
      case json::parse_event_t::object_end: open_objects.pop_back(); break;
      case json::parse_event_t::key:
        if (!open_objects.back().insert(parsed.get<std::string>()).second)
          fail(where, "duplicate key \"" + parsed.get<std::string>() + "\" in one JSON object");
        break;
      default: break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), on_event);
  } catch (const json::exception& e) {
    fail(where, "invalid JSON: " + json_error_text(e));
  }
}

json read_json_file(const std::string& path) { return parse_json(read_text_file(path), path); }

const json* json_field(const json& object, const std::string& key, const std::string& where) {
  if (!object.is_object()) fail(where, "expected a JSON object, got " + describe(object));
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

const json& json_required(const json& object, const std::string& key, const std::string& where) {
  const json* v = json_field(object, key, where);
  if (!v) fail(where, "missing field '" + key + "'");
  return *v;
}

int64_t json_integer(const json& v, const std::string& where, const std::string& what, int64_t lo, int64_t hi) {
  int64_t value = 0;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(where, what + " is " + std::to_string(u) + " (must be in [" + std::to_string(lo) + ", " +
                      std::to_string(hi) + "])");
    value = static_cast<int64_t>(u);
  } else if (v.is_number_integer()) {
    value = v.get<int64_t>();
  } else {
    fail(where, what + " must be an integer, got " + describe(v));
  }
  if (value < lo || value > hi)
    fail(where, what + " is " + std::to_string(value) + " (must be in [" + std::to_string(lo) + ", " +
                    std::to_string(hi) + "])");
  return value;
}

int json_int(const json& v, const std::string& where, const std::string& what, int lo, int hi) {
  return static_cast<int>(json_integer(v, where, what, lo, hi));
}

double json_number(const json& v, const std::string& where, const std::string& what) {
  if (!v.is_number()) fail(where, what + " must be a number, got " + describe(v));
  const double x = v.get<double>();
  if (!std::isfinite(x)) fail(where, what + " must be a finite number, got " + describe(v));
  return x;
}

double json_number_in(const json& v, const std::string& where, const std::string& what, double lo, double hi) {
  const double x = json_number(v, where, what);
  if (x < lo || x > hi) {
    std::ostringstream range;
    range << "[" << lo << ", " << hi << "]";
    fail(where, what + " is " + describe(v) + " (must be in " + range.str() + ")");
  }
  return x;
}

std::string json_string(const json& v, const std::string& where, const std::string& what) {
  if (!v.is_string()) fail(where, what + " must be a string, got " + describe(v));
  return v.get<std::string>();
}

bool json_bool(const json& v, const std::string& where, const std::string& what) {
  if (!v.is_boolean()) fail(where, what + " must be true or false, got " + describe(v));
  return v.get<bool>();
}

namespace {
std::string field_name(const std::string& key) { return "field '" + key + "'"; }
}  // namespace

int json_int_field(const json& object, const std::string& key, const std::string& where) {
  return json_int(json_required(object, key, where), where, field_name(key));
}
int json_int_field(const json& object, const std::string& key, const std::string& where, int fallback) {
  const json* v = json_field(object, key, where);
  return v ? json_int(*v, where, field_name(key)) : fallback;
}
double json_number_field(const json& object, const std::string& key, const std::string& where) {
  return json_number(json_required(object, key, where), where, field_name(key));
}
double json_number_field(const json& object, const std::string& key, const std::string& where, double fallback) {
  const json* v = json_field(object, key, where);
  return v ? json_number(*v, where, field_name(key)) : fallback;
}
double json_fraction_field(const json& object, const std::string& key, const std::string& where, double fallback) {
  const json* v = json_field(object, key, where);
  return v ? json_number_in(*v, where, field_name(key), 0.0, 1.0) : fallback;
}
std::string json_string_field(const json& object, const std::string& key, const std::string& where) {
  return json_string(json_required(object, key, where), where, field_name(key));
}
std::string json_string_field(const json& object, const std::string& key, const std::string& where,
                              const std::string& fallback) {
  const json* v = json_field(object, key, where);
  return v ? json_string(*v, where, field_name(key)) : fallback;
}
bool json_bool_field(const json& object, const std::string& key, const std::string& where, bool fallback) {
  const json* v = json_field(object, key, where);
  return v ? json_bool(*v, where, field_name(key)) : fallback;
}

}  // namespace rhead
