// Result files of a detection run: JSONL round trip, torn-tail repair, deduplication,
// the reference head_score format, extending an existing score file, atomic writes.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include "io/error.h"
#include "records/results.h"
#include "test_support.h"

namespace {

using namespace rhead;
using nlohmann::json;
namespace fs = std::filesystem;

struct TempDir : rhead::testing::MkdtempDir {
  TempDir() : MkdtempDir("rhead_test_results_") {}
};

using rhead::testing::read_text_file;

TestResult make_result(const std::string& id, int needle, int64_t length, int depth, bool counted,
                       std::map<std::string, double> scores) {
  TestResult r;
  r.test_id = id;
  r.needle_id = needle;
  r.length = length;
  r.depth = depth;
  r.span_begin = 10;
  r.span_end = 14;
  r.answer = "cobalt \"ember\"\n";
  r.rouge_recall = counted ? 100.0 : 25.0;
  r.counted = counted;
  r.head_scores = std::move(scores);
  r.seconds = 0.5;
  r.prompt_tokens = 300;
  r.generated_tokens = 5;
  r.prefill_seconds = 0.25;
  r.decode_seconds = 0.125;
  r.scoring_seconds = 0.0625;
  return r;
}

TEST(ResultsJson, RoundTripKeepsEveryField) {
  TestResult r = make_result("n1-L300-d50", 1, 300, 50, true, {{"1-2", 0.75}, {"0-0", 0.25}});
  r.reused_tokens = 120;
  r.sink_mass_top_heads = 0.375;
  StepCopies step;
  step.token = 7;
  step.span = 2;
  r.steps = std::vector<StepCopies>{step};
  r.sink_mass_by_head = {{"1-2", 0.5}};
  const TestResult back = test_result_from_json(json::parse(to_json(r).dump()), "here");
  EXPECT_EQ(back.test_id, r.test_id);
  EXPECT_EQ(back.needle_id, 1);
  EXPECT_EQ(back.length, 300);
  EXPECT_EQ(back.depth, 50);
  EXPECT_EQ(back.span_begin, 10);
  EXPECT_EQ(back.span_end, 14);
  EXPECT_EQ(back.answer, r.answer);
  EXPECT_EQ(back.rouge_recall, 100.0);
  EXPECT_TRUE(back.counted);
  EXPECT_EQ(back.head_scores, r.head_scores);
  EXPECT_EQ(back.prefill_seconds, 0.25);
  EXPECT_EQ(back.decode_seconds, 0.125);
  EXPECT_EQ(back.scoring_seconds, 0.0625);
  EXPECT_EQ(back.reused_tokens, 120);
  EXPECT_EQ(back.sink_mass_top_heads, 0.375);
  ASSERT_TRUE(back.steps.has_value());
  ASSERT_EQ(back.steps->size(), 1u);
  EXPECT_EQ(back.steps->front().token, 7);
  EXPECT_EQ(back.steps->front().span, 2);
  EXPECT_EQ(back.sink_mass_by_head, r.sink_mass_by_head);
  EXPECT_EQ(to_json(back), to_json(r));
}

TEST(ResultsJson, MalformedLineNamesWhere) {
  try {
    test_result_from_json(json{{"test_id", "x"}}, "run/results.jsonl");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("run/results.jsonl"), std::string::npos) << e.what();
  }
}

TEST(ResultsFile, AppendsOneLinePerResult) {
  TempDir d;
  const std::string path = d.sub("results.jsonl");
  {
    ResultsWriter w(path);
    w.append(to_json(make_result("a", 0, 300, 0, true, {})));
    w.append(to_json(make_result("b", 0, 300, 50, false, {})));
  }
  {
    ResultsWriter w(path);  // reopening appends
    w.append(to_json(make_result("c", 0, 300, 100, true, {})));
  }
  const std::string text = read_text_file(path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
  const auto lines = read_results_lines(path, false);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2]["test_id"], "c");
}

TEST(ResultsFile, MissingFileReadsAsEmpty) {
  TempDir d;
  EXPECT_TRUE(read_results_lines(d.sub("none.jsonl"), true).empty());
}

TEST(ResultsFile, TornTailIsCutSoAppendsStayClean) {
  TempDir d;
  const std::string path = d.sub("results.jsonl");
  {
    ResultsWriter w(path);
    w.append(to_json(make_result("a", 0, 300, 0, true, {{"1-1", 1.0}})));
    w.append(to_json(make_result("b", 0, 300, 50, true, {{"1-1", 1.0}})));
  }
  const std::string whole = read_text_file(path);
  // Cut the second line in the middle, as a kill during write() would.
  const size_t first_end = whole.find('\n') + 1;
  const size_t cut = first_end + (whole.size() - first_end) / 2;
  fs::resize_file(path, cut);

  // Reading without repair leaves the file alone.
  EXPECT_EQ(read_results_lines(path, false).size(), 1u);
  EXPECT_EQ(fs::file_size(path), cut);
  // With repair the partial line is removed.
  const auto lines = read_results_lines(path, true);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["test_id"], "a");
  EXPECT_EQ(fs::file_size(path), first_end);
  // The rerun appends the lost test on a line of its own.
  {
    ResultsWriter w(path);
    w.append(to_json(make_result("b", 0, 300, 50, true, {{"1-1", 1.0}})));
  }
  EXPECT_EQ(read_text_file(path), whole);
  EXPECT_EQ(read_results_lines(path, true).size(), 2u);
}

TEST(ResultsFile, CorruptLineInTheMiddleIsAnError) {
  TempDir d;
  const std::string path = d.sub("results.jsonl");
  std::ofstream(path) << to_json(make_result("a", 0, 300, 0, true, {})).dump() << "\n{not json\n"
                      << to_json(make_result("b", 0, 300, 0, true, {})).dump() << "\n";
  try {
    read_results_lines(path, true);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("results.jsonl:2"), std::string::npos) << e.what();
  }
}

TEST(ResultsFile, ATestOnTwoLinesIsRefused) {
  TempDir d;
  const std::string path = d.sub("results.jsonl");
  {
    ResultsWriter w(path);
    w.append(to_json(make_result("a", 0, 300, 0, true, {{"1-1", 1.0}})));
    w.append(to_json(make_result("b", 0, 300, 50, true, {})));
    w.append(to_json(make_result("a", 0, 300, 0, true, {{"1-1", 0.5}})));
  }
  try {
    read_results_lines(path, true);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("results.jsonl:3: key 'a' is on line 1 already"), std::string::npos)
        << e.what();
  }
}

TEST(HeadScoreJson, ReferenceFormatListsCountedTestsForEveryHead) {
  std::vector<TestResult> rs = {
      make_result("a", 0, 300, 0, true, {{"1-1", 1.0}, {"0-1", 0.5}}),
      make_result("b", 0, 300, 50, false, {{"1-1", 1.0}}),  // not counted: left out
      make_result("c", 0, 300, 100, true, {{"1-1", 0.25}}),
  };
  const json j = head_score_json(rs, 2, 3);
  ASSERT_EQ(j.size(), 6u);
  for (const char* key : {"0-0", "0-1", "0-2", "1-0", "1-1", "1-2"}) {
    ASSERT_TRUE(j.contains(key)) << key;
    EXPECT_EQ(j[key].size(), 2u) << key;
  }
  EXPECT_EQ(j["1-1"], json::parse("[1.0, 0.25]"));
  EXPECT_EQ(j["0-1"], json::parse("[0.5, 0.0]"));
  EXPECT_EQ(j["1-2"], json::parse("[0.0, 0.0]"));
}

TEST(HeadScoreJson, NoCountedTestsGivesEmptyLists) {
  const json j = head_score_json({make_result("a", 0, 300, 0, false, {{"0-0", 1.0}})}, 1, 2);
  EXPECT_EQ(j, json::parse(R"({"0-0": [], "0-1": []})"));
}

TEST(MergeHeadScores, CreatesThenExtendsAReferenceFile) {
  TempDir d;
  const std::string path = d.sub("ref.json");
  merge_head_scores_into(path, json::parse(R"({"0-0": [0.5], "0-1": [0.0]})"));
  EXPECT_EQ(json::parse(read_text_file(path)), json::parse(R"({"0-0": [0.5], "0-1": [0.0]})"));
  merge_head_scores_into(path, json::parse(R"({"0-0": [1.0, 0.25], "0-1": [0.0, 0.75]})"));
  EXPECT_EQ(json::parse(read_text_file(path)), json::parse(R"({"0-0": [0.5, 1.0, 0.25], "0-1": [0.0, 0.0, 0.75]})"));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST(MergeHeadScores, RejectsOtherShapesAndBadFilesWithoutTouchingThem) {
  TempDir d;
  const std::string path = d.sub("ref.json");
  const std::string original = R"({"0-0": [0.5], "0-1": [0.0]})";
  std::ofstream(path) << original;
  EXPECT_THROW(merge_head_scores_into(path, json::parse(R"({"0-0": [1.0]})")), Error);
  EXPECT_THROW(merge_head_scores_into(path, json::parse(R"({"0-0": [1.0], "0-1": [0.0], "1-0": [0.0]})")), Error);
  EXPECT_EQ(read_text_file(path), original);
  std::ofstream(d.sub("bad.json")) << "{\"0-0\": [0.5";
  EXPECT_THROW(merge_head_scores_into(d.sub("bad.json"), json::parse(R"({"0-0": [1.0]})")), Error);
  std::ofstream(d.sub("list.json")) << "[1, 2]";
  EXPECT_THROW(merge_head_scores_into(d.sub("list.json"), json::parse(R"({"0-0": [1.0]})")), Error);
}

TEST(WriteFileAtomic, ReplacesContentAndLeavesNoTemporary) {
  TempDir d;
  const std::string path = d.sub("summary.json");
  write_file_atomic(path, "first");
  write_file_atomic(path, "second");
  EXPECT_EQ(read_text_file(path), "second");
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_THROW(write_file_atomic(d.sub("no/such/dir/x.json"), "x"), Error);
}

TEST(SortResults, CanonicalOrderIsNeedleLengthDepth) {
  std::vector<TestResult> rs = {make_result("c", 1, 300, 0, true, {}), make_result("b", 0, 400, 0, true, {}),
                                make_result("a", 0, 300, 100, true, {}), make_result("d", 0, 300, 0, true, {})};
  sort_results(rs);
  std::string order;
  for (const auto& r : rs) order += r.test_id;
  EXPECT_EQ(order, "dabc");
}

}  // namespace
