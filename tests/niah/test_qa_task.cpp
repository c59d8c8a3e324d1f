// QA and CoT items, prompts, shipped data and answer extraction.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/error.h"
#include "experiments/cot_task.h"
#include "text/qa_metrics.h"
#include "experiments/qa_task.h"
#include "test_support.h"

namespace {

using namespace rhead;

std::string source_file(const std::string& rel) {
  std::ifstream in(std::string(RHEAD_SOURCE_DIR) + "/" + rel, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(QaTask, ShippedDataIsEmbeddedVerbatim) {
  EXPECT_EQ(std::string(builtin_qa_jsonl()), source_file("data/qa_small.jsonl"));
  EXPECT_EQ(std::string(builtin_arith_jsonl()), source_file("data/arith_small.jsonl"));
  EXPECT_EQ(std::string(builtin_arith_fewshot_jsonl()), source_file("data/arith_fewshot.jsonl"));
}

TEST(QaTask, ShippedQaAnswersAreSpansOfTheirContexts) {
  const auto items = parse_qa_jsonl(builtin_qa_jsonl(), "builtin");
  EXPECT_GE(items.size(), 10u);
  for (const auto& it : items) {
    ASSERT_FALSE(it.answers.empty()) << it.id;
    bool found = false;
    for (const auto& a : it.answers) found |= it.context.find(a) != std::string::npos;
    EXPECT_TRUE(found) << it.id;
    // The gold answer scores full marks against itself.
    EXPECT_EQ(squad_exact_match(it.answers.front(), it.answers), 1.0);
  }
}

TEST(QaTask, ParsingErrorsNameTheLine) {
  try {
    parse_qa_jsonl("{\"context\": \"c\", \"question\": \"q\", \"answers\": [\"a\"]}\n{\"context\": \"c\"}\n",
                   "f.jsonl");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("f.jsonl:2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_qa_jsonl("{\"context\": \"c\", \"question\": \"q\", \"answers\": []}", "f"), Error);
  EXPECT_THROW(parse_qa_jsonl("\n\n", "f"), Error);
  const auto items = parse_qa_jsonl("{\"context\": \"c\", \"question\": \"q\", \"answers\": [\"a\"]}", "f");
  EXPECT_EQ(items.front().id, "line 1");
}

TEST(CotTask, ShippedItemsHaveConsistentGoldAnswers) {
  const auto items = parse_cot_jsonl(builtin_arith_jsonl(), "builtin");
  const auto shots = parse_cot_jsonl(builtin_arith_fewshot_jsonl(), "builtin");
  EXPECT_GE(items.size(), 10u);
  EXPECT_GE(shots.size(), 4u);
  for (const auto& it : items) {
    // The reasoning's last number is the gold answer.
    const auto last = extract_predicted_number(cot_reasoning(it.answer));
    ASSERT_TRUE(last.has_value()) << it.id;
    EXPECT_TRUE(numbers_equal(*last, it.gold)) << it.id;
  }
  EXPECT_EQ(items[4].gold, 13);
  EXPECT_EQ(items[4].final_answer, "13");
}

TEST(CotTask, ReasoningAndPrompts) {
  EXPECT_EQ(
      cot_reasoning("One bag has 4 + 2 = <<4+2=6>>6 balls.\nThree bags have 3 * 6 = <<3*6=18>>18 balls.\n#### 18"),
      "One bag has 4 + 2 = 6 balls. Three bags have 3 * 6 = 18 balls.");
  const auto shots = parse_cot_jsonl(
      "{\"question\": \"Jon had 10 cookies and ate 4. How many are left?\", \"answer\": \"10 - 4 = <<10-4=6>>6.\\n#### "
      "6\"}",
      "s");
  EXPECT_EQ(cot_prompt_text(shots, "What is 2 + 2?", CotStyle::answer_only),
            "Question: Jon had 10 cookies and ate 4. How many are left?\nAnswer: The answer is 6.\n\n"
            "Question: What is 2 + 2?\nAnswer:");
  EXPECT_EQ(cot_prompt_text(shots, "What is 2 + 2?", CotStyle::chain_of_thought),
            "Question: Jon had 10 cookies and ate 4. How many are left?\nAnswer: 10 - 4 = 6. The answer is 6.\n\n"
            "Question: What is 2 + 2?\nAnswer:");
  EXPECT_EQ(cot_prompt_text({}, "Q?", CotStyle::chain_of_thought), "Question: Q?\nAnswer:");
  EXPECT_THROW(parse_cot_jsonl("{\"question\": \"q\", \"answer\": \"no marker\"}", "f"), Error);
  // A gold that is not one whole number names the file, the line and what it found.
  try {
    parse_cot_jsonl(
        "{\"question\": \"q\", \"answer\": \"2 + 2 = 4\\n#### 4\"}\n"
        "{\"question\": \"q\", \"answer\": \"so #### 1e5\"}",
        "cot.jsonl");
    ADD_FAILURE() << "1e5 accepted as a gold answer";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cot.jsonl:2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(got \"1e5\")"), std::string::npos) << e.what();
  }
  EXPECT_EQ(cot_style_from_name("answer"), CotStyle::answer_only);
  EXPECT_EQ(cot_style_from_name("chain_of_thought"), CotStyle::chain_of_thought);
  EXPECT_THROW(cot_style_from_name("both"), Error);
}

TEST(CotTask, CompletionsAreScoredByTheirNumber) {
  EXPECT_TRUE(gsm8k_correct("She has 20 - 8 = 12 left. The answer is 12.", "#### 12"));
  EXPECT_TRUE(gsm8k_correct("The answer is $1,234.", "...\n#### 1234"));
  EXPECT_FALSE(gsm8k_correct("The answer is 13. Then 12 more.", "#### 12"));
  EXPECT_FALSE(gsm8k_correct("I do not know.", "#### 12"));
}

TEST(CliQaCot, RunOnTheBuiltinModelWithShippedData) {
  // builtin:induction cannot answer, but both commands run end to end with no files.
  const std::string out = ::testing::TempDir() + "rhead-qa-cli";
  std::filesystem::remove_all(out);
  const std::string qa =
      std::string(RHEAD_BINARY) + " qa -m builtin:induction --mask heads:1-1 -q -o " + out + "/qa 2>&1";
  const rhead::testing::CommandResult qa_run = rhead::testing::run_command(qa);
  const std::string& text = qa_run.output;
  EXPECT_EQ(qa_run.exit_code, 0) << text;
  EXPECT_NE(text.find("exact match"), std::string::npos) << text;
  EXPECT_NE(text.find("heads:1-1"), std::string::npos) << text;
  EXPECT_TRUE(std::filesystem::exists(out + "/qa/summary.json"));

  const std::string cot =
      std::string(RHEAD_BINARY) + " cot -m builtin:induction --max-new-tokens 8 --shots 1 -q -o " + out + "/cot 2>&1";
  const rhead::testing::CommandResult cot_run = rhead::testing::run_command(cot);
  EXPECT_EQ(cot_run.exit_code, 0) << cot_run.output;
  EXPECT_NE(cot_run.output.find("answer_only"), std::string::npos) << cot_run.output;
  EXPECT_NE(cot_run.output.find("cot"), std::string::npos) << cot_run.output;
  std::filesystem::remove_all(out);
}

}  // namespace
