// Which figures a set of inputs calls for: the per-map figures of a score file, the
// figures of a detect or niah run directory, and comparison figures of several maps.
// `rhead plot` saves them; `rhead report` inlines them.
#pragma once
#include <string>
#include <vector>

#include "analysis/run_files.h"
#include "analysis/score_map.h"
#include "report/drawing.h"

namespace rhead::report {

struct NamedFigure {
  std::string kind;     // heatmap, histogram, frequency, accuracy, niah, sweep, pair, correlation
  std::string name;     // file stem, e.g. "llama-2-7b-80k_heatmap"
  std::string caption;  // one sentence for reports
  Drawing drawing;
};

// Every kind name above, for option checking.
const std::vector<std::string>& figure_kinds();

// heatmap, histogram and (when the map has frequencies) frequency.
std::vector<NamedFigure> score_map_figures(const analysis::ScoreMap& map);
// Score-map figures plus the ROUGE-recall grid of the tests ("accuracy").
std::vector<NamedFigure> detect_run_figures(const analysis::DetectRun& run, const std::string& label);
// One NIAH heatmap per mask, and the masking sweep when present.
std::vector<NamedFigure> niah_run_figures(const analysis::NiahRun& run, const std::string& label);
// Two maps: side-by-side heatmaps. More: the correlation matrix.
std::vector<NamedFigure> comparison_figures(const std::vector<analysis::ScoreMap>& maps, bool allow_shape_mismatch);

// Makes a label safe as a file-name stem: anything but [A-Za-z0-9._-] becomes '_'.
std::string file_stem(const std::string& label);

}  // namespace rhead::report
