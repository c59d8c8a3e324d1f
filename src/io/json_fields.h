// One field list per record, for its writer and its strict reader. A record names each field
// once, in a function template that JsonWriter and JsonReader both run:
//
//   template <class Fields, class Line> void qa_fields(Fields& f, Line& l) {
//     f("item_id", l.item_id);                  // required
//     f("f1", l.f1, in_range(0, 1));            // a number in [0, 1]
//     f("test_id", l.test_id, kOmitEmpty);      // written when not empty, optional to read
//     f.object("timing", [&](auto& g) { g("prefill", l.prefill_seconds, kOptional); });
//   }
//
// JsonWriter puts the fields into a JSON object. JsonReader reads them back with io/json.h's
// strict rules (a wrong type is an error, never coerced; numbers within their range); a
// missing optional field leaves the member as the record's default initialised it. Errors
// are "where: field 'key' ...", one line.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/json.h"
#include "io/json_range.h"

namespace rhead {

// How a field appears in a record.
enum class Presence {
  required,    // always written; reading fails when it is missing
  optional,    // always written; reading keeps the member's value when it is missing or null
  omit_empty,  // written unless empty (a string, container or optional); optional to read
};

// A field's presence and, for numbers (and a map's numbers), the closed range of its values.
struct FieldSpec {
  Presence presence = Presence::required;
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool ranged() const { return std::isfinite(lo) || std::isfinite(hi); }
};
inline constexpr FieldSpec kOptional{Presence::optional};
inline constexpr FieldSpec kOmitEmpty{Presence::omit_empty};
constexpr FieldSpec in_range(double lo, double hi, Presence p = Presence::required) { return {p, lo, hi}; }

namespace json_fields_detail {
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
}  // namespace json_fields_detail

class JsonWriter {
 public:
  explicit JsonWriter(nlohmann::json& out) : out_(out) {}

  template <class T>
  void operator()(const char* key, const T& v, FieldSpec s = {}) {
    if constexpr (json_fields_detail::is_optional<T>::value) {
      if (!v && s.presence == Presence::omit_empty) return;
      out_[key] = v ? nlohmann::json(*v) : nlohmann::json();
    } else {
      if constexpr (requires { v.empty(); })
        if (s.presence == Presence::omit_empty && v.empty()) return;
      out_[key] = v;
    }
  }
  // [begin, end] as a two-element array.
  void span(const char* key, int64_t begin, int64_t end, FieldSpec = {}) { out_[key] = {begin, end}; }
  // A nested object whose fields `inner(writer)` names.
  template <class Inner>
  void object(const char* key, Inner&& inner, FieldSpec = {}) {
    nlohmann::json sub = nlohmann::json::object();
    JsonWriter w(sub);
    inner(w);
    out_[key] = std::move(sub);
  }

 private:
  nlohmann::json& out_;
};

class JsonReader {
 public:
  // `in` must be a JSON object (json_field's rule).
  JsonReader(const nlohmann::json& in, const std::string& where) : in_(in), where_(where) {}

  template <class T>
  void operator()(const char* key, T& v, FieldSpec s = {}) {
    if (const nlohmann::json* f = find(key, s)) read(*f, key, v, s);
  }
  void span(const char* key, int64_t& begin, int64_t& end, FieldSpec s = {}) {
    const nlohmann::json* f = find(key, s);
    if (!f) return;
    if (!f->is_array() || f->size() != 2) fail(where_, field(key) + " is not [begin, end]");
    begin = json_integer((*f)[0], where_, std::string(key) + " begin");
    end = json_integer((*f)[1], where_, std::string(key) + " end");
  }
  template <class Inner>
  void object(const char* key, Inner&& inner, FieldSpec s = {}) {
    const nlohmann::json* f = find(key, s);
    if (!f) return;
    if (!f->is_object()) fail(where_, field(key) + " is not an object");
    JsonReader r(*f, where_);
    inner(r);
  }

 private:
  static std::string field(const char* key) { return "field '" + std::string(key) + "'"; }
  const nlohmann::json* find(const char* key, FieldSpec s) const {
    return s.presence == Presence::required ? &json_required(in_, key, where_) : json_field(in_, key, where_);
  }
  static int64_t bound(double b, int64_t fallback) { return std::isfinite(b) ? static_cast<int64_t>(b) : fallback; }
  double number(const nlohmann::json& f, const std::string& what, FieldSpec s) const {
    return s.ranged() ? json_number_in(f, where_, what, s.lo, s.hi) : json_number(f, where_, what);
  }

  void read(const nlohmann::json& f, const char* key, std::string& v, FieldSpec) {
    v = json_string(f, where_, field(key));
  }
  void read(const nlohmann::json& f, const char* key, bool& v, FieldSpec) { v = json_bool(f, where_, field(key)); }
  void read(const nlohmann::json& f, const char* key, double& v, FieldSpec s) { v = number(f, field(key), s); }
  void read(const nlohmann::json& f, const char* key, std::optional<double>& v, FieldSpec s) {
    v = number(f, field(key), s);
  }
  void read(const nlohmann::json& f, const char* key, int64_t& v, FieldSpec s) {
    using L = std::numeric_limits<int64_t>;
    v = json_integer(f, where_, field(key), bound(s.lo, L::min()), bound(s.hi, L::max()));
  }
  void read(const nlohmann::json& f, const char* key, uint64_t& v, FieldSpec) {
    v = f.is_number_unsigned() ? f.get<uint64_t>() : static_cast<uint64_t>(json_integer(f, where_, field(key), 0));
  }
  void read(const nlohmann::json& f, const char* key, int& v, FieldSpec s) {
    using L = std::numeric_limits<int>;
    v = json_int(f, where_, field(key), static_cast<int>(bound(s.lo, L::min())),
                 static_cast<int>(bound(s.hi, L::max())));
  }
  void read(const nlohmann::json& f, const char* key, std::vector<std::string>& v, FieldSpec) {
    if (!f.is_array()) fail(where_, field(key) + " must be an array of strings");
    v.clear();
    for (const auto& s : f) v.push_back(json_string(s, where_, "an element of '" + std::string(key) + "'"));
  }
  // Objects of numbers: "key['name']" names a bad value.
  void read(const nlohmann::json& f, const char* key, std::map<std::string, double>& v, FieldSpec s) {
    if (!f.is_object()) fail(where_, field(key) + " is not an object");
    v.clear();
    for (const auto& [name, x] : f.items()) v[name] = number(x, std::string(key) + "['" + name + "']", s);
  }
  void read(const nlohmann::json& f, const char* key, std::map<std::string, std::vector<double>>& v, FieldSpec s) {
    if (!f.is_object()) fail(where_, field(key) + " is not an object");
    v.clear();
    for (const auto& [name, list] : f.items()) {
      const std::string what = std::string(key) + "['" + name + "']";
      if (!list.is_array()) fail(where_, what + " is not a list");
      std::vector<double>& out = v[name];
      for (const auto& x : list) out.push_back(number(x, "a value of " + what, s));
    }
  }
  // A JSON object kept as it is (settings, a KV policy).
  void read(const nlohmann::json& f, const char* key, nlohmann::json& v, FieldSpec) {
    if (!f.is_object()) fail(where_, field(key) + " is not an object");
    v = f;
  }

  const nlohmann::json& in_;
  const std::string& where_;
};

}  // namespace rhead
