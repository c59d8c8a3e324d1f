// The figures of the paper as Drawings: layer x head heatmaps, the score-bucket
// histogram (Figure 3), activation frequency against mean score (Figure 4),
// side-by-side heatmaps of a base/derived pair (Figure 5), NIAH length x depth
// heatmaps and masking sweeps. Save any of them with save_figure (drawing.h).
#pragma once
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "analysis/head_stats.h"
#include "analysis/run_files.h"
#include "analysis/score_map.h"
#include "analysis/stats.h"
#include "report/drawing.h"

namespace rhead::report {

// Piecewise-linear colour scale over t in [0, 1].
struct ColorScale {
  std::vector<std::pair<double, Color>> stops;  // ascending t
  Color at(double t) const;
};
ColorScale score_colors();        // white -> blue -> dark navy, for retrieval scores
ColorScale niah_colors();         // red -> yellow -> green, for NIAH scores 0..100
ColorScale correlation_colors();  // blue (-1) -> white (0) -> red (+1)

// A general heatmap: values[row][column], row 0 drawn at the top.
struct HeatmapSpec {
  std::string title;
  std::string x_label, y_label;
  std::vector<std::string> column_labels, row_labels;  // thinned automatically when crowded
  std::vector<std::vector<double>> values;             // NaN cells are drawn hatched grey ("no data")
  double min = 0, max = 1;                             // colour range
  ColorScale colors = score_colors();
  std::string colorbar_label;
  bool square_cells = true;
  bool annotate = false;  // print each value in its cell (small grids)
  int annotate_decimals = 2;
  // [row][column] text shown when the pointer rests on a cell (SVG <title>; PNG ignores
  // it); empty: none.
  std::vector<std::vector<std::string>> cell_tooltips;
  // (row, column) cells outlined and joined in order by a line (e.g. an argmax path).
  std::vector<std::pair<int, int>> path;
};

Drawing heatmap(const HeatmapSpec& spec);

// Two heatmaps side by side on one colour range (spec.values of each; shared colorbar
// taken from `left`).
Drawing side_by_side(const HeatmapSpec& left, const HeatmapSpec& right, const std::string& title);

struct LineSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in order
  Color color{};
  bool dashed = false;
  // Single observations behind the line (e.g. each random seed): small dots, and a bar from
  // the lowest to the highest at each x (the spread).
  std::vector<std::pair<double, double>> samples;
  std::vector<std::string> labels;  // optional, one per point: drawn beside it
};

struct LinePlotSpec {
  std::string title, x_label, y_label;
  std::vector<LineSeries> series;
  double y_min = NAN, y_max = NAN;  // NaN: fit the data
};

Drawing line_plot(const LinePlotSpec& spec);

// Categorical palette for series (cycles).
Color series_color(std::size_t index);

// --- Paper figures from score maps and run files ---

// Mean retrieval score of each head; layers as rows, heads as columns.
Drawing head_score_heatmap(const analysis::ScoreMap& map, const std::string& title = "");
// Figure 3: heads per bucket 0, (0, 0.1], > 0.1.
Drawing score_histogram(const analysis::ScoreMap& map, const std::string& title = "");
// Figure 4: activation frequency (y) against mean score (x), one point per head.
Drawing frequency_scatter(const analysis::ScoreMap& map, const std::string& title = "");
// The top_n heads by mean score, ranked, each with its bootstrap interval as an error bar
// (analysis/head_stats.h).
Drawing ranked_heads(const analysis::HeadStats& stats, const std::string& title = "", int top_n = 30);
// Figure 5: two maps side by side on a shared scale; the title gives their Pearson r.
Drawing pair_heatmaps(const analysis::ScoreMap& a, const analysis::ScoreMap& b, bool allow_shape_mismatch = false);
// Pearson matrix of several maps.
Drawing correlation_heatmap(const analysis::CorrelationMatrix& matrix);
// NIAH length x depth grid, red (0) to green (100), mean score in the title.
Drawing niah_heatmap(const analysis::NiahGrid& grid, const std::string& title = "");
// Masking sweep: NIAH mean score against K, one line per series ("top", "random").
// Distributions of support_share (share of answer tokens the top heads copied) for passed
// and failed tests: ten bins over [0, 1], bars as the share of each group's tests, so
// groups of different sizes compare; the AUROC of support_share (passed vs failed) in the
// title when finite.
Drawing support_share_histogram(const std::vector<double>& passed, const std::vector<double>& failed, double auroc,
                                const std::string& title = "");

Drawing sweep_plot(const std::vector<analysis::SweepSeries>& series, const std::string& title = "");

}  // namespace rhead::report
