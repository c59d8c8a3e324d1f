// Two-way cluster bootstrap of retrieval scores (docs/head_stats.md).
#include "analysis/head_stats.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "analysis/student_t.h"
#include "io/builtin_data.h"
#include "io/error.h"
#include "io/json.h"

namespace rhead::analysis {

using nlohmann::json;

BootstrapPlan make_bootstrap_plan(int n_needles, int n_lengths, int replicates, std::uint64_t seed) {
  if (n_needles < 0 || n_lengths < 0 || replicates < 0) throw Error("bootstrap plan: negative size");
  BootstrapPlan plan;
  plan.seed = seed;
  SplitMix64 rng(seed);
  plan.needle_draws.resize(replicates);
  plan.length_draws.resize(replicates);
  for (int b = 0; b < replicates; ++b) {
    for (int i = 0; i < n_needles; ++i) plan.needle_draws[b].push_back(static_cast<int>(rng.next() % n_needles));
    for (int i = 0; i < n_lengths; ++i) plan.length_draws[b].push_back(static_cast<int>(rng.next() % n_lengths));
  }
  return plan;
}

std::vector<TopKSpec> default_top_ks(std::size_t heads) {
  const int n = static_cast<int>(heads);
  const int five = std::max(1, static_cast<int>(std::ceil(0.05 * static_cast<double>(heads) - 1e-9)));
  return {{"5", std::min(5, n)}, {"10", std::min(10, n)}, {"20", std::min(20, n)}, {"5%", std::min(five, n)}};
}

std::vector<int> top_k_set(const std::vector<double>& means, int k) {
  std::vector<int> order;
  for (int i = 0; i < static_cast<int>(means.size()); ++i)
    if (means[i] > 0) order.push_back(i);
  const auto keep = static_cast<std::size_t>(std::max(0, std::min<int>(k, static_cast<int>(order.size()))));
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                    [&](int a, int b) { return means[a] != means[b] ? means[a] > means[b] : a < b; });
  order.resize(keep);
  std::sort(order.begin(), order.end());
  return order;
}

double jaccard(const std::vector<int>& a, const std::vector<int>& b) {
  if (a.empty() && b.empty()) return 1.0;
  std::size_t i = 0, j = 0, shared = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] == b[j])
      ++shared, ++i, ++j;
    else if (a[i] < b[j])
      ++i;
    else
      ++j;
  }
  return static_cast<double>(shared) / static_cast<double>(a.size() + b.size() - shared);
}

double percentile_sorted(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return NAN;
  const double pos = p * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

PredictionInterval predict_interval(const std::vector<std::vector<double>>& set_scores, int new_sets, double level) {
  const auto g = static_cast<int>(set_scores.size());
  if (g < 2 || new_sets < 1) return {};
  const auto mean_of = [](const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    return sum / static_cast<double>(v.size());
  };
  std::vector<double> means;
  double sampling = 0;  // summed variance of a set's mean, over the sets with two tests or more
  int sampled = 0;
  for (const auto& scores : set_scores) {
    if (scores.empty()) throw Error("prediction interval: a needle set without tests");
    const double m = mean_of(scores);
    means.push_back(m);
    if (scores.size() < 2) continue;
    double squares = 0;
    for (double x : scores) squares += (x - m) * (x - m);
    const auto n = static_cast<double>(scores.size());
    sampling += squares / (n - 1) / n;
    ++sampled;
  }
  const double center = mean_of(means);
  double squares = 0;
  for (double m : means) squares += (m - center) * (m - center);
  const double var = std::max(squares / (g - 1), sampled ? sampling / sampled : 0.0);
  const double half = student_t_quantile(0.5 + level / 2, g - 1) * std::sqrt(var * (1.0 / g + 1.0 / new_sets));
  // Scores are >= 0 but not bounded by 1: every decode step that copies from the needle span
  // adds 1 / (e - s), and an answer can copy more steps than the span has tokens.
  return {std::max(center - half, 0.0), center + half};
}

HeadStats head_stats(const ScoreMap& map, const std::vector<TestCluster>& tests, const BootstrapPlan& plan,
                     const std::vector<TopKSpec>& top_ks, double level) {
  const std::size_t n_heads = map.head_count();
  for (std::size_t h = 0; h < n_heads; ++h)
    if (map.lists[h].size() != tests.size())
      fail(map.source, "head " + map.head_at(h).key() + " has " + std::to_string(map.lists[h].size()) + " scores for " +
                           std::to_string(tests.size()) + " tests");
  // Dense cluster indices, in ascending label order.
  std::map<int, int> needle_index;
  std::map<long long, int> length_index;
  for (const auto& t : tests) needle_index[t.needle] = 0, length_index[t.length] = 0;
  int n = 0;
  for (auto& [label, index] : needle_index) index = n++;
  n = 0;
  for (auto& [label, index] : length_index) index = n++;
  const int n_needles = static_cast<int>(needle_index.size()), n_lengths = static_cast<int>(length_index.size());
  for (std::size_t b = 0; b < plan.needle_draws.size(); ++b) {
    const bool fits = plan.needle_draws[b].size() == static_cast<std::size_t>(n_needles) &&
                      b < plan.length_draws.size() &&
                      plan.length_draws[b].size() == static_cast<std::size_t>(n_lengths);
    bool in_range = fits;
    for (int d : plan.needle_draws[b]) in_range = in_range && d >= 0 && d < n_needles;
    if (fits)
      for (int d : plan.length_draws[b]) in_range = in_range && d >= 0 && d < n_lengths;
    if (!in_range) fail(map.source, "bootstrap plan replicate " + std::to_string(b) + " does not fit the clusters");
  }

  // Per cell (needle, length): the count of tests and each head's summed score, in list order.
  const std::size_t cells = static_cast<std::size_t>(n_needles) * n_lengths;
  std::vector<double> cell_count(cells, 0.0), cell_sum(cells * n_heads, 0.0);
  for (std::size_t t = 0; t < tests.size(); ++t) {
    const std::size_t c =
        static_cast<std::size_t>(needle_index[tests[t].needle]) * n_lengths + length_index[tests[t].length];
    cell_count[c] += 1.0;
    for (std::size_t h = 0; h < n_heads; ++h) cell_sum[c * n_heads + h] += map.lists[h][t];
  }

  HeadStats s;
  s.n_layer = map.n_layer;
  s.n_head = map.n_head;
  s.tests = static_cast<int>(tests.size());
  s.needle_sets = n_needles;
  s.lengths = n_lengths;
  s.replicates = static_cast<int>(plan.needle_draws.size());
  s.seed = plan.seed;
  s.level = level;
  s.top_ks = top_ks;

  std::vector<std::vector<double>> replicate_means(n_heads);  // [head][valid replicate]
  std::vector<std::vector<std::vector<int>>> sets(top_ks.size());
  std::vector<std::vector<double>> in_top(top_ks.size(), std::vector<double>(n_heads, 0.0));
  std::vector<double> needle_weight(n_needles), length_weight(n_lengths), means(n_heads);
  for (std::size_t b = 0; b < plan.needle_draws.size(); ++b) {
    std::fill(needle_weight.begin(), needle_weight.end(), 0.0);
    std::fill(length_weight.begin(), length_weight.end(), 0.0);
    for (int d : plan.needle_draws[b]) needle_weight[d] += 1.0;
    for (int d : plan.length_draws[b]) length_weight[d] += 1.0;
    double count = 0;
    std::fill(means.begin(), means.end(), 0.0);
    for (int i = 0; i < n_needles; ++i)
      for (int j = 0; j < n_lengths; ++j) {
        const double w = needle_weight[i] * length_weight[j];
        const std::size_t c = static_cast<std::size_t>(i) * n_lengths + j;
        if (w == 0 || cell_count[c] == 0) continue;
        count += w * cell_count[c];
        for (std::size_t h = 0; h < n_heads; ++h) means[h] += w * cell_sum[c * n_heads + h];
      }
    if (count == 0) continue;
    ++s.valid_replicates;
    for (std::size_t h = 0; h < n_heads; ++h) {
      means[h] /= count;
      replicate_means[h].push_back(means[h]);
    }
    for (std::size_t k = 0; k < top_ks.size(); ++k) {
      sets[k].push_back(top_k_set(means, top_ks[k].k));
      // Membership with ties shared: heads tied with the K-th share its remaining places.
      const auto& set = sets[k].back();
      if (set.empty()) continue;
      double last = means[set.front()];
      for (int h : set) last = std::min(last, means[h]);
      int above = 0, tied = 0;
      for (std::size_t h = 0; h < n_heads; ++h) {
        if (means[h] <= 0) continue;
        above += means[h] > last;
        tied += means[h] == last;
      }
      const double share = static_cast<double>(static_cast<int>(set.size()) - above) / tied;
      for (std::size_t h = 0; h < n_heads; ++h)
        if (means[h] > 0) in_top[k][h] += means[h] > last ? 1.0 : means[h] == last ? share : 0.0;
    }
  }

  // The prediction intervals, from each head's scores per needle set.
  if (n_needles >= 2) {
    s.predict_sets = n_needles;
    s.predict_t = student_t_quantile(0.5 + level / 2, n_needles - 1);
  }
  std::vector<std::vector<double>> set_scores(n_needles);

  const double tail = (1.0 - level) / 2.0;
  for (std::size_t h = 0; h < n_heads; ++h) {
    HeadUncertainty u;
    u.id = map.head_at(h);
    u.mean = map.mean[h];
    u.frequency = map.frequency[h];
    auto& r = replicate_means[h];
    std::sort(r.begin(), r.end());
    u.ci_low = r.empty() ? u.mean : percentile_sorted(r, tail);
    u.ci_high = r.empty() ? u.mean : percentile_sorted(r, 1.0 - tail);
    for (auto& v : set_scores) v.clear();
    for (std::size_t t = 0; t < tests.size(); ++t) set_scores[needle_index[tests[t].needle]].push_back(map.lists[h][t]);
    const PredictionInterval pi = predict_interval(set_scores, s.predict_sets, level);
    u.predict_low = pi.low;
    u.predict_high = pi.high;
    for (std::size_t k = 0; k < top_ks.size(); ++k)
      u.p_top.push_back(s.valid_replicates ? in_top[k][h] / s.valid_replicates : 0.0);
    s.heads.push_back(std::move(u));
  }
  // Expected Jaccard between two independent draws: the mean over every unordered pair of
  // distinct valid replicates.
  for (std::size_t k = 0; k < top_ks.size(); ++k) {
    const auto& v = sets[k];
    double sum = 0;
    std::size_t pairs = 0;
    for (std::size_t a = 0; a < v.size(); ++a)
      for (std::size_t b = a + 1; b < v.size(); ++b) sum += jaccard(v[a], v[b]), ++pairs;
    s.expected_jaccard.push_back(pairs ? sum / static_cast<double>(pairs) : NAN);
  }
  return s;
}

HeadStats head_stats(const ScoreMap& map, const std::vector<TestCluster>& tests, int replicates, std::uint64_t seed) {
  std::map<int, int> needles;
  std::map<long long, int> lengths;
  for (const auto& t : tests) needles[t.needle] = 0, lengths[t.length] = 0;
  const BootstrapPlan plan =
      make_bootstrap_plan(static_cast<int>(needles.size()), static_cast<int>(lengths.size()), replicates, seed);
  return head_stats(map, tests, plan, default_top_ks(map.head_count()));
}

namespace {

const char* kScheme =
    "two-way cluster bootstrap: per replicate, needle sets and context lengths are drawn with replacement "
    "(as many as there are), a test weighs (times its needle set was drawn) x (times its length was drawn), "
    "and a head's replicate score is the weighted mean over the counted tests; percentile interval";
const char* kPredictionScheme =
    "prediction interval for the mean of an independent grid of G other needle sets with the same lengths "
    "and depths, G = the needle sets holding counted tests here (prediction.needle_sets); each set's mean "
    "m_g over its counted tests is one observation: s_b^2 = variance of the m_g (divisor G - 1), v = mean "
    "over the sets with two or more tests of (variance of its scores) / (its tests), mean(m_g) -/+ t x "
    "sqrt(max(s_b^2, v) x 2/G), t = prediction.t, the Student t quantile (1 + level)/2 with G - 1 degrees of "
    "freedom; the low end raised to 0 where below (scores are >= 0; a test can score above 1); null with "
    "fewer than two needle sets";

json nan_as_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// A field that must be present and is a number or null (NaN).
double number_or_null(const json& object, const std::string& key, const std::string& where) {
  if (!object.is_object() || !object.contains(key)) fail(where, "missing field '" + key + "'");
  const json& v = object.at(key);
  return v.is_null() ? NAN : json_number(v, where, "field '" + key + "'");
}

json top_k_json(const std::vector<TopKSpec>& ks) {
  json j = json::array();
  for (const auto& k : ks) j.push_back({{"label", k.label}, {"k", k.k}});
  return j;
}

}  // namespace

json stability_json(const HeadStats& s) {
  json jac = json::object();
  for (std::size_t k = 0; k < s.top_ks.size(); ++k) jac[s.top_ks[k].label] = nan_as_null(s.expected_jaccard[k]);
  return {{"replicates", s.replicates},
          {"valid_replicates", s.valid_replicates},
          {"seed", s.seed},
          {"top_k", top_k_json(s.top_ks)},
          {"expected_jaccard", jac}};
}

json to_json(const HeadStats& s) {
  json j = {{"format", "rhead-head-stats"},
            {"version", 2},
            {"scheme", kScheme},
            {"level", s.level},
            {"replicates", s.replicates},
            {"valid_replicates", s.valid_replicates},
            {"seed", s.seed},
            {"tests", s.tests},
            {"needle_sets", s.needle_sets},
            {"lengths", s.lengths},
            {"n_layer", s.n_layer},
            {"n_head", s.n_head},
            {"top_k", top_k_json(s.top_ks)}};
  json jac = json::object();
  for (std::size_t k = 0; k < s.top_ks.size(); ++k) jac[s.top_ks[k].label] = nan_as_null(s.expected_jaccard[k]);
  j["expected_jaccard"] = jac;
  j["prediction"] = {{"scheme", kPredictionScheme}, {"needle_sets", s.predict_sets}, {"t", nan_as_null(s.predict_t)}};
  json heads = json::array();
  for (const auto& h : s.heads) {
    json p = json::object();
    for (std::size_t k = 0; k < s.top_ks.size() && k < h.p_top.size(); ++k) p[s.top_ks[k].label] = h.p_top[k];
    heads.push_back({{"head", h.id.key()},
                     {"mean", h.mean},
                     {"ci_low", h.ci_low},
                     {"ci_high", h.ci_high},
                     {"predict_low", nan_as_null(h.predict_low)},
                     {"predict_high", nan_as_null(h.predict_high)},
                     {"frequency", h.frequency},
                     {"p_top", p}});
  }
  j["heads"] = heads;
  return j;
}

HeadStats head_stats_from_json(const json& j, const std::string& where) {
  if (!j.is_object()) fail(where, "expected a JSON object");
  if (json_string_field(j, "format", where) != "rhead-head-stats")
    fail(where, "field 'format' is not \"rhead-head-stats\"");
  const int version = json_int_field(j, "version", where);
  if (version != 1 && version != 2) fail(where, "unsupported version (this rhead reads versions 1 and 2)");
  HeadStats s;
  s.level = json_number_field(j, "level", where);
  s.replicates = json_int_field(j, "replicates", where);
  s.valid_replicates = json_int_field(j, "valid_replicates", where);
  s.seed =
      static_cast<std::uint64_t>(json_integer(json_required(j, "seed", where), where, "field 'seed'", 0, INT64_MAX));
  s.tests = json_int_field(j, "tests", where);
  s.needle_sets = json_int_field(j, "needle_sets", where);
  s.lengths = json_int_field(j, "lengths", where);
  s.n_layer = json_int_field(j, "n_layer", where);
  s.n_head = json_int_field(j, "n_head", where);
  check_head_grid(s.n_layer, s.n_head, where);
  const json& ks = json_required(j, "top_k", where);
  if (!ks.is_array()) fail(where, "field 'top_k' is not a list");
  for (const auto& k : ks)
    s.top_ks.push_back({json_string_field(k, "label", where + ": top_k"), json_int_field(k, "k", where + ": top_k")});
  const json& jac = json_required(j, "expected_jaccard", where);
  for (const auto& k : s.top_ks) {
    s.expected_jaccard.push_back(number_or_null(jac, k.label, where + ": expected_jaccard"));
  }
  if (version >= 2) {
    const json& pr = json_required(j, "prediction", where);
    s.predict_sets = json_int_field(pr, "needle_sets", where + ": prediction");
    s.predict_t = number_or_null(pr, "t", where + ": prediction");
  }
  const json& heads = json_required(j, "heads", where);
  if (!heads.is_array()) fail(where, "field 'heads' is not a list");
  const std::string hw = where + ": heads";
  for (const auto& h : heads) {
    HeadUncertainty u;
    u.id = HeadId::parse(json_string_field(h, "head", hw), hw);
    if (u.id.layer >= s.n_layer || u.id.head >= s.n_head) fail(hw, "head " + u.id.key() + " is outside the grid");
    u.mean = json_number_field(h, "mean", hw);
    u.ci_low = json_number_field(h, "ci_low", hw);
    u.ci_high = json_number_field(h, "ci_high", hw);
    if (version >= 2) {
      u.predict_low = number_or_null(h, "predict_low", hw);
      u.predict_high = number_or_null(h, "predict_high", hw);
    }
    u.frequency = json_number_field(h, "frequency", hw);
    const json& p = json_required(h, "p_top", hw);
    for (const auto& k : s.top_ks)
      u.p_top.push_back(json_number(json_required(p, k.label, hw), hw, "p_top " + k.label));
    s.heads.push_back(std::move(u));
  }
  return s;
}

HeadStats read_head_stats(const std::string& path) { return head_stats_from_json(read_json_file(path), path); }

}  // namespace rhead::analysis
