// `rhead compare A B [C ...]`: correlation, top-K overlap and differing heads of
// retrieval-score maps (reference JSON files or rhead detect outputs).
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "analysis/score_map.h"
#include "analysis/stats.h"
#include "cli/command.h"
#include "cli/common.h"
#include "io/error.h"

namespace rhead::cli {
namespace {

struct CompareOptions {
  std::vector<std::string> inputs;
  bool json = false;
  bool allow_shape_mismatch = false;
  std::vector<int> ks = {10, 20, 50};
  double threshold = kRetrievalThreshold;
  int show = 10;
};

std::string fixed(double v, int decimals = 4) {
  if (std::isnan(v)) return "nan";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, v);
  return buffer;
}

void print_map_line(const analysis::ScoreMap& m, double threshold) {
  std::cout << m.label << ": " << m.source << " (" << m.n_layer << " layers x " << m.n_head << " heads";
  if (m.test_count()) std::cout << ", " << m.test_count() << " tests";
  std::cout << ", " << analysis::count_above(m, threshold) << " heads > " << threshold << ")\n";
}

void print_strong(const std::vector<analysis::StrongHead>& heads, const std::string& strong, const std::string& weak,
                  double threshold, int show, bool a_is_strong) {
  std::cout << "strong in " << strong << " only (> " << threshold << " there, <= " << threshold << " in " << weak
            << "): " << heads.size() << (heads.empty() ? "" : ", largest difference first") << "\n";
  if (!heads.empty()) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "  %-8s %10s %10s %10s\n", "head", "score in", "score in", "difference");
    std::cout << buf;
    const std::string s_label = strong.size() > 10 ? strong.substr(0, 10) : strong;
    const std::string w_label = weak.size() > 10 ? weak.substr(0, 10) : weak;
    std::snprintf(buf, sizeof buf, "  %-8s %10s %10s\n", "", s_label.c_str(), w_label.c_str());
    std::cout << buf;
  }
  for (std::size_t i = 0; i < heads.size() && static_cast<int>(i) < show; ++i) {
    const auto& h = heads[i];
    const double s = a_is_strong ? h.a_mean : h.b_mean, w = a_is_strong ? h.b_mean : h.a_mean;
    char buf[160];
    std::snprintf(buf, sizeof buf, "  %-8s %10s %10s %10s\n", h.head.key().c_str(), fixed(s, 3).c_str(),
                  fixed(w, 3).c_str(), fixed(s - w, 3).c_str());
    std::cout << buf;
  }
  if (static_cast<int>(heads.size()) > show) std::cout << "  ... " << heads.size() - show << " more\n";
}

void print_matrix(const std::string& name, const analysis::CorrelationMatrix& m,
                  const std::vector<std::vector<double>>& values) {
  std::size_t width = 8;
  for (const auto& l : m.labels) width = std::max(width, l.size() + 6);
  std::cout << name << "\n" << std::string(width, ' ');
  for (std::size_t j = 0; j < m.labels.size(); ++j) std::cout << "  [" << j << "]   ";
  std::cout << "\n";
  for (std::size_t i = 0; i < m.labels.size(); ++i) {
    std::cout << "[" << i << "] " << m.labels[i] << std::string(width - m.labels[i].size() - 4, ' ');
    for (double v : values[i]) {
      const std::string s = fixed(v, 3);
      std::cout << std::string(8 - std::min<std::size_t>(8, s.size()), ' ') << s;
    }
    std::cout << "\n";
  }
}

void run_compare(const CompareOptions& opt) {
  std::vector<analysis::ScoreMap> maps;
  for (const auto& input : opt.inputs) maps.push_back(analysis::load_score_map(input));
  // A map with no scored test (a run where no test counted) has no ranking to compare:
  // its correlations would be NaN and its "top" heads arbitrary.
  for (const auto& m : maps)
    if (analysis::count_above(m, 0.0) == 0)
      fail(m.source, "no head scores above 0 (no counted test, or empty score lists): nothing to compare");
  // A KV-head map (a DuoAttention pattern) is compared per KV head: each query-head map is
  // seen through its best query head per group, kv-plan's rule.
  for (const auto& kv : maps)
    if (kv.kv_heads) {
      for (auto& m : maps)
        if (!m.kv_heads && m.n_head != kv.n_head && m.n_head % kv.n_head == 0) {
          m = analysis::kv_head_map(m, kv.n_head);
          std::cerr << "note: " << m.label << " compared per KV head (" << kv.n_head
                    << " groups; a KV head scores its best query head), like " << kv.label << "\n";
        }
      break;
    }
  // Same labels (e.g. two head_score.json files) would make the output ambiguous.
  for (std::size_t i = 0; i < maps.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (maps[i].label == maps[j].label) maps[i].label = maps[i].source;

  std::vector<analysis::PairComparison> pairs;
  for (std::size_t i = 0; i < maps.size(); ++i)
    for (std::size_t j = i + 1; j < maps.size(); ++j)
      pairs.push_back(analysis::compare_pair(maps[i], maps[j], opt.allow_shape_mismatch, opt.ks, opt.threshold));

  if (opt.json) {
    nlohmann::json out;
    out["inputs"] = nlohmann::json::array();
    for (const auto& m : maps)
      out["inputs"].push_back({{"label", m.label},
                               {"source", m.source},
                               {"n_layer", m.n_layer},
                               {"n_head", m.n_head},
                               {"tests", m.test_count()},
                               {"above_threshold", analysis::count_above(m, opt.threshold)}});
    out["pairs"] = nlohmann::json::array();
    for (const auto& p : pairs) out["pairs"].push_back(analysis::to_json(p));
    if (maps.size() > 2)
      out["matrix"] = analysis::to_json(analysis::correlation_matrix(maps, opt.allow_shape_mismatch));
    std::cout << out.dump(2) << "\n";
    return;
  }

  for (const auto& m : maps) print_map_line(m, opt.threshold);
  if (maps.size() > 2) {
    const auto matrix = analysis::correlation_matrix(maps, opt.allow_shape_mismatch);
    std::cout << "\n";
    print_matrix("Pearson correlation of mean scores:", matrix, matrix.pearson);
    std::cout << "\n";
    print_matrix("Spearman correlation of mean scores:", matrix, matrix.spearman);
    return;
  }
  const auto& p = pairs.front();
  std::cout << "\nheads compared: " << p.heads << "\n"
            << "Pearson r:  " << fixed(p.pearson) << "\n"
            << "Spearman:   " << fixed(p.spearman) << "\n"
            << "top-K overlap:\n";
  for (const auto& o : p.overlaps)
    std::cout << "  K=" << o.k << ": " << o.shared << " shared, Jaccard " << fixed(o.jaccard, 3) << "\n";
  print_strong(p.only_a, p.a_label, p.b_label, p.threshold, opt.show, true);
  print_strong(p.only_b, p.b_label, p.a_label, p.threshold, opt.show, false);
}

CLI::App* add_command(CLI::App& app, CompareOptions& o) {
  auto* cmd = app.add_subcommand(
      "compare",
      "Compare retrieval-score maps: Pearson/Spearman of per-head means, top-K overlap, heads strong in one only");
  cmd->add_option("inputs", o.inputs,
                  "head_score JSON files or rhead detect outputs (directory, results.jsonl, summary.json)")
      ->required()
      ->expected(2, -1);
  cmd->add_flag("--json", o.json, "machine-readable output");
  cmd->add_flag("--allow-shape-mismatch", o.allow_shape_mismatch,
                "compare only the heads both maps have when their shapes differ");
  cmd->add_option("--top", o.ks, "K values of the top-K overlap")
      ->delimiter(',')
      ->check(at_least(1))
      ->capture_default_str();
  cmd->add_option("--threshold", o.threshold, "score above which a head is a retrieval head")
      ->check(in_range(0, 1))
      ->capture_default_str();
  cmd->add_option("--show", o.show, "heads listed per 'strong in one only' list")->capture_default_str();
  return cmd;
}

const Command<CompareOptions> command("compare", add_command, run_compare, Compute::files_only);

}  // namespace
}  // namespace rhead::cli
