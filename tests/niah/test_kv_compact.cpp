// The compacted KV cache on niah-tiny's KV sweep conditions: NIAH runs (prefix reuse on, in
// execution order) under a windowed policy with the compacted cache give the same result
// lines, answers, ROUGE, head scores, sink masses and copy counts, as the same policy applied
// to the whole cache. Only timings and the count of reused prompt tokens may differ (a
// compacted cache re-prefills when it no longer holds the window before the reused prefix).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "experiments/runner.h"
#include "model/loader.h"
#include "prompts/inputs.h"
#include "records/results.h"
#include "test_support.h"

namespace rhead {
namespace {

using nlohmann::json;

const std::string kTiny = "models/niah-tiny/";

NiahRunConfig sweep_grid() {
  NiahRunConfig c;
  c.needle_sets = read_needle_sets(testing::shared_path(kTiny + "needles.jsonl"));
  c.default_haystack_dir = testing::shared_path("data/haystack/paul_graham_essays");
  c.grid.lengths = parse_lengths("300:500:2");
  c.grid.depths = depths_from_count(3);
  c.format.base_template = "{context}\nQuestion: {question}\nAnswer:";
  c.sink_heads = {{2, 0}, {2, 3}};  // sink mass enters the lines too
  c.record_steps = true;
  return c;
}

// Result lines of every test, run in execution order, without the fields that may differ.
std::vector<json> run_lines(const LoadedModel& lm, SessionOptions so, int64_t* held) {
  NiahRunner runner(lm, so, sweep_grid());
  std::vector<json> out;
  for (const NiahTask& t : runner.execution_order(runner.tasks())) {
    json j = to_json(runner.run(t));
    for (const char* k : {"seconds", "timing", "reused_tokens"}) j.erase(k);
    out.push_back(std::move(j));
  }
  if (held) *held = runner.kv_bytes_held();
  return out;
}

TEST(KvCompactNiah, SweepConditionsGiveTheSameLines) {
  const std::string path = testing::shared_path(kTiny + "niah-tiny-f32.gguf");
  RHEAD_REQUIRE_FILE(path);
  const LoadedModel lm = load_model(path);
  const ModelConfig& c = lm.model->config;
  struct Condition {
    int64_t window, sink;
    std::vector<HeadId> full;  // query heads
  };
  // Windows of the sweep: none full, and the top layer-2 heads full (their KV head stays whole).
  const std::vector<Condition> conditions = {{32, 4, {}}, {64, 4, {}}, {32, 4, {{2, 0}}}, {64, 0, {{2, 0}, {2, 4}}}};
  int lines = 0, passed = 0;
  for (const Condition& cond : conditions) {
    SessionOptions so;
    so.kv_policy = KvPolicy(c, cond.window, cond.sink);
    for (const HeadId& h : cond.full) so.kv_policy.set_full(h.layer, h.head);
    const std::string what = "window " + std::to_string(cond.window) + " sink " + std::to_string(cond.sink) + " full " +
                             std::to_string(cond.full.size());
    int64_t held_compact = 0, held_whole = 0;
    const std::vector<json> compact = run_lines(lm, so, &held_compact);
    so.kv_compact = false;
    const std::vector<json> whole = run_lines(lm, so, &held_whole);
    ASSERT_EQ(compact.size(), whole.size()) << what;
    for (size_t i = 0; i < compact.size(); ++i) {
      EXPECT_EQ(compact[i], whole[i]) << what << "\n compacted: " << compact[i].dump()
                                      << "\n whole: " << whole[i].dump();
      passed += compact[i]["counted"].get<bool>();
    }
    lines += static_cast<int>(compact.size());
    // The prompts (300-500 tokens) outgrow sink + window + chunk: the rings hold less.
    EXPECT_GT(held_compact, 0) << what;
    EXPECT_LT(held_compact, held_whole) << what;
  }
  EXPECT_EQ(lines, 4 * 3 * 2 * 3);
  EXPECT_GT(passed, 0) << "no test passed: the comparison would only see failures";
}

}  // namespace
}  // namespace rhead
