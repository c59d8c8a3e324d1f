// HTML report writer. The page is plain HTML + CSS; figures are inline SVG so that the file
// can be mailed or archived on its own.
#include "report/html_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "analysis/run_files.h"
#include "analysis/score_map.h"
#include "analysis/stats.h"
#include "io/atomic_file.h"
#include "io/error.h"
#include "records/detect_summary.h"
#include "report/figures.h"
#include "report/html_text.h"

namespace rhead::report {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string escape(const std::string& text) { return html_escape(text); }

std::string fixed(double v, int decimals) {
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, v);
  return buffer;
}

std::string display(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    std::ostringstream s;
    s << v.get<double>();
    return s.str();
  }
  return v.dump();
}

// A value as a reader wants it: text as is, lists of plain values joined, objects as nested
// tables (never raw JSON), null as "none".
void value_html(std::ostream& out, const json& v) {
  if (v.is_null()) {
    out << "<em>none</em>";
  } else if (v.is_object()) {
    if (v.empty()) {
      out << "<em>none</em>";
      return;
    }
    out << "<table class=\"kv nested\">";
    for (auto it = v.begin(); it != v.end(); ++it) {
      out << "<tr><th>" << escape(it.key()) << "</th><td>";
      value_html(out, it.value());
      out << "</td></tr>";
    }
    out << "</table>";
  } else if (v.is_array()) {
    if (v.empty()) {
      out << "<em>none</em>";
      return;
    }
    const bool plain = std::none_of(v.begin(), v.end(), [](const json& e) { return e.is_structured(); });
    if (plain) {
      std::string joined;
      for (const auto& e : v) joined += (joined.empty() ? "" : ", ") + display(e);
      out << escape(joined);
      return;
    }
    out << "<ol class=\"nested\">";
    for (const auto& e : v) {
      out << "<li>";
      value_html(out, e);
      out << "</li>";
    }
    out << "</ol>";
  } else {
    out << escape(display(v));
  }
}

void key_value_table(std::ostream& out, const std::string& caption, const json& object) {
  out << "<table class=\"kv\"><caption>" << escape(caption) << "</caption>\n";
  if (!object.is_object() || object.empty())
    out << "<tr><td colspan=\"2\"><em>not recorded</em></td></tr>\n";
  else
    for (auto it = object.begin(); it != object.end(); ++it) {
      out << "<tr><th>" << escape(it.key()) << "</th><td>";
      value_html(out, it.value());
      out << "</td></tr>\n";
    }
  out << "</table>\n";
}

// The figure as inline SVG: crisp text at any zoom, and each heatmap cell's <title> shows on
// hover. (rhead plot still writes PNG files beside the SVG ones.)
void figure_html(std::ostream& out, const NamedFigure& figure) {
  std::string svg = to_svg(figure.drawing);
  // Inside HTML the SVG needs neither the XML declaration nor the namespace attribute.
  if (svg.rfind("<?xml", 0) == 0) svg.erase(0, svg.find('\n') + 1);
  const std::string xmlns = " xmlns=\"http://www.w3.org/2000/svg\"";
  if (const auto at = svg.find(xmlns); at != std::string::npos) svg.erase(at, xmlns.size());
  out << "<figure id=\"fig-" << escape(figure.name) << "\" data-kind=\"" << escape(figure.kind) << "\">"
      << "<svg role=\"img\" aria-label=\"" << escape(figure.name) << "\"" << svg.substr(4);
  if (!figure.caption.empty()) out << "<figcaption>" << escape(figure.caption) << "</figcaption>";
  out << "</figure>\n";
}

// Link target of a raw file, relative to the report's folder when possible.
std::string link_to(const fs::path& file, const fs::path& report_dir) {
  std::error_code ec;
  fs::path rel = fs::relative(fs::absolute(file), fs::absolute(report_dir), ec);
  if (ec || rel.empty()) return "file://" + fs::absolute(file).string();
  return rel.generic_string();
}

void raw_files(std::ostream& out, const fs::path& dir, const fs::path& report_dir) {
  out << "<h3>Raw files</h3><ul class=\"raw\">\n";
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    const auto size = fs::file_size(f);
    out << "<li><a href=\"" << escape(link_to(f, report_dir)) << "\">" << escape(f.filename().string())
        << "</a> <span class=\"size\">("
        << (size >= 10240 ? std::to_string(size / 1024) + " KiB" : std::to_string(size) + " bytes")
        << ")</span></li>\n";
  }
  out << "</ul>\n";
}

std::string run_name(const fs::path& dir) {
  fs::path clean = dir;
  if (clean.filename().empty()) clean = clean.parent_path();
  return clean.filename().string();
}

// summary.json's "methods" (rhead detect --methods): one row per pair of methods.
void method_agreement_table(std::ostream& out, const std::vector<analysis::MethodAgreement>& pairs) {
  const auto corr = [](double v) { return std::isfinite(v) ? fixed(v, 3) : std::string("n/a"); };
  out << "<table class=\"agreement\"><caption>Agreement between detection methods (per-head means; "
         "docs/head_methods.md)</caption>\n<tr><th>methods</th><th>Spearman</th><th>Pearson</th>";
  for (const auto& o : pairs.front().top_k) out << "<th>top-" << o.k << " shared</th>";
  out << "</tr>\n";
  for (const auto& p : pairs) {
    out << "<tr><td>" << escape(p.a) << " vs " << escape(p.b) << "</td><td>" << corr(p.spearman) << "</td><td>"
        << corr(p.pearson) << "</td>";
    for (const auto& o : p.top_k) out << "<td>" << o.shared << " / " << o.k << "</td>";
    out << "</tr>\n";
  }
  out << "</table>\n";
}

void detect_section(std::ostream& out, const analysis::DetectRun& run, const std::string& name,
                    const fs::path& report_dir) {
  out << "<section class=\"run\"><h2>Detection run: " << escape(name) << "</h2>\n";
  int tests = 0, counted = 0;
  if (run.summary) {
    tests = run.summary->tests, counted = run.summary->counted;
  } else {
    tests = static_cast<int>(run.tests.size());
    counted =
        static_cast<int>(std::count_if(run.tests.begin(), run.tests.end(), [](const auto& t) { return t.counted; }));
  }
  const bool scored = counted > 0 && run.scores;
  // The answer first: which heads retrieve, how sparse they are, how accurate the model was.
  out << "<div class=\"answer\">\n";
  if (!scored) {
    out << "<p class=\"empty\"><strong>No result:</strong> " << escape(kNoCountedTestsNote) << " (" << tests
        << (tests == 1 ? " test" : " tests") << " ran.)</p>\n";
  } else {
    const auto& m = *run.scores;
    const auto above = analysis::count_above(m);
    const auto order = heads_by_score(m.mean);
    out << "<p class=\"lead\"><strong>" << above << " retrieval " << (above == 1 ? "head" : "heads") << "</strong> of "
        << m.head_count() << " (" << fixed(100.0 * above / m.head_count(), 1) << "%) score above "
        << kRetrievalThreshold << "; NIAH accuracy " << fixed(100.0 * counted / std::max(tests, 1), 1) << "% ("
        << counted << " of " << tests << " tests counted: answer ROUGE-1 recall &gt; 50).</p>\n";
    // With head_stats.json of the same grid: each head's bootstrap interval and P(in top-K).
    const analysis::HeadStats* st = run.stats && run.stats->heads.size() == m.head_count() ? &*run.stats : nullptr;
    out << "<table class=\"heads\"><caption>Retrieval heads (score &gt; " << kRetrievalThreshold
        << "; the strongest 10 when fewer)</caption>\n"
        << "<tr><th>rank</th><th>head</th><th>mean score</th>";
    if (st) {
      out << "<th>" << fixed(100 * st->level, 0) << "% interval</th><th>another grid (" << fixed(100 * st->level, 0)
          << "% prediction)</th>";
      for (const auto& k : st->top_ks) out << "<th>P(top-" << escape(k.label) << ")</th>";
    }
    out << "<th>frequency</th></tr>\n";
    const std::size_t shown = std::max<std::size_t>(above, std::min<std::size_t>(10, order.size()));
    for (std::size_t i = 0; i < std::min(shown, order.size()); ++i) {
      if (m.mean[order[i]] <= 0) break;  // a head scoring 0 is no retrieval head
      const auto id = m.head_at(order[i]);
      out << "<tr" << (m.mean[order[i]] > kRetrievalThreshold ? " class=\"strong\"" : "") << "><td>" << i + 1
          << "</td><td>" << id.key() << "</td><td>" << fixed(m.mean[order[i]], 4) << "</td>";
      if (st) {
        const auto& h = st->heads[order[i]];
        out << "<td>" << fixed(h.ci_low, 3) << " – " << fixed(h.ci_high, 3) << "</td><td>"
            << (std::isfinite(h.predict_low) ? fixed(h.predict_low, 3) + " – " + fixed(h.predict_high, 3)
                                             : std::string("n/a"))
            << "</td>";
        for (double p : h.p_top) out << "<td>" << fixed(p, 2) << "</td>";
      }
      out << "<td>" << fixed(m.frequency[order[i]], 3) << "</td></tr>\n";
    }
    out << "</table>\n<p class=\"note\">mean score: the head's retrieval score averaged over the counted tests; "
           "frequency: the share of counted tests in which it copied at least one needle token.</p>\n";
    if (st) {
      out << "<p>Expected Jaccard overlap of the top-K set between two bootstrap draws:";
      for (std::size_t k = 0; k < st->top_ks.size(); ++k)
        out << (k ? "," : "") << " top-" << escape(st->top_ks[k].label) << " (K = " << st->top_ks[k].k << ") "
            << (std::isfinite(st->expected_jaccard[k]) ? fixed(st->expected_jaccard[k], 3) : std::string("n/a"));
      out << ". Intervals: " << st->valid_replicates << " replicates of a two-way cluster bootstrap over "
          << st->needle_sets << " needle sets and " << st->lengths << " lengths (seed " << st->seed
          << "). Another grid: where the mean of a grid with other needle sets and the same lengths and depths "
          << "should fall (";
      if (st->predict_sets >= 2)
        out << "a Student t prediction from the " << st->predict_sets << " needle sets' means, " << st->predict_sets - 1
            << (st->predict_sets == 2 ? " degree" : " degrees") << " of freedom; wide when there are few";
      else
        out << "n/a: it needs two needle sets with counted tests";
      out << "; docs/head_stats.md).</p>\n";
    }
  }
  const auto figures = detect_run_figures(run, name);
  auto first_heatmap = std::find_if(figures.begin(), figures.end(), [](const auto& f) { return f.kind == "heatmap"; });
  if (scored && first_heatmap != figures.end()) {
    out << "<div class=\"figures\">\n";
    figure_html(out, *first_heatmap);
    out << "</div>\n";
  }
  if (!run.agreement.empty()) method_agreement_table(out, run.agreement);
  out << "</div>\n";
  // Details, folded.
  out << "<details><summary>Settings and model</summary>\n<div class=\"tables\">\n";
  key_value_table(out, "Settings", run.summary ? run.summary->settings : json::object());
  key_value_table(out, "Model", run.summary ? run.summary->model : json::object());
  out << "</div></details>\n";
  out << "<details><summary>All figures</summary>\n<div class=\"figures\">\n";
  for (const auto& f : figures)
    if (!(scored && &f == &*first_heatmap)) figure_html(out, f);
  out << "</div></details>\n";
  if (!run.tests.empty()) {
    out << "<details><summary>All " << run.tests.size() << " tests</summary>\n<table class=\"tests\">\n"
        << "<tr><th>test</th><th>needle</th><th>length</th><th>depth</th><th>ROUGE-1 recall</th><th>counted</th>"
           "<th>answer</th></tr>\n";
    for (const auto& t : run.tests)
      out << "<tr><td>" << escape(t.test_id) << "</td><td>" << t.needle_id << "</td><td>" << t.length << "</td><td>"
          << t.depth << "</td><td>" << fixed(t.rouge_recall, 1) << "</td><td>" << (t.counted ? "yes" : "no")
          << "</td><td>" << escape(t.answer) << "</td></tr>\n";
    out << "</table></details>\n";
  }
  out << "<details><summary>Raw files</summary>\n";
  raw_files(out, run.dir, report_dir);
  out << "</details>\n</section>\n";
}

// One row of "Scores by condition": from summary.json's "masks" (rhead niah) or, for lines of
// the reference tool, from the grids.
struct ConditionRow {
  std::string label, kind;
  int k = 0;
  uint64_t seed = 0;
  int tests = 0, passed = -1;  // -1: not recorded
  double mean = 0;
  std::map<std::string, int> errors;
};

std::vector<ConditionRow> condition_rows(const analysis::NiahRun& run) {
  std::vector<ConditionRow> rows;
  const json masks = run.summary ? run.summary->raw.value("masks", json::array()) : json::array();
  if (masks.is_array() && !masks.empty()) {
    for (const auto& m : masks) {
      if (!m.is_object()) continue;
      ConditionRow r;
      r.label = m.value("label", std::string("none"));
      r.kind = m.value("kind", std::string("none"));
      r.k = m.value("k", 0);
      r.seed = m.value("seed", uint64_t{0});
      r.tests = m.value("tests", 0);
      r.passed = m.value("passed", -1);
      r.mean = m.value("mean_score", 0.0);
      if (m.contains("errors") && m["errors"].is_object())
        for (auto it = m["errors"].begin(); it != m["errors"].end(); ++it)
          if (it.value().is_number_integer()) r.errors[it.key()] = it.value().get<int>();
      rows.push_back(std::move(r));
    }
  } else {
    for (const auto& g : analysis::niah_grids(run.tests)) {
      ConditionRow r;
      r.label = g.mask.empty() ? "none" : g.mask;
      r.kind = g.mask.empty() || g.mask == "none" ? "none" : "";
      r.tests = g.tests;
      r.mean = g.mean_score;
      rows.push_back(std::move(r));
    }
  }
  auto kind_rank = [](const std::string& k) { return k == "none" ? 0 : k == "top" ? 1 : k == "random" ? 2 : 3; };
  std::stable_sort(rows.begin(), rows.end(), [&](const ConditionRow& a, const ConditionRow& b) {
    if ((a.label == "none") != (b.label == "none")) return a.label == "none";  // the baseline first
    if (kind_rank(a.kind) != kind_rank(b.kind)) return kind_rank(a.kind) < kind_rank(b.kind);
    if (a.k != b.k) return a.k < b.k;
    return a.seed < b.seed;
  });
  return rows;
}

void sweep_table(std::ostream& out, const std::vector<analysis::SweepSeries>& sweep) {
  const analysis::SweepSeries* top = nullptr;
  const analysis::SweepSeries* random = nullptr;
  for (const auto& s : sweep) (s.name == "top" ? top : random) = &s;
  std::vector<double> ks;
  for (const auto& s : sweep)
    for (const auto& p : s.points) ks.push_back(p.first);
  std::sort(ks.begin(), ks.end());
  ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
  auto at = [](const analysis::SweepSeries* s, double k) -> std::string {
    if (!s) return "";
    auto it = std::find_if(s->points.begin(), s->points.end(), [k](const auto& p) { return p.first == k; });
    return it == s->points.end() ? "" : fixed(it->second, 1);
  };
  out << "<table class=\"heads sweep\"><caption>Top-K vs random-K masking: mean NIAH score</caption>\n"
         "<tr><th>K</th><th>top-K</th><th>random-K (mean)</th><th>spread (min&ndash;max)</th><th>each seed: score "
         "(heads masked)</th></tr>\n";
  for (double k : ks) {
    std::vector<const analysis::SweepSeries::Seed*> seeds;
    if (random)
      for (const auto& sd : random->seeds)
        if (sd.k == k) seeds.push_back(&sd);
    std::string spread;
    if (!seeds.empty()) {
      const auto [lo, hi] =
          std::minmax_element(seeds.begin(), seeds.end(), [](auto* a, auto* b) { return a->score < b->score; });
      spread = fixed((*lo)->score, 1) + "&ndash;" + fixed((*hi)->score, 1);
    }
    out << "<tr><td>" << fixed(k, 0) << "</td><td>" << at(top, k) << "</td><td>" << at(random, k) << "</td><td>"
        << spread << "</td><td>";
    for (const auto* sd : seeds) {
      std::string heads;
      for (const auto& h : sd->heads) heads += (heads.empty() ? "" : ", ") + h;
      out << "<div>seed " << sd->seed << ": <strong>" << fixed(sd->score, 1) << "</strong> (" << escape(heads)
          << ")</div>";
    }
    out << "</td></tr>\n";
  }
  out << "</table>\n";
}

void niah_section(std::ostream& out, const analysis::NiahRun& run, const std::string& name,
                  const fs::path& report_dir) {
  out << "<section class=\"run\"><h2>NIAH run: " << escape(name) << "</h2>\n<div class=\"answer\">\n";
  const auto figures = niah_run_figures(run, name);
  const auto sweep_figure =
      std::find_if(figures.begin(), figures.end(), [](const auto& f) { return f.kind == "sweep"; });
  // The answer first: top-K vs random-K (figure and table with each seed), then the conditions.
  if (!run.sweep.empty() || sweep_figure != figures.end()) {
    out << "<div class=\"tables\">\n";
    if (sweep_figure != figures.end()) {
      out << "<div class=\"figures\">\n";
      figure_html(out, *sweep_figure);
      out << "</div>\n";
    }
    if (!run.sweep.empty()) sweep_table(out, run.sweep);
    out << "</div>\n";
  }
  const auto rows = condition_rows(run);
  const bool has_passed = std::any_of(rows.begin(), rows.end(), [](const auto& r) { return r.passed >= 0; });
  out << "<table class=\"heads\"><caption>Scores by condition (the unmasked baseline first; passed: score &gt; "
         "50)</caption>\n"
         "<tr><th>condition</th><th>tests</th><th>mean score</th>";
  if (has_passed) out << "<th>passed</th><th>incomplete</th><th>hallucination</th><th>wrong extraction</th>";
  out << "</tr>\n";
  for (const auto& r : rows) {
    out << "<tr" << (r.label == "none" ? " class=\"baseline\"" : "") << "><td>" << escape(r.label) << "</td><td>"
        << r.tests << "</td><td>" << fixed(r.mean, 1) << "</td>";
    if (has_passed) {
      auto err = [&](const char* k) {
        auto it = r.errors.find(k);
        return it == r.errors.end() ? std::string() : std::to_string(it->second);
      };
      out << "<td>" << (r.passed >= 0 ? std::to_string(r.passed) : "") << "</td><td>" << err("incomplete")
          << "</td><td>" << err("hallucination") << "</td><td>" << err("wrong_extraction") << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</table>\n</div>\n";
  out << "<details><summary>Settings and model</summary>\n<div class=\"tables\">\n";
  key_value_table(out, "Settings", run.summary ? run.summary->settings : json::object());
  key_value_table(out, "Model", run.summary ? run.summary->model.raw : json::object());
  out << "</div></details>\n";
  out << "<details><summary>All figures (NIAH grids and support by condition)</summary>\n<div class=\"figures\">\n";
  for (auto it = figures.begin(); it != figures.end(); ++it)
    if (it != sweep_figure) figure_html(out, *it);
  out << "</div></details>\n<details><summary>Raw files</summary>\n";
  raw_files(out, run.dir, report_dir);
  out << "</details>\n</section>\n";
}

void comparison_section(std::ostream& out, const std::vector<analysis::ScoreMap>& maps, bool allow_shape_mismatch) {
  out << "<section class=\"run\"><h2>Comparison of detection runs</h2>\n";
  bool same_shape = true;
  for (const auto& m : maps) same_shape = same_shape && m.n_layer == maps[0].n_layer && m.n_head == maps[0].n_head;
  if (!same_shape && !allow_shape_mismatch) {
    out << "<p>The runs have different numbers of layers or heads; no comparison.</p></section>\n";
    return;
  }
  out << "<table class=\"heads\"><caption>Pairs</caption>\n<tr><th>A</th><th>B</th><th>Pearson r</th><th>Spearman</th>"
         "<th>top-10 shared</th><th>top-20 shared</th><th>top-50 shared</th></tr>\n";
  for (std::size_t i = 0; i < maps.size(); ++i)
    for (std::size_t j = i + 1; j < maps.size(); ++j) {
      const auto c = analysis::compare_pair(maps[i], maps[j], allow_shape_mismatch);
      out << "<tr><td>" << escape(c.a_label) << "</td><td>" << escape(c.b_label) << "</td><td>" << fixed(c.pearson, 4)
          << "</td><td>" << fixed(c.spearman, 4) << "</td>";
      for (const auto& o : c.overlaps)
        out << "<td>" << o.shared << " / " << o.k << " (J " << fixed(o.jaccard, 2) << ")</td>";
      out << "</tr>\n";
    }
  out << "</table>\n<div class=\"figures\">\n";
  for (const auto& f : comparison_figures(maps, allow_shape_mismatch)) figure_html(out, f);
  out << "</div></section>\n";
}

constexpr const char* kStyle = R"(
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1300px;padding:0 1em;color:#222}
h1{font-size:1.6em;border-bottom:2px solid #ddd;padding-bottom:.3em}
h2{font-size:1.3em;margin-top:2em;border-bottom:1px solid #eee}
section.run{margin-bottom:3em}
.tables{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}
table{border-collapse:collapse;font-size:.9em;margin:.8em 0}
caption{font-weight:bold;text-align:left;padding:.3em 0}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
table.kv th{background:#f6f6f6;font-weight:normal;color:#555}
table.kv td{max-width:34em;overflow-wrap:anywhere;font-size:.95em}
table.heads tr.strong td{background:#fdecec}
table.heads tr.baseline td{font-weight:bold}
table.kv.nested{margin:0;font-size:1em}
ol.nested{margin:0;padding-left:1.2em}
.answer{margin:.5em 0 1.5em}
p.lead{font-size:1.1em}
p.empty{background:#fff4e5;border-left:4px solid #e69500;padding:.6em 1em}
p.note{font-size:.85em;color:#555;max-width:60em}
summary{cursor:pointer;font-weight:bold;color:#333}
.figures{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:.5em 0;max-width:100%}
figure svg{max-width:100%;height:auto;border:1px solid #eee;display:block}
figcaption{font-size:.85em;color:#555;max-width:60em}
.size{color:#888;font-size:.85em}
details{margin:1em 0}
)";

}  // namespace

std::string build_report_html(const std::string& dir, const std::string& output_path, const ReportOptions& options) {
  const fs::path root(dir);
  if (!fs::is_directory(root)) fail(dir, fs::exists(root) ? "not a directory" : "no such directory");
  const fs::path report_dir = fs::absolute(fs::path(output_path)).parent_path();

  // The directory itself, else each of its immediate subdirectories, in name order.
  std::vector<fs::path> runs;
  if (analysis::detect_run_kind(dir) != analysis::RunKind::unknown) {
    runs.push_back(root);
  } else {
    for (const auto& entry : fs::directory_iterator(root))
      if (entry.is_directory() && analysis::detect_run_kind(entry.path().string()) != analysis::RunKind::unknown)
        runs.push_back(entry.path());
    std::sort(runs.begin(), runs.end());
  }
  if (runs.empty()) fail(dir, "no rhead detect or niah output here or in its subdirectories");

  std::ostringstream body;
  std::vector<analysis::ScoreMap> maps;
  for (const auto& run_dir : runs) {
    const std::string name = run_dir == root ? run_name(fs::absolute(root)) : run_dir.filename().string();
    if (analysis::detect_run_kind(run_dir.string()) == analysis::RunKind::detect) {
      const auto run = analysis::read_detect_run(run_dir.string());
      detect_section(body, run, name, report_dir);
      if (run.scores && analysis::count_above(*run.scores, 0.0) > 0) {  // a run with no scored test compares to nothing
        maps.push_back(*run.scores);
        maps.back().label = name;
      }
    } else {
      niah_section(body, analysis::read_niah_run(run_dir.string()), name, report_dir);
    }
  }
  if (maps.size() >= 2) comparison_section(body, maps, options.allow_shape_mismatch);

  const std::string title = options.title.empty() ? "rhead report: " + run_name(fs::absolute(root)) : options.title;
  std::ostringstream page;
  page << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
       << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
       << "<link rel=\"icon\" href=\"data:,\">\n<title>" << escape(title) << "</title>\n<style>" << kStyle
       << "</style></head>\n<body>\n<h1>" << escape(title) << "</h1>\n<p>" << runs.size()
       << (runs.size() == 1 ? " run" : " runs") << " from <code>" << escape(fs::absolute(root).string())
       << "</code>. Retrieval heads are heads whose mean retrieval score exceeds 0.1.</p>\n"
       << body.str() << "</body></html>\n";
  return page.str();
}

void write_report(const std::string& dir, const std::string& output_path, const ReportOptions& options) {
  const std::string html = build_report_html(dir, output_path, options);
  write_file_atomic(output_path, html);
}

}  // namespace rhead::report
