// HTML report writer. The page is plain HTML + CSS; figures are inline SVG so that the file
// can be mailed or archived on its own.
#include "report/html_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "analysis/run_files.h"
#include "analysis/score_map.h"
#include "analysis/stats.h"
#include "io/atomic_file.h"
#include "io/error.h"
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

void key_value_table(std::ostream& out, const std::string& caption, const json& object) {
  out << "<table class=\"kv\"><caption>" << escape(caption) << "</caption>\n";
  if (!object.is_object() || object.empty()) out << "<tr><td colspan=\"2\"><em>not recorded</em></td></tr>\n";
  else
    for (auto it = object.begin(); it != object.end(); ++it)
      out << "<tr><th>" << escape(it.key()) << "</th><td>" << escape(display(it.value())) << "</td></tr>\n";
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
        << "</a> <span class=\"size\">(" << (size >= 10240 ? std::to_string(size / 1024) + " KiB" : std::to_string(size) + " bytes")
        << ")</span></li>\n";
  }
  out << "</ul>\n";
}

std::string run_name(const fs::path& dir) {
  fs::path clean = dir;
  if (clean.filename().empty()) clean = clean.parent_path();
  return clean.filename().string();
}

void detect_section(std::ostream& out, const analysis::DetectRun& run, const std::string& name,
                    const fs::path& report_dir) {
  out << "<section class=\"run\"><h2>Detection run: " << escape(name) << "</h2>\n<div class=\"tables\">\n";
  key_value_table(out, "Model", run.summary ? run.summary->model : json::object());
  key_value_table(out, "Settings", run.summary ? run.summary->settings : json::object());
  json summary = json::object();
  if (run.summary) {
    summary["tests"] = run.summary->tests;
    summary["counted (ROUGE-1 recall > 50)"] = run.summary->counted;
    summary["NIAH accuracy"] = fixed(run.summary->niah_accuracy, 3);
  } else if (!run.tests.empty()) {
    const auto counted = std::count_if(run.tests.begin(), run.tests.end(), [](const auto& t) { return t.counted; });
    summary["tests"] = run.tests.size();
    summary["counted (ROUGE-1 recall > 50)"] = counted;
  }
  if (run.scores) {
    const auto& m = *run.scores;
    const auto above = analysis::count_above(m);
    summary["heads"] = std::to_string(m.n_layer) + " layers x " + std::to_string(m.n_head) + " heads";
    summary["retrieval heads (mean > 0.1)"] = std::to_string(above) + " of " + std::to_string(m.head_count()) + " (" +
                                              fixed(100.0 * above / m.head_count(), 1) + "%)";
  }
  key_value_table(out, "Summary", summary);
  out << "</div>\n";
  if (run.scores) {
    const auto& m = *run.scores;
    const auto order = heads_by_score(m.mean);
    // With head_stats.json of the same grid: each head's bootstrap interval and P(in top-K).
    const analysis::HeadStats* st =
        run.stats && run.stats->heads.size() == m.head_count() ? &*run.stats : nullptr;
    out << "<table class=\"heads\"><caption>Strongest heads</caption>\n"
        << "<tr><th>rank</th><th>layer</th><th>head</th><th>mean score</th>";
    if (st) {
      out << "<th>" << fixed(100 * st->level, 0) << "% interval</th>";
      for (const auto& k : st->top_ks) out << "<th>P(top-" << escape(k.label) << ")</th>";
    }
    out << "<th>activation frequency</th></tr>\n";
    for (std::size_t i = 0; i < std::min<std::size_t>(20, order.size()); ++i) {
      const auto id = m.head_at(order[i]);
      out << "<tr" << (m.mean[order[i]] > kRetrievalThreshold ? " class=\"strong\"" : "") << "><td>"
          << i + 1 << "</td><td>" << id.layer << "</td><td>" << id.head << "</td><td>" << fixed(m.mean[order[i]], 4)
          << "</td>";
      if (st) {
        const auto& h = st->heads[order[i]];
        out << "<td>" << fixed(h.ci_low, 3) << " – " << fixed(h.ci_high, 3) << "</td>";
        for (double p : h.p_top) out << "<td>" << fixed(p, 2) << "</td>";
      }
      out << "<td>" << fixed(m.frequency[order[i]], 3) << "</td></tr>\n";
    }
    out << "</table>\n";
    if (st) {
      out << "<p>Expected Jaccard overlap of the top-K set between two bootstrap draws:";
      for (std::size_t k = 0; k < st->top_ks.size(); ++k)
        out << (k ? "," : "") << " top-" << escape(st->top_ks[k].label) << " (K = " << st->top_ks[k].k << ") "
            << (std::isfinite(st->expected_jaccard[k]) ? fixed(st->expected_jaccard[k], 3) : std::string("n/a"));
      out << ". Intervals: " << st->valid_replicates << " replicates of a two-way cluster bootstrap over "
          << st->needle_sets << " needle sets and " << st->lengths << " lengths (seed " << st->seed << ").</p>\n";
    }
  }
  out << "<div class=\"figures\">\n";
  for (const auto& f : detect_run_figures(run, name)) figure_html(out, f);
  out << "</div>\n";
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
  raw_files(out, run.dir, report_dir);
  out << "</section>\n";
}

void niah_section(std::ostream& out, const analysis::NiahRun& run, const std::string& name, const fs::path& report_dir) {
  out << "<section class=\"run\"><h2>NIAH run: " << escape(name) << "</h2>\n<div class=\"tables\">\n";
  key_value_table(out, "Model", run.summary ? run.summary->model.raw : json::object());
  key_value_table(out, "Settings", run.summary ? run.summary->settings : json::object());
  out << "<table class=\"heads\"><caption>Scores by mask</caption>\n<tr><th>mask</th><th>tests</th><th>mean score</th></tr>\n";
  for (const auto& g : analysis::niah_grids(run.tests))
    out << "<tr><td>" << escape(g.mask.empty() ? "none" : g.mask) << "</td><td>" << g.tests << "</td><td>"
        << fixed(g.mean_score, 2) << "</td></tr>\n";
  if (run.summary) out << "<tr><td><em>summary.json</em></td><td></td><td>" << fixed(run.summary->mean_score, 2) << "</td></tr>\n";
  out << "</table>\n";
  if (!run.sweep.empty()) {
    out << "<table class=\"heads\"><caption>Masking sweep</caption>\n<tr><th>K</th>";
    for (const auto& s : run.sweep) out << "<th>" << escape(s.name) << "</th>";
    out << "</tr>\n";
    std::vector<double> ks;
    for (const auto& s : run.sweep)
      for (const auto& p : s.points) ks.push_back(p.first);
    std::sort(ks.begin(), ks.end());
    ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
    for (double k : ks) {
      out << "<tr><td>" << fixed(k, 0) << "</td>";
      for (const auto& s : run.sweep) {
        auto it = std::find_if(s.points.begin(), s.points.end(), [k](const auto& p) { return p.first == k; });
        out << "<td>" << (it == s.points.end() ? "" : fixed(it->second, 2)) << "</td>";
      }
      out << "</tr>\n";
    }
    out << "</table>\n";
  }
  out << "</div>\n<div class=\"figures\">\n";
  for (const auto& f : niah_run_figures(run, name)) figure_html(out, f);
  out << "</div>\n";
  raw_files(out, run.dir, report_dir);
  out << "</section>\n";
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
      if (run.scores) {
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
