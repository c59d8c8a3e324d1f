// Every figure kind renders to a PNG libpng can read and an SVG Python's XML parser
// accepts, with the titles and numbers the paper's figures carry; `rhead plot` writes them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <functional>

#include "analysis/head_stats.h"
#include "analysis/run_files.h"
#include "analysis/score_map.h"
#include "conditions/kv_conditions.h"
#include "report/figures.h"
#include "report/kv_sweep_figure.h"
#include "report/label_placer.h"
#include "report/plots.h"
#include "synthetic_runs.h"
#include "test_helpers.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using namespace rhead::report;
using rhead::testing::ScratchDir;
using rhead::testing::shared_path;

std::string score_file(const std::string& name) { return shared_path("data/head_scores/" + name + ".json"); }

// Saves both formats and checks them; returns the SVG text.
std::string check_figure(const Drawing& d, const fs::path& dir, const std::string& name) {
  const std::string png = (dir / (name + ".png")).string(), svg = (dir / (name + ".svg")).string();
  write_png(d, png);
  write_svg(d, svg);
  const RgbImage img = read_png(png);
  EXPECT_EQ(img.width, d.width) << name;
  EXPECT_EQ(img.height, d.height) << name;
  EXPECT_GE(d.width, 300) << name;
  const auto parsed = rhead::testing::parse_svg(svg);
  EXPECT_EQ(parsed.exit_code, 0) << name << ": " << parsed.output;
  EXPECT_EQ(parsed.output.rfind("svg ", 0), 0u) << name << ": " << parsed.output;
  // Nothing is drawn outside the canvas (text is estimated by its box).
  for (const auto& s : d.shapes) {
    if (s.kind != Shape::Kind::text || s.vertical) continue;
    const double w = text_width(s.text, s.font_size);
    const double x0 = s.anchor == Anchor::start ? s.x : s.anchor == Anchor::middle ? s.x - w / 2 : s.x - w;
    EXPECT_GE(x0, 0) << name << ": \"" << s.text << "\"";
    EXPECT_LE(x0 + w, d.width) << name << ": \"" << s.text << "\"";
  }
  return to_svg(d);
}

TEST(Plots, PaperFiguresFromPublishedScores) {
  RHEAD_REQUIRE_FILE(score_file("llama-2-7b-80k"));
  RHEAD_REQUIRE_FILE(score_file("Qwen1.5-14B"));
  RHEAD_REQUIRE_FILE(score_file("Qwen1.5-14B-Chat"));
  ScratchDir dir("rhead-plots-");
  const auto llama = rhead::analysis::read_head_score_json(score_file("llama-2-7b-80k"));
  const auto qwen = rhead::analysis::read_head_score_json(score_file("Qwen1.5-14B"));
  const auto chat = rhead::analysis::read_head_score_json(score_file("Qwen1.5-14B-Chat"));

  const std::string heat = check_figure(head_score_heatmap(llama), dir.path(), "heat");
  EXPECT_NE(heat.find(">layer</text>"), std::string::npos);
  EXPECT_NE(heat.find(">retrieval score</text>"), std::string::npos);
  // 32 x 32 cells plus background, frame and colour bar.
  EXPECT_GT(head_score_heatmap(llama).shapes.size(), 1024u);

  const std::string hist = check_figure(score_histogram(llama), dir.path(), "hist");
  EXPECT_NE(hist.find("33 of 1024 heads (3.2%) score &gt; 0.1"), std::string::npos);
  EXPECT_NE(hist.find(">33 (3.2%)</text>"), std::string::npos);

  const std::string freq = check_figure(frequency_scatter(llama), dir.path(), "freq");
  EXPECT_NE(freq.find(">16-19</text>"), std::string::npos);  // strongest head labelled

  const std::string pair = check_figure(pair_heatmaps(qwen, chat), dir.path(), "pair");
  EXPECT_NE(pair.find("Pearson r = 0.893"), std::string::npos);

  const auto matrix = rhead::analysis::correlation_matrix({llama, qwen, chat}, true);
  const std::string corr = check_figure(correlation_heatmap(matrix), dir.path(), "corr");
  EXPECT_NE(corr.find(">0.89</text>"), std::string::npos);
}

TEST(Plots, RankedHeadsDrawEachIntervalAsAnErrorBar) {
  // A synthetic detect run (3 needle sets x 5 lengths), its bootstrap statistics, the figure.
  ScratchDir dir("rhead-plots-");
  rhead::testing::write_detect_run(dir.path() / "detect", 3, "niah-tiny-f32.gguf");
  auto run = rhead::analysis::read_detect_run((dir.path() / "detect").string());
  ASSERT_TRUE(run.scores);
  std::vector<rhead::analysis::TestCluster> tests;
  for (const auto& t : run.tests)
    if (t.counted) tests.push_back({t.needle_id, static_cast<long long>(t.length)});
  const auto stats = rhead::analysis::head_stats(*run.scores, tests, 200, 5);
  const Drawing d = ranked_heads(stats, "ranked", 10);
  check_figure(d, dir.path(), "ranked");
  // Ten heads: ten points, ten vertical bars from ci_low to ci_high, each with two caps.
  std::vector<std::size_t> order(stats.heads.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](auto a, auto b) { return stats.heads[a].mean > stats.heads[b].mean; });
  std::size_t circles = 0;
  std::vector<double> bar_lengths, band_lengths;  // the vertical bars and prediction bands, in rank order
  for (const auto& s : d.shapes) {
    circles += s.kind == Shape::Kind::circle;
    if (s.kind == Shape::Kind::line && s.x == s.x2 && s.stroke_width == 1.5 && !s.dashed)
      bar_lengths.push_back(std::abs(s.y2 - s.y));
    if (s.kind == Shape::Kind::line && s.x == s.x2 && s.stroke_width == 7) band_lengths.push_back(std::abs(s.y2 - s.y));
  }
  EXPECT_EQ(circles, 10u);
  ASSERT_EQ(bar_lengths.size(), 10u);
  // Each bar spans its head's interval on one scale: pixels per unit of score agree.
  const auto& top = stats.heads[order[0]];
  double scale = NAN;
  int spread = 0;
  for (std::size_t r = 0; r < 10; ++r) {
    const auto& h = stats.heads[order[r]];
    if (h.ci_high - h.ci_low < 1e-9) {
      EXPECT_NEAR(bar_lengths[r], 0.0, 1e-9);
      continue;
    }
    ++spread;
    const double px_per_unit = bar_lengths[r] / (h.ci_high - h.ci_low);
    if (std::isnan(scale)) scale = px_per_unit;
    EXPECT_NEAR(px_per_unit, scale, 1e-6 * scale) << h.id.key();
  }
  EXPECT_GE(spread, 3);  // the synthetic scores vary, so most intervals have a width
  // Each head's light band spans its prediction interval on the same scale (cut at the axis top).
  ASSERT_GE(stats.predict_sets, 2);
  ASSERT_EQ(band_lengths.size(), 10u);
  double top_value = 0;
  for (std::size_t r = 0; r < 10; ++r)
    top_value = std::max({top_value, stats.heads[order[r]].mean, stats.heads[order[r]].ci_high});
  int bands = 0;
  for (std::size_t r = 0; r < 10; ++r) {
    const auto& h = stats.heads[order[r]];
    if (h.predict_high > 2 * top_value) continue;  // cut at the axis
    ++bands;
    EXPECT_NEAR(band_lengths[r], scale * (h.predict_high - h.predict_low), 1e-6 * scale) << h.id.key();
  }
  EXPECT_GE(bands, 3);
  const std::string svg = to_svg(d);
  EXPECT_NE(svg.find(">" + top.id.key() + "</text>"), std::string::npos);
  EXPECT_NE(svg.find("95% intervals, 200 cluster-bootstrap replicates (3 needle sets x 5 lengths); light bands: "
                     "prediction for a grid of 3 other needle sets"),
            std::string::npos);
}

TEST(Plots, NiahHeatmapAndSweep) {
  ScratchDir dir("rhead-plots-");
  rhead::testing::write_niah_run(dir.path() / "niah");
  const auto run = rhead::analysis::read_niah_run((dir.path() / "niah").string());
  const auto grids = rhead::analysis::niah_grids(run.tests);
  ASSERT_EQ(grids.size(), 2u);
  char mean[32];
  std::snprintf(mean, sizeof mean, "mean score %.1f", grids[0].mean_score);
  const std::string svg = check_figure(niah_heatmap(grids[0]), dir.path(), "niah");
  EXPECT_NE(svg.find(mean), std::string::npos);
  EXPECT_NE(svg.find(">context length (haystack: length - buffer)</text>"), std::string::npos);
  // Red at 0, green at 100.
  const ColorScale c = niah_colors();
  EXPECT_GT(c.at(0).r, 150);
  EXPECT_LT(c.at(0).g, 100);
  EXPECT_GT(c.at(1).g, 120);
  EXPECT_LT(c.at(1).r, 100);
  const std::string sweep = check_figure(sweep_plot(run.sweep), dir.path(), "sweep");
  EXPECT_NE(sweep.find(">top-K retrieval heads</text>"), std::string::npos);
  EXPECT_NE(sweep.find(">random K heads</text>"), std::string::npos);
  EXPECT_NE(sweep.find("<polyline"), std::string::npos);
}

TEST(Plots, SupportShareDistributions) {
  // Passed tests: 3 of 4 at 1.0, one at 0.55; failed: 0.0, 0.0, 0.15.
  const Drawing d = support_share_histogram({1.0, 1.0, 1.0, 0.55}, {0.0, 0.0, 0.15}, 1.0);
  const std::string svg = to_svg(d);
  EXPECT_NE(svg.find("support share of passed and failed tests (AUROC 1.000)"), std::string::npos);
  EXPECT_NE(svg.find("<title>passed, support share 0.9-1.0: 3 tests (75.0%)</title>"), std::string::npos);
  EXPECT_NE(svg.find("<title>passed, support share 0.5-0.6: 1 tests (25.0%)</title>"), std::string::npos);
  EXPECT_NE(svg.find("<title>failed, support share 0.0-0.1: 2 tests (66.7%)</title>"), std::string::npos);
  EXPECT_NE(svg.find("<title>failed, support share 0.1-0.2: 1 tests (33.3%)</title>"), std::string::npos);
  EXPECT_NE(svg.find("passed (4)"), std::string::npos);
  // No failed tests: no AUROC in the title, still a figure.
  EXPECT_EQ(to_svg(support_share_histogram({0.5}, {}, std::nan(""))).find("AUROC"), std::string::npos);
}

TEST(PlotCli, InfersFiguresFromInputs) {
  ScratchDir dir("rhead-plots-");
  rhead::testing::write_detect_run(dir.path() / "hf", 1, "hf-f32");
  rhead::testing::write_detect_run(dir.path() / "gguf", 2, "niah-tiny-f32.gguf");
  rhead::testing::write_niah_run(dir.path() / "niah");
  const fs::path out = dir.path() / "figs";
  const auto r = rhead::testing::run_with_stderr(rhead::testing::quoted(rhead::testing::rhead_binary()) + " plot " +
                                                 rhead::testing::quoted((dir.path() / "hf").string()) + " " +
                                                 rhead::testing::quoted((dir.path() / "gguf").string()) + " " +
                                                 rhead::testing::quoted((dir.path() / "niah").string()) + " -o " +
                                                 rhead::testing::quoted(out.string()) + " --format both --scale 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* name : {"hf_heatmap", "hf_histogram", "hf_frequency", "hf_accuracy", "gguf_heatmap", "niah_niah",
                           "niah_niah_top-2", "niah_sweep", "hf_vs_gguf"}) {
    EXPECT_TRUE(fs::exists(out / (std::string(name) + ".png"))) << name << "\n" << r.output;
    EXPECT_TRUE(fs::exists(out / (std::string(name) + ".svg"))) << name;
  }
  EXPECT_GT(read_png((out / "hf_vs_gguf.png").string()).width, 600);

  const auto only = rhead::testing::run_with_stderr(rhead::testing::quoted(rhead::testing::rhead_binary()) + " plot " +
                                                    rhead::testing::quoted((dir.path() / "niah").string()) +
                                                    " --kind heatmap -o " + rhead::testing::quoted(out.string()));
  EXPECT_EQ(only.exit_code, 1) << only.output;
  EXPECT_NE(only.output.find("no figure of the requested kinds"), std::string::npos) << only.output;
  const auto bad = rhead::testing::run_with_stderr(rhead::testing::quoted(rhead::testing::rhead_binary()) + " plot " +
                                                   rhead::testing::quoted(dir.path().string()) + " -o " +
                                                   rhead::testing::quoted(out.string()));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("not an rhead detect or niah output directory"), std::string::npos) << bad.output;
}

}  // namespace

namespace {

// The KV sweep: one line per (window, kind of full heads), each starting at its window's
// K = 0 point, points labelled with K; `rhead plot DIR --kind sweep` redraws it from the run
// folder's kv_sweep.json.
TEST(Plots, KvSweepHasOneLabelledLinePerWindowAndKind) {
  ScratchDir dir("rhead-plots-");
  const fs::path run = dir.path() / "kv";
  rhead::testing::write_niah_run(run);
  std::remove((run / "sweep.json").c_str());
  rhead::testing::write_text(run / "kv_sweep.json", R"({
    "retrieval": [{"window": 16, "full_k": 2, "conditions": 1, "kv_kept_pct": 40, "query_kept_pct": 30, "mean_score": 30},
                  {"window": 32, "full_k": 2, "conditions": 1, "kv_kept_pct": 50, "query_kept_pct": 40, "mean_score": 35}],
    "random": [{"window": 16, "full_k": 2, "conditions": 3, "kv_kept_pct": 60, "query_kept_pct": 30, "mean_score": 0},
               {"window": 32, "full_k": 2, "conditions": 3, "kv_kept_pct": 70, "query_kept_pct": 40, "mean_score": 24.7}],
    "none": [{"window": 16, "full_k": 0, "conditions": 1, "kv_kept_pct": 10, "query_kept_pct": 10, "mean_score": 0},
             {"window": 32, "full_k": 0, "conditions": 1, "kv_kept_pct": 20, "query_kept_pct": 20, "mean_score": 25}],
    "full": [{"window": 0, "full_k": 0, "conditions": 1, "kv_kept_pct": 100, "query_kept_pct": 100, "mean_score": 37}]})");
  const auto points = rhead::read_kv_sweep_points((run / "kv_sweep.json").string());
  const Drawing d = kv_sweep_plot(points, "kv", "NIAH mean score");
  const std::string svg = check_figure(d, dir.path(), "kv_sweep");
  for (const char* name :
       {"top-K heads full, window 16", "top-K heads full, window 32", "random-K heads full, window 16",
        "random-K heads full, window 32", "full cache (no policy)"})
    EXPECT_NE(svg.find(std::string(">") + name + "</text>"), std::string::npos) << name;
  int lines = 0, k_labels = 0;
  for (const auto& s : d.shapes) {
    lines += s.kind == Shape::Kind::polyline;
    k_labels += s.kind == Shape::Kind::text && s.text == "K=2";
  }
  EXPECT_EQ(lines, 3);     // the two solid top-K lines and the full-cache point (random-K lines are dashed segments)
  EXPECT_EQ(k_labels, 4);  // every K = 2 point labelled
  const auto r = rhead::testing::run_with_stderr(
      rhead::testing::quoted(rhead::testing::rhead_binary()) + " plot " + rhead::testing::quoted(run.string()) +
      " --kind sweep --format svg -o " + rhead::testing::quoted((dir.path() / "out").string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir.path() / "out" / "kv_kv_sweep.svg")) << r.output;
}

}  // namespace

namespace {

std::vector<LabelBox> text_boxes(const Drawing& d, const std::function<bool(const Shape&)>& which) {
  std::vector<LabelBox> boxes;
  for (const auto& s : d.shapes)
    if (s.kind == Shape::Kind::text && which(s)) {
      const double w = text_width(s.text, s.font_size);
      const double x = s.anchor == Anchor::end ? s.x - w : s.anchor == Anchor::middle ? s.x - w / 2 : s.x;
      boxes.push_back(text_box(x, s.y, s.text, s.font_size));
    }
  return boxes;
}

}  // namespace

TEST(LabelPlacer, PointsInAClusterGetLabelsBesideThemThatOverlapNothing) {
  // Nine markers 6 px apart: every label must find a spot clear of the others and of every marker.
  Drawing d;
  LabelPlacer placer({0, 0, 400, 300});
  std::vector<std::pair<double, double>> points;
  for (int i = 0; i < 9; ++i) points.emplace_back(200 + 6 * (i % 3), 150 + 6 * (i / 3));
  for (const auto& [x, y] : points) placer.avoid_marker(x, y, 4);
  for (std::size_t i = 0; i < points.size(); ++i)
    EXPECT_TRUE(placer.place(d, points[i].first, points[i].second, 4, "12-" + std::to_string(i), 14, kBlack)) << i;
  const auto& boxes = placer.placed();
  ASSERT_EQ(boxes.size(), points.size());
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    for (std::size_t j = i + 1; j < boxes.size(); ++j) EXPECT_FALSE(boxes[i].overlaps(boxes[j])) << i << " " << j;
    for (const auto& [x, y] : points) EXPECT_FALSE(boxes[i].overlaps({x - 4, y - 4, x + 4, y + 4})) << i;
    // Near its own point: the box's nearest edge within 50 px.
    const double nx = std::clamp(points[i].first, boxes[i].x0, boxes[i].x1);
    const double ny = std::clamp(points[i].second, boxes[i].y0, boxes[i].y1);
    EXPECT_LT(std::hypot(nx - points[i].first, ny - points[i].second), 50) << i;
  }
  // A lone point's label takes the first spot: right of it, vertically centred on it.
  LabelPlacer lone({0, 0, 400, 300});
  ASSERT_TRUE(lone.place(d, 200, 150, 4, "3-1", 14, kBlack));
  EXPECT_DOUBLE_EQ(lone.placed()[0].x0, 200 + 4 + 3);
  EXPECT_NEAR((lone.placed()[0].y0 + lone.placed()[0].y1) / 2, 150, 0.5);
  // A label that cannot fit anywhere is dropped, not drawn over the others.
  LabelPlacer tiny({0, 0, 30, 20});
  EXPECT_FALSE(tiny.place(d, 15, 10, 4, "a long label", 14, kBlack));
}

TEST(Plots, FrequencyScatterLabelsSitBesideTheirPointsAndOverlapNothing) {
  // Eight retrieval heads crowded into one corner of the plot (mean 0.5 +- 0.01, frequency
  // 0.9 +- 0.01): the six labelled heads' names must overlap neither each other, nor any red
  // marker, nor the note in the corner.
  rhead::analysis::ScoreMap map;
  map.label = "crowded";
  map.n_layer = 4;
  map.n_head = 4;
  map.mean = rhead::HeadGrid<double>(4, 4);
  map.frequency = rhead::HeadGrid<double>(4, 4);
  for (int i = 0; i < 8; ++i) {
    map.mean[static_cast<std::size_t>(2 * i)] = 0.5 + 0.0025 * i;
    map.frequency[static_cast<std::size_t>(2 * i)] = 0.9 + 0.0025 * (i % 4);
  }
  const Drawing d = frequency_scatter(map);
  std::vector<LabelBox> markers;
  for (const auto& s : d.shapes)
    if (s.kind == Shape::Kind::circle && s.r >= 5) markers.push_back({s.x - s.r, s.y - s.r, s.x + s.r, s.y + s.r});
  ASSERT_EQ(markers.size(), 8u);
  const auto labels =
      text_boxes(d, [](const Shape& s) { return s.text.find('-') != std::string::npos && s.text.size() <= 5; });
  const auto notes =
      text_boxes(d, [](const Shape& s) { return s.text.find("retrieval heads (red") != std::string::npos; });
  ASSERT_EQ(labels.size(), 6u);
  ASSERT_EQ(notes.size(), 1u);
  const LabelBox note = notes[0];
  for (std::size_t i = 0; i < labels.size(); ++i) {
    for (std::size_t j = i + 1; j < labels.size(); ++j) EXPECT_FALSE(labels[i].overlaps(labels[j])) << i << " " << j;
    for (const auto& m : markers) EXPECT_FALSE(labels[i].overlaps(m)) << i;
    EXPECT_FALSE(labels[i].overlaps(note)) << i;
    double nearest = 1e9;  // every label sits within 50 px of some retrieval head's marker
    for (const auto& m : markers) {
      const double cx = (m.x0 + m.x1) / 2, cy = (m.y0 + m.y1) / 2;
      nearest = std::min(nearest, std::hypot(std::clamp(cx, labels[i].x0, labels[i].x1) - cx,
                                             std::clamp(cy, labels[i].y0, labels[i].y1) - cy));
    }
    EXPECT_LT(nearest, 50) << i;
  }
}

// A qrhead score file holds calibrated scores below 0: its figures name the method, and a
// negative head is drawn in a colour of its own, not in the colour of a head at 0.
TEST(Plots, QrheadMapsAreNamedAndNegativeScoresShowBelowZero) {
  ScratchDir dir("rhead-plots-qrhead-");
  const std::string path = (dir.path() / "head_score.qrhead.json").string();
  rhead::testing::write_text(path, R"({"0-0": [-0.4, -0.2], "0-1": [0.0, 0.0], "1-0": [0.5, 0.7], "1-1": [0.1, 0.1]})");
  const auto map = rhead::analysis::load_score_map(path);
  EXPECT_EQ(map.method, "qrhead");
  EXPECT_EQ(map.score_name(), "qrhead score");

  const Drawing heat = head_score_heatmap(map);
  const std::string svg = check_figure(heat, dir.path(), "qrhead-heat");
  EXPECT_NE(svg.find(">qrhead score</text>"), std::string::npos);
  EXPECT_EQ(svg.find("retrieval score"), std::string::npos);
  // The four cells are the filled rects of the grid's cell size: the negative head (-0.3), the
  // zero head and the positive head all differ, and the colour bar reaches below 0.
  std::map<std::pair<int, int>, Color> cell;  // colour by (row, column) from the annotation order
  std::vector<Color> fills;
  for (const auto& s : heat.shapes)
    if (s.kind == Shape::Kind::rect && s.has_fill && s.w > 20 && s.h > 20 && std::abs(s.w - s.h) < 40)
      fills.push_back(s.fill);
  ASSERT_GE(fills.size(), 4u);
  auto same = [](Color a, Color b) { return a.r == b.r && a.g == b.g && a.b == b.b; };
  // Cells are drawn row-major: 0-0 (negative), 0-1 (zero), 1-0 (positive), 1-1.
  const size_t first = fills.size() - 4;
  EXPECT_FALSE(same(fills[first], fills[first + 1])) << "a negative head has the colour of 0";
  EXPECT_FALSE(same(fills[first + 1], fills[first + 2]));
  EXPECT_NE(svg.find(">-0.50</text>"), std::string::npos) << "the colour bar reaches below 0";

  const std::string hist = check_figure(score_histogram(map), dir.path(), "qrhead-hist");
  EXPECT_NE(hist.find(">mean qrhead score</text>"), std::string::npos);
  EXPECT_NE(hist.find(">&lt;= 0</text>"), std::string::npos);

  // The copy score keeps its name.
  const std::string copy_path = (dir.path() / "head_score.json").string();
  rhead::testing::write_text(copy_path, R"({"0-0": [0.4], "0-1": [0.0]})");
  EXPECT_EQ(rhead::analysis::load_score_map(copy_path).score_name(), "retrieval score");
}
