// The retrieval score of METHOD.md section 3 on crafted inputs: the needle span rule
// (first window covering > 90% of the answer's token set), the per-step copy rule on
// hand-made probe records, and the head statistics of a detection summary.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "io/error.h"
#include "experiments/detect.h"
#include "experiments/retrieval_score.h"

namespace {

using namespace rhead;

TEST(FindNeedleSpan, ExactOccurrence) {
  const std::vector<int32_t> prompt = {1, 5, 6, 7, 10, 11, 12, 13, 8, 9};
  auto span = find_needle_span(prompt, {10, 11, 12, 13});
  ASSERT_TRUE(span);
  EXPECT_EQ(span->begin, 4);
  EXPECT_EQ(span->end, 8);
  EXPECT_EQ(span->size(), 4);
}

TEST(FindNeedleSpan, FirstMatchingWindowWins) {
  const std::vector<int32_t> prompt = {1, 10, 11, 12, 2, 3, 10, 11, 12, 4};
  auto span = find_needle_span(prompt, {10, 11, 12});
  ASSERT_TRUE(span);
  EXPECT_EQ(span->begin, 1);
  EXPECT_EQ(span->end, 4);
}

TEST(FindNeedleSpan, WindowsCompareSetsNotSequences) {
  // Answer {a, a, b}: its set is {a, b}. The window [2, b, a] at 1 covers it, before the
  // exact occurrence at 3: the reference's rule takes the first covering window.
  const int32_t a = 20, b = 21;
  const std::vector<int32_t> prompt = {1, 2, b, a, a, b, 3};
  auto span = find_needle_span(prompt, {a, a, b});
  ASSERT_TRUE(span);
  EXPECT_EQ(span->begin, 1);
  EXPECT_EQ(span->end, 4);
  // Order does not matter either.
  span = find_needle_span({1, 12, 11, 10, 2}, {10, 11, 12});
  ASSERT_TRUE(span);
  EXPECT_EQ(span->begin, 1);
}

TEST(FindNeedleSpan, MoreThanNinetyPercentOfTheSetIsNeeded) {
  // Ten distinct answer tokens; a window with nine of them covers exactly 90%: not enough.
  std::vector<int32_t> answer(10);
  std::iota(answer.begin(), answer.end(), 100);
  std::vector<int32_t> prompt = {1, 2};
  prompt.insert(prompt.end(), answer.begin(), answer.end() - 1);
  prompt.push_back(3);
  prompt.push_back(4);
  EXPECT_FALSE(find_needle_span(prompt, answer));
  // Eleven distinct tokens, ten present: 90.9% > 90%.
  std::vector<int32_t> answer11 = answer;
  answer11.push_back(110);
  std::vector<int32_t> prompt11 = {1, 2};
  prompt11.insert(prompt11.end(), answer.begin(), answer.end());
  prompt11.push_back(3);
  auto span = find_needle_span(prompt11, answer11);
  ASSERT_TRUE(span);
  EXPECT_EQ(span->begin, 1);  // the window [2, 100..109] is the first to hold ten of them
  EXPECT_EQ(span->size(), 11);
}

TEST(FindNeedleSpan, NoMatchCases) {
  EXPECT_FALSE(find_needle_span({1, 2, 3}, {}));
  EXPECT_FALSE(find_needle_span({1, 2}, {1, 2, 3}));
  EXPECT_FALSE(find_needle_span({1, 2, 3, 4, 5}, {7, 8}));
  // Two of three tokens: 67%.
  EXPECT_FALSE(find_needle_span({1, 10, 11, 5, 6}, {10, 11, 12}));
}

// A probe record for one decode step: argmax[l][h] given row by row.
ProbeRecord record(const std::vector<std::vector<int32_t>>& argmax) {
  ProbeRecord r;
  r.n_obs = 1;
  r.n_layer = static_cast<int>(argmax.size());
  r.n_head = static_cast<int>(argmax[0].size());
  for (const auto& row : argmax) r.argmax.insert(r.argmax.end(), row.begin(), row.end());
  r.argmax_weight.assign(r.argmax.size(), 1.0f);
  return r;
}

TEST(RetrievalScorer, CreditsOnlyTopOnePositionsInsideTheSpanHoldingTheEmittedToken) {
  //                           0  1  2   3   4   5   6  7
  const std::vector<int32_t> prompt = {1, 9, 30, 31, 32, 31, 9, 4};
  const NeedleSpan span{2, 5};  // tokens 30 31 32
  RetrievalScorer s(2, 3, span, prompt);
  // Step 1 emits 30. Head 0-0 looks at 2 (30: copy), 0-1 at 3 (31: wrong token), 0-2 at 1
  // (outside), 1-0 at 2 (copy), 1-1 at 5 (31 but outside the span), 1-2 at 4 (32, wrong).
  s.observe(record({{2, 3, 1}, {2, 5, 4}}), 30);
  // Step 2 emits 31: 0-0 at 3 (copy), 1-1 at 3 (copy), 1-2 at 5 (outside).
  s.observe(record({{3, 0, 0}, {0, 3, 5}}), 31);
  // Step 3 emits 9: token 9 is only outside the span; no head earns credit.
  s.observe(record({{1, 6, 6}, {1, 1, 6}}), 9);
  const double c = 1.0 / 3.0;
  const std::vector<double> expected = {2 * c, 0, 0, c, c, 0};
  ASSERT_EQ(s.scores().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_DOUBLE_EQ(s.scores()[i], expected[i]) << i;
  EXPECT_EQ(s.copies(), (std::vector<int>{2, 0, 0, 1, 1, 0}));
}

TEST(RetrievalScorer, SpanBoundsAreHalfOpen) {
  const std::vector<int32_t> prompt = {7, 7, 7, 7, 7};
  RetrievalScorer s(1, 4, NeedleSpan{1, 3}, prompt);
  s.observe(record({{0, 1, 2, 3}}), 7);
  EXPECT_EQ(s.copies(), (std::vector<int>{0, 1, 1, 0}));
  EXPECT_DOUBLE_EQ(s.scores()[1], 0.5);
}

TEST(RetrievalScorer, FullCopyOfTheSpanScoresOne) {
  const std::vector<int32_t> prompt = {1, 2, 40, 41, 42, 43, 3};
  RetrievalScorer s(1, 1, NeedleSpan{2, 6}, prompt);
  for (int j = 2; j < 6; ++j) s.observe(record({{j}}), prompt[j]);
  EXPECT_EQ(s.scores()[0], 1.0);
}

TEST(RetrievalScorer, NeedsArgmaxProbes) {
  const std::vector<int32_t> prompt = {1, 2, 3};
  RetrievalScorer s(1, 1, NeedleSpan{0, 2}, prompt);
  ProbeRecord empty;
  EXPECT_THROW(s.observe(empty, 1), Error);
}

TestResult result(const std::string& id, bool counted, double recall, std::map<std::string, double> scores) {
  TestResult r;
  r.test_id = id;
  r.counted = counted;
  r.rouge_recall = recall;
  r.head_scores = std::move(scores);
  return r;
}

TEST(Summarize, MeansOverCountedTestsAndActivationFrequency) {
  std::vector<TestResult> rs = {
      result("a", true, 100, {{"1-1", 1.0}, {"0-0", 0.5}}),
      result("b", true, 75, {{"1-1", 0.5}}),
      result("c", false, 25, {{"1-1", 1.0}, {"0-1", 1.0}}),  // not counted
      result("d", true, 100, {{"0-0", 0.1}}),
  };
  DetectSummary s = summarize(rs, 2, 2, 1);
  EXPECT_EQ(s.tests, 4);
  EXPECT_EQ(s.counted, 3);
  EXPECT_DOUBLE_EQ(s.niah_accuracy, 0.75);
  EXPECT_DOUBLE_EQ(s.mean_rouge_recall, 75.0);
  ASSERT_EQ(s.heads.size(), 4u);
  EXPECT_EQ(s.heads[0].id.layer, 1);
  EXPECT_EQ(s.heads[0].id.head, 1);
  EXPECT_DOUBLE_EQ(s.heads[0].mean, 0.5);
  EXPECT_DOUBLE_EQ(s.heads[0].frequency, 2.0 / 3.0);
  EXPECT_EQ(s.heads[1].id.layer, 0);
  EXPECT_EQ(s.heads[1].id.head, 0);
  EXPECT_DOUBLE_EQ(s.heads[1].mean, 0.2);
  EXPECT_DOUBLE_EQ(s.heads[1].frequency, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(s.heads[2].mean, 0.0);  // 0-1 copied only in an uncounted test
  EXPECT_EQ(s.count_above_0_1, 2);
  EXPECT_DOUBLE_EQ(s.share_above_0_1, 0.5);
  // Ties keep (layer, head) order.
  EXPECT_EQ(s.heads[2].id.layer, 0);
  EXPECT_EQ(s.heads[2].id.head, 1);
  EXPECT_EQ(s.heads[3].id.layer, 1);
  EXPECT_EQ(s.heads[3].id.head, 0);
}

TEST(Summarize, HeadOutsideTheModelIsAnError) {
  EXPECT_THROW(summarize({result("a", true, 100, {{"2-0", 1.0}})}, 2, 2, 1), Error);
  EXPECT_THROW(summarize({result("a", true, 100, {{"0-2", 1.0}})}, 2, 2, 1), Error);
}

TEST(Summarize, EmptyRunAndKvGroups) {
  DetectSummary s = summarize({}, 2, 4, 2);
  EXPECT_EQ(s.tests, 0);
  EXPECT_EQ(s.niah_accuracy, 0.0);
  EXPECT_EQ(s.count_above_0_1, 0);
  const auto j = summarize({result("a", true, 100, {{"1-3", 0.5}, {"1-2", 0.25}})}, 2, 4, 2).to_json();
  ASSERT_EQ(j["kv_groups"].size(), 4u);
  // Layer 1, KV group 1 holds query heads 2 and 3.
  EXPECT_EQ(j["kv_groups"][3]["layer"], 1);
  EXPECT_EQ(j["kv_groups"][3]["kv_head"], 1);
  EXPECT_DOUBLE_EQ(j["kv_groups"][3]["sum"].get<double>(), 0.75);
  EXPECT_EQ(j["kv_groups"][3]["max_head"], 3);
  const std::string table = format_summary(summarize({result("a", true, 100, {{"1-3", 0.5}})}, 2, 4, 2));
  EXPECT_NE(table.find("1 of 1 tests counted (100.0%)"), std::string::npos) << table;
  EXPECT_NE(table.find("1-3"), std::string::npos) << table;
}

}  // namespace
