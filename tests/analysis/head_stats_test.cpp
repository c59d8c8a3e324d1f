// The two-way cluster bootstrap of retrieval scores against numpy values committed by
// `scripts/score_stats_reference.py head-stats` (same splitmix64 plan on both sides).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "analysis/head_stats.h"
#include "io/error.h"
#include "test_support.h"

namespace {

using namespace rhead::analysis;
using rhead::testing::test_data_path;

nlohmann::json expected() {
  std::ifstream in(test_data_path("analysis/head_stats_expected.json"));
  EXPECT_TRUE(in.good()) << "run scripts/score_stats_reference.py head-stats";
  return nlohmann::json::parse(in);
}

std::vector<TestCluster> clusters_of(const nlohmann::json& exp) {
  std::vector<TestCluster> out;
  for (const auto& t : exp["tests"]) out.push_back({t["needle"].get<int>(), t["length"].get<long long>()});
  return out;
}

std::vector<TopKSpec> ks_of(const nlohmann::json& exp) {
  std::vector<TopKSpec> out;
  for (const auto& k : exp["top_k"]) out.push_back({k["label"].get<std::string>(), k["k"].get<int>()});
  return out;
}

TEST(HeadStats, PlanIsTheSplitmixStreamNumpyDraws) {
  const auto exp = expected();
  const BootstrapPlan plan = make_bootstrap_plan(3, 4, 3, exp["seed"].get<std::uint64_t>());
  EXPECT_EQ(nlohmann::json(plan.needle_draws), exp["plan_head"]["needles"]);
  EXPECT_EQ(nlohmann::json(plan.length_draws), exp["plan_head"]["lengths"]);
}

TEST(HeadStats, BootstrapMatchesNumpy) {
  const auto exp = expected();
  const ScoreMap map = score_map_from_reference_json(exp["scores"], "expected scores");
  const auto tests = clusters_of(exp);
  const BootstrapPlan plan = make_bootstrap_plan(3, 4, exp["replicates"].get<int>(), exp["seed"].get<std::uint64_t>());
  const HeadStats s = head_stats(map, tests, plan, ks_of(exp), exp["level"].get<double>());
  EXPECT_EQ(s.valid_replicates, exp["valid_replicates"].get<int>());
  EXPECT_EQ(s.needle_sets, 3);
  EXPECT_EQ(s.lengths, 4);
  ASSERT_EQ(s.heads.size(), exp["heads"].size());
  for (std::size_t h = 0; h < s.heads.size(); ++h) {
    const auto& e = exp["heads"][h];
    SCOPED_TRACE(e["head"].get<std::string>());
    EXPECT_EQ(s.heads[h].id.key(), e["head"].get<std::string>());
    EXPECT_NEAR(s.heads[h].mean, e["mean"].get<double>(), 1e-12);
    EXPECT_NEAR(s.heads[h].frequency, e["frequency"].get<double>(), 1e-12);
    EXPECT_NEAR(s.heads[h].ci_low, e["ci_low"].get<double>(), 1e-12);
    EXPECT_NEAR(s.heads[h].ci_high, e["ci_high"].get<double>(), 1e-12);
    for (std::size_t k = 0; k < s.top_ks.size(); ++k)
      EXPECT_DOUBLE_EQ(s.heads[h].p_top[k], e["p_top"][s.top_ks[k].label].get<double>()) << s.top_ks[k].label;
  }
  for (std::size_t k = 0; k < s.top_ks.size(); ++k)
    EXPECT_NEAR(s.expected_jaccard[k], exp["expected_jaccard"][s.top_ks[k].label].get<double>(), 1e-12);
  // The intervals are not degenerate: a head that copies in some tests only has a real spread.
  EXPECT_LT(s.heads[5].ci_low, s.heads[5].mean);
  EXPECT_GT(s.heads[5].ci_high, s.heads[5].mean);
}

TEST(HeadStats, JsonRoundTripsAndRejectsBadFiles) {
  const auto exp = expected();
  const ScoreMap map = score_map_from_reference_json(exp["scores"], "expected scores");
  const HeadStats s = head_stats(map, clusters_of(exp), 50, 3);
  const nlohmann::json j = to_json(s);
  const HeadStats back = head_stats_from_json(j, "head_stats.json");
  EXPECT_EQ(to_json(back), j);
  nlohmann::json bad = j;
  bad["heads"][0]["head"] = "9-0";
  EXPECT_THROW(head_stats_from_json(bad, "head_stats.json"), rhead::Error);
  bad = j;
  bad["format"] = "something";
  EXPECT_THROW(head_stats_from_json(bad, "head_stats.json"), rhead::Error);
}

TEST(HeadStats, OneClusterPerAxisGivesAPointInterval) {
  // One needle set and one length: every replicate draws all tests once, so the interval is
  // the mean itself and P(in top-K) is 0 or 1.
  ScoreMap map = score_map_from_reference_json({{"0-0", {0.5, 0.0, 1.0}}, {"0-1", {0.0, 0.0, 0.25}}}, "m");
  const HeadStats s = head_stats(map, {{0, 100}, {0, 100}, {0, 100}}, 20, 1);
  EXPECT_EQ(s.valid_replicates, 20);
  EXPECT_DOUBLE_EQ(s.heads[0].ci_low, 0.5);
  EXPECT_DOUBLE_EQ(s.heads[0].ci_high, 0.5);
  EXPECT_DOUBLE_EQ(s.heads[0].p_top[3], 1.0);  // top 5% of 2 heads = 1 head
  EXPECT_DOUBLE_EQ(s.heads[1].p_top[3], 0.0);
  EXPECT_DOUBLE_EQ(s.expected_jaccard[3], 1.0);
}

TEST(HeadStats, MismatchedListsAreAnError) {
  ScoreMap map = score_map_from_reference_json({{"0-0", {0.5, 0.0}}}, "m.json");
  EXPECT_THROW(head_stats(map, {{0, 100}}, 10, 1), rhead::Error);
}

TEST(HeadStats, TopKSetSkipsZeroHeadsAndBreaksTiesByIndex) {
  EXPECT_EQ(top_k_set({0.0, 0.3, 0.3, 0.1, 0.0}, 2), (std::vector<int>{1, 2}));
  EXPECT_EQ(top_k_set({0.0, 0.3, 0.3, 0.1, 0.0}, 1), (std::vector<int>{1}));
  EXPECT_EQ(top_k_set({0.0, 0.3, 0.0}, 3), (std::vector<int>{1}));
  EXPECT_DOUBLE_EQ(jaccard({1, 2}, {2, 3}), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(jaccard({}, {}), 1.0);
  EXPECT_DOUBLE_EQ(percentile_sorted({1, 2, 3, 4}, 0.5), 2.5);
}

}  // namespace
