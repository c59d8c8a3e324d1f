// Shared helpers for tests: locating ../shared data and skipping (or, in CI, failing)
// when it is missing.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace rhead::testing {

inline std::string shared_path(const std::string& rel) { return std::string(RHEAD_SHARED_DIR) + "/" + rel; }
inline std::string test_data_path(const std::string& rel) { return std::string(RHEAD_TEST_DATA) + "/" + rel; }
inline std::string rhead_binary() { return RHEAD_BINARY; }

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

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
