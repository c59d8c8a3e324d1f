// Detection runs through the library (NiahRunner + run_detect) on builtin:induction, whose
// copying heads are known by construction: the planted heads are found with their exact
// scores, a resumed run (after a torn write) equals an uninterrupted one, two shards merged
// equal one run, and prefix reuse on and off give identical results.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <unistd.h>

#include "io/builtin_data.h"
#include "io/error.h"
#include "model/loader.h"
#include "experiments/detect.h"
#include "experiments/retrieval_score.h"
#include "text/rouge.h"
#include "test_support.h"

namespace {

using namespace rhead;
using nlohmann::json;
namespace fs = std::filesystem;

struct TempDir : rhead::testing::MkdtempDir {
  TempDir() : MkdtempDir("rhead_test_detect_") {}
};

using rhead::testing::read_text_file;

json read_json(const std::string& path) { return json::parse(read_text_file(path)); }

const LoadedModel& induction_model() {
  static const LoadedModel lm = load_model("builtin:induction");
  return lm;
}

// The configuration `rhead detect -m builtin:induction` uses: its needle sets, the built-in
// filler haystack and its prompt template. 3 needles x 3 lengths x 5 depths = 45 tests.
NiahRunConfig induction_config(bool prefix_reuse) {
  NiahRunConfig c;
  for (const auto& n : induction_needles()) c.needle_sets.push_back({n, ""});
  c.grid.lengths = {250, 400, 550};
  c.grid.depths = depths_from_count(5);
  c.format.base_template = induction_prompt_template();
  c.prefix_reuse = prefix_reuse;
  return c;
}

DetectSummary detect(const LoadedModel& lm, const NiahRunConfig& config, const std::string& dir, int shard_i = 0,
                     int shard_n = 1) {
  // Prefill chunks of 64 tokens: prefix reuse keeps whole chunks, and the grid's prompts
  // share prefixes shorter than the default chunk of 256.
  SessionOptions so;
  so.prefill_chunk = 64;
  NiahRunner runner(lm, so, config);
  DetectOptions o;
  o.output_dir = dir;
  o.shard = {shard_i, shard_n};
  o.settings = {{"fingerprint", {{"model", lm.model->source}, {"test", "detect_runs"}}}};
  return run_detect(runner, o);
}

// results.jsonl as test_id -> line, checking that no test appears twice.
std::map<std::string, json> results_by_id(const std::string& dir) {
  std::map<std::string, json> out;
  std::istringstream in(read_text_file(dir + "/results.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line);
    const std::string id = j.at("test_id");
    EXPECT_TRUE(out.emplace(id, j).second) << "test " << id << " appears twice in " << dir;
  }
  return out;
}

// The fields that must not depend on how a run was split, resumed or prefilled.
void expect_same_results(const std::map<std::string, json>& a, const std::map<std::string, json>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [id, ra] : a) {
    auto it = b.find(id);
    ASSERT_NE(it, b.end()) << id;
    const json& rb = it->second;
    for (const char* key : {"needle_id", "length", "depth", "needle_span", "answer", "rouge_recall", "counted",
                            "head_scores", "prompt_tokens", "generated_tokens"})
      EXPECT_EQ(ra.at(key), rb.at(key)) << id << " " << key;
  }
}

class InductionDetect : public ::testing::Test {
 protected:
  // One uninterrupted run, shared by the tests below as the reference; made on first use
  // (ctest runs each test in a process of its own).
  static void TearDownTestSuite() {
    delete ref_summary_;
    delete ref_dir_;
    ref_summary_ = nullptr;
    ref_dir_ = nullptr;
  }
  static std::string ref() {
    if (!ref_dir_) {
      ref_dir_ = new TempDir();
      ref_summary_ = new DetectSummary(detect(induction_model(), induction_config(true), ref_dir_->sub("ref")));
    }
    return ref_dir_->sub("ref");
  }
  static const DetectSummary& ref_summary() {
    ref();
    return *ref_summary_;
  }
  static TempDir* ref_dir_;
  static DetectSummary* ref_summary_;
};
TempDir* InductionDetect::ref_dir_ = nullptr;
DetectSummary* InductionDetect::ref_summary_ = nullptr;

TEST_F(InductionDetect, FindsExactlyThePlantedHeadsWithTheirScores) {
  const LoadedModel& lm = induction_model();
  const Tokenizer& tok = *lm.tokenizer;
  const int n_layer = lm.model->config.n_layer, n_head = lm.model->config.n_head;
  const DetectSummary& s = ref_summary();
  EXPECT_EQ(s.tests, 45);
  EXPECT_EQ(s.counted, 45);  // the copy is exact: every answer passes the ROUGE gate
  EXPECT_EQ(s.count_above_0_1, 2);

  // Expected per-test score of a copying head: it copies every token of real_needle from
  // the needle span, and each copy earns 1/|span|; |span| is the number of answer tokens.
  // The newline that ends each needle lies just past the span and earns nothing.
  const auto results = results_by_id(ref());
  ASSERT_EQ(results.size(), 45u);
  for (const auto& [id, r] : results) {
    const Needle& n = induction_needles().at(r.at("needle_id").get<int>());
    const std::vector<int32_t> answer = tok.encode(n.real_needle, false, false);
    const int64_t span = r["needle_span"][1].get<int64_t>() - r["needle_span"][0].get<int64_t>();
    EXPECT_EQ(span, static_cast<int64_t>(answer.size())) << id;
    double expected = 0;
    for (size_t i = 0; i < answer.size(); ++i) expected += 1.0 / static_cast<double>(span);
    EXPECT_EQ(r.at("answer").get<std::string>(), n.real_needle + "\n") << id;
    EXPECT_TRUE(r.at("counted").get<bool>()) << id;
    const json& hs = r.at("head_scores");
    EXPECT_EQ(hs.size(), 2u) << id << " " << hs.dump();
    EXPECT_EQ(hs.value("1-1", -1.0), expected) << id;
    EXPECT_EQ(hs.value("1-2", -1.0), expected) << id;
  }

  const json scores = read_json(ref() + "/head_score.json");
  ASSERT_EQ(scores.size(), static_cast<size_t>(n_layer * n_head));
  for (int l = 0; l < n_layer; ++l)
    for (int h = 0; h < n_head; ++h) {
      const std::string key = std::to_string(l) + "-" + std::to_string(h);
      const bool planted = l == 1 && (h == 1 || h == 2);
      ASSERT_EQ(scores[key].size(), 45u) << key;
      for (const auto& v : scores[key]) EXPECT_NEAR(v.get<double>(), planted ? 1.0 : 0.0, planted ? 1e-12 : 0.0) << key;
    }
  ASSERT_GE(s.heads.size(), 3u);
  std::set<std::pair<int, int>> top = {{s.heads[0].id.layer, s.heads[0].id.head},
                                       {s.heads[1].id.layer, s.heads[1].id.head}};
  EXPECT_EQ(top, (std::set<std::pair<int, int>>{{1, 1}, {1, 2}}));
  EXPECT_NEAR(s.heads[0].mean, 1.0, 1e-12);
  EXPECT_NEAR(s.heads[1].mean, 1.0, 1e-12);
  EXPECT_EQ(s.heads[0].frequency, 1.0);
  EXPECT_EQ(s.heads[2].mean, 0.0);
  EXPECT_EQ(s.heads[2].frequency, 0.0);

  const json summary = read_json(ref() + "/summary.json");
  EXPECT_EQ(summary["tests"], 45);
  EXPECT_EQ(summary["count_above_0_1"], 2);
}

TEST_F(InductionDetect, HeadStatsGiveThePlantedHeadsCertainty) {
  // Both planted heads copy the whole answer in every test: every bootstrap replicate scores
  // them 1 and every other head 0, so their intervals are [1, 1] and they are in every top-K.
  const json st = read_json(ref() + "/head_stats.json");
  EXPECT_EQ(st["format"], "rhead-head-stats");
  EXPECT_EQ(st["tests"], 45);
  EXPECT_EQ(st["needle_sets"], 3);
  EXPECT_EQ(st["lengths"], 3);
  EXPECT_EQ(st["valid_replicates"], 1000);
  for (const auto& h : st["heads"]) {
    const bool planted = h["head"] == "1-1" || h["head"] == "1-2";
    EXPECT_NEAR(h["ci_low"].get<double>(), planted ? 1.0 : 0.0, 1e-12) << h["head"];
    EXPECT_NEAR(h["ci_high"].get<double>(), planted ? 1.0 : 0.0, 1e-12) << h["head"];
    EXPECT_EQ(h["p_top"]["5"].get<double>(), planted ? 1.0 : 0.0) << h["head"];
    // Every needle set scores them alike (1 or 0 in every test): the prediction is that point.
    EXPECT_NEAR(h["predict_low"].get<double>(), planted ? 1.0 : 0.0, 1e-12) << h["head"];
    EXPECT_NEAR(h["predict_high"].get<double>(), planted ? 1.0 : 0.0, 1e-12) << h["head"];
  }
  EXPECT_EQ(st["version"], 2);
  EXPECT_EQ(st["prediction"]["needle_sets"], 3);
  EXPECT_NEAR(st["prediction"]["t"].get<double>(), 4.3027, 1e-4);  // t_{0.975, 2}
  // The top-5% set (K = 1) is one of two tied heads: they share the place, and the set is
  // always 1-1 (ties going to the lower index), so two draws' sets agree.
  for (const auto& h : st["heads"])
    if (h["head"] == "1-1" || h["head"] == "1-2") EXPECT_DOUBLE_EQ(h["p_top"]["5%"].get<double>(), 0.5) << h["head"];
  const json summary = read_json(ref() + "/summary.json");
  EXPECT_EQ(summary["stability"]["expected_jaccard"]["5"], 1.0);
  EXPECT_EQ(summary["stability"]["expected_jaccard"]["5%"], 1.0);
}

TEST(StratifiedOrder, EveryRoundCoversEveryCellAndSpreadsTheDepths) {
  std::vector<NiahTask> tasks;
  const std::vector<int> depths = {0, 11, 22, 33, 44, 56, 67, 78, 89, 100};
  for (int n = 0; n < 3; ++n)
    for (int64_t len : {300, 350, 400, 450, 500})
      for (int d : depths)
        tasks.push_back({"n" + std::to_string(n) + "-" + std::to_string(len) + "-" + std::to_string(d), n, len, d});
  const auto order = stratified_order(tasks);
  ASSERT_EQ(order.size(), tasks.size());
  EXPECT_EQ(stratified_cells(tasks), 15);
  std::set<std::string> ids;
  for (const auto& t : order) ids.insert(t.test_id);
  EXPECT_EQ(ids.size(), tasks.size());
  for (int r = 0; r < 10; ++r) {
    std::set<std::pair<int, int64_t>> cells;
    std::map<int, int> per_depth;
    for (int i = 0; i < 15; ++i) {
      const auto& t = order[static_cast<size_t>(r * 15 + i)];
      cells.insert({t.needle_id, t.length});
      per_depth[t.depth] += 1;
    }
    EXPECT_EQ(cells.size(), 15u) << "round " << r;
    EXPECT_EQ(per_depth.size(), 10u) << "round " << r;  // 15 tests reach all 10 depths
  }
  // Each cell meets every depth once over the 10 rounds.
  std::map<std::pair<int, int64_t>, std::set<int>> seen;
  for (const auto& t : order) EXPECT_TRUE((seen[{t.needle_id, t.length}].insert(t.depth).second)) << t.test_id;
  // The first two rounds of one cell are far apart in depth (the radical-inverse order).
  EXPECT_GE(std::abs(order[0].depth - order[15].depth), 44);
}

TEST(InductionUntilStable, StopsAtTheFirstCheckWithThePlantedHeadsAndResumesToNothing) {
  TempDir d;
  NiahRunner runner(induction_model(), SessionOptions{}, induction_config(true));
  DetectOptions o;
  o.output_dir = d.sub("stable");
  o.settings = {{"fingerprint", {{"model", induction_model().model->source}, {"test", "detect_runs"}}}};
  o.until_stable = true;
  o.stable_k = 2;
  std::vector<std::pair<int, bool>> checks;
  o.stable_check = [&](int tests, bool stable) { checks.push_back({tests, stable}); };
  DetectSummary s = run_detect(runner, o);
  // 3 needle sets x 3 lengths = 9 cells: the rule is checked at 9 tests, and the two planted
  // heads are the top-2 set of every replicate.
  EXPECT_EQ(s.tests, 9);
  ASSERT_FALSE(checks.empty());
  EXPECT_EQ(checks.front(), (std::pair<int, bool>{9, true}));
  const json summary = read_json(o.output_dir + "/summary.json");
  EXPECT_EQ(summary["until_stable"]["tests_run"], 9);
  EXPECT_EQ(summary["until_stable"]["tests_skipped"], 36);
  EXPECT_EQ(summary["until_stable"]["k"], 2);
  EXPECT_EQ(summary["until_stable"]["stable"], true);
  EXPECT_NE(summary["until_stable"]["rule"].get<std::string>().find("P(in top-2)"), std::string::npos);
  std::set<std::string> top = {s.heads[0].id.key(), s.heads[1].id.key()};
  EXPECT_EQ(top, (std::set<std::string>{"1-1", "1-2"}));
  // The 9 tests cover every (needle set, length) cell.
  std::set<std::pair<int, int64_t>> cells;
  for (const auto& [id, r] : results_by_id(o.output_dir))
    cells.insert({r["needle_id"].get<int>(), r["length"].get<int64_t>()});
  EXPECT_EQ(cells.size(), 9u);
  // Resuming a stopped run checks first and runs nothing.
  NiahRunner again(induction_model(), SessionOptions{}, induction_config(true));
  EXPECT_EQ(run_detect(again, o).tests, 9);
  // A plain run in the same directory is refused: the key order is part of the fingerprint.
  DetectOptions plain = o;
  plain.until_stable = false;
  NiahRunner third(induction_model(), SessionOptions{}, induction_config(true));
  EXPECT_THROW(run_detect(third, plain), Error);
}

TEST_F(InductionDetect, RerunOnAFinishedDirectorySkipsEverything) {
  TempDir d;
  fs::copy(ref(), d.sub("again"));
  const std::string before = read_text_file(d.sub("again") + "/results.jsonl");
  DetectSummary s = detect(induction_model(), induction_config(true), d.sub("again"));
  EXPECT_EQ(s.tests, 45);
  EXPECT_EQ(read_text_file(d.sub("again") + "/results.jsonl"), before);
  EXPECT_EQ(read_json(d.sub("again") + "/head_score.json"), read_json(ref() + "/head_score.json"));
}

TEST_F(InductionDetect, ResumeAfterATornWriteEqualsAnUninterruptedRun) {
  // Keep the first 17 lines of the finished run and half of the 18th: what a kill during
  // the 18th write leaves behind.
  TempDir d;
  const std::string dir = d.sub("torn");
  fs::create_directories(dir);
  fs::copy_file(ref() + "/run.json", dir + "/run.json");
  const std::string full = read_text_file(ref() + "/results.jsonl");
  size_t cut = 0;
  for (int i = 0; i < 17; ++i) cut = full.find('\n', cut) + 1;
  const size_t next = full.find('\n', cut) + 1;
  std::ofstream(dir + "/results.jsonl", std::ios::binary) << full.substr(0, cut + (next - cut) / 2);

  DetectSummary s = detect(induction_model(), induction_config(true), dir);
  EXPECT_EQ(s.tests, 45);
  EXPECT_EQ(s.counted, 45);
  const auto resumed = results_by_id(dir);  // also checks that no test appears twice
  expect_same_results(resumed, results_by_id(ref()));
  EXPECT_EQ(read_json(dir + "/head_score.json"), read_json(ref() + "/head_score.json"));
  EXPECT_EQ(read_json(dir + "/head_stats.json"), read_json(ref() + "/head_stats.json"));
  // The 17 kept lines are untouched: only the lost tests were run again.
  EXPECT_EQ(read_text_file(dir + "/results.jsonl").substr(0, cut), full.substr(0, cut));
}

TEST_F(InductionDetect, RunWithOtherSettingsIsRefused) {
  TempDir d;
  fs::copy(ref(), d.sub("other"));
  NiahRunner runner(induction_model(), SessionOptions{}, induction_config(true));
  DetectOptions o;
  o.output_dir = d.sub("other");
  o.settings = {{"fingerprint", {{"model", "builtin:induction"}, {"test", "something else"}}}};
  EXPECT_THROW(run_detect(runner, o), Error);
  o.settings = {{"fingerprint", {{"model", "builtin:induction"}, {"test", "detect_runs"}}}};
  o.shard = {2, 2};
  EXPECT_THROW(run_detect(runner, o), Error);
}

TEST_F(InductionDetect, TwoShardsMergedEqualOneRun) {
  TempDir d;
  DetectSummary s0 = detect(induction_model(), induction_config(true), d.sub("s0"), 0, 2);
  DetectSummary s1 = detect(induction_model(), induction_config(true), d.sub("s1"), 1, 2);
  EXPECT_EQ(s0.tests, 23);  // test indices 0, 2, ..., 44
  EXPECT_EQ(s1.tests, 22);
  const auto r0 = results_by_id(d.sub("s0")), r1 = results_by_id(d.sub("s1"));
  for (const auto& [id, r] : r0) EXPECT_FALSE(r1.count(id)) << id << " is in both shards";

  DetectSummary m = merge_runs({d.sub("s0"), d.sub("s1")}, d.sub("merged"));
  EXPECT_EQ(m.tests, 45);
  EXPECT_EQ(m.counted, ref_summary().counted);
  EXPECT_EQ(read_json(d.sub("merged") + "/head_score.json"), read_json(ref() + "/head_score.json"));
  // The bootstrap statistics are rebuilt from the lines: the merge gives the one run's.
  EXPECT_EQ(read_json(d.sub("merged") + "/head_stats.json"), read_json(ref() + "/head_stats.json"));
  EXPECT_EQ(read_json(d.sub("merged") + "/summary.json")["stability"], read_json(ref() + "/summary.json")["stability"]);
  expect_same_results(results_by_id(d.sub("merged")), results_by_id(ref()));
  // Merging the same shards again (or a shard twice) counts nothing twice.
  DetectSummary again = merge_runs({d.sub("s0"), d.sub("s1"), d.sub("s0")}, d.sub("merged2"));
  EXPECT_EQ(again.tests, 45);
  EXPECT_EQ(read_json(d.sub("merged2") + "/head_score.json"), read_json(ref() + "/head_score.json"));
  // The merged directory is a complete run: resuming it finds nothing to do.
  DetectSummary resumed = detect(induction_model(), induction_config(true), d.sub("merged"));
  EXPECT_EQ(resumed.tests, 45);
  EXPECT_EQ(read_json(d.sub("merged") + "/head_score.json"), read_json(ref() + "/head_score.json"));
}

TEST_F(InductionDetect, ShardsOfDifferentRunsAreNotMerged) {
  TempDir d;
  fs::create_directories(d.sub("x"));
  std::ofstream(d.sub("x") + "/run.json") << json{
      {"settings", {{"fingerprint", {{"model", "other"}}}}},
      {"n_layer", 2},
      {"n_head", 4},
      {"n_kv_head", 2}}.dump();
  std::ofstream(d.sub("x") + "/results.jsonl") << "";
  EXPECT_THROW(merge_runs({ref(), d.sub("x")}, d.sub("m")), Error);
  EXPECT_THROW(merge_runs({d.sub("no_such_dir")}, d.sub("m")), Error);
  EXPECT_THROW(merge_runs({}, d.sub("m")), Error);
}

TEST_F(InductionDetect, PrefixReuseOnAndOffGiveIdenticalResults) {
  TempDir d;
  detect(induction_model(), induction_config(false), d.sub("noreuse"));
  const auto on = results_by_id(ref()), off = results_by_id(d.sub("noreuse"));
  expect_same_results(on, off);
  EXPECT_EQ(read_json(d.sub("noreuse") + "/head_score.json"), read_json(ref() + "/head_score.json"));
  // Reuse really happened in one run and never in the other.
  int64_t reused_on = 0, reused_off = 0;
  for (const auto& [id, r] : on) reused_on += r.value("reused_tokens", int64_t{0});
  for (const auto& [id, r] : off) reused_off += r.value("reused_tokens", int64_t{0});
  EXPECT_GT(reused_on, 0);
  EXPECT_EQ(reused_off, 0);
}

// One detect run of the induction grid (depths 0 and 100) in DIR/run that also extends
// `ref_file` (--merge-into); `tag` keeps each test's fingerprint its own.
DetectSummary detect_merging_into(const TempDir& d, const std::string& ref_file, std::vector<int64_t> lengths,
                                  const std::string& tag) {
  NiahRunConfig c = induction_config(true);
  c.grid.lengths = std::move(lengths);
  c.grid.depths = {0, 100};
  NiahRunner runner(induction_model(), SessionOptions{}, c);
  DetectOptions o;
  o.output_dir = d.sub("run");
  o.merge_into = ref_file;
  o.grow_grid = true;  // a larger grid in the same directory, asked for explicitly
  o.settings = {{"fingerprint", {{"model", "builtin:induction"}, {"test", tag}}}};
  return run_detect(runner, o);
}

TEST(InductionMergeInto, RerunsExtendTheReferenceFileOnlyWithNewTests) {
  TempDir d;
  const std::string ref_file = d.sub("reference.json");
  auto run = [&](std::vector<int64_t> lengths) {
    return detect_merging_into(d, ref_file, std::move(lengths), "merge_into");
  };
  EXPECT_EQ(run({250}).counted, 6);
  const json first = read_json(ref_file);
  EXPECT_EQ(first["1-1"].size(), 6u);
  EXPECT_EQ(first["0-0"].size(), 6u);
  // The same command again (a requeued job): nothing new, the file is unchanged.
  run({250});
  EXPECT_EQ(read_json(ref_file), first);
  // A larger grid in the same directory: only the new tests are appended.
  EXPECT_EQ(run({250, 400}).counted, 12);
  const json second = read_json(ref_file);
  EXPECT_EQ(second["1-1"].size(), 12u);
  EXPECT_EQ(second["0-0"].size(), 12u);
  for (size_t i = 0; i < 12; ++i) EXPECT_NEAR(second["1-1"][i].get<double>(), 1.0, 1e-12) << i;
}

TEST(InductionMergeInto, AFailureBetweenTheTwoWritesCountsNothingTwice) {
  TempDir d;
  const std::string ref_file = d.sub("reference.json");
  auto run = [&](std::vector<int64_t> lengths) {
    return detect_merging_into(d, ref_file, std::move(lengths), "merge_into_failure");
  };
  run({250});
  ASSERT_EQ(read_json(ref_file)["1-1"].size(), 6u);
  // The record's temporary file cannot be created: the target is written, the record is not.
  const std::string blocker = d.sub("run") + "/merged_into.json.tmp";
  std::filesystem::create_directory(blocker);
  EXPECT_THROW(run({250, 400}), Error);
  EXPECT_EQ(read_json(ref_file)["1-1"].size(), 12u);
  EXPECT_TRUE(std::filesystem::exists(d.sub("run") + "/merged_into.journal"));
  std::filesystem::remove(blocker);
  // The rerun finishes the interrupted merge and adds nothing twice: 12 entries, not 18.
  EXPECT_EQ(run({250, 400}).counted, 12);
  EXPECT_EQ(read_json(ref_file)["1-1"].size(), 12u);
  EXPECT_EQ(read_json(ref_file)["0-0"].size(), 12u);
  EXPECT_FALSE(std::filesystem::exists(d.sub("run") + "/merged_into.journal"));
  run({250, 400});
  EXPECT_EQ(read_json(ref_file)["1-1"].size(), 12u);
}

TEST_F(InductionDetect, TimingFieldsAddUp) {
  for (const auto& [id, r] : results_by_id(ref())) {
    const auto& t = r.at("timing");
    const double prefill = t.at("prefill"), decode = t.at("decode"), scoring = t.at("scoring");
    EXPECT_GE(prefill, 0.0) << id;
    EXPECT_GT(decode, 0.0) << id;
    EXPECT_GE(scoring, 0.0) << id;
    EXPECT_LE(prefill + decode + scoring, r.at("seconds").get<double>() + 1e-6) << id;
  }
}

TEST(NiahRunner, ExecutionOrderKeepsEveryTaskOnceAndGroupsByNeedle) {
  NiahRunner runner(induction_model(), SessionOptions{}, induction_config(true));
  const auto tasks = runner.tasks();
  ASSERT_EQ(tasks.size(), 45u);
  EXPECT_EQ(tasks.front().test_id, "n0-L250-d0");
  EXPECT_EQ(tasks.back().test_id, "n2-L550-d100");
  const auto order = runner.execution_order(tasks);
  ASSERT_EQ(order.size(), tasks.size());
  std::set<std::string> ids;
  for (const auto& t : order) ids.insert(t.test_id);
  EXPECT_EQ(ids.size(), tasks.size());
  for (size_t i = 1; i < order.size(); ++i) EXPECT_LE(order[i - 1].needle_id, order[i].needle_id);
}

}  // namespace
