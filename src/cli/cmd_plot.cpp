// `rhead plot INPUT... -o DIR`: draws the figures each input calls for (score files,
// detect and niah output directories, sweep.json) in PNG and/or SVG.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "analysis/run_files.h"
#include "analysis/score_map.h"
#include "cli/command.h"
#include "io/error.h"
#include "report/figures.h"
#include "report/kv_sweep_figure.h"
#include "report/plots.h"

namespace rhead::cli {
namespace {

namespace fs = std::filesystem;

struct PlotOptions {
  std::vector<std::string> inputs;
  std::string output_dir = ".";
  std::string format = "png";
  std::vector<std::string> kinds;
  int scale = 2;
  bool allow_shape_mismatch = false;
};

std::string directory_label(const fs::path& p) {
  fs::path clean = p;
  if (clean.filename().empty()) clean = clean.parent_path();
  return clean.filename().string();
}

void run_plot(const PlotOptions& opt) {
  for (const auto& k : opt.kinds)
    if (std::find(report::figure_kinds().begin(), report::figure_kinds().end(), k) == report::figure_kinds().end())
      fail("--kind", "unknown figure kind \"" + k + "\"");
  if (opt.format != "png" && opt.format != "svg" && opt.format != "both")
    fail("--format", "expected png, svg or both, got \"" + opt.format + "\"");
  if (opt.scale < 1 || opt.scale > 8) fail("--scale", "expected 1..8");

  std::vector<report::NamedFigure> figures;
  std::vector<analysis::ScoreMap> maps;  // for pair / correlation figures
  for (const auto& input : opt.inputs) {
    const fs::path p(input);
    if (!fs::exists(p)) fail(input, "no such file or directory");
    if (fs::is_directory(p)) {
      const std::string label = directory_label(p);
      switch (analysis::detect_run_kind(input)) {
        case analysis::RunKind::detect: {
          const auto run = analysis::read_detect_run(input);
          for (auto& f : report::detect_run_figures(run, label)) figures.push_back(std::move(f));
          if (run.scores) {
            maps.push_back(*run.scores);
            maps.back().label = label;
          }
          break;
        }
        case analysis::RunKind::niah:
          for (auto& f : report::niah_run_figures(analysis::read_niah_run(input), label))
            figures.push_back(std::move(f));
          break;
        case analysis::RunKind::unknown:
          fail(input, "not an rhead detect or niah output directory (no summary.json / results.jsonl)");
      }
      continue;
    }
    if (p.filename() == "kv_sweep.json") {
      const std::string label = directory_label(p.parent_path());
      figures.push_back(
          {"sweep", report::file_stem(label) + "_kv_sweep", "",
           report::kv_sweep_plot(read_kv_sweep_points(input), label + ": KV policies", "NIAH mean score")});
      continue;
    }
    if (p.filename() == "sweep.json") {
      const auto sweep = analysis::read_sweep(input);
      const std::string label = directory_label(p.parent_path());
      figures.push_back({"sweep", report::file_stem(label) + "_sweep", "",
                         report::sweep_plot(sweep, label + ": masking top-K vs random-K heads")});
      continue;
    }
    if (p.extension() == ".jsonl" && analysis::detect_run_kind(p.parent_path().string()) == analysis::RunKind::niah) {
      analysis::NiahRun run;
      run.tests = analysis::read_niah_results(input);
      for (auto& f : report::niah_run_figures(run, directory_label(p.parent_path()))) figures.push_back(std::move(f));
      continue;
    }
    analysis::ScoreMap map = analysis::load_score_map(input);
    for (auto& f : report::score_map_figures(map)) figures.push_back(std::move(f));
    maps.push_back(std::move(map));
  }
  // Comparison figures need maps of one shape; when shapes differ they are skipped unless
  // asked for by --kind (then the mismatch is an error) or allowed explicitly.
  bool same_shape = true;
  for (const auto& m : maps) same_shape = same_shape && m.n_layer == maps[0].n_layer && m.n_head == maps[0].n_head;
  const bool comparison_requested = std::any_of(opt.kinds.begin(), opt.kinds.end(),
                                                [](const std::string& k) { return k == "pair" || k == "correlation"; });
  if (same_shape || opt.allow_shape_mismatch || comparison_requested) {
    for (auto& f : report::comparison_figures(maps, opt.allow_shape_mismatch)) figures.push_back(std::move(f));
  } else if (maps.size() > 1) {
    std::cerr << "note: score maps of different shapes; no pair/correlation figure (see --allow-shape-mismatch)\n";
  }

  fs::create_directories(opt.output_dir);
  int written = 0;
  for (const auto& f : figures) {
    if (!opt.kinds.empty() && std::find(opt.kinds.begin(), opt.kinds.end(), f.kind) == opt.kinds.end()) continue;
    const fs::path stem = fs::path(opt.output_dir) / f.name;
    if (opt.format == "png" || opt.format == "both") {
      report::write_png(f.drawing, stem.string() + ".png", opt.scale);
      std::cout << stem.string() << ".png\n";
      ++written;
    }
    if (opt.format == "svg" || opt.format == "both") {
      report::write_svg(f.drawing, stem.string() + ".svg");
      std::cout << stem.string() << ".svg\n";
      ++written;
    }
  }
  if (written == 0) fail(opt.inputs.front(), "no figure of the requested kinds can be drawn from these inputs");
}

CLI::App* add_command(CLI::App& app, PlotOptions& o) {
  auto* cmd = app.add_subcommand(
      "plot",
      "Draw figures: per score map a layer x head heatmap, score histogram and frequency scatter; per NIAH run "
      "length x depth heatmaps and the masking sweep; for two maps side-by-side heatmaps, for more a correlation "
      "matrix");
  cmd->add_option("inputs", o.inputs,
                  "head_score JSON files, rhead detect/niah output directories, results.jsonl, summary.json, "
                  "sweep.json or kv_sweep.json")
      ->required()
      ->expected(1, -1);
  cmd->add_option("-o,--output", o.output_dir, "directory for the figures")->capture_default_str();
  cmd->add_option("--format", o.format, "png, svg or both")->capture_default_str();
  cmd->add_option("--kind", o.kinds,
                  "only these figures: heatmap, histogram, frequency, ranked, accuracy, niah, sweep (masking and KV "
                  "sweeps), support, pair, correlation")
      ->delimiter(',');
  cmd->add_option("--scale", o.scale, "PNG pixels per figure unit (2 suits print)")->capture_default_str();
  cmd->add_flag("--allow-shape-mismatch", o.allow_shape_mismatch,
                "pair/correlation figures over the common heads of maps of different shapes");
  return cmd;
}

const Command<PlotOptions> command("plot", add_command, run_plot, Compute::files_only);

}  // namespace
}  // namespace rhead::cli
