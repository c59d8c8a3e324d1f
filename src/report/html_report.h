// One self-contained HTML page for rhead output directories: model info, run settings,
// summary tables, every figure inline (SVG: crisp at any zoom; resting the pointer on a
// heatmap cell shows its head, score and activation frequency), and links to the raw files.
// It loads nothing from the network and runs no script, so it opens offline.
#pragma once
#include <string>
#include <vector>

namespace rhead::report {

struct ReportOptions {
  std::string title;                  // default: "rhead report: <dir name>"
  bool allow_shape_mismatch = false;  // for the comparison of several detect runs
};

// Reads `dir` (a detect or niah output directory, or a directory whose immediate
// subdirectories are such outputs) and returns the page. Raw-file links are written
// relative to the directory of `output_path`. Throws rhead::Error when nothing is found.
std::string build_report_html(const std::string& dir, const std::string& output_path,
                              const ReportOptions& options = {});

// build_report_html, then write the page to output_path (via a temporary file + rename).
void write_report(const std::string& dir, const std::string& output_path, const ReportOptions& options = {});

}  // namespace rhead::report
