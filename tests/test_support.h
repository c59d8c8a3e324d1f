// Shared helpers for tests: locating ../shared data and skipping (or, in CI, failing)
// when it is missing, scratch directories, reading files and running commands (the rhead
// binary included) with their output captured.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace rhead::testing {

inline std::string shared_path(const std::string& rel) { return std::string(RHEAD_SHARED_DIR) + "/" + rel; }
inline std::string test_data_path(const std::string& rel) { return std::string(RHEAD_TEST_DATA) + "/" + rel; }
inline std::string rhead_binary() { return RHEAD_BINARY; }

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

// The whole file as bytes; empty when it cannot be opened.
inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `s` as one single-quoted shell word.
inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out.push_back(c);
  }
  return out + "'";
}

struct CommandResult {
  int exit_code = -1;  // -1 when the command could not be started or died from a signal
  std::string output;  // stdout only; redirect stderr in the command to capture it
};

// Runs `command` through the shell and captures its stdout.
inline CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  char buffer[65536];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// A fresh directory made with mkdtemp as /tmp/<prefix>XXXXXX, removed with everything in it
// when the object goes out of scope.
struct MkdtempDir {
  std::filesystem::path path;
  explicit MkdtempDir(const std::string& prefix) {
    std::string tmpl = "/tmp/" + prefix + "XXXXXX";
    path = ::mkdtemp(tmpl.data());
  }
  ~MkdtempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  MkdtempDir(const MkdtempDir&) = delete;
  MkdtempDir& operator=(const MkdtempDir&) = delete;
  std::string sub(const std::string& name) const { return (path / name).string(); }
};

}  // namespace rhead::testing

// Use at the top of a TEST body: skips the test when `path` (absolute) is missing,
// or fails it when running in CI (CI=true), naming what is missing.
#define RHEAD_REQUIRE_FILE(path)                                                   \
  do {                                                                             \
    const std::string rhead_required_path_ = (path);                               \
    if (!std::filesystem::exists(rhead_required_path_)) {                          \
      if (::rhead::testing::in_ci()) {                                             \
        FAIL() << "missing test data: " << rhead_required_path_;                   \
      } else {                                                                     \
        GTEST_SKIP() << "missing test data: " << rhead_required_path_;             \
      }                                                                            \
    }                                                                              \
  } while (0)
