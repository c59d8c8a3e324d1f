// Strict readers of numbers with a domain, beside io/json.h's typed readers (which refuse
// non-finite numbers, such as 1e400 read as infinity): head scores and probabilities in
// [0, 1], scores in [0, 100], counts within their bounds. Errors are "where: what is V (must
// be in [lo, hi])".
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace rhead {

// A finite number in [lo, hi].
double json_number_in(const nlohmann::json& v, const std::string& where, const std::string& what, double lo, double hi);
// The field `key` as a number in [0, 1], or `fallback` when it is missing or null.
double json_fraction_field(const nlohmann::json& object, const std::string& key, const std::string& where,
                           double fallback);

}  // namespace rhead
