// JSON input with errors that name the input: one parser entry point (nesting depth
// limited, so no recursive walk over a parsed document can overflow the stack) and strict
// typed field readers. An integer field must be a JSON integer: `true`, 2.9 or "2" are
// errors, never coerced. Messages are "where: problem", one line.
#pragma once
#include <cstdint>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "io/error.h"

namespace rhead {

// Deepest array/object nesting accepted (real files nest fewer than 20 levels).
inline constexpr int kMaxJsonDepth = 128;

// Parses `text`; Error "where: invalid JSON: ..." (nlohmann's message without its
// "[json.exception...]" tag) or "where: JSON nested deeper than 128 levels".
nlohmann::json parse_json(std::string_view text, const std::string& where);
// Reads and parses a whole file; errors name `path`.
nlohmann::json read_json_file(const std::string& path);

// nlohmann's exception text without the "[json.exception.type.N] " tag.
std::string json_error_text(const std::exception& e);

// The field `key` of `object`, or nullptr when it is missing or null. Error when `object` is
// not an object.
const nlohmann::json* json_field(const nlohmann::json& object, const std::string& key, const std::string& where);
// The field, or Error "where: missing field 'key'".
const nlohmann::json& json_required(const nlohmann::json& object, const std::string& key, const std::string& where);

// Strict conversions of one value; `what` names it in the error ("field 'n_layer'").
int64_t json_integer(const nlohmann::json& v, const std::string& where, const std::string& what,
                     int64_t lo = std::numeric_limits<int64_t>::min(),
                     int64_t hi = std::numeric_limits<int64_t>::max());
int json_int(const nlohmann::json& v, const std::string& where, const std::string& what,
             int lo = std::numeric_limits<int>::min(), int hi = std::numeric_limits<int>::max());
double json_number(const nlohmann::json& v, const std::string& where, const std::string& what);
std::string json_string(const nlohmann::json& v, const std::string& where, const std::string& what);
bool json_bool(const nlohmann::json& v, const std::string& where, const std::string& what);

// Field readers: required, or with a fallback when the field is missing or null.
int json_int_field(const nlohmann::json& object, const std::string& key, const std::string& where);
int json_int_field(const nlohmann::json& object, const std::string& key, const std::string& where, int fallback);
double json_number_field(const nlohmann::json& object, const std::string& key, const std::string& where);
double json_number_field(const nlohmann::json& object, const std::string& key, const std::string& where,
                         double fallback);
std::string json_string_field(const nlohmann::json& object, const std::string& key, const std::string& where);
std::string json_string_field(const nlohmann::json& object, const std::string& key, const std::string& where,
                              const std::string& fallback);
bool json_bool_field(const nlohmann::json& object, const std::string& key, const std::string& where, bool fallback);

// Runs `read()` and turns the failures that start inside a library into one-line Errors
// naming `where`: nlohmann's exceptions, std::bad_alloc and std::length_error ("vector::
// reserve" / max_size()). rhead's own Errors pass through unchanged. Wrap every loader
// entry point with it.
template <typename Read>
auto guard_input(const std::string& where, Read&& read) -> decltype(read()) {
  try {
    return read();
  } catch (const Error&) {
    throw;
  } catch (const nlohmann::json::exception& e) {
    fail(where, json_error_text(e));
  } catch (const std::bad_alloc&) {
    fail(where, "a size in this input is too large to allocate");
  } catch (const std::length_error&) {
    fail(where, "a size in this input is too large to allocate");
  }
}

}  // namespace rhead
