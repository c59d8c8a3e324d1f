// Comparing score maps: Pearson and Spearman correlation of per-head mean scores
// (the paper's Figure 6 metric), top-K overlap, and heads strong in one map only.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "analysis/score_map.h"

namespace rhead::analysis {

// Pearson correlation of x and y (same length >= 2). NaN when either is constant.
double pearson(const std::vector<double>& x, const std::vector<double>& y);
// 1-based ranks with ties given the average of the ranks they span. Values closer than
// tie_tolerance * max(1, |value|) to their sorted neighbour tie: means of the same
// scores summed in a different order differ in the last bits and must still tie.
inline constexpr double kTieTolerance = 1e-12;
std::vector<double> average_ranks(const std::vector<double>& values, double tie_tolerance = kTieTolerance);
// Spearman correlation = Pearson correlation of the average ranks.
double spearman(const std::vector<double>& x, const std::vector<double>& y);

// Two maps restricted to the heads they share, in the same order.
struct AlignedMaps {
  std::vector<HeadId> heads;
  std::vector<double> a_mean, b_mean;
  std::vector<double> a_frequency, b_frequency;
};

// Same shape required, else rhead::Error naming both sources; with
// allow_shape_mismatch the heads present in both grids are kept.
AlignedMaps align_maps(const ScoreMap& a, const ScoreMap& b, bool allow_shape_mismatch);

struct TopKOverlap {
  int k = 0;           // requested K (clamped to the number of heads)
  int shared = 0;      // |top_K(a) ∩ top_K(b)|
  double jaccard = 0;  // shared / |top_K(a) ∪ top_K(b)|
};

// A head above the threshold in one map and not in the other.
struct StrongHead {
  HeadId head;
  double a_mean = 0, b_mean = 0;
};

struct PairComparison {
  std::string a_label, b_label;
  std::size_t heads = 0;  // heads compared
  double pearson = 0, spearman = 0;
  std::size_t a_above = 0, b_above = 0;  // heads with mean > threshold
  std::vector<TopKOverlap> overlaps;
  std::vector<StrongHead> only_a, only_b;  // sorted by the gap, largest first
  double threshold = kRetrievalThreshold;
};

// Top-K sets are the K highest means, ties broken by layer-major order.
std::vector<TopKOverlap> top_k_overlaps(const AlignedMaps& maps, const std::vector<int>& ks);

PairComparison compare_pair(const ScoreMap& a, const ScoreMap& b, bool allow_shape_mismatch,
                            const std::vector<int>& ks = {10, 20, 50}, double threshold = kRetrievalThreshold);

struct CorrelationMatrix {
  std::vector<std::string> labels;
  std::vector<std::vector<double>> pearson;   // [n][n]
  std::vector<std::vector<double>> spearman;  // [n][n]
};

CorrelationMatrix correlation_matrix(const std::vector<ScoreMap>& maps, bool allow_shape_mismatch);

// Area under the ROC curve of a score that should be higher for `positives` than for
// `negatives`: the probability that a random positive scores above a random negative, ties
// counting one half (the Mann-Whitney U statistic / (n_pos * n_neg)). NaN when either group
// is empty.
double auroc(const std::vector<double>& positives, const std::vector<double>& negatives);

}  // namespace rhead::analysis

#include <nlohmann/json.hpp>

namespace rhead::analysis {

// Machine-readable forms (NaN correlations become null).
nlohmann::json to_json(const PairComparison& comparison);
nlohmann::json to_json(const CorrelationMatrix& matrix);

}  // namespace rhead::analysis
