// Statistics of score maps against numpy values committed by scripts/score_stats_reference.py.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "analysis/score_map.h"
#include "analysis/stats.h"
#include "io/error.h"
#include "test_support.h"

namespace {

using namespace rhead::analysis;
using rhead::testing::shared_path;
using rhead::testing::test_data_path;

nlohmann::json expected() {
  std::ifstream in(test_data_path("analysis/score_stats_expected.json"));
  EXPECT_TRUE(in.good()) << "run scripts/score_stats_reference.py";
  return nlohmann::json::parse(in);
}

std::string score_file(const std::string& name) { return shared_path("data/head_scores/" + name + ".json"); }

std::vector<double> to_vector(const nlohmann::json& j) { return j.get<std::vector<double>>(); }

TEST(Correlation, HandVectorsMatchNumpy) {
  const auto exp = expected();
  ASSERT_FALSE(exp["vectors"].empty());
  for (const auto& v : exp["vectors"]) {
    const auto x = to_vector(v["x"]), y = to_vector(v["y"]);
    EXPECT_NEAR(pearson(x, y), v["pearson"].get<double>(), 1e-12);
    EXPECT_NEAR(spearman(x, y), v["spearman"].get<double>(), 1e-12);
    const auto ranks = average_ranks(x);
    const auto expected_ranks = to_vector(v["ranks_x"]);
    ASSERT_EQ(ranks.size(), expected_ranks.size());
    for (std::size_t i = 0; i < ranks.size(); ++i) EXPECT_DOUBLE_EQ(ranks[i], expected_ranks[i]) << "rank " << i;
  }
}

TEST(Correlation, ConstantInputIsNaN) {
  EXPECT_TRUE(std::isnan(pearson({1, 1, 1}, {1, 2, 3})));
  EXPECT_TRUE(std::isnan(spearman({0, 0, 0, 0}, {1, 2, 3, 4})));
  EXPECT_TRUE(std::isnan(pearson({1}, {2})));
}

TEST(ScoreFiles, ShapesCountsAndTopHeadsMatchNumpy) {
  const auto exp = expected();
  for (const auto& [name, e] : exp["files"].items()) {
    RHEAD_REQUIRE_FILE(score_file(name));
    const ScoreMap map = read_head_score_json(score_file(name));
    EXPECT_EQ(map.label, name);
    EXPECT_EQ(map.n_layer, e["n_layer"].get<int>()) << name;
    EXPECT_EQ(map.n_head, e["n_head"].get<int>()) << name;
    EXPECT_EQ(map.test_count(), e["tests"].get<std::size_t>()) << name;
    EXPECT_EQ(count_above(map, rhead::kRetrievalThreshold), e["above_0_1"].get<std::size_t>()) << name;
    const ScoreBuckets buckets = bucket_scores(map);
    EXPECT_EQ(buckets.high, e["above_0_1"].get<std::size_t>());
    EXPECT_EQ(buckets.zero, e["zero"].get<std::size_t>());
    EXPECT_EQ(buckets.zero + buckets.low + buckets.high, map.head_count());
    const auto order = heads_by_score(map.mean);
    for (std::size_t i = 0; i < e["top_heads"].size(); ++i) {
      const auto& t = e["top_heads"][i];
      const rhead::HeadId id = map.head_at(order[i]);
      EXPECT_EQ(id.layer, t["layer"].get<int>()) << name << " rank " << i;
      EXPECT_EQ(id.head, t["head"].get<int>()) << name << " rank " << i;
      EXPECT_NEAR(map.mean[order[i]], t["mean"].get<double>(), 1e-12);
      EXPECT_NEAR(map.frequency[order[i]], t["frequency"].get<double>(), 1e-12);
    }
  }
}

TEST(ScoreFiles, Llama2_7B_80K_Has33Of1024HeadsAbove0_1) {
  RHEAD_REQUIRE_FILE(score_file("llama-2-7b-80k"));
  const ScoreMap map = read_head_score_json(score_file("llama-2-7b-80k"));
  EXPECT_EQ(map.head_count(), 1024u);
  EXPECT_EQ(count_above(map), 33u);
  // METHOD.md: the strongest head is (16, 19) with mean 0.94.
  EXPECT_NEAR(map.mean_at(16, 19), 0.94, 0.005);
}

TEST(ScoreFiles, PairStatisticsMatchNumpy) {
  const auto exp = expected();
  ASSERT_FALSE(exp["pairs"].empty());
  for (const auto& p : exp["pairs"]) {
    const std::string a = p["a"], b = p["b"];
    RHEAD_REQUIRE_FILE(score_file(a));
    RHEAD_REQUIRE_FILE(score_file(b));
    const PairComparison c =
        compare_pair(read_head_score_json(score_file(a)), read_head_score_json(score_file(b)), false);
    EXPECT_NEAR(c.pearson, p["pearson"].get<double>(), 1e-10) << a << " vs " << b;
    EXPECT_NEAR(c.spearman, p["spearman"].get<double>(), 1e-10) << a << " vs " << b;
    ASSERT_EQ(c.overlaps.size(), p["top_k"].size());
    for (std::size_t i = 0; i < c.overlaps.size(); ++i) {
      EXPECT_EQ(c.overlaps[i].k, p["top_k"][i]["k"].get<int>());
      EXPECT_EQ(c.overlaps[i].shared, p["top_k"][i]["shared"].get<int>())
          << a << " vs " << b << " K=" << c.overlaps[i].k;
      EXPECT_NEAR(c.overlaps[i].jaccard, p["top_k"][i]["jaccard"].get<double>(), 1e-12);
    }
  }
}

TEST(ScoreFiles, QwenBaseAndChatCorrelateAbove0_8) {
  RHEAD_REQUIRE_FILE(score_file("Qwen1.5-14B"));
  RHEAD_REQUIRE_FILE(score_file("Qwen1.5-14B-Chat"));
  const auto c = compare_pair(read_head_score_json(score_file("Qwen1.5-14B")),
                              read_head_score_json(score_file("Qwen1.5-14B-Chat")), false);
  EXPECT_GT(c.pearson, 0.8);
  // Every head reported as strong in one map only really is above the threshold there
  // and not in the other.
  for (const auto& h : c.only_a) EXPECT_TRUE(h.a_mean > 0.1 && h.b_mean <= 0.1);
  for (const auto& h : c.only_b) EXPECT_TRUE(h.b_mean > 0.1 && h.a_mean <= 0.1);
  EXPECT_EQ(static_cast<std::size_t>(c.a_above) - c.only_a.size(),
            static_cast<std::size_t>(c.b_above) - c.only_b.size());
}

TEST(ScoreFiles, ShapeMismatchIsAnErrorUnlessAllowed) {
  RHEAD_REQUIRE_FILE(score_file("llama-2-7b-80k"));
  RHEAD_REQUIRE_FILE(score_file("Qwen1.5-14B"));
  const ScoreMap llama = read_head_score_json(score_file("llama-2-7b-80k"));
  const ScoreMap qwen = read_head_score_json(score_file("Qwen1.5-14B"));
  try {
    compare_pair(llama, qwen, false);
    FAIL() << "no error for 32x32 vs 40x40";
  } catch (const rhead::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--allow-shape-mismatch"), std::string::npos) << e.what();
  }
  const auto c = compare_pair(llama, qwen, true);
  EXPECT_EQ(c.heads, 1024u);  // the 32 x 32 heads both maps have
  const auto m = correlation_matrix({llama, qwen}, true);
  EXPECT_DOUBLE_EQ(m.pearson[0][1], c.pearson);
  EXPECT_DOUBLE_EQ(m.pearson[1][0], c.pearson);
  EXPECT_DOUBLE_EQ(m.pearson[0][0], 1.0);
}

TEST(TopK, TiesBreakByLayerMajorOrderAndJaccardCounts) {
  AlignedMaps maps;
  for (int h = 0; h < 6; ++h) maps.heads.push_back({0, h});
  maps.a_mean = {0.9, 0.5, 0.5, 0.1, 0.0, 0.0};
  maps.b_mean = {0.0, 0.5, 0.9, 0.5, 0.1, 0.0};
  const auto o = top_k_overlaps(maps, {1, 2, 3, 100});
  EXPECT_EQ(o[0].shared, 0);  // {0} vs {2}
  EXPECT_EQ(o[1].shared, 1);  // {0,1} vs {2,1}
  EXPECT_DOUBLE_EQ(o[1].jaccard, 1.0 / 3.0);
  EXPECT_EQ(o[2].shared, 2);  // {0,1,2} vs {2,1,3}
  EXPECT_DOUBLE_EQ(o[2].jaccard, 2.0 / 4.0);
  EXPECT_EQ(o[3].k, 6);  // clamped to the number of heads
  EXPECT_EQ(o[3].shared, 6);
  EXPECT_DOUBLE_EQ(o[3].jaccard, 1.0);
}

}  // namespace

namespace {

// The definition itself: every (positive, negative) pair, ties counting one half.
double auroc_by_pairs(const std::vector<double>& pos, const std::vector<double>& neg) {
  double wins = 0;
  for (double p : pos)
    for (double n : neg) wins += p > n ? 1.0 : p == n ? 0.5 : 0.0;
  return wins / (static_cast<double>(pos.size()) * static_cast<double>(neg.size()));
}

TEST(Auroc, MatchesThePairwiseDefinition) {
  using rhead::analysis::auroc;
  EXPECT_DOUBLE_EQ(auroc({0.9, 0.8}, {0.1, 0.2}), 1.0);
  EXPECT_DOUBLE_EQ(auroc({0.1, 0.2}, {0.9, 0.8}), 0.0);
  EXPECT_DOUBLE_EQ(auroc({0.5}, {0.5}), 0.5);
  EXPECT_DOUBLE_EQ(auroc({1.0, 0.5, 0.0}, {0.5, 0.25}), 3.5 / 6.0);  // by hand: 2 + 1.5 + 0 wins of 6 pairs
  EXPECT_TRUE(std::isnan(auroc({}, {0.3})));
  EXPECT_TRUE(std::isnan(auroc({0.3}, {})));
  // Support shares take few distinct values: many ties.
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> eighths(0, 8);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<double> pos(3 + trial), neg(40 - trial);
    for (auto& v : pos) v = eighths(rng) / 8.0;
    for (auto& v : neg) v = eighths(rng) / 8.0 * 0.7;
    EXPECT_NEAR(auroc(pos, neg), auroc_by_pairs(pos, neg), 1e-12);
  }
}

}  // namespace
