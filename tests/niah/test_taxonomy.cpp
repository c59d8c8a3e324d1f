// Error taxonomy on crafted answers and probe records, and on the records the runner writes.
#include <gtest/gtest.h>

#include "io/builtin_data.h"
#include "io/error.h"
#include "model/builtin.h"
#include "text/rouge.h"
#include "experiments/runner.h"
#include "records/taxonomy.h"

namespace {

using namespace rhead;

StepCopies step(int span, int needle, int haystack, bool content = true) {
  StepCopies s;
  s.content = content;
  s.span = span;
  s.needle = needle;
  s.haystack = haystack;
  return s;
}

double recall(const std::string& reference, const std::string& answer) {
  return rouge1_recall(reference, answer) * 100;
}

TEST(Taxonomy, PassedTestsHaveNoErrorKind) {
  EXPECT_EQ(classify_error(recall("star oil nest", "star oil nest"), {step(4, 0, 0)}), ErrorKind::none);
  EXPECT_EQ(classify_error(recall("star oil nest", "star oil"), {}), ErrorKind::none);  // 66.7 > 50
}

TEST(Taxonomy, IncompleteWhenSomeNeedleWordsWereCopied) {
  const double score = recall("star oil nest", "The code is star fish.");
  ASSERT_NEAR(score, 100.0 / 3, 1e-9);
  EXPECT_EQ(classify_error(score, {step(0, 2, 0), step(0, 1, 0), step(0, 0, 0), step(3, 0, 0), step(0, 0, 0)}),
            ErrorKind::incomplete);
}

TEST(Taxonomy, HallucinationWhenNothingCameFromTheSpan) {
  // Words invented: no head copied from the needle.
  EXPECT_EQ(classify_error(recall("star oil nest", "blue moon rock"), {step(0, 0, 0), step(0, 0, 0)}),
            ErrorKind::hallucination);
  // A needle word recalled by chance, but no head copied it from the span.
  StepCopies from_question = step(0, 0, 0);
  from_question.other = 2;
  EXPECT_EQ(classify_error(recall("star oil nest", "a star is born"), {step(0, 0, 0), from_question, step(0, 0, 0)}),
            ErrorKind::hallucination);
  // Restating the needle sentence's frame and inventing the answer is still a hallucination.
  EXPECT_EQ(classify_error(recall("star oil nest", "The secret code is red fish"), {step(0, 3, 0), step(0, 2, 0)}),
            ErrorKind::hallucination);
  // Empty answer.
  EXPECT_EQ(classify_error(0.0, {step(0, 0, 0, false)}), ErrorKind::hallucination);
}

TEST(Taxonomy, WrongExtractionWhenHeadsCopiedFromTheHaystack) {
  EXPECT_EQ(
      classify_error(recall("star oil nest", "to build a startup"), {step(0, 0, 2), step(0, 0, 1), step(0, 0, 3)}),
      ErrorKind::wrong_extraction);
  // More haystack steps than span steps outweighs a partial recall.
  EXPECT_EQ(
      classify_error(recall("star oil nest", "star money startup"), {step(2, 0, 0), step(0, 0, 1), step(0, 0, 1)}),
      ErrorKind::wrong_extraction);
  // A step that also copied from the needle sentence is not a haystack step.
  EXPECT_EQ(classify_error(0.0, {step(0, 1, 2), step(0, 1, 2)}), ErrorKind::hallucination);
}

TEST(Taxonomy, OnlyContentStepsDecide) {
  // Newlines or punctuation copied from the haystack decide nothing.
  EXPECT_EQ(
      classify_error(recall("star oil nest", "star"), {step(1, 0, 0), step(0, 0, 5, false), step(0, 0, 5, false)}),
      ErrorKind::incomplete);
  const CopyTally t = tally_copies({step(1, 0, 0), step(0, 0, 5, false), step(0, 0, 2), step(0, 1, 2)});
  EXPECT_EQ(t.content_steps, 3);
  EXPECT_EQ(t.span_steps, 1);
  EXPECT_EQ(t.haystack_steps, 1);
}

TEST(Taxonomy, StepRecordsRoundTripAndRejectGarbage) {
  std::vector<StepCopies> steps = {step(1, 2, 3), step(0, 0, 0, false)};
  steps[0].sink = 0.25;
  const auto back = steps_from_json(steps_to_json(steps));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].span, 1);
  EXPECT_EQ(back[0].needle, 2);
  EXPECT_EQ(back[0].haystack, 3);
  EXPECT_FALSE(back[1].content);
  EXPECT_DOUBLE_EQ(mean_sink_mass(back), 0.25);
  EXPECT_THROW(steps_from_json(nlohmann::json::parse(R"([{"span": "many"}])")), Error);
  EXPECT_THROW(steps_from_json(nlohmann::json::parse(R"({"span": 1})")), Error);
  EXPECT_EQ(error_kind_from_name("wrong_extraction"), ErrorKind::wrong_extraction);
  EXPECT_FALSE(error_kind_from_name("typo").has_value());
}

// The runner's probe records on the built-in induction model: unmasked, the copy heads
// copy the answer from the span; with them masked, nothing is copied from the span.
TEST(Taxonomy, RunnerStepRecordsOnTheInductionModel) {
  const LoadedModel lm = load_builtin_model("induction");
  NiahRunConfig c;
  c.needle_sets.push_back({induction_needles().front(), ""});
  c.grid.lengths = {500};
  c.grid.depths = {50};
  c.format.base_template = induction_prompt_template();
  c.record_steps = true;
  c.sink_heads = {{1, 1}, {1, 2}};
  NiahRunner plain(lm, {}, c);
  const TestResult ok = plain.run(plain.tasks().front());
  ASSERT_GT(ok.rouge_recall, 50.0) << ok.answer;
  ASSERT_TRUE(ok.steps.has_value());
  const auto steps = *ok.steps;
  ASSERT_FALSE(steps.empty());
  EXPECT_GT(tally_copies(steps).span_steps, 0);
  EXPECT_GE(mean_sink_mass(steps), 0.0);
  EXPECT_EQ(ok.sink_mass_by_head.size(), 2u);
  EXPECT_EQ(classify_error(ok.rouge_recall, steps), ErrorKind::none);

  HeadMask mask(lm.model->config.n_layer, lm.model->config.n_head);
  mask.add(1, 1);
  mask.add(1, 2);
  const TestResult bad = plain.run(plain.tasks().front(), &mask);  // same runner, mask per call
  ASSERT_TRUE(bad.steps.has_value());
  const auto bad_steps = *bad.steps;
  EXPECT_LE(bad.rouge_recall, 50.0) << bad.answer;
  EXPECT_EQ(tally_copies(bad_steps).span_steps, 0);
  EXPECT_NE(classify_error(bad.rouge_recall, bad_steps), ErrorKind::none);

  // Without record_steps (detect) the result carries no step records.
  c.record_steps = false;
  NiahRunner detect_like(lm, {}, c);
  EXPECT_FALSE(detect_like.run(detect_like.tasks().front()).steps.has_value());
}

}  // namespace
