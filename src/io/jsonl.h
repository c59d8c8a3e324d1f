// JSON Lines input: one JSON object per line, blank lines skipped. Errors name the input and
// the 1-based line ("where:N: problem").
#pragma once
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace rhead {

// Calls `read_item(object, at, line)` for each non-blank line of `text`, in order; `at` is
// "where:line", for the caller's own error messages. Throws Error when a line is not valid
// JSON or not an object.
void for_each_jsonl_object(
    const std::string& text, const std::string& where,
    const std::function<void(const nlohmann::json& object, const std::string& at, int line)>& read_item);

// An item's "id": the string itself, any other JSON value as written, or "line N" without one.
std::string jsonl_item_id(const nlohmann::json& object, int line);

}  // namespace rhead
