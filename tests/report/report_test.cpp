// `rhead report`: a self-contained page from fake detect/niah run directories, checked
// as text and then opened in headless Chromium (scripts/browser_check.py), which fails
// on console errors or broken images and saves a screenshot under
// report_test_artifacts/ in the test's working directory.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "analysis/run_files.h"
#include "io/error.h"
#include "report/drawing.h"
#include "report/html_report.h"
#include "synthetic_runs.h"
#include "test_helpers.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using rhead::testing::quoted;
using rhead::testing::run_with_stderr;
using rhead::testing::ScratchDir;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Three runs side by side, as a user's experiment folder would hold them.
fs::path make_runs(const fs::path& root) {
  rhead::testing::write_detect_run(root / "runs" / "detect-gguf", 2, "niah-tiny-f32.gguf");
  rhead::testing::write_detect_run(root / "runs" / "detect-hf", 1, "hf-f32");
  rhead::testing::write_niah_run(root / "runs" / "niah-masking");
  return root / "runs";
}

const std::string kChromium = "/usr/bin/chromium";
const std::string kChecker = std::string(RHEAD_SOURCE_DIR) + "/scripts/browser_check.py";

TEST(Report, SelfContainedPageWithEveryFigure) {
  ScratchDir dir("rhead-report-");
  const fs::path runs = make_runs(dir.path());
  const fs::path page = dir.path() / "out" / "report.html";
  fs::create_directories(page.parent_path());
  const auto r = run_with_stderr(quoted(rhead::testing::rhead_binary()) + " report " + quoted(runs.string()) + " -o " +
                                 quoted(page.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string html = slurp(page);
  // Each detect run: heatmap, histogram, frequency, accuracy (4 x 2); niah: 2 grids +
  // sweep; comparison: 1.
  EXPECT_EQ(count(html, "<svg role=\"img\""), 12u);
  EXPECT_EQ(count(html, "<img"), 0u);
  EXPECT_EQ(count(html, "base64,"), 0u);
  EXPECT_EQ(count(html, "<?xml"), 0u);
  EXPECT_EQ(count(html, "<script"), 0u);
  EXPECT_EQ(count(html, "http://"), 0u);
  EXPECT_EQ(count(html, "https://"), 0u);
  EXPECT_NE(html.find("Detection run: detect-hf"), std::string::npos);
  EXPECT_NE(html.find("NIAH run: niah-masking"), std::string::npos);
  EXPECT_NE(html.find("Comparison of detection runs"), std::string::npos);
  EXPECT_NE(html.find("<th>architecture</th><td>llama</td>"), std::string::npos);
  EXPECT_NE(html.find("<th>prompt_template</th>"), std::string::npos);
  EXPECT_NE(html.find("<strong>6 retrieval heads</strong> of 18 (33.3%)"), std::string::npos);
  // Answers are escaped.
  EXPECT_NE(html.find("I do not &lt;know&gt; &amp; &quot;so&quot;"), std::string::npos);
  // Raw files linked relative to the page, and they exist there.
  const std::regex link("<a href=\"([^\"]+)\">");
  std::size_t links = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), link); it != std::sregex_iterator(); ++it) {
    ++links;
    const std::string target = (*it)[1];
    EXPECT_EQ(target.rfind("../runs/", 0), 0u) << target;
    EXPECT_TRUE(fs::exists(page.parent_path() / target)) << target;
  }
  EXPECT_EQ(links, 3u + 3u + 3u);  // results.jsonl, head_score.json, summary.json x2; niah 3 files
  // Each heatmap cell of a score map names its head, score and activation frequency.
  const auto run = rhead::analysis::read_detect_run((runs / "detect-hf").string());
  ASSERT_TRUE(run.scores);
  const auto& map = *run.scores;
  for (int l = 0; l < map.n_layer; ++l)
    for (int h = 0; h < map.n_head; ++h) {
      char title[160];
      std::snprintf(title, sizeof title, "<title>head %d-%d: score %.3f, activation frequency %.3f</title>", l, h,
                    map.mean_at(l, h), map.frequency[map.index(l, h)]);
      EXPECT_GE(count(html, title), 1u) << title;
    }
  // NIAH grid cells name their length, depth and score.
  EXPECT_NE(html.find("<title>length 300, depth 0%: score"), std::string::npos);
}

TEST(Report, HeadStatsAddIntervalsAndTheRankedFigure) {
  // A detect run with head_stats.json (computed here from its lines): the table shows each
  // head's interval and P(in top-K), and the ranked-heads figure is added.
  ScratchDir dir("rhead-report-");
  const fs::path run_dir = dir.path() / "one";
  rhead::testing::write_detect_run(run_dir, 3, "m.gguf");
  const auto run = rhead::analysis::read_detect_run(run_dir.string());
  std::vector<rhead::analysis::TestCluster> tests;
  for (const auto& t : run.tests)
    if (t.counted) tests.push_back({t.needle_id, static_cast<long long>(t.length)});
  const auto stats = rhead::analysis::head_stats(*run.scores, tests, 100, 9);
  rhead::testing::write_text(run_dir / "head_stats.json", rhead::analysis::to_json(stats).dump());
  const fs::path page = dir.path() / "one.html";
  rhead::report::write_report(run_dir.string(), page.string());
  const std::string html = slurp(page);
  EXPECT_EQ(count(html, "<svg role=\"img\""), 5u);  // heatmap, histogram, frequency, ranked, accuracy
  EXPECT_NE(html.find("ranked heads with bootstrap intervals"), std::string::npos);
  EXPECT_NE(html.find("<th>95% interval</th><th>another grid (95% prediction)</th><th>P(top-5)</th>"),
            std::string::npos);
  // The strongest head's row carries its interval.
  std::size_t best = 0;
  for (std::size_t i = 0; i < stats.heads.size(); ++i)
    if (stats.heads[i].mean > stats.heads[best].mean) best = i;
  // ... and its prediction interval for another grid beside it.
  ASSERT_GE(stats.predict_sets, 2);
  char cell[128];
  std::snprintf(cell, sizeof cell, "<td>%.3f – %.3f</td><td>%.3f – %.3f</td>", stats.heads[best].ci_low,
                stats.heads[best].ci_high, stats.heads[best].predict_low, stats.heads[best].predict_high);
  EXPECT_NE(html.find(cell), std::string::npos) << cell;
  EXPECT_NE(html.find("Expected Jaccard overlap of the top-K set"), std::string::npos);
  std::snprintf(cell, sizeof cell, "from the %d needle sets' means, %d degrees of freedom", stats.predict_sets,
                stats.predict_sets - 1);
  EXPECT_NE(html.find(cell), std::string::npos) << cell;

  // The same tests as if from one needle set: no prediction, and the table says so.
  for (auto& t : tests) t.needle = 0;
  const auto one = rhead::analysis::head_stats(*run.scores, tests, 100, 9);
  rhead::testing::write_text(run_dir / "head_stats.json", rhead::analysis::to_json(one).dump());
  rhead::report::write_report(run_dir.string(), page.string());
  const std::string single = slurp(page);
  std::snprintf(cell, sizeof cell, "<td>%.3f – %.3f</td><td>n/a</td>", one.heads[best].ci_low, one.heads[best].ci_high);
  EXPECT_NE(single.find(cell), std::string::npos) << cell;
  EXPECT_NE(single.find("n/a: it needs two needle sets with counted tests"), std::string::npos);
}

TEST(Report, SingleRunDirectoryAndErrors) {
  ScratchDir dir("rhead-report-");
  rhead::testing::write_detect_run(dir.path() / "one", 3, "m.gguf");
  const fs::path page = dir.path() / "one.html";
  rhead::report::write_report((dir.path() / "one").string(), page.string());
  const std::string html = slurp(page);
  EXPECT_EQ(count(html, "<svg role=\"img\""), 4u);
  EXPECT_EQ(count(html, "Comparison of detection runs"), 0u);
  EXPECT_FALSE(fs::exists(page.string() + ".tmp"));

  fs::create_directories(dir.path() / "empty");
  try {
    rhead::report::write_report((dir.path() / "empty").string(), page.string());
    FAIL() << "no error for a directory without runs";
  } catch (const rhead::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no rhead detect or niah output"), std::string::npos) << e.what();
  }
  rhead::testing::write_text(dir.path() / "broken" / "summary.json", "{\"heads\": [");
  const auto r = run_with_stderr(quoted(rhead::testing::rhead_binary()) + " report " +
                                 quoted((dir.path() / "broken").string()) + " -o " + quoted(page.string()));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_NE(r.output.find("summary.json: invalid JSON"), std::string::npos) << r.output;
}

// The page leads with the answer: the retrieval heads before any setting, the top-K vs
// random-K table (each seed with its heads) before the NIAH grids, the baseline first, and
// settings as tables rather than raw JSON.
TEST(Report, LeadsWithTheAnswerAndFoldsTheDetails) {
  ScratchDir dir("rhead-report-");
  const fs::path runs = make_runs(dir.path());
  rhead::testing::write_text(runs / "niah-masking" / "sweep.json",
                             R"({"top": [[0, 92.0], [1, 70.5], [2, 31.0]], "random": [[0, 92.0], [1, 23.1], [2, 88.5]],
                                 "random_seeds": [{"k": 1, "seed": 0, "score": 21.3, "heads": ["0-5"]},
                                                  {"k": 1, "seed": 1, "score": 38.0, "heads": ["1-3"]},
                                                  {"k": 1, "seed": 2, "score": 10.2, "heads": ["0-1"]},
                                                  {"k": 2, "seed": 0, "score": 88.5, "heads": ["0-0", "0-5"]}]})");
  const fs::path page = dir.path() / "report.html";
  rhead::report::write_report(runs.string(), page.string());
  const std::string html = slurp(page);
  // Detect: the retrieval-heads table comes before the settings, which are folded.
  const auto heads_at = html.find("<caption>Retrieval heads");
  const auto settings_at = html.find("<summary>Settings and model</summary>");
  ASSERT_NE(heads_at, std::string::npos);
  ASSERT_NE(settings_at, std::string::npos);
  EXPECT_LT(heads_at, settings_at);
  EXPECT_NE(html.find("<td>1</td><td>2-0</td>"), std::string::npos);  // rank 1 is the strongest head
  // NIAH: the sweep table with each seed's score and heads, and its spread, before the grids.
  const auto niah_at = html.find("NIAH run: niah-masking");
  const auto sweep_at = html.find("Top-K vs random-K masking", niah_at);
  const auto grids_at = html.find("<summary>All figures (NIAH grids", niah_at);
  ASSERT_NE(sweep_at, std::string::npos);
  EXPECT_LT(sweep_at, grids_at);
  EXPECT_NE(html.find("seed 1: <strong>38.0</strong> (1-3)"), std::string::npos);
  EXPECT_NE(html.find("10.2&ndash;38.0"), std::string::npos);
  // Conditions: the baseline first, no unlabelled summary row.
  const auto none_at = html.find("<td>none</td>", niah_at), top_at = html.find("<td>top-2</td>", niah_at);
  ASSERT_NE(none_at, std::string::npos);
  EXPECT_LT(none_at, top_at);
  EXPECT_EQ(html.find("<em>summary.json</em>"), std::string::npos);
  // Settings: nested values as tables, never a JSON dump.
  EXPECT_EQ(html.find("{&quot;"), std::string::npos);
}

// A detect run in which no test counted: the page says so and ranks no head, and the run is
// left out of the comparison.
TEST(Report, NoCountedTestSaysSoAndRanksNothing) {
  ScratchDir dir("rhead-report-");
  const fs::path run = dir.path() / "runs" / "empty";
  std::string lists;
  for (int l = 0; l < 3; ++l)
    for (int h = 0; h < 6; ++h)
      lists += std::string(lists.empty() ? "" : ",") + "\"" + std::to_string(l) + "-" + std::to_string(h) + "\": []";
  rhead::testing::write_text(run / "head_score.json", "{" + lists + "}");
  rhead::testing::write_text(
      run / "summary.json",
      R"({"n_layer": 3, "n_head": 6, "n_kv_head": 2, "tests": 6, "counted": 0, "niah_accuracy": 0,
                                 "heads": [], "no_counted_tests": true})");
  rhead::testing::write_detect_run(dir.path() / "runs" / "good", 1, "m.gguf");
  const fs::path page = dir.path() / "report.html";
  rhead::report::write_report((dir.path() / "runs").string(), page.string());
  const std::string html = slurp(page);
  const auto empty_at = html.find("Detection run: empty");
  ASSERT_NE(empty_at, std::string::npos);
  const auto section_end = html.find("</section>", empty_at);
  const std::string section = html.substr(empty_at, section_end - empty_at);
  EXPECT_NE(section.find("<strong>No result:</strong> no test counted"), std::string::npos) << section;
  EXPECT_EQ(section.find("<caption>Retrieval heads"), std::string::npos);
  EXPECT_EQ(html.find("Comparison of detection runs"), std::string::npos);  // one scored run: nothing to compare
}

TEST(ReportBrowser, FirstScreenAnswersTheRunsQuestion) {
  RHEAD_REQUIRE_FILE(kChromium);
  ScratchDir dir("rhead-report-");
  const fs::path runs = make_runs(dir.path());
  const fs::path artifacts = fs::absolute("report_test_artifacts");
  fs::create_directories(artifacts);
  for (const std::string run : {"detect-hf", "niah-masking"}) {
    const fs::path page = artifacts / (run + ".html");
    rhead::report::write_report((runs / run).string(), page.string());
    const fs::path shot = artifacts / (run + "_first_screen.png");
    const auto r = run_with_stderr("/usr/bin/python3 " + quoted(kChecker) + " " + quoted(page.string()) + " " +
                                   quoted(shot.string()) + " --first-screen");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const nlohmann::json j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
    const std::string text = j.at("first_screen_text");
    if (run == "detect-hf") {
      EXPECT_NE(text.find("6 retrieval heads"), std::string::npos) << text;
      EXPECT_NE(text.find("2-0"), std::string::npos) << text;
      EXPECT_NE(text.find("NIAH accuracy"), std::string::npos) << text;
    } else {
      EXPECT_NE(text.find("Top-K vs random-K masking"), std::string::npos) << text;
      EXPECT_NE(text.find("masking top-K vs random-K heads"), std::string::npos) << text;  // the figure's title
    }
    const auto img = rhead::report::read_png(shot.string());
    EXPECT_EQ(img.height, 1000);  // the first screen only
  }
}

TEST(ReportBrowser, RendersInHeadlessChromiumWithoutErrors) {
  RHEAD_REQUIRE_FILE(kChromium);
  ScratchDir dir("rhead-report-");
  const fs::path runs = make_runs(dir.path());
  const fs::path artifacts = fs::absolute("report_test_artifacts");
  fs::create_directories(artifacts);
  const fs::path page = artifacts / "report.html";
  rhead::report::write_report(runs.string(), page.string());
  // The raw files are temporary; the page itself must still render.
  const fs::path shot = artifacts / "report_screenshot.png";
  fs::remove(shot);
  const auto r = run_with_stderr("/usr/bin/python3 " + quoted(kChecker) + " " + quoted(page.string()) + " " +
                                 quoted(shot.string()) + " --min-images 12");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"svgs\": 12"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"errors\": []"), std::string::npos) << r.output;
  ASSERT_TRUE(fs::exists(shot)) << r.output;
  const auto img = rhead::report::read_png(shot.string());
  EXPECT_EQ(img.width, 1400);
  EXPECT_GT(img.height, 1000);
  std::cout << "screenshot: " << shot.string() << "\n";
}

// Resting the pointer on a heatmap cell in Chromium hits that cell, whose <title> the
// browser shows (tests/browser/heatmap_hover_check.js, driven by playwright-core).
TEST(ReportBrowser, HeatmapCellsShowTheirTooltipOnHover) {
  const std::string script = std::string(RHEAD_SOURCE_DIR) + "/tests/browser/heatmap_hover_check.js";
  for (const std::string& need : {std::string(RHEAD_SOURCE_DIR) + "/tests/browser/node_modules/playwright-core",
                                  kChromium, std::string("/usr/bin/node")}) {
    if (!fs::exists(need)) {
      if (rhead::testing::in_ci()) FAIL() << "missing " << need << " (scripts/setup.sh installs it)";
      GTEST_SKIP() << "missing " << need << " (scripts/setup.sh installs it)";
    }
  }
  ScratchDir dir("rhead-report-");
  rhead::testing::write_detect_run(dir.path() / "one", 3, "m.gguf");
  const fs::path page = dir.path() / "one.html";
  rhead::report::write_report((dir.path() / "one").string(), page.string());
  const auto r = run_with_stderr("node " + quoted(script) + " " + quoted(page.string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"ok\":true"), std::string::npos) << r.output;
  // The score heatmap (18 heads, annotated: the numbers must not take the hover) and the
  // accuracy grid.
  EXPECT_NE(r.output.find("\"head 2-0: score "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"length 300, depth 0%: score"), std::string::npos) << r.output;
}

TEST(ReportBrowser, CheckerFailsOnConsoleErrorsAndMissingImages) {
  RHEAD_REQUIRE_FILE(kChromium);
  ScratchDir dir("rhead-report-");
  const fs::path bad = dir.path() / "bad.html";
  rhead::testing::write_text(
      bad,
      "<!DOCTYPE html><html><head><title>bad</title></head><body>"
      "<img src=\"missing.png\" alt=\"gone\"><script>console.error('boom');</script></body></html>");
  const auto r = run_with_stderr("/usr/bin/python3 " + quoted(kChecker) + " " + quoted(bad.string()) + " " +
                                 quoted((dir.path() / "bad.png").string()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("console.error: boom"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"broken_images\": [\"gone\"]"), std::string::npos) << r.output;
}

}  // namespace
