// `rhead detect` and `rhead merge` as a user runs them: a run killed with SIGKILL and then
// resumed ends like an uninterrupted run, shard directories merge into one run, and bad
// inputs end with one error line and a non-zero exit.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "test_support.h"

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct TempDir : rhead::testing::MkdtempDir {
  TempDir() : MkdtempDir("rhead_test_detect_cli_") {}
};

using rhead::testing::read_text_file;

using rhead::testing::CliResult;
using rhead::testing::count_lines;
using rhead::testing::run_rhead;

// A grid of builtin:induction large enough to take a few seconds: 3 needles x 4 x 5.
std::vector<std::string> induction_args(const std::string& out) {
  return {"detect", "-m", "builtin:induction", "--lengths", "250:550:4", "--depths", "5", "-q", "-o", out};
}
constexpr size_t kInductionTests = 60;

std::map<std::string, json> results_by_id(const std::string& dir) {
  std::map<std::string, json> out;
  std::istringstream in(read_text_file(dir + "/results.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line);
    EXPECT_TRUE(out.emplace(j.at("test_id").get<std::string>(), j).second) << j.at("test_id") << " twice";
  }
  return out;
}

void expect_same_results(const std::string& dir_a, const std::string& dir_b) {
  const auto a = results_by_id(dir_a), b = results_by_id(dir_b);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [id, ra] : a) {
    ASSERT_TRUE(b.count(id)) << id;
    for (const char* key : {"needle_span", "answer", "rouge_recall", "counted", "head_scores"})
      EXPECT_EQ(ra.at(key), b.at(id).at(key)) << id << " " << key;
  }
}

class DetectCli : public ::testing::Test {
 protected:
  // The uninterrupted reference run, made on first use.
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string ref() {
    if (!dir_) {
      dir_ = new TempDir();
      CliResult r = run_rhead(induction_args(dir_->sub("ref")), dir_->path);
      EXPECT_EQ(r.exit_code, 0) << r.err;
    }
    return dir_->sub("ref");
  }
  static TempDir* dir_;
};
TempDir* DetectCli::dir_ = nullptr;

TEST_F(DetectCli, UninterruptedRunPrintsTheTableAndWritesEveryFile) {
  for (const char* f : {"results.jsonl", "head_score.json", "summary.json", "run.json"})
    EXPECT_TRUE(fs::exists(ref() + "/" + f)) << f;
  EXPECT_EQ(count_lines(ref() + "/results.jsonl"), kInductionTests);
  const json scores = json::parse(read_text_file(ref() + "/head_score.json"));
  EXPECT_EQ(scores["1-1"].size(), kInductionTests);
}

TEST_F(DetectCli, SigkillMidRunThenResumeEqualsAnUninterruptedRun) {
  TempDir d;
  const std::string out = d.sub("killed");
  const std::string results = out + "/results.jsonl";
  // Kill it once some tests are on disk.
  ASSERT_TRUE(rhead::testing::run_rhead_and_kill(induction_args(out), results, 5))
      << "the run finished before it could be killed";
  const size_t kept = count_lines(results);
  EXPECT_LT(kept, kInductionTests);
  EXPECT_FALSE(fs::exists(out + "/head_score.json"));  // aggregates are written at the end

  CliResult r = run_rhead(induction_args(out), d.path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count_lines(results), kInductionTests);  // every test once (results_by_id checks)
  expect_same_results(out, ref());
  EXPECT_EQ(json::parse(read_text_file(out + "/head_score.json")),
            json::parse(read_text_file(ref() + "/head_score.json")));
}

TEST_F(DetectCli, ShardsMergedWithTheMergeCommandEqualOneRun) {
  TempDir d;
  for (const char* shard : {"0/2", "1/2"}) {
    std::vector<std::string> args = induction_args(d.sub(std::string("shard") + shard[0]));
    args.push_back("--shard");
    args.push_back(shard);
    CliResult r = run_rhead(args, d.path);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  EXPECT_EQ(count_lines(d.sub("shard0") + "/results.jsonl"), kInductionTests / 2);
  EXPECT_EQ(count_lines(d.sub("shard1") + "/results.jsonl"), kInductionTests / 2);
  CliResult m = run_rhead({"merge", d.sub("shard0"), d.sub("shard1"), "-o", d.sub("merged")}, d.path);
  ASSERT_EQ(m.exit_code, 0) << m.err;
  EXPECT_NE(m.out.find("NIAH accuracy"), std::string::npos) << m.out;
  EXPECT_EQ(json::parse(read_text_file(d.sub("merged") + "/head_score.json")),
            json::parse(read_text_file(ref() + "/head_score.json")));
  expect_same_results(d.sub("merged"), ref());
  const json s_merged = json::parse(read_text_file(d.sub("merged") + "/summary.json"));
  const json s_ref = json::parse(read_text_file(ref() + "/summary.json"));
  for (const char* key : {"tests", "counted", "niah_accuracy", "heads", "count_above_0_1"})
    EXPECT_EQ(s_merged[key], s_ref[key]) << key;
}

TEST_F(DetectCli, MergeIntoExtendsAReferenceFile) {
  TempDir d;
  const std::string ref_file = d.sub("ref_scores.json");
  json existing = json::object();
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 4; ++h) existing[std::to_string(l) + "-" + std::to_string(h)] = json::array({0.5});
  std::ofstream(ref_file) << existing.dump();
  std::vector<std::string> args = {"detect", "-m", "builtin:induction", "--lengths",    "300:400:2", "--depths", "2",
                                   "-q",     "-o", d.sub("run"),        "--merge-into", ref_file};
  CliResult r = run_rhead(args, d.path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json merged = json::parse(read_text_file(ref_file));
  ASSERT_EQ(merged["1-1"].size(), 1u + 12u);  // 3 needles x 2 lengths x 2 depths
  EXPECT_EQ(merged["1-1"][0], 0.5);
  EXPECT_NEAR(merged["1-1"][1].get<double>(), 1.0, 1e-12);
  EXPECT_EQ(merged["0-0"][1], 0.0);
}

// Each bad input: non-zero exit, exactly one line on stderr, naming the problem.
void expect_one_line_error(const CliResult& r, const std::string& mentions) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(mentions), std::string::npos) << "expected '" << mentions << "' in: " << r.err;
}

TEST(DetectCliErrors, BadLengths) {
  TempDir d;
  for (const char* bad : {"abc", "300:500", "500:300:3", "300:500:0", "300x:500:3", "300:500:3.5"}) {
    CliResult r = run_rhead({"detect", "-m", "builtin:induction", "--lengths", bad, "-q", "-o", d.sub("o")}, d.path);
    expect_one_line_error(r, "--lengths");
  }
  // A length that leaves nothing after the buffer.
  CliResult r =
      run_rhead({"detect", "-m", "builtin:induction", "--lengths", "100:200:2", "-q", "-o", d.sub("o")}, d.path);
  expect_one_line_error(r, "--buffer");
}

TEST(DetectCliErrors, BadShard) {
  TempDir d;
  for (const char* bad : {"2/2", "x", "1/0", "-1/2", "1/2/3", "1:2"}) {
    CliResult r = run_rhead(
        {"detect", "-m", "builtin:induction", "--lengths", "300:400:2", "--shard", bad, "-q", "-o", d.sub("o")},
        d.path);
    expect_one_line_error(r, "--shard");
  }
}

TEST(DetectCliErrors, MissingNeedleFile) {
  TempDir d;
  const std::string missing = d.sub("no_such_needles.jsonl");
  CliResult r = run_rhead({"detect", "-m", "builtin:induction", "--needles", missing, "-q", "-o", d.sub("o")}, d.path);
  expect_one_line_error(r, missing);
}

TEST(DetectCliErrors, MalformedNeedleLines) {
  TempDir d;
  const std::string good = R"({"needle": "The code is cobalt.", "question": "The code is", "real_needle": "cobalt"})";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{not json", "invalid JSON"},
      {R"({"needle": "x", "question": "y"})", "real_needle"},
      {R"({"needle": 5, "question": "y", "real_needle": "z"})", "needle"},
      {R"({"needle": "x", "question": "y", "real_needle": "z", "haystack": 3})", "haystack"},
  };
  for (const auto& [line, mentions] : cases) {
    const std::string path = d.sub("needles.jsonl");
    std::ofstream(path) << good << "\n" << line << "\n";
    CliResult r = run_rhead({"detect", "-m", "builtin:induction", "--needles", path, "-q", "-o", d.sub("o")}, d.path);
    expect_one_line_error(r, path + ":2");
    EXPECT_NE(r.err.find(mentions), std::string::npos) << r.err;
  }
  std::ofstream(d.sub("empty.jsonl")) << "\n";
  expect_one_line_error(
      run_rhead({"detect", "-m", "builtin:induction", "--needles", d.sub("empty.jsonl"), "-q", "-o", d.sub("o")},
                d.path),
      "no needle sets");
}

TEST(DetectCliErrors, MissingHaystackFolder) {
  TempDir d;
  const std::string missing = d.sub("no_such_haystack");
  CliResult r = run_rhead(
      {"detect", "-m", "builtin:induction", "--haystack", missing, "--lengths", "300:400:2", "-q", "-o", d.sub("o")},
      d.path);
  expect_one_line_error(r, missing);
}

TEST(DetectCliErrors, OutputDirectoryOfAnotherRun) {
  TempDir d;
  std::vector<std::string> a = {"detect", "-m", "builtin:induction", "--lengths", "300:400:2", "--depths", "2",
                                "-q",     "-o", d.sub("o")};
  ASSERT_EQ(run_rhead(a, d.path).exit_code, 0);
  std::vector<std::string> b = a;
  b.push_back("--buffer");
  b.push_back("150");
  expect_one_line_error(run_rhead(b, d.path), "other settings");
}

TEST(MergeCliErrors, NotARunDirectory) {
  TempDir d;
  fs::create_directories(d.sub("empty"));
  expect_one_line_error(run_rhead({"merge", d.sub("empty"), "-o", d.sub("m")}, d.path), "run.json");
}

}  // namespace
