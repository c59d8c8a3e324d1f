// Every run kind through the rhead binary, as a user runs it: a run killed with SIGKILL after
// some result lines are on disk and then resumed ends equal to an uninterrupted run, and two
// shard directories joined by `rhead merge` equal one run. (detect has the same checks in
// tests/niah/test_detect_cli.cpp.) Lines are compared by key without their timing fields.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"

namespace {

using nlohmann::json;
namespace fs = std::filesystem;
using rhead::testing::read_text_file;

struct TempDir : rhead::testing::MkdtempDir {
  TempDir() : MkdtempDir("rhead_test_resume_merge_") {}
};

using rhead::testing::CliResult;
using rhead::testing::count_lines;
using rhead::testing::run_rhead;

// results.jsonl by key, each line without its timing fields; a key twice fails the test.
std::map<std::string, json> lines_by_key(const std::string& dir) { return rhead::testing::results_without_timing(dir); }

void expect_same_run(const std::string& dir, const std::string& ref, const std::string& summary_key) {
  const auto a = lines_by_key(dir), b = lines_by_key(ref);
  ASSERT_EQ(a.size(), b.size()) << dir;
  for (const auto& [key, line] : a) {
    ASSERT_TRUE(b.count(key)) << key;
    EXPECT_EQ(line, b.at(key)) << key;
  }
  const json sa = json::parse(read_text_file(dir + "/summary.json"));
  const json sb = json::parse(read_text_file(ref + "/summary.json"));
  EXPECT_EQ(sa.at(summary_key), sb.at(summary_key));
}

// One kind of run: its command line for an output directory, and its summary's table key.
struct RunKindCase {
  const char* name;
  std::function<std::vector<std::string>(const std::string& out)> args;
  const char* summary_key;
  const char* required_file;  // under ../shared, or "" for a builtin model
};

std::string niah_tiny() { return rhead::testing::shared_path("models/niah-tiny/niah-tiny-f32.gguf"); }

const RunKindCase kCases[] = {
    {"niah",
     [](const std::string& out) {
       return std::vector<std::string>{
           "niah",       "-m",     "builtin:induction", "--lengths", "250:550:4", "--depths", "3",
           "--baseline", "--mask", "heads:1-1,1-2",     "-q",        "-o",        out};
     },
     "masks", ""},
    {"qa",
     [](const std::string& out) {
       return std::vector<std::string>{"qa", "-m", niah_tiny(), "--mask", "heads:1-0,2-3", "--max-new-tokens",
                                       "6",  "-q", "-o",        out};
     },
     "masks", "models/niah-tiny/niah-tiny-f32.gguf"},
    {"cot",
     [](const std::string& out) {
       return std::vector<std::string>{
           "cot", "-m", niah_tiny(), "--mask", "heads:1-0", "--shots", "1", "--max-new-tokens", "8", "-q", "-o", out};
     },
     "results", "models/niah-tiny/niah-tiny-f32.gguf"},
};

class RunKind : public ::testing::TestWithParam<RunKindCase> {
 protected:
  void SetUp() override {
    if (*GetParam().required_file) RHEAD_REQUIRE_FILE(rhead::testing::shared_path(GetParam().required_file));
  }
  // The uninterrupted run.
  std::string reference(const TempDir& d) {
    const std::string ref = d.sub("ref");
    const CliResult r = run_rhead(GetParam().args(ref), d.path);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ref;
  }
};

TEST_P(RunKind, SigkillThenResumeEqualsAnUninterruptedRun) {
  TempDir d;
  const std::string ref = reference(d);
  const size_t total = count_lines(ref + "/results.jsonl");
  ASSERT_GE(total, 8u);
  const std::string out = d.sub("killed");
  ASSERT_TRUE(rhead::testing::run_rhead_and_kill(GetParam().args(out), out + "/results.jsonl", 2))
      << "the run ended before the kill";
  const size_t kept = count_lines(out + "/results.jsonl");
  EXPECT_LT(kept, total);
  EXPECT_FALSE(fs::exists(out + "/summary.json"));  // summaries are written at the end
  const CliResult r = run_rhead(GetParam().args(out), d.path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_same_run(out, ref, GetParam().summary_key);
  // Resuming a finished run runs nothing and changes no line.
  const std::string before = read_text_file(out + "/results.jsonl");
  ASSERT_EQ(run_rhead(GetParam().args(out), d.path).exit_code, 0);
  EXPECT_EQ(read_text_file(out + "/results.jsonl"), before);
}

TEST_P(RunKind, TwoShardsMergedEqualOneRun) {
  TempDir d;
  const std::string ref = reference(d);
  for (const char* shard : {"0/2", "1/2"}) {
    std::vector<std::string> args = GetParam().args(d.sub(std::string("shard") + shard[0]));
    args.push_back("--shard");
    args.push_back(shard);
    const CliResult r = run_rhead(args, d.path);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  const size_t s0 = count_lines(d.sub("shard0") + "/results.jsonl"),
               s1 = count_lines(d.sub("shard1") + "/results.jsonl");
  EXPECT_GT(s0, 0u);
  EXPECT_GT(s1, 0u);
  EXPECT_EQ(s0 + s1, count_lines(ref + "/results.jsonl"));
  const CliResult m = run_rhead({"merge", d.sub("shard0"), d.sub("shard1"), "-o", d.sub("merged")}, d.path);
  ASSERT_EQ(m.exit_code, 0) << m.err;
  expect_same_run(d.sub("merged"), ref, GetParam().summary_key);
  const json run = json::parse(read_text_file(d.sub("merged") + "/run.json"));
  EXPECT_EQ(run.at("kind"), GetParam().name);
  EXPECT_FALSE(run.at("settings").contains("shard"));
  // The merged directory is a complete run: resuming it runs nothing.
  const std::string before = read_text_file(d.sub("merged") + "/results.jsonl");
  ASSERT_EQ(run_rhead(GetParam().args(d.sub("merged")), d.path).exit_code, 0);
  EXPECT_EQ(read_text_file(d.sub("merged") + "/results.jsonl"), before);
}

INSTANTIATE_TEST_SUITE_P(Kinds, RunKind, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<RunKindCase>& info) {
                           return std::string(info.param.name);
                         });

// Each bad merge: non-zero exit and one error line naming the problem.
void expect_one_line_error(const CliResult& r, const std::string& mentions) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(mentions), std::string::npos) << "expected '" << mentions << "' in: " << r.err;
}

TEST(MergeCli, RefusesRunsOfDifferentKindsOrSettings) {
  TempDir d;
  const std::vector<std::string> niah = {"niah", "-m", "builtin:induction", "--lengths", "300:400:2", "--depths", "2",
                                         "-q",   "-o"};
  auto with_out = [](std::vector<std::string> args, const std::string& out) {
    args.push_back(out);
    return args;
  };
  ASSERT_EQ(run_rhead(with_out(niah, d.sub("niah")), d.path).exit_code, 0);
  std::vector<std::string> other = with_out(niah, d.sub("niah_other"));
  other.push_back("--buffer");
  other.push_back("150");
  ASSERT_EQ(run_rhead(other, d.path).exit_code, 0);
  ASSERT_EQ(run_rhead({"detect", "-m", "builtin:induction", "--lengths", "300:400:2", "--depths", "2", "-q", "-o",
                       d.sub("detect")},
                      d.path)
                .exit_code,
            0);
  expect_one_line_error(run_rhead({"merge", d.sub("niah"), d.sub("detect"), "-o", d.sub("m")}, d.path),
                        "different kinds");
  expect_one_line_error(run_rhead({"merge", d.sub("niah"), d.sub("niah_other"), "-o", d.sub("m")}, d.path),
                        "settings differ");
  // A directory of one kind is not resumed as another.
  expect_one_line_error(run_rhead({"detect", "-m", "builtin:induction", "--lengths", "300:400:2", "--depths", "2", "-q",
                                   "-o", d.sub("niah")},
                                  d.path),
                        "holds a niah run");
  // The older spelling `niah --merge-from` still merges.
  const CliResult alias =
      run_rhead({"niah", "-m", "builtin:induction", "--merge-from", d.sub("niah"), "-o", d.sub("alias")}, d.path);
  EXPECT_EQ(alias.exit_code, 0) << alias.err;
  EXPECT_EQ(lines_by_key(d.sub("alias")), lines_by_key(d.sub("niah")));
}

}  // namespace
