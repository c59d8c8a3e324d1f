// Readers: reference score JSON, detect and niah run files, and their one-line errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "analysis/run_files.h"
#include "analysis/score_map.h"
#include "io/error.h"

namespace {

namespace fs = std::filesystem;
using namespace rhead::analysis;

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("rhead-analysis-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string write(const std::string& name, const std::string& content) const {
    const fs::path p = path_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// The error must be one line that names the file.
void expect_one_line_error(const std::function<void()>& action, const std::string& path, const std::string& fragment) {
  try {
    action();
    ADD_FAILURE() << "no error for " << path << " (expected \"" << fragment << "\")";
  } catch (const rhead::Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
  }
}

TEST(ReferenceJson, InfersShapeMeansAndFrequency) {
  TempDir dir;
  const auto path =
      dir.write("tiny.json",
                R"({"0-0": [0, 0.5], "0-1": [1, 1], "0-2": [], "1-0": [0, 0], "1-1": [0.25, 0], "1-2": [0.3, 0.1]})");
  const ScoreMap map = read_head_score_json(path);
  EXPECT_EQ(map.label, "tiny");
  EXPECT_EQ(map.n_layer, 2);
  EXPECT_EQ(map.n_head, 3);
  EXPECT_DOUBLE_EQ(map.mean_at(0, 0), 0.25);
  EXPECT_DOUBLE_EQ(map.mean_at(0, 1), 1.0);
  EXPECT_DOUBLE_EQ(map.mean_at(0, 2), 0.0);  // no tests
  EXPECT_DOUBLE_EQ(map.mean_at(1, 2), 0.2);
  EXPECT_DOUBLE_EQ(map.frequency[map.index(0, 0)], 0.5);
  EXPECT_DOUBLE_EQ(map.frequency[map.index(1, 1)], 0.5);
  EXPECT_DOUBLE_EQ(map.frequency[map.index(1, 2)], 1.0);
  EXPECT_EQ(map.test_count(), 2u);
  EXPECT_EQ(count_above(map, 0.1), 4u);
}

TEST(ReferenceJson, MalformedFilesGiveOneLineErrors) {
  TempDir dir;
  const std::pair<std::string, std::string> cases[] = {
      {"{\"0-0\": [0, 1", "invalid JSON"},
      {"[1, 2, 3]", "expected a JSON object"},
      {"{}", "no heads"},
      {"{\"0x1\": [0]}", "'0x1'"},
      {"{\"0-\": [0]}", "'0-'"},
      {"{\"0-0\": 0.5}", "not a list of scores"},
      {"{\"0-0\": [0, \"a\"]}", "non-numeric score"},
      {"{\"0-0\": [0], \"1-1\": [0]}", "every head of the grid"},
  };
  int i = 0;
  for (const auto& [content, fragment] : cases) {
    const auto path = dir.write("bad" + std::to_string(i++) + ".json", content);
    expect_one_line_error([&] { read_head_score_json(path); }, path, fragment);
  }
  const std::string missing = (dir.path() / "missing.json").string();
  expect_one_line_error([&] { read_head_score_json(missing); }, missing, "no such file");
  expect_one_line_error([&] { load_score_map(missing); }, missing, "no such file");
}

const char* kDetectResults =
    R"({"test_id": "n0-l300-d0", "needle_id": 0, "length": 300, "depth": 0, "needle_span": [10, 18], "answer": "star oil nest", "rouge_recall": 100.0, "counted": true, "head_scores": {"2-0": 0.5, "2-3": 1.0}, "seconds": 0.2, "prompt_tokens": 290}
{"test_id": "n0-l300-d50", "needle_id": 0, "length": 300, "depth": 50, "needle_span": [150, 158], "answer": "no idea", "rouge_recall": 0.0, "counted": false, "head_scores": {"2-0": 0.25}, "seconds": 0.2, "prompt_tokens": 290}

{"test_id": "n1-l400-d0", "needle_id": 1, "length": 400, "depth": 0, "needle_span": [12, 20], "answer": "blue", "rouge_recall": 75.0, "counted": true, "head_scores": {"2-3": 0.5}, "seconds": 0.3, "prompt_tokens": 390}
)";

const char* kDetectSummary = R"({"model": {"path": "m.gguf", "architecture": "llama", "n_layer": 3, "n_head": 6,
  "n_kv_head": 2, "head_dim": 16, "n_vocab": 512, "n_ctx": 512}, "settings": {"lengths": "300:400:2"},
  "n_layer": 3, "n_head": 6, "n_kv_head": 2, "tests": 3, "counted": 2, "niah_accuracy": 0.6667,
  "heads": [{"layer": 2, "head": 3, "mean": 0.75, "frequency": 1.0}, {"layer": 2, "head": 0, "mean": 0.25, "frequency": 0.5},
    {"layer": 0, "head": 0, "mean": 0, "frequency": 0}, {"layer": 0, "head": 1, "mean": 0, "frequency": 0},
    {"layer": 0, "head": 2, "mean": 0, "frequency": 0}, {"layer": 0, "head": 3, "mean": 0, "frequency": 0},
    {"layer": 0, "head": 4, "mean": 0, "frequency": 0}, {"layer": 0, "head": 5, "mean": 0, "frequency": 0},
    {"layer": 1, "head": 0, "mean": 0, "frequency": 0}, {"layer": 1, "head": 1, "mean": 0, "frequency": 0},
    {"layer": 1, "head": 2, "mean": 0, "frequency": 0}, {"layer": 1, "head": 3, "mean": 0, "frequency": 0},
    {"layer": 1, "head": 4, "mean": 0, "frequency": 0}, {"layer": 1, "head": 5, "mean": 0, "frequency": 0},
    {"layer": 2, "head": 1, "mean": 0, "frequency": 0}, {"layer": 2, "head": 2, "mean": 0, "frequency": 0},
    {"layer": 2, "head": 4, "mean": 0, "frequency": 0}, {"layer": 2, "head": 5, "mean": 0, "frequency": 0}],
  "count_above_0_1": 2, "share_above_0_1": 0.111})";

TEST(DetectRun, ResultsRebuildTheReferenceLists) {
  TempDir dir;
  const auto results = dir.write("run/results.jsonl", kDetectResults);
  dir.write("run/summary.json", kDetectSummary);
  const auto tests = read_detect_results(results);
  ASSERT_EQ(tests.size(), 3u);
  EXPECT_EQ(tests[0].span_begin, 10);
  EXPECT_EQ(tests[0].span_end, 18);
  EXPECT_FALSE(tests[1].counted);
  EXPECT_EQ(tests[2].head_scores.size(), 1u);

  // Shape from summary.json, not from the largest head seen (2-3).
  const ScoreMap map = load_score_map((dir.path() / "run").string());
  EXPECT_EQ(map.label, "run");
  EXPECT_EQ(map.n_layer, 3);
  EXPECT_EQ(map.n_head, 6);
  EXPECT_EQ(map.test_count(), 2u);  // counted tests only
  EXPECT_EQ(map.lists[map.index(2, 0)], (std::vector<double>{0.5, 0.0}));
  EXPECT_EQ(map.lists[map.index(2, 3)], (std::vector<double>{1.0, 0.5}));
  EXPECT_EQ(map.lists[map.index(0, 0)], (std::vector<double>{0.0, 0.0}));
  EXPECT_DOUBLE_EQ(map.mean_at(2, 3), 0.75);
  EXPECT_DOUBLE_EQ(map.frequency[map.index(2, 0)], 0.5);

  // Without summary.json the shape comes from the keys.
  const ScoreMap bare = score_map_from_detect_results(tests, 0, 0, results);
  EXPECT_EQ(bare.n_layer, 3);
  EXPECT_EQ(bare.n_head, 4);

  const auto s = read_detect_summary((dir.path() / "run/summary.json").string());
  EXPECT_EQ(s.model["architecture"], "llama");
  EXPECT_EQ(s.n_kv_head, 2);
  ASSERT_EQ(s.heads.size(), 18u);
  EXPECT_EQ(s.heads[0].id.key(), "2-3");
  EXPECT_EQ(s.settings["lengths"], "300:400:2");
  EXPECT_EQ(s.counted, 2);

  const ScoreMap from_summary = load_score_map((dir.path() / "run/summary.json").string());
  EXPECT_EQ(from_summary.n_head, 6);
  EXPECT_DOUBLE_EQ(from_summary.mean_at(2, 3), 0.75);
  EXPECT_TRUE(from_summary.lists.empty());
  const std::string partial = dir.write(
      "partial/summary.json", R"({"n_layer": 1, "n_head": 2, "heads": [{"layer": 0, "head": 0, "mean": 1}]})");
  expect_one_line_error([&] { load_score_map(partial); }, partial, "every head");

  EXPECT_EQ(detect_run_kind((dir.path() / "run").string()), RunKind::detect);
  const NiahGrid grid = detect_accuracy_grid(tests);
  EXPECT_EQ(grid.lengths, (std::vector<int>{300, 400}));
  EXPECT_EQ(grid.depths, (std::vector<int>{0, 50}));
  EXPECT_DOUBLE_EQ(grid.score[0][0], 100.0);
  EXPECT_DOUBLE_EQ(grid.score[0][1], 75.0);
  EXPECT_TRUE(std::isnan(grid.score[1][1]));  // no test at (400, 50)
}

TEST(DetectRun, HeadScoreJsonIsPreferredOverResults) {
  TempDir dir;
  dir.write("run/results.jsonl", kDetectResults);
  dir.write("run/head_score.json", R"({"0-0": [1], "0-1": [0]})");
  const ScoreMap map = load_score_map((dir.path() / "run").string());
  EXPECT_EQ(map.n_layer, 1);
  EXPECT_EQ(map.n_head, 2);
  EXPECT_EQ(map.label, "run");
}

TEST(DetectRun, MalformedLinesNameFileAndLine) {
  TempDir dir;
  const auto p1 = dir.write("a.jsonl", std::string(kDetectResults).substr(0, 300) + "\n");
  expect_one_line_error([&] { read_detect_results(p1); }, p1 + ":2", "invalid JSON");
  const auto p2 = dir.write(
      "b.jsonl",
      R"({"test_id": "x", "needle_id": 0, "length": 300, "depth": 0, "needle_span": [1, 2], "answer": "", "counted": true, "head_scores": {}})"
      "\n");
  expect_one_line_error([&] { read_detect_results(p2); }, p2 + ":1", "missing field 'rouge_recall'");
  const auto p3 = dir.write(
      "c.jsonl",
      std::string(kDetectResults) +
          R"({"test_id": "x", "needle_id": 0, "length": "300", "depth": 0, "needle_span": [1, 2], "answer": "", "rouge_recall": 1, "counted": true, "head_scores": {}})"
          "\n");
  expect_one_line_error([&] { read_detect_results(p3); }, p3 + ":5", "'length' must be an integer");
  const auto p4 = dir.write(
      "d.jsonl",
      R"({"test_id": "x", "needle_id": 0, "length": 3, "depth": 0, "needle_span": [1, 2], "answer": "", "rouge_recall": 1, "counted": true, "head_scores": {"a-b": 1}})"
      "\n");
  expect_one_line_error([&] { read_detect_results(p4); }, p4 + ":1", "'a-b'");
  const auto p5 = dir.write("e/summary.json", R"({"heads": [{"layer": 0}]})");
  expect_one_line_error([&] { score_map_from_detect_summary(p5); }, p5, "missing field 'head'");
}

TEST(NiahRun, GridsPerMaskAndSweep) {
  TempDir dir;
  std::string lines;
  auto line = [&](const std::string& mask, int length, int depth, double score) {
    lines += R"({"model": "m", "context_length": )" + std::to_string(length) + R"(, "depth_percent": )" +
             std::to_string(depth) + R"(, "needle": "n", "model_response": "r", "score": )" + std::to_string(score) +
             R"(, "mask": ")" + mask + "\"}\n";
  };
  line("none", 1000, 0, 100);
  line("none", 1000, 0, 50);
  line("none", 2000, 50, 20);
  line("top-5", 1000, 0, 10);
  dir.write("niah/results.jsonl", lines);
  dir.write("niah/summary.json", R"({"model": {"path": "m"}, "settings": {"needle": "n"}, "mean_score": 56.67})");
  dir.write("niah/sweep.json", R"({"top": [[10, 20.0], [0, 90.0]], "random": [[0, 90.0], [10, 88.5]]})");
  EXPECT_EQ(detect_run_kind((dir.path() / "niah").string()), RunKind::niah);
  const NiahRun run = read_niah_run((dir.path() / "niah").string());
  ASSERT_TRUE(run.summary);
  EXPECT_DOUBLE_EQ(run.summary->mean_score, 56.67);
  const auto grids = niah_grids(run.tests);
  ASSERT_EQ(grids.size(), 2u);
  EXPECT_EQ(grids[0].mask, "");
  EXPECT_EQ(grids[0].tests, 3);
  EXPECT_DOUBLE_EQ(grids[0].score[0][0], 75.0);
  EXPECT_DOUBLE_EQ(grids[0].score[1][1], 20.0);
  EXPECT_TRUE(std::isnan(grids[0].score[0][1]));
  EXPECT_NEAR(grids[0].mean_score, 170.0 / 3, 1e-12);
  EXPECT_EQ(grids[1].mask, "top-5");
  ASSERT_EQ(run.sweep.size(), 2u);
  EXPECT_EQ(run.sweep[0].name, "top");
  EXPECT_DOUBLE_EQ(run.sweep[0].points.front().first, 0.0);  // sorted by K
  EXPECT_DOUBLE_EQ(run.sweep[0].points.back().second, 20.0);

  const auto bad = dir.write("bad/sweep.json", R"({"top": [[1, 2, 3]]})");
  expect_one_line_error([&] { read_sweep(bad); }, bad, "[K, mean_score]");
  const auto bad2 = dir.write("bad/results.jsonl", R"({"context_length": 1000, "depth_percent": 0})"
                                                   "\n");
  expect_one_line_error([&] { read_niah_results(bad2); }, bad2 + ":1", "missing field 'score'");
}

}  // namespace
