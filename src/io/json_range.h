// Strict readers of numbers with a domain, beside io/json.h's typed readers (which refuse
// non-finite numbers, such as 1e400 read as infinity): head scores and probabilities in
// [0, 1], scores in [0, 100], counts within their bounds. Errors are "where: what is V (must
// be in [lo, hi])".
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace rhead {

// The domain of a head's retrieval score in a score file or a result line: one credit of
// 1 / (needle tokens) per decode step that copies from the needle, so a head that copies a
// needle token more than once scores above 1 (the reference's Qwen1.5-14B file holds 1.65).
// No run reaches 1000; a larger value, or a negative one in a result line, is a corrupt file.
// The one exception is the qrhead method's file (head_score.qrhead.json): its calibrated
// scores go below 0, down to -kMaxHeadScore.
inline constexpr double kMaxHeadScore = 1000.0;
inline constexpr const char* kQrheadScoreFileMethod = "qrhead";

// A finite number in [lo, hi].
double json_number_in(const nlohmann::json& v, const std::string& where, const std::string& what, double lo, double hi);
// The field `key` as a number in [0, 1], or `fallback` when it is missing or null.
double json_fraction_field(const nlohmann::json& object, const std::string& key, const std::string& where,
                           double fallback);

}  // namespace rhead
