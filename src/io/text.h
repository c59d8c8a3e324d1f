// Small text helpers shared by the spec and list parsers.
#pragma once
#include <string>
#include <vector>

namespace rhead {

// `s` cut at every `sep`: n separators give n + 1 parts, empty ones included
// ("a,,b" -> {"a", "", "b"}; "" -> {""}).
std::vector<std::string> split_on(const std::string& s, char sep);

// `s` made printable on one line: newline, tab and carriage return as \\n \\t \\r, other
// control bytes as \\xHH; with `quotes`, '"' and '\\' are escaped too (for quoted output).
std::string printable(const std::string& s, bool quotes = false);

// `s` without leading and trailing spaces, tabs, carriage returns and newlines.
std::string trim(const std::string& s);

// A byte count with a binary unit: "1.50 MiB".
std::string human_bytes(double bytes);

}  // namespace rhead
