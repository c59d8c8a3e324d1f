// The qa and cot experiments called as a library, without the CLI: their keys are condition x
// (style x) item, every line names its key and condition, a shard runs exactly its keys, and
// a second call on the same directory runs nothing.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "experiments/cot_run.h"
#include "experiments/qa_run.h"
#include "io/error.h"
#include "model/loader.h"
#include "experiments/causal.h"
#include "records/task_records.h"
#include "test_support.h"

namespace {

using namespace rhead;

std::string niah_tiny() { return rhead::testing::shared_path("models/niah-tiny/niah-tiny-f32.gguf"); }

// The unmasked model and heads 1-0,2-3 masked in the decode phase.
std::vector<MaskSetting> two_conditions(const ModelConfig& config) {
  MaskRequest r;
  r.mask = "heads:1-0,2-3";
  r.baseline = true;
  return mask_settings(r, config, nullptr);
}

TEST(ItemRuns, CotKeysAreConditionStyleItemAndShardsSplitThem) {
  RHEAD_REQUIRE_FILE(niah_tiny());
  const LoadedModel lm = load_model(niah_tiny());
  std::vector<CotItem> items = parse_cot_jsonl(builtin_arith_jsonl(), "builtin:arith_small");
  items.resize(2);
  rhead::testing::MkdtempDir d("rhead_test_item_runs_");
  CotRunOptions o;
  o.run.conditions = two_conditions(lm.model->config);
  o.run.settings = {{"fingerprint", {{"test", "cot"}}}};
  o.styles = {CotStyle::answer_only, CotStyle::chain_of_thought};
  o.shots = {parse_cot_jsonl(builtin_arith_fewshot_jsonl(), "builtin").front()};
  o.max_new_tokens = 4;
  int calls = 0;
  o.run.progress = [&](int, int, int, double) { ++calls; };
  std::set<std::string> seen;
  for (int shard = 0; shard < 2; ++shard) {
    o.run.output_dir = d.sub("shard" + std::to_string(shard));
    o.run.shard = {shard, 2};
    const RunDir dir = run_cot(lm, SessionOptions{}, items, o);
    EXPECT_EQ(dir.kind(), "cot");
    EXPECT_EQ(dir.lines().size(), 4u);  // 8 keys, every other one
    for (const CotLine& l : dir.read_lines(cot_line_from_json)) {
      EXPECT_TRUE(seen.insert(l.test_id).second) << l.test_id;
      EXPECT_EQ(l.test_id,
                l.condition.mask + "|" + l.style + "|" + (l.item_id == items[0].id ? "0:" : "1:") + l.item_id);
    }
  }
  EXPECT_EQ(calls, 8);
  EXPECT_EQ(seen.size(), 8u);
  EXPECT_TRUE(seen.count("heads:1-0,2-3|cot|1:" + items[1].id)) << *seen.begin();
  // The shard is complete: running it again runs nothing and keeps its lines.
  const RunDir again = run_cot(lm, SessionOptions{}, items, o);
  EXPECT_EQ(calls, 8);
  EXPECT_EQ(again.lines().size(), 4u);
}

TEST(ItemRuns, QaLinesCarryTheirConditionAndTheRunRecordsItsSweeps) {
  RHEAD_REQUIRE_FILE(niah_tiny());
  const LoadedModel lm = load_model(niah_tiny());
  std::vector<QaItem> items = parse_qa_jsonl(builtin_qa_jsonl(), "builtin:qa_small");
  items.resize(2);
  rhead::testing::MkdtempDir d("rhead_test_item_runs_");
  QaRunOptions o;
  o.run.output_dir = d.sub("qa");
  o.run.conditions = two_conditions(lm.model->config);
  o.run.settings = {{"fingerprint", {{"test", "qa"}}}};
  o.kv_sweep = true;
  o.max_new_tokens = 4;
  const RunDir dir = run_qa(lm, SessionOptions{}, items, o);
  EXPECT_EQ(dir.kind(), "qa");
  EXPECT_EQ(dir.record().at("kv_sweep"), true);
  EXPECT_EQ(dir.record().at("sweep"), false);
  const std::vector<QaLine> lines = dir.read_lines(qa_line_from_json);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0].test_id, "none|0:" + items[0].id);
  EXPECT_EQ(lines[3].test_id, "heads:1-0,2-3|1:" + items[1].id);
  EXPECT_EQ(lines[3].condition.mask_kind, "heads");
  EXPECT_EQ(lines[3].condition.mask_heads, (std::vector<std::string>{"1-0", "2-3"}));
  EXPECT_EQ(lines[3].condition.mask_k, 2);
  EXPECT_FALSE(lines[3].support_share);                       // no support heads given
  EXPECT_EQ(lines[0].prompt_tokens, lines[2].prompt_tokens);  // a decode mask leaves the prompt alone
}

TEST(ItemRuns, AGridGrowsOnlyWhenAskedAndThenRunsOnlyItsNewKeys) {
  RHEAD_REQUIRE_FILE(niah_tiny());
  const LoadedModel lm = load_model(niah_tiny());
  std::vector<QaItem> items = parse_qa_jsonl(builtin_qa_jsonl(), "builtin:qa_small");
  items.resize(1);
  rhead::testing::MkdtempDir d("rhead_test_item_grow_");
  const std::vector<MaskSetting> both = two_conditions(lm.model->config);
  QaRunOptions o;
  o.run.output_dir = d.sub("qa");
  o.run.conditions = {both[0]};  // the baseline alone
  o.run.settings = {{"fingerprint", {{"test", "grow"}}}};
  o.max_new_tokens = 4;
  int calls = 0;
  o.run.progress = [&](int, int, int, double) { ++calls; };
  EXPECT_EQ(run_qa(lm, SessionOptions{}, items, o).lines().size(), 1u);
  // A second condition is a larger grid: refused, the folder as it was, unless asked for.
  o.run.conditions = both;
  EXPECT_THROW(run_qa(lm, SessionOptions{}, items, o), Error);
  EXPECT_EQ(RunDir::read(d.sub("qa")).lines().size(), 1u);
  o.run.grow_grid = true;
  calls = 0;
  EXPECT_EQ(run_qa(lm, SessionOptions{}, items, o).lines().size(), 2u);
  EXPECT_EQ(calls, 1);  // only the new condition's key ran
}

TEST(ItemRuns, AModelWithoutATokenizerIsRefused) {
  LoadedModel lm = load_model("builtin:induction");
  lm.tokenizer.reset();
  QaRunOptions o;
  o.run.conditions = {MaskSetting{}};
  try {
    run_qa(lm, SessionOptions{}, {QaItem{"a", "c", "q", {"x"}}}, o);
    ADD_FAILURE() << "ran without a tokenizer";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tokenizer"), std::string::npos) << e.what();
  }
}

}  // namespace
