// Errors: every failure is an exception whose message names the input and the problem.
// The CLI catches it once and prints it as one line.
#pragma once
#include <stdexcept>
#include <string>

namespace rhead {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "path: problem" — the one shape of every user-facing error.
[[noreturn]] inline void fail(const std::string& where, const std::string& problem) {
  throw Error(where + ": " + problem);
}

}  // namespace rhead
