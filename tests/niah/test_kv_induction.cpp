// KV-cache policies on builtin:induction, whose retrieval is computed, not trained: layer 0
// head 1 writes the previous token, the induction heads 1-1 and 1-2 (one per KV head) copy.
//   - Induction heads full, every other head windowed: every NIAH answer is unchanged and the
//     retrieval scores still single out exactly 1-1 and 1-2.
//   - Induction heads windowed: every test whose needle lies outside the window fails.
// And `rhead niah` with the KV options end to end: conditions, accounting fields, KV sweep.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "io/builtin_data.h"
#include "model/builtin.h"
#include "experiments/causal.h"
#include "experiments/detect.h"
#include "experiments/runner.h"
#include "test_support.h"

namespace rhead {
namespace {

using nlohmann::json;

constexpr int64_t kWindow = 64, kSink = 4;

NiahRunConfig induction_grid() {
  NiahRunConfig c;
  for (const auto& n : induction_needles()) c.needle_sets.push_back({n, ""});
  c.needle_sets.resize(2);
  c.grid.lengths = {300, 500};
  c.grid.depths = {0, 25, 50, 75, 90, 100};
  c.format.base_template = induction_prompt_template();
  return c;
}

std::vector<TestResult> run_all(const LoadedModel& lm, const KvPolicy& policy) {
  SessionOptions so;
  so.kv_policy = policy;
  NiahRunner runner(lm, so, induction_grid());
  std::vector<TestResult> out;
  for (const NiahTask& t : runner.tasks()) out.push_back(runner.run(t));
  return out;
}

TEST(KvInduction, InductionHeadsFullKeepAnswersAndDetection) {
  const LoadedModel lm = load_builtin_model("induction");
  const ModelConfig& c = lm.model->config;
  const std::vector<TestResult> plain = run_all(lm, KvPolicy());
  KvPolicy policy(c, kWindow, kSink);
  policy.set_full(1, 1);
  policy.set_full(1, 2);
  const std::vector<TestResult> kept = run_all(lm, policy);
  ASSERT_EQ(plain.size(), kept.size());
  int passed = 0;
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_EQ(kept[i].answer, plain[i].answer) << plain[i].test_id;
    EXPECT_EQ(kept[i].rouge_recall, plain[i].rouge_recall) << plain[i].test_id;
    passed += plain[i].rouge_recall > 50;
  }
  EXPECT_GT(passed, static_cast<int>(plain.size()) * 9 / 10);  // the model does retrieve
  const DetectSummary base = summarize(plain, c.n_layer, c.n_head, c.n_kv_head);
  const DetectSummary s = summarize(kept, c.n_layer, c.n_head, c.n_kv_head);
  EXPECT_EQ(s.counted, base.counted);
  ASSERT_GE(s.heads.size(), 2u);
  std::set<std::string> found;
  for (const HeadStat& h : s.heads)
    if (h.mean > kRetrievalThreshold) found.insert(h.id.key());
  EXPECT_EQ(found, (std::set<std::string>{"1-1", "1-2"}));
}

TEST(KvInduction, WindowedInductionHeadsFailWhenTheNeedleIsOutsideTheWindow) {
  const LoadedModel lm = load_builtin_model("induction");
  const std::vector<TestResult> plain = run_all(lm, KvPolicy());
  const std::vector<TestResult> windowed = run_all(lm, KvPolicy(lm.model->config, kWindow, kSink));
  int outside = 0, inside = 0, inside_passed = 0;
  for (size_t i = 0; i < windowed.size(); ++i) {
    const TestResult& r = windowed[i];
    ASSERT_GT(r.span_end, 0) << r.test_id;
    // The first decode query sits at prompt_tokens - 1; it sees only j < sink or j > i - W.
    const int64_t first_query = r.prompt_tokens - 1;
    const bool hidden = r.span_begin >= kSink && r.span_end - 1 <= first_query - kWindow;
    if (hidden) {
      ++outside;
      EXPECT_LE(r.rouge_recall, 50.0) << r.test_id << " answered \"" << r.answer << "\"";
    } else {
      ++inside;
      inside_passed += r.rouge_recall > 50 && plain[i].rouge_recall > 50;
    }
  }
  // The grid has both kinds of test (depth 100 puts the needle right before the question).
  EXPECT_GT(outside, 10);
  EXPECT_GT(inside, 0);
  std::printf(
      "[ kv induction ] window %lld: %d tests with the needle outside the window (all fail), %d inside "
      "(%d still pass)\n",
      static_cast<long long>(kWindow), outside, inside, inside_passed);
}

TEST(KvInduction, NiahCommandRunsKvConditionsAndTheSweep) {
  testing::MkdtempDir d("kvniah");
  json scores = json::object();
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 4; ++h) scores[std::to_string(l) + "-" + std::to_string(h)] = json::array({0.0});
  scores["1-1"] = {0.9};
  scores["1-2"] = {0.8};
  std::ofstream(d.sub("scores.json")) << scores.dump();
  const std::string out = d.sub("run");
  const std::string cmd =
      testing::shell_quote(testing::rhead_binary()) +
      " niah -m builtin:induction --lengths 300:500:2 --depths 3 -q --scores " + d.sub("scores.json") +
      " --kv-sweep-window 32,64 --kv-sweep-full top:0,2 --sweep-random --seed 0,1 -o " + out + " 2>" + d.sub("err.txt");
  const auto r = testing::run_command(cmd);
  ASSERT_EQ(r.exit_code, 0) << testing::read_text_file(d.sub("err.txt"));
  for (const char* f : {"kv_sweep.json", "kv_sweep.tsv", "kv_sweep.png", "kv_sweep.svg", "summary.json"})
    EXPECT_TRUE(std::filesystem::exists(out + "/" + f)) << f;
  // Conditions: full cache, and per window: none, top:2, random:2 x 2 seeds.
  const json summary = json::parse(testing::read_text_file(out + "/summary.json"));
  ASSERT_EQ(summary["masks"].size(), 1u + 2 * 4);
  const json sweep = json::parse(testing::read_text_file(out + "/kv_sweep.json"));
  ASSERT_EQ(sweep["retrieval"].size(), 2u);
  ASSERT_EQ(sweep["random"].size(), 2u);
  ASSERT_EQ(sweep["none"].size(), 2u);
  EXPECT_EQ(sweep["random"][0]["conditions"], 2);
  // Induction heads full keep retrieval; no head full loses it at these lengths.
  for (const auto& p : sweep["retrieval"]) EXPECT_GT(p["mean_score"].get<double>(), 90.0) << p.dump();
  for (const auto& p : sweep["none"]) EXPECT_LE(p["mean_score"].get<double>(), 50.0) << p.dump();
  // Result lines carry the policy and its accounting at the test's length.
  std::ifstream in(out + "/results.jsonl");
  std::string line;
  int with_policy = 0, total = 0;
  int64_t compacted_held = 0, whole_held = INT64_MAX;
  while (std::getline(in, line)) {
    const json l = json::parse(line);
    ++total;
    ASSERT_TRUE(l.contains("kv_cache")) << line;
    const json& kv = l["kv_cache"];
    EXPECT_EQ(kv["length"], l["prompt_tokens"]);
    // What the session held: at least what the policy keeps; a compacted cache (policy) holds
    // less than the whole one.
    ASSERT_TRUE(kv.contains("kv_bytes_held")) << line;
    EXPECT_GE(kv["kv_bytes_held"].get<int64_t>(), kv["kv_bytes_kept"].get<int64_t>()) << line;
    if (l["kv_policy"]["window"].get<int>() > 0 && kv["full_kv_heads"].get<int>() < 4)
      compacted_held = std::max(compacted_held, kv["kv_bytes_held"].get<int64_t>());
    if (l["kv_policy"]["window"].get<int>() == 0) {
      whole_held = std::min(whole_held, kv["kv_bytes_held"].get<int64_t>());
      EXPECT_EQ(kv["kv_kept_fraction"], 1.0);
      continue;
    }
    ++with_policy;
    const int64_t n = kv["length"], w = l["kv_policy"]["window"];
    const int full = kv["full_kv_heads"];
    // 4 KV heads: whole ones keep n rows, the others sink + window.
    EXPECT_EQ(kv["kv_bytes_kept"].get<int64_t>(), (full * n + (4 - full) * std::min<int64_t>(n, 4 + w)) * 2 * 112 * 2);
  }
  EXPECT_EQ(with_policy * 9, total * 8);  // 8 of the 9 conditions have a policy
  EXPECT_GT(compacted_held, 0);
  EXPECT_LT(compacted_held, whole_held);
}

// The predicted bytes a compacted cache holds follow the prefill chunk the run uses: with
// --chunk 16 every windowed KV head's ring is window + 16 rows, and the lines' prediction is
// what the session really held, not the 256-row ring of the default chunk.
TEST(KvInduction, NiahPredictsTheHeldBytesOfItsPrefillChunk) {
  testing::MkdtempDir d("kvchunk");
  const std::string out = d.sub("run");
  const std::string cmd = testing::shell_quote(testing::rhead_binary()) +
                          " niah -m builtin:induction --lengths 300:500:2 --depths 2 -q --kv-window 32 --chunk 16 -o " +
                          out + " 2>" + d.sub("err.txt");
  const auto r = testing::run_command(cmd);
  ASSERT_EQ(r.exit_code, 0) << testing::read_text_file(d.sub("err.txt"));
  std::ifstream in(out + "/results.jsonl");
  std::string line;
  int with_policy = 0;
  while (std::getline(in, line)) {
    const json l = json::parse(line);
    if (l["kv_policy"]["window"].get<int>() == 0) continue;
    ++with_policy;
    const json& kv = l["kv_cache"];
    // 4 KV heads in all, all windowed: sink 4 + window 32 + chunk 16 rows of K and V, 112
    // values of 2 bytes each (the default chunk would predict 4 + 32 + 256 rows).
    const int64_t held = 4 * (4 + 32 + 16) * 2 * 112 * 2;
    EXPECT_EQ(kv["kv_bytes_held_predicted"].get<int64_t>(), held) << line;
    EXPECT_EQ(kv["kv_bytes_held"].get<int64_t>(), held) << line;
  }
  EXPECT_GE(with_policy, 4);  // 2 lengths x 2 depths per needle
}

// A DuoAttention pattern folder in the published shape (numpy "%.18e" cells, gate noise just
// below 0, config.json with the training arguments) runs through niah as --kv-policy-file:
// the induction KV heads' gates above the threshold give exactly the kv:1-0,1-1 condition
// (same scores, same accounting); gates below it lose retrieval.
TEST(KvInduction, NiahRunsADuoAttentionPatternFolder) {
  testing::MkdtempDir d("kvduo");
  const auto write_pattern =
      [&](const std::string& name, const char* layer1) {
        const std::string dir = d.sub(name);
        std::filesystem::create_directories(dir);
        std::ofstream(dir + "/full_attention_heads.tsv") << "-9.584426879882812500e-05\t2.021789550781250000e-04\n"
                                                         << layer1 << "\n";
        std::ofstream(dir + "/config.json")
            << R"({"model_name": "models/induction", "lr": 0.02, "sink_size": 4, "recent_size": 32, )"
               R"("deploy_sink_size": null, "threshold": 0.5, "sparsity": null, "seed": 42})";
        return dir;
      };
  const std::string keep = write_pattern("keep", "9.882812500000000000e-01\t7.343750000000000000e-01");
  const std::string lose = write_pattern("lose", "4.277343750000000000e-01\t-1.058578491210937500e-04");
  const auto run = [&](const std::string& kv, const std::string& name) {
    const std::string out = d.sub(name);
    const std::string cmd = testing::shell_quote(testing::rhead_binary()) +
                            " niah -m builtin:induction --lengths 300:500:2 --depths 3 -q " + kv + " -o " + out +
                            " 2>" + d.sub("err.txt");
    const auto r = testing::run_command(cmd);
    EXPECT_EQ(r.exit_code, 0) << testing::read_text_file(d.sub("err.txt"));
    std::vector<json> lines;
    std::ifstream in(out + "/results.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      const json l = json::parse(line);
      if (l["kv_policy"]["window"].get<int>() != 0) lines.push_back(l);
    }
    return lines;
  };
  const std::vector<json> duo = run("--kv-policy-file " + keep, "duo");
  const std::vector<json> spec = run("--kv-window 32 --kv-sink 4 --kv-full kv:1-0,1-1", "spec");
  ASSERT_GE(duo.size(), 6u);  // 2 lengths x 3 depths per needle
  ASSERT_EQ(duo.size(), spec.size());
  double kept = 0;
  for (size_t i = 0; i < duo.size(); ++i) {
    EXPECT_EQ(duo[i]["kv_policy"]["full_kv_heads"], json({"1-0", "1-1"}));
    EXPECT_EQ(duo[i]["score"], spec[i]["score"]) << i;
    EXPECT_EQ(duo[i]["kv_cache"], spec[i]["kv_cache"]) << i;
    kept += duo[i]["score"].get<double>();
  }
  EXPECT_GT(kept / duo.size(), 90.0);
  const std::vector<json> lost = run("--kv-policy-file " + lose, "lose");
  ASSERT_EQ(lost.size(), duo.size());
  double lost_score = 0;
  for (const json& l : lost) {
    EXPECT_EQ(l["kv_policy"]["full_kv_heads"], json::array());
    lost_score += l["score"].get<double>();
  }
  EXPECT_LE(lost_score / lost.size(), 50.0);
}

}  // namespace
}  // namespace rhead
