// `rhead compare` end to end: the binary on the published score files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using rhead::testing::rhead_binary;
using rhead::testing::shared_path;

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

RunResult run_rhead(const std::string& args) {
  std::random_device rd;
  const fs::path base = fs::temp_directory_path() / ("rhead-cli-" + std::to_string(rd()));
  const std::string out = base.string() + ".out", err = base.string() + ".err";
  const std::string command = "'" + rhead_binary() + "' " + args + " >'" + out + "' 2>'" + err + "'";
  const int status = std::system(command.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  fs::remove(out);
  fs::remove(err);
  return r;
}

std::string score_file(const std::string& name) { return shared_path("data/head_scores/" + name + ".json"); }

TEST(CompareCli, QwenBaseAndChatPearsonAbove0_8) {
  RHEAD_REQUIRE_FILE(score_file("Qwen1.5-14B"));
  RHEAD_REQUIRE_FILE(score_file("Qwen1.5-14B-Chat"));
  const auto r = run_rhead("compare '" + score_file("Qwen1.5-14B") + "' '" + score_file("Qwen1.5-14B-Chat") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto at = r.out.find("Pearson r:");
  ASSERT_NE(at, std::string::npos) << r.out;
  const double printed = std::stod(r.out.substr(at + 10));
  EXPECT_GT(printed, 0.8) << r.out;
  EXPECT_NE(r.out.find("Spearman:"), std::string::npos);
  EXPECT_NE(r.out.find("K=10:"), std::string::npos);
  EXPECT_NE(r.out.find("K=50:"), std::string::npos);
  EXPECT_NE(r.out.find("strong in Qwen1.5-14B-Chat only"), std::string::npos);
  std::cout << r.out.substr(0, r.out.find("top-K")) << std::endl;

  const auto j =
      run_rhead("compare --json '" + score_file("Qwen1.5-14B") + "' '" + score_file("Qwen1.5-14B-Chat") + "'");
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const auto doc = nlohmann::json::parse(j.out);
  ASSERT_EQ(doc["pairs"].size(), 1u);
  const auto& pair = doc["pairs"][0];
  EXPECT_GT(pair["pearson"].get<double>(), 0.8);
  EXPECT_NEAR(pair["pearson"].get<double>(), printed, 1e-4);
  EXPECT_EQ(pair["heads_compared"], 1600);
  EXPECT_EQ(pair["top_k_overlap"].size(), 3u);
  EXPECT_EQ(doc["inputs"][0]["n_layer"], 40);
}

TEST(CompareCli, ShapeMismatchFailsWithOneLineUnlessAllowed) {
  RHEAD_REQUIRE_FILE(score_file("llama-2-7b-80k"));
  RHEAD_REQUIRE_FILE(score_file("Qwen1.5-14B"));
  const std::string files = "'" + score_file("llama-2-7b-80k") + "' '" + score_file("Qwen1.5-14B") + "'";
  const auto r = run_rhead("compare " + files);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("--allow-shape-mismatch"), std::string::npos) << r.err;

  const auto ok = run_rhead("compare --json --allow-shape-mismatch " + files);
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(nlohmann::json::parse(ok.out)["pairs"][0]["heads_compared"], 1024);
}

TEST(CompareCli, ThreeFilesPrintACorrelationMatrix) {
  for (const char* n : {"llama-2-7b-80k", "Mistral-7B-v0.2-hf", "Qwen1.5-14B"}) RHEAD_REQUIRE_FILE(score_file(n));
  const std::string files = "'" + score_file("llama-2-7b-80k") + "' '" + score_file("Mistral-7B-v0.2-hf") + "' '" +
                            score_file("Qwen1.5-14B") + "'";
  const auto r = run_rhead("compare --allow-shape-mismatch " + files);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Pearson correlation of mean scores"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Spearman correlation of mean scores"), std::string::npos) << r.out;
  const auto j = run_rhead("compare --json --allow-shape-mismatch " + files);
  const auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["matrix"]["pearson"].size(), 3u);
  EXPECT_EQ(doc["pairs"].size(), 3u);
  // Across families the maps barely correlate (paper: < 0.1).
  EXPECT_LT(doc["matrix"]["pearson"][0][2].get<double>(), 0.1);
}

TEST(CompareCli, MalformedFileIsOneLineError) {
  RHEAD_REQUIRE_FILE(score_file("llama-2-7b-80k"));
  const fs::path bad = fs::temp_directory_path() / "rhead-cli-malformed.json";
  std::ofstream(bad) << "{\"0-0\": [0.1, oops]}";
  const auto r = run_rhead("compare '" + score_file("llama-2-7b-80k") + "' '" + bad.string() + "'");
  fs::remove(bad);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(bad.string()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("invalid JSON"), std::string::npos) << r.err;
}

}  // namespace

namespace {

// A map in which no head scores (a run where no test counted) has nothing to compare: the
// command refuses in one line naming it, instead of printing "Pearson nan".
TEST(CompareCli, RefusesAMapWithNoScoredTest) {
  const fs::path dir = fs::temp_directory_path() / ("rhead-compare-empty-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  std::string empty = "{", scored = "{";
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 2; ++h) {
      const std::string key = "\"" + std::to_string(l) + "-" + std::to_string(h) + "\"";
      empty += (empty.size() > 1 ? "," : "") + key + ": []";
      scored += (scored.size() > 1 ? "," : "") + key + ": [" + std::to_string(0.25 * (l * 2 + h)) + "]";
    }
  std::ofstream(dir / "empty.json") << empty << "}";
  std::ofstream(dir / "scored.json") << scored << "}";
  const auto r = run_rhead("compare '" + (dir / "scored.json").string() + "' '" + (dir / "empty.json").string() + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("empty.json: no head scores above 0"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  fs::remove_all(dir);
}

}  // namespace

namespace {

TEST(CompareCli, ADuoAttentionPatternIsComparedPerKvHead) {
  // A query-head map (2 layers x 4 heads, GQA groups of 2) and a DuoAttention pattern folder in
  // the published shape (2 layers x 2 KV heads of gates, config.json with training fields).
  const fs::path dir = fs::temp_directory_path() / ("rhead-compare-duo-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir / "duo");
  std::ofstream(dir / "scores.json") << R"({"0-0": [0.7], "0-1": [0.1], "0-2": [0.0], "0-3": [0.2],
                                           "1-0": [0.1], "1-1": [0.3], "1-2": [0.9], "1-3": [0.0]})";
  std::ofstream(dir / "duo" / "full_attention_heads.tsv") << "0.8\t0.1\n0.2\t0.9\n";
  std::ofstream(dir / "duo" / "config.json") << R"({"sink_size": 64, "recent_size": 256, "lr": 0.02})";
  const auto r = run_rhead("compare --json '" + (dir / "scores.json").string() + "' '" + (dir / "duo").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("compared per KV head (2 groups"), std::string::npos) << r.err;
  // Per KV head the map is {0.7, 0.2, 0.3, 0.9} (each group's best query head) against the gates
  // {0.8, 0.1, 0.2, 0.9}: the same order, so Spearman is exactly 1.
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["pairs"].size(), 1u) << r.out;
  EXPECT_DOUBLE_EQ(j["pairs"][0]["spearman"].get<double>(), 1.0) << r.out;
  EXPECT_EQ(j["pairs"][0]["heads_compared"].get<int>(), 4) << r.out;
  // The TSV file itself names the folder too.
  const auto tsv = run_rhead("compare '" + (dir / "scores.json").string() + "' '" +
                             (dir / "duo" / "full_attention_heads.tsv").string() + "'");
  EXPECT_EQ(tsv.exit_code, 0) << tsv.err;
  fs::remove_all(dir);
}

}  // namespace
