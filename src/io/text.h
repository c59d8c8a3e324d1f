// Small text helpers shared by the spec and list parsers.
#pragma once
#include <string>
#include <vector>

namespace rhead {

// `s` cut at every `sep`: n separators give n + 1 parts, empty ones included
// ("a,,b" -> {"a", "", "b"}; "" -> {""}).
std::vector<std::string> split_on(const std::string& s, char sep);

}  // namespace rhead
