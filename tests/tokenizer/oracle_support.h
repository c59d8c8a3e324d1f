// Helpers for the tokenizer tests: running the reference encoders (libsentencepiece through
// /usr/bin/python3, @lenml/tokenizers through node) and the rhead binary, listing the
// essays, comparing ids with the reference's, and SentencePiece's whitespace collapsing.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "tokenizer/tokenizer.h"
#include "test_support.h"

namespace rhead::testing {

inline std::vector<std::vector<int32_t>> parse_id_lines(const std::string& text) {
  std::vector<std::vector<int32_t>> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<int32_t> ids;
    std::istringstream words(line);
    int32_t id;
    while (words >> id) ids.push_back(id);
    lines.push_back(std::move(ids));
  }
  return lines;
}

inline std::string repo_path(const std::string& rel) { return std::string(RHEAD_SOURCE_DIR) + "/" + rel; }

// Sorted paths of the haystack essays.
inline std::vector<std::string> essay_paths() {
  std::vector<std::string> paths;
  const std::string dir = shared_path("data/haystack/paul_graham_essays");
  if (!std::filesystem::is_directory(dir)) return paths;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().extension() == ".txt") paths.push_back(entry.path().string());
  std::sort(paths.begin(), paths.end());
  return paths;
}

inline bool have_sentencepiece_oracle() {
  return run_command("/usr/bin/python3 -c 'import sentencepiece' >/dev/null 2>&1").exit_code == 0;
}

inline bool have_hf_oracle() {
  return std::filesystem::exists(repo_path("tests/oracle/node_modules/@lenml/tokenizers/package.json")) &&
         run_command("node --version >/dev/null 2>&1").exit_code == 0;
}

// Ids of each file per libsentencepiece (no BOS/EOS); empty on failure.
inline std::vector<std::vector<int32_t>> sentencepiece_oracle(const std::string& model,
                                                              const std::vector<std::string>& files) {
  std::string cmd =
      "/usr/bin/python3 " + shell_quote(repo_path("scripts/tokenizer_spm_oracle.py")) + " " + shell_quote(model);
  for (const auto& f : files) cmd += " " + shell_quote(f);
  CommandResult r = run_command(cmd);
  if (r.exit_code != 0) return {};
  return parse_id_lines(r.output);
}

// Ids of each file per @lenml/tokenizers (add_special_tokens = false); empty on failure.
inline std::vector<std::vector<int32_t>> hf_oracle(const std::string& tokenizer_dir,
                                                   const std::vector<std::string>& files) {
  std::string cmd = "cd " + shell_quote(repo_path("tests/oracle")) + " && node encode.js " + shell_quote(tokenizer_dir);
  for (const auto& f : files) cmd += " " + shell_quote(f);
  CommandResult r = run_command(cmd);
  if (r.exit_code != 0) return {};
  return parse_id_lines(r.output);
}

// Index of the first differing id, for a readable failure.
inline size_t first_difference(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return i;
}

// Encodes each essay (optionally transformed first) and compares with the oracle's ids.
inline void expect_matches_oracle(const rhead::Tokenizer& tok, const std::vector<std::string>& essays,
                                  const std::vector<std::vector<int32_t>>& expected,
                                  std::string (*transform)(const std::string&) = nullptr) {
  ASSERT_EQ(expected.size(), essays.size()) << "the reference encoder did not answer for every essay";
  size_t mismatches = 0, total_ids = 0;
  for (size_t i = 0; i < essays.size(); ++i) {
    std::string text = rhead::read_text_file(essays[i]);
    if (transform) text = transform(text);
    std::vector<int32_t> got = tok.encode(text, /*add_bos=*/false);
    total_ids += got.size();
    if (got != expected[i]) {
      ++mismatches;
      size_t at = first_difference(got, expected[i]);
      ADD_FAILURE() << essays[i] << ": " << got.size() << " ids vs " << expected[i].size()
                    << " expected; first difference at " << at << " (got " << (at < got.size() ? got[at] : -1)
                    << ", expected " << (at < expected[i].size() ? expected[i][at] : -1) << ")";
    }
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_GT(total_ids, 100000u) << "suspiciously few tokens for the whole essay set";
}

// SentencePiece's remove_extra_whitespaces: no leading or trailing ' ', runs of ' ' become one.
inline std::string collapse_spaces(const std::string& text) {
  std::string out;
  bool pending = false;
  for (char c : text) {
    if (c == ' ') {
      pending = !out.empty();
      continue;
    }
    if (pending) out.push_back(' ');
    pending = false;
    out.push_back(c);
  }
  return out;
}

// A fresh empty directory under the system temp dir, removed by the destructor.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("rhead_tok_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& content) const {
    std::string p = (path / name).string();
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

}  // namespace rhead::testing

// Skips the test (or fails it under CI=true) when a reference tool is not installed.
#define RHEAD_REQUIRE_TOOL(available, what)              \
  do {                                                   \
    if (!(available)) {                                  \
      if (::rhead::testing::in_ci()) {                   \
        FAIL() << "missing test tool: " << (what);       \
      } else {                                           \
        GTEST_SKIP() << "missing test tool: " << (what); \
      }                                                  \
    }                                                    \
  } while (0)
