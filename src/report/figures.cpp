// Figure selection for score maps and run directories.
#include "report/figures.h"

#include <filesystem>

#include "report/kv_sweep_figure.h"

#include <cstdio>

#include "analysis/stats.h"
#include "report/plots.h"

namespace rhead::report {

using analysis::ScoreMap;

const std::vector<std::string>& figure_kinds() {
  static const std::vector<std::string> kinds = {"heatmap", "histogram", "frequency", "ranked", "accuracy",
                                                 "support", "niah",      "sweep",     "pair",   "correlation"};
  return kinds;
}

std::string file_stem(const std::string& label) {
  std::string out;
  for (char c : label) {
    const bool safe =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    out += safe ? c : '_';
  }
  return out.empty() ? "figure" : out;
}

std::vector<NamedFigure> score_map_figures(const ScoreMap& map) {
  const std::string stem = file_stem(map.label);
  std::vector<NamedFigure> out;
  out.push_back({"heatmap", stem + "_heatmap",
                 "Mean retrieval score of every head (layers as rows, query heads as columns).",
                 head_score_heatmap(map)});
  out.push_back({"histogram", stem + "_histogram",
                 "Heads by mean retrieval score: zero, up to 0.1, and above 0.1 (retrieval heads).",
                 score_histogram(map)});
  bool has_frequency = false;
  for (double f : map.frequency) has_frequency = has_frequency || f > 0;
  if (has_frequency)
    out.push_back({"frequency", stem + "_frequency",
                   "Share of tests in which each head copied at least one token, against its mean score.",
                   frequency_scatter(map)});
  return out;
}

std::vector<NamedFigure> detect_run_figures(const analysis::DetectRun& run, const std::string& label) {
  std::vector<NamedFigure> out;
  if (run.scores) {
    ScoreMap map = *run.scores;
    map.label = label;
    out = score_map_figures(map);
  }
  if (run.stats && !run.stats->heads.empty())
    out.push_back({"ranked", file_stem(label) + "_ranked",
                   "The strongest heads ranked by mean retrieval score, with their 95% cluster-bootstrap intervals "
                   "(needle sets and lengths resampled) as error bars.",
                   ranked_heads(*run.stats, label + ": ranked heads with bootstrap intervals")});
  if (!run.tests.empty()) {
    analysis::NiahGrid grid = analysis::detect_accuracy_grid(run.tests);
    out.push_back({"accuracy", file_stem(label) + "_accuracy",
                   "ROUGE-1 recall of the answers of the detection tests (all needle sets) by context length and "
                   "needle depth.",
                   niah_heatmap(grid, label + ": detection answers")});
  }
  return out;
}

std::vector<NamedFigure> niah_run_figures(const analysis::NiahRun& run, const std::string& label) {
  std::vector<NamedFigure> out;
  const std::string stem = file_stem(label);
  for (const auto& grid : analysis::niah_grids(run.tests)) {
    const std::string suffix = grid.mask.empty() ? "" : "_" + file_stem(grid.mask);
    const std::string title = label + (grid.mask.empty() ? "" : ", mask " + grid.mask);
    out.push_back({"niah", stem + "_niah" + suffix,
                   "NIAH score by context length and needle depth" +
                       (grid.mask.empty() ? std::string(".") : " with heads masked (" + grid.mask + ").") +
                       " The context length is the --lengths value: the prompt's haystack holds it minus --buffer "
                       "(default 200) tokens.",
                   niah_heatmap(grid, title)});
  }
  for (const auto& split : analysis::support_splits(run.tests)) {
    const std::string suffix = split.mask.empty() ? "" : "_" + file_stem(split.mask);
    out.push_back(
        {"support", stem + "_support" + suffix,
         "Share of answer tokens the top heads copied from the context, for passed and failed tests" +
             (split.mask.empty() ? std::string(".") : " (" + split.mask + ")."),
         support_share_histogram(split.passed, split.failed, analysis::auroc(split.passed, split.failed),
                                 label + (split.mask.empty() ? "" : ", mask " + split.mask) + ": support share")});
  }
  if (!run.sweep.empty())
    out.push_back({"sweep", stem + "_sweep",
                   "NIAH mean score when masking the K strongest retrieval heads or K random heads.",
                   sweep_plot(run.sweep, label + ": masking top-K vs random-K heads")});
  // The KV-policy sweep, redrawn from kv_sweep.json (the score is the NIAH score).
  if (!run.dir.empty() && std::filesystem::exists(std::filesystem::path(run.dir) / "kv_sweep.json"))
    out.push_back(
        {"sweep", stem + "_kv_sweep",
         "NIAH mean score against the KV cache kept: one line per window and kind of full heads (top-K "
         "retrieval heads or K random heads), each point labelled with its K.",
         kv_sweep_plot(read_kv_sweep_points(run.dir + "/kv_sweep.json"), label + ": KV policies", "NIAH mean score")});
  return out;
}

std::vector<NamedFigure> comparison_figures(const std::vector<ScoreMap>& maps, bool allow_shape_mismatch) {
  std::vector<NamedFigure> out;
  if (maps.size() == 2) {
    out.push_back({"pair", file_stem(maps[0].label) + "_vs_" + file_stem(maps[1].label),
                   "Retrieval scores of two models on one colour scale.",
                   pair_heatmaps(maps[0], maps[1], allow_shape_mismatch)});
  } else if (maps.size() > 2) {
    out.push_back({"correlation", "correlation_matrix", "Pearson correlation of the per-head mean scores.",
                   correlation_heatmap(analysis::correlation_matrix(maps, allow_shape_mismatch))});
  }
  return out;
}

}  // namespace rhead::report
