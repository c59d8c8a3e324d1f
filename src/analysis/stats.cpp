// Correlations and overlaps between score maps.
#include "analysis/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "io/error.h"

namespace rhead::analysis {

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size() || x.size() < 2) return std::nan("");
  const double n = static_cast<double>(x.size());
  const double mean_x = std::accumulate(x.begin(), x.end(), 0.0) / n;
  const double mean_y = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double dx = x[i] - mean_x, dy = y[i] - mean_y;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx == 0 || syy == 0) return std::nan("");
  return sxy / std::sqrt(sxx * syy);
}

std::vector<double> average_ranks(const std::vector<double>& values, double tie_tolerance) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(values.size());
  std::size_t start = 0;
  while (start < order.size()) {
    std::size_t end = start + 1;
    while (end < order.size() && values[order[end]] - values[order[end - 1]] <=
                                     tie_tolerance * std::max(1.0, std::abs(values[order[end - 1]])))
      ++end;
    // positions start..end-1 hold equal values: ranks start+1..end, average (start+1+end)/2
    const double rank = (static_cast<double>(start + 1) + static_cast<double>(end)) / 2.0;
    for (std::size_t i = start; i < end; ++i) ranks[order[i]] = rank;
    start = end;
  }
  return ranks;
}

double spearman(const std::vector<double>& x, const std::vector<double>& y) {
  return pearson(average_ranks(x), average_ranks(y));
}

AlignedMaps align_maps(const ScoreMap& a, const ScoreMap& b, bool allow_shape_mismatch) {
  const bool same_shape = a.n_layer == b.n_layer && a.n_head == b.n_head;
  if (!same_shape && !allow_shape_mismatch) {
    fail(b.source, "has " + std::to_string(b.n_layer) + " layers x " + std::to_string(b.n_head) + " heads but " +
                       a.source + " has " + std::to_string(a.n_layer) + " x " + std::to_string(a.n_head) +
                       " (use --allow-shape-mismatch to compare the common heads)");
  }
  AlignedMaps out;
  const int layers = std::min(a.n_layer, b.n_layer), heads = std::min(a.n_head, b.n_head);
  for (int l = 0; l < layers; ++l)
    for (int h = 0; h < heads; ++h) {
      out.heads.push_back({l, h});
      out.a_mean.push_back(a.mean_at(l, h));
      out.b_mean.push_back(b.mean_at(l, h));
      out.a_frequency.push_back(a.frequency[a.index(l, h)]);
      out.b_frequency.push_back(b.frequency[b.index(l, h)]);
    }
  if (out.heads.empty()) fail(b.source, "has no heads in common with " + a.source);
  return out;
}

namespace {

std::vector<std::size_t> top_k_indices(const std::vector<double>& mean, std::size_t k) {
  std::vector<std::size_t> order(mean.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return mean[x] > mean[y]; });
  order.resize(std::min(k, order.size()));
  return order;
}

}  // namespace

std::vector<TopKOverlap> top_k_overlaps(const AlignedMaps& maps, const std::vector<int>& ks) {
  std::vector<TopKOverlap> out;
  for (int k_requested : ks) {
    const std::size_t k = std::min<std::size_t>(static_cast<std::size_t>(std::max(k_requested, 0)), maps.heads.size());
    // K values beyond the number of heads all clamp to it; report that case once.
    if (std::any_of(out.begin(), out.end(), [&](const TopKOverlap& o) { return o.k == static_cast<int>(k); })) continue;
    auto ta = top_k_indices(maps.a_mean, k), tb = top_k_indices(maps.b_mean, k);
    std::set<std::size_t> sa(ta.begin(), ta.end()), sb(tb.begin(), tb.end());
    std::size_t shared = 0;
    for (std::size_t i : sa) shared += sb.count(i);
    const std::size_t united = sa.size() + sb.size() - shared;
    out.push_back({static_cast<int>(k), static_cast<int>(shared),
                   united ? static_cast<double>(shared) / static_cast<double>(united) : 0.0});
  }
  return out;
}

PairComparison compare_pair(const ScoreMap& a, const ScoreMap& b, bool allow_shape_mismatch, const std::vector<int>& ks,
                            double threshold) {
  const AlignedMaps maps = align_maps(a, b, allow_shape_mismatch);
  PairComparison c;
  c.a_label = a.label;
  c.b_label = b.label;
  c.heads = maps.heads.size();
  c.threshold = threshold;
  c.pearson = pearson(maps.a_mean, maps.b_mean);
  c.spearman = spearman(maps.a_mean, maps.b_mean);
  c.overlaps = top_k_overlaps(maps, ks);
  for (std::size_t i = 0; i < maps.heads.size(); ++i) {
    const double ma = maps.a_mean[i], mb = maps.b_mean[i];
    c.a_above += ma > threshold;
    c.b_above += mb > threshold;
    if (ma > threshold && mb <= threshold) c.only_a.push_back({maps.heads[i], ma, mb});
    if (mb > threshold && ma <= threshold) c.only_b.push_back({maps.heads[i], ma, mb});
  }
  std::stable_sort(c.only_a.begin(), c.only_a.end(),
                   [](const StrongHead& x, const StrongHead& y) { return x.a_mean - x.b_mean > y.a_mean - y.b_mean; });
  std::stable_sort(c.only_b.begin(), c.only_b.end(),
                   [](const StrongHead& x, const StrongHead& y) { return x.b_mean - x.a_mean > y.b_mean - y.a_mean; });
  return c;
}

CorrelationMatrix correlation_matrix(const std::vector<ScoreMap>& maps, bool allow_shape_mismatch) {
  CorrelationMatrix m;
  const std::size_t n = maps.size();
  m.pearson.assign(n, std::vector<double>(n, 1.0));
  m.spearman.assign(n, std::vector<double>(n, 1.0));
  for (const auto& map : maps) m.labels.push_back(map.label);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = i + 1; j < n; ++j) {
      const AlignedMaps aligned = align_maps(maps[i], maps[j], allow_shape_mismatch);
      m.pearson[i][j] = m.pearson[j][i] = pearson(aligned.a_mean, aligned.b_mean);
      m.spearman[i][j] = m.spearman[j][i] = spearman(aligned.a_mean, aligned.b_mean);
    }
  return m;
}

}  // namespace rhead::analysis

namespace rhead::analysis {

namespace {

nlohmann::json number_or_null(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }

nlohmann::json strong_heads_json(const std::vector<StrongHead>& heads) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& h : heads)
    out.push_back({{"layer", h.head.layer}, {"head", h.head.head}, {"a_mean", h.a_mean}, {"b_mean", h.b_mean}});
  return out;
}

}  // namespace

nlohmann::json to_json(const PairComparison& c) {
  nlohmann::json overlaps = nlohmann::json::array();
  for (const auto& o : c.overlaps) overlaps.push_back({{"k", o.k}, {"shared", o.shared}, {"jaccard", o.jaccard}});
  return {{"a", c.a_label},
          {"b", c.b_label},
          {"heads_compared", c.heads},
          {"pearson", number_or_null(c.pearson)},
          {"spearman", number_or_null(c.spearman)},
          {"threshold", c.threshold},
          {"a_above_threshold", c.a_above},
          {"b_above_threshold", c.b_above},
          {"top_k_overlap", overlaps},
          {"strong_only_in_a", strong_heads_json(c.only_a)},
          {"strong_only_in_b", strong_heads_json(c.only_b)}};
}

nlohmann::json to_json(const CorrelationMatrix& m) {
  auto matrix_json = [](const std::vector<std::vector<double>>& rows) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& row : rows) {
      nlohmann::json r = nlohmann::json::array();
      for (double v : row) r.push_back(number_or_null(v));
      out.push_back(r);
    }
    return out;
  };
  return {{"labels", m.labels}, {"pearson", matrix_json(m.pearson)}, {"spearman", matrix_json(m.spearman)}};
}

double auroc(const std::vector<double>& positives, const std::vector<double>& negatives) {
  if (positives.empty() || negatives.empty()) return std::nan("");
  // Rank-sum form: O(n log n) and exact with ties (average ranks, no tolerance).
  std::vector<double> all(positives);
  all.insert(all.end(), negatives.begin(), negatives.end());
  const std::vector<double> ranks = average_ranks(all, 0.0);
  double rank_sum = 0;
  for (std::size_t i = 0; i < positives.size(); ++i) rank_sum += ranks[i];
  const double n_pos = static_cast<double>(positives.size()), n_neg = static_cast<double>(negatives.size());
  return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg);
}

}  // namespace rhead::analysis
