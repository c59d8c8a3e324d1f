// The two-way cluster bootstrap of retrieval scores against numpy values committed by
// `scripts/score_stats_reference.py head-stats` (same splitmix64 plan on both sides).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "analysis/head_stats.h"
#include "analysis/student_t.h"
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
    // The prediction interval: numpy's per-set means and its own t quantile (an integrated density).
    EXPECT_NEAR(s.heads[h].predict_low, e["predict_low"].get<double>(), 1e-9);
    EXPECT_NEAR(s.heads[h].predict_high, e["predict_high"].get<double>(), 1e-9);
  }
  EXPECT_EQ(s.predict_sets, exp["prediction"]["needle_sets"].get<int>());
  EXPECT_NEAR(s.predict_t, exp["prediction"]["t"].get<double>(), 1e-9);
  for (std::size_t k = 0; k < s.top_ks.size(); ++k)
    EXPECT_NEAR(s.expected_jaccard[k], exp["expected_jaccard"][s.top_ks[k].label].get<double>(), 1e-12);
  // The intervals are not degenerate: a head that copies in some tests only has a real spread.
  EXPECT_LT(s.heads[5].ci_low, s.heads[5].mean);
  EXPECT_GT(s.heads[5].ci_high, s.heads[5].mean);
  // Heads that never copy predict exactly 0; the others have intervals of some width.
  EXPECT_EQ(s.heads[0].predict_low, 0.0);
  EXPECT_EQ(s.heads[0].predict_high, 0.0);
  for (std::size_t h = 2; h < s.heads.size(); ++h) EXPECT_LT(s.heads[h].predict_low, s.heads[h].predict_high) << h;
}

TEST(StudentT, QuantilesMatchTablesAndTheNumpyIntegral) {
  // Printed table values (4 decimals).
  EXPECT_NEAR(student_t_quantile(0.975, 1), 12.7062, 1e-4);
  EXPECT_NEAR(student_t_quantile(0.975, 2), 4.3027, 1e-4);
  EXPECT_NEAR(student_t_quantile(0.975, 10), 2.2281, 1e-4);
  EXPECT_NEAR(student_t_quantile(0.95, 5), 2.0150, 1e-4);
  EXPECT_NEAR(student_t_quantile(0.995, 120), 2.6174, 1e-4);
  // The reference's quantiles, found by integrating the density. (The file's json must outlive
  // the loop: a range-for keeps only its outermost temporary alive.)
  const nlohmann::json exp = expected();
  for (const auto& q : exp["t_quantiles"]) {
    const double p = q["p"].get<double>(), want = q["t"].get<double>();
    const int df = q["df"].get<int>();
    EXPECT_NEAR(student_t_quantile(p, df), want, 1e-9 * want) << p << " df " << df;
    EXPECT_NEAR(student_t_quantile(1 - p, df), -want, 1e-9 * want) << p << " df " << df;
    EXPECT_NEAR(student_t_central(want, df), 2 * p - 1, 1e-12) << p << " df " << df;
  }
  // Degrees of freedom to infinity: the normal quantile.
  EXPECT_NEAR(student_t_quantile(0.975, 100000), 1.959964, 1e-4);
  EXPECT_EQ(student_t_quantile(0.5, 3), 0.0);
  EXPECT_THROW(student_t_quantile(0.975, 0), rhead::Error);
  EXPECT_THROW(student_t_quantile(1.0, 3), rhead::Error);
  EXPECT_THROW(student_t_quantile(0.0, 3), rhead::Error);
  EXPECT_THROW(student_t_quantile(NAN, 3), rhead::Error);
}

TEST(HeadStats, PredictionIntervalByHand) {
  const double t2 = 4.302652729749464, t1 = 12.706204736174707;
  // Three sets whose means 0.50, 0.52, 0.54 differ more than their sampling: s_b = 0.02, while
  // each set's scores {m - 0.01, m + 0.01} give a set-mean variance 0.0002 / 2 = 0.0001 < 0.0004.
  const std::vector<std::vector<double>> spread = {{0.49, 0.51}, {0.51, 0.53}, {0.53, 0.55}};
  double half = t2 * 0.02 * std::sqrt(2.0 / 3.0);
  PredictionInterval pi = predict_interval(spread, 3);
  EXPECT_NEAR(pi.low, 0.52 - half, 1e-12);
  EXPECT_NEAR(pi.high, 0.52 + half, 1e-12);
  // One new set instead of three: sqrt(1/3 + 1).
  pi = predict_interval(spread, 1);
  EXPECT_NEAR(pi.high - 0.52, t2 * 0.02 * std::sqrt(4.0 / 3.0), 1e-12);
  // Two sets with equal means but noisy tests: the set-mean sampling variance sets the width.
  // Set scores {0.9, 1.0}: variance 0.005, over 2 tests 0.0025; {0.85, 0.95, 1.0, 1.0}: mean 0.95,
  // variance 0.005, over 4 tests 0.00125; v = 0.001875.
  pi = predict_interval({{0.9, 1.0}, {0.85, 0.95, 1.0, 1.0}}, 2);
  half = t1 * std::sqrt(0.001875 * (1.0 / 2 + 1.0 / 2));
  EXPECT_NEAR(pi.low, 0.95 - half, 1e-12);
  EXPECT_NEAR(pi.high, 0.95 + half, 1e-12);  // above 1: scores have no upper bound of 1
  // A set of one test has no sampling variance of its own: only the other set's counts.
  pi = predict_interval({{0.95}, {0.85, 0.95, 1.0, 1.0}}, 2);
  EXPECT_NEAR(pi.low, 0.95 - t1 * std::sqrt(0.00125), 1e-12);
  // Two sets 0.2 apart: t_{0.975,1} = 12.7 takes the low end below 0, raised to 0.
  pi = predict_interval({{0.6}, {0.8}}, 2);
  EXPECT_EQ(pi.low, 0.0);
  EXPECT_NEAR(pi.high, 0.7 + t1 * std::sqrt(0.02), 1e-12);
  // Every test scoring the same (a head that copies everything, or nothing): that value.
  pi = predict_interval({{1.0, 1.0}, {1.0}, {1.0, 1.0, 1.0}}, 3);
  EXPECT_EQ(pi.low, 1.0);
  EXPECT_EQ(pi.high, 1.0);
  pi = predict_interval({{0.0, 0.0}, {0.0}}, 2);
  EXPECT_EQ(pi.low, 0.0);
  EXPECT_EQ(pi.high, 0.0);
  // One set: no spread between sets to scale, no interval.
  pi = predict_interval({{0.7, 0.8}}, 1);
  EXPECT_TRUE(std::isnan(pi.low) && std::isnan(pi.high));
  EXPECT_THROW(predict_interval({{0.7}, {}}, 2), rhead::Error);
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
  bad = j;
  bad["heads"][2]["predict_high"] = "wide";
  EXPECT_THROW(head_stats_from_json(bad, "head_stats.json"), rhead::Error);
  bad = j;
  bad["heads"][2].erase("predict_low");
  EXPECT_THROW(head_stats_from_json(bad, "head_stats.json"), rhead::Error);
  bad = j;
  bad.erase("prediction");
  EXPECT_THROW(head_stats_from_json(bad, "head_stats.json"), rhead::Error);
  bad = j;
  bad["version"] = 3;
  EXPECT_THROW(head_stats_from_json(bad, "head_stats.json"), rhead::Error);
  // The values survive the round trip; a version 1 file (no prediction) still reads.
  EXPECT_EQ(back.predict_sets, 3);
  EXPECT_DOUBLE_EQ(back.heads[5].predict_low, s.heads[5].predict_low);
  EXPECT_DOUBLE_EQ(back.heads[5].predict_high, s.heads[5].predict_high);
  nlohmann::json old = j;
  old["version"] = 1;
  old.erase("prediction");
  for (auto& h : old["heads"]) h.erase("predict_low"), h.erase("predict_high");
  const HeadStats v1 = head_stats_from_json(old, "old/head_stats.json");
  EXPECT_EQ(v1.predict_sets, 0);
  EXPECT_TRUE(std::isnan(v1.heads[5].predict_low));
  EXPECT_DOUBLE_EQ(v1.heads[5].ci_low, s.heads[5].ci_low);
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

TEST(HeadStats, OneNeedleSetPredictsNothing) {
  // One needle set over three lengths: the bootstrap resamples the lengths, but no spread
  // between needle sets can be measured, so no head gets a prediction interval (null in JSON,
  // and the null survives the round trip).
  ScoreMap map = score_map_from_reference_json({{"0-0", {0.5, 0.0, 1.0}}, {"0-1", {0.0, 0.0, 0.0}}}, "m");
  const HeadStats s = head_stats(map, {{4, 100}, {4, 200}, {4, 300}}, 50, 1);
  EXPECT_EQ(s.needle_sets, 1);
  EXPECT_EQ(s.predict_sets, 0);
  EXPECT_TRUE(std::isnan(s.predict_t));
  EXPECT_LT(s.heads[0].ci_low, s.heads[0].ci_high);
  for (const auto& h : s.heads) EXPECT_TRUE(std::isnan(h.predict_low) && std::isnan(h.predict_high));
  const nlohmann::json j = to_json(s);
  EXPECT_TRUE(j["heads"][0]["predict_low"].is_null());
  EXPECT_TRUE(j["prediction"]["t"].is_null());
  EXPECT_EQ(to_json(head_stats_from_json(j, "head_stats.json")), j);
  // One replicate: no pair of draws, so the expected Jaccard is null too, and reads back.
  const nlohmann::json single = to_json(head_stats(map, {{4, 100}, {4, 200}, {4, 300}}, 1, 1));
  EXPECT_TRUE(single["expected_jaccard"]["5"].is_null());
  EXPECT_EQ(to_json(head_stats_from_json(single, "head_stats.json")), single);
  // Two needle sets, unequal test counts: each set's mean counts once, whatever its size.
  const HeadStats two = head_stats(map, {{4, 100}, {4, 200}, {9, 100}}, 50, 1);
  EXPECT_EQ(two.predict_sets, 2);
  const PredictionInterval want = predict_interval({{0.5, 0.0}, {1.0}}, 2);
  EXPECT_DOUBLE_EQ(two.heads[0].predict_low, want.low);
  EXPECT_DOUBLE_EQ(two.heads[0].predict_high, want.high);
  EXPECT_EQ(two.heads[1].predict_low, 0.0);  // never copies: [0, 0]
  EXPECT_EQ(two.heads[1].predict_high, 0.0);
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
