// Uncertainty of retrieval scores: a two-way cluster bootstrap over the tests of a score map
// (needle sets and context lengths resampled independently), giving per head a percentile
// interval of the mean score and the probability of being in the top-K set, and per K the
// expected Jaccard overlap of the top-K sets of two independent bootstrap draws. The scheme
// is documented in docs/head_stats.md. Everything here is a pure function of its arguments;
// the random draws come from a BootstrapPlan that a seed fixes (splitmix64), so another
// implementation given the same plan computes the same numbers.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/score_map.h"

namespace rhead::analysis {

// The clusters of one test of a score list: its needle set and its context length.
struct TestCluster {
  int needle = 0;
  long long length = 0;
};

// The draws of a bootstrap: replicate b draws needle-set indices needle_draws[b] (as many as
// there are needle sets, uniform with replacement) and length indices length_draws[b].
struct BootstrapPlan {
  std::uint64_t seed = 0;
  std::vector<std::vector<int>> needle_draws, length_draws;  // [replicate][draw]
};

// splitmix64 stream from `seed`; draw i of a replicate is next() % n. Per replicate the
// needle draws come first, then the length draws.
BootstrapPlan make_bootstrap_plan(int n_needles, int n_lengths, int replicates, std::uint64_t seed);

// The K values of P(in top-K): the fixed list and the top 5% of the heads.
struct TopKSpec {
  std::string label;  // "5", "10", "20", "5%"
  int k = 0;
};
// {5, 10, 20, top 5% = max(1, ceil(0.05 * heads))}, each clamped to the number of heads.
std::vector<TopKSpec> default_top_ks(std::size_t heads);

inline constexpr int kDefaultReplicates = 1000;
inline constexpr std::uint64_t kDefaultBootstrapSeed = 20250425;
inline constexpr double kDefaultLevel = 0.95;

struct HeadUncertainty {
  HeadId id;
  double mean = 0;  // over the counted tests (the score map's mean)
  double ci_low = 0, ci_high = 0;
  // The prediction interval for the mean of an independent grid of HeadStats::predict_sets other
  // needle sets with the same lengths and depths (predict_interval); NaN (null in JSON) when
  // fewer than two needle sets hold counted tests.
  double predict_low = NAN, predict_high = NAN;
  double frequency = 0;  // share of counted tests with a score > 0
  // Per TopKSpec: the share of valid replicates with the head in the top-K set, where the
  // heads tied with the K-th score share its remaining places equally (three heads tied for
  // one place count 1/3 each).
  std::vector<double> p_top;
};

struct HeadStats {
  int n_layer = 0, n_head = 0;
  int tests = 0, needle_sets = 0, lengths = 0;
  int replicates = 0, valid_replicates = 0;  // a replicate drawing no test is not valid
  // The predicted grid's needle sets (as many as this grid has with counted tests) and the
  // Student t quantile of the prediction intervals (NaN when there are fewer than two).
  int predict_sets = 0;
  double predict_t = NAN;
  std::uint64_t seed = 0;
  double level = kDefaultLevel;
  std::vector<TopKSpec> top_ks;
  std::vector<HeadUncertainty> heads;    // layer-major
  std::vector<double> expected_jaccard;  // per TopKSpec
};

// The top-K set of `means`: the K highest, ties in index order, among heads with a mean
// above 0 only (a head that never copied is in no top-K set); sorted by index.
std::vector<int> top_k_set(const std::vector<double>& means, int k);
// |a ∩ b| / |a ∪ b| of two sorted index sets; 1 when both are empty.
double jaccard(const std::vector<int>& a, const std::vector<int>& b);
// Percentile p in [0, 1] of ascending `sorted` with linear interpolation between order
// statistics (position p * (n - 1)); NaN when empty.
double percentile_sorted(const std::vector<double>& sorted, double p);

// A prediction interval at `level` for the mean of `new_sets` new needle sets, from a head's
// scores in each of G needle sets (`set_scores[g]`, the counted tests of set g; G >= 2), each
// set's mean m_g one observation (docs/head_stats.md):
//   s_b^2 = sample variance of the m_g (divisor G - 1), the spread between sets;
//   v     = mean over the sets with >= 2 tests of (sample variance of its scores) / (its tests),
//           the sampling variance of one set's mean; a set mean varies at least this much;
//   var   = max(s_b^2, v)   (= tau^2 + v with the between-set variance tau^2 = max(0, s_b^2 - v));
//   mean(m_g) -/+ t_{(1 + level) / 2, G - 1} * sqrt(var * (1 / G + 1 / new_sets)), the low end
//   raised to 0 where below (a score is >= 0 and has no upper bound of 1: each decode step
//   copying from the needle span adds 1 / (e - s), and an answer can copy more steps than
//   the span has tokens).
// NaN bounds when G < 2 or new_sets < 1.
struct PredictionInterval {
  double low = NAN, high = NAN;
};
PredictionInterval predict_interval(const std::vector<std::vector<double>>& set_scores, int new_sets,
                                    double level = kDefaultLevel);

// The statistics of `map` (lists of the counted tests' scores) whose list entry t came from
// tests[t]; every head's list must have tests.size() entries. Errors name map.source.
HeadStats head_stats(const ScoreMap& map, const std::vector<TestCluster>& tests, const BootstrapPlan& plan,
                     const std::vector<TopKSpec>& top_ks, double level = kDefaultLevel);
// The same with the plan made from `seed`.
HeadStats head_stats(const ScoreMap& map, const std::vector<TestCluster>& tests, int replicates = kDefaultReplicates,
                     std::uint64_t seed = kDefaultBootstrapSeed);

// head_stats.json ("format": "rhead-head-stats", version 2) and its strict reader (which also
// reads version 1, written before the prediction intervals: their fields read as NaN).
nlohmann::json to_json(const HeadStats& stats);
HeadStats head_stats_from_json(const nlohmann::json& j, const std::string& where);
HeadStats read_head_stats(const std::string& path);
// summary.json's "stability" object: replicates, seed, top_k and expected_jaccard by label.
nlohmann::json stability_json(const HeadStats& stats);

}  // namespace rhead::analysis
