// KV sweep points, their files and figure.
#include "report/kv_sweep.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "io/error.h"
#include "io/json.h"
#include "io/mapped_file.h"
#include "io/text.h"
#include "report/drawing.h"
#include "report/kv_sweep_figure.h"
#include "report/plots.h"

namespace rhead {

using nlohmann::json;

namespace {
int curve_order(const std::string& c) { return c == "retrieval" ? 0 : c == "random" ? 1 : c == "none" ? 2 : 3; }
}  // namespace

std::vector<KvSweepPoint> kv_sweep_points(const std::vector<json>& summaries) {
  struct Acc {
    KvSweepPoint p;
    double kv = 0, query = 0, score = 0;
  };
  std::map<std::tuple<std::string, int64_t, int>, Acc> acc;
  for (const json& s : summaries) {
    const json kv = s.value("kv_policy", json::object());
    const int64_t window = kv.value("window", int64_t{0});
    const std::string kind = kv.value("full_kind", std::string("none"));
    const std::string curve = window <= 0        ? "full"
                              : kind == "none"   ? "none"
                              : kind == "top"    ? "retrieval"
                              : kind == "random" ? "random"
                                                 : "";
    if (curve.empty()) continue;
    const int k = kv.value("full_k", 0);
    Acc& a = acc[{curve, window, k}];
    a.p.curve = curve;
    a.p.window = window;
    a.p.k = k;
    a.p.conditions += 1;
    a.kv += s.value("kv_kept_fraction", 1.0);
    a.query += s.value("query_kept_fraction", 1.0);
    a.score += s.value("mean_score", 0.0);
  }
  std::vector<KvSweepPoint> out;
  for (auto& [key, a] : acc) {
    a.p.kv_kept_pct = 100.0 * a.kv / a.p.conditions;
    a.p.query_kept_pct = 100.0 * a.query / a.p.conditions;
    a.p.mean_score = a.score / a.p.conditions;
    out.push_back(a.p);
  }
  std::stable_sort(out.begin(), out.end(), [&](const KvSweepPoint& a, const KvSweepPoint& b) {
    if (curve_order(a.curve) != curve_order(b.curve)) return curve_order(a.curve) < curve_order(b.curve);
    if (a.kv_kept_pct != b.kv_kept_pct) return a.kv_kept_pct < b.kv_kept_pct;
    return a.window < b.window;
  });
  return out;
}

json kv_sweep_json(const std::vector<KvSweepPoint>& points) {
  json j = json::object();
  for (const KvSweepPoint& p : points)
    j[p.curve].push_back({{"window", p.window},
                          {"full_k", p.k},
                          {"conditions", p.conditions},
                          {"kv_kept_pct", p.kv_kept_pct},
                          {"query_kept_pct", p.query_kept_pct},
                          {"mean_score", p.mean_score}});
  return j;
}

std::vector<KvSweepPoint> read_kv_sweep_points(const std::string& path) {
  json doc;
  try {
    doc = json::parse(read_text_file(path));
  } catch (const json::exception& e) {
    fail(path, std::string("invalid JSON: ") + e.what());
  }
  std::vector<KvSweepPoint> out;
  if (!doc.is_object()) fail(path, "not a KV sweep (expected an object of curves)");
  try {
    for (const auto& [curve, list] : doc.items())
      for (const json& p : list) {
        KvSweepPoint k;
        k.curve = curve;
        k.window = p.at("window").get<int64_t>();
        k.k = p.at("full_k").get<int>();
        k.conditions = p.at("conditions").get<int>();
        k.kv_kept_pct = p.at("kv_kept_pct").get<double>();
        k.query_kept_pct = p.at("query_kept_pct").get<double>();
        k.mean_score = p.at("mean_score").get<double>();
        out.push_back(k);
      }
  } catch (const json::exception& e) {
    fail(path, std::string("malformed KV sweep: ") + e.what());
  }
  std::stable_sort(out.begin(), out.end(), [&](const KvSweepPoint& a, const KvSweepPoint& b) {
    return curve_order(a.curve) < curve_order(b.curve);
  });
  return out;
}

std::string format_kv_sweep(const std::vector<KvSweepPoint>& points, const std::string& score_name) {
  std::ostringstream out;
  char buf[256];
  std::snprintf(buf, sizeof buf, " %-10s %6s %6s %5s %13s %16s %10s\n", "full heads", "window", "K", "runs",
                "KV kept (%)", "query kept (%)", score_name.c_str());
  out << buf;
  for (const KvSweepPoint& p : points) {
    std::snprintf(buf, sizeof buf, " %-10s %6lld %6d %5d %13.1f %16.1f %10.1f\n", p.curve.c_str(),
                  static_cast<long long>(p.window), p.k, p.conditions, p.kv_kept_pct, p.query_kept_pct, p.mean_score);
    out << buf;
  }
  return out.str();
}

std::vector<std::string> write_kv_sweep(const std::string& dir, const std::vector<KvSweepPoint>& points,
                                        const std::string& title, const std::string& score_name) {
  std::vector<std::string> written;
  write_file_atomic(dir + "/kv_sweep.json", kv_sweep_json(points).dump(2) + "\n");
  written.push_back(dir + "/kv_sweep.json");
  std::string tsv = "curve\twindow\tfull_k\tconditions\tkv_kept_pct\tquery_kept_pct\tmean_score\n";
  for (const KvSweepPoint& p : points) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s\t%lld\t%d\t%d\t%.3f\t%.3f\t%.3f\n", p.curve.c_str(),
                  static_cast<long long>(p.window), p.k, p.conditions, p.kv_kept_pct, p.query_kept_pct, p.mean_score);
    tsv += buf;
  }
  write_file_atomic(dir + "/kv_sweep.tsv", tsv);
  written.push_back(dir + "/kv_sweep.tsv");

  if (points.empty()) return written;
  // One line per (window, kind of full heads), each point labelled with its K.
  const report::Drawing d = report::kv_sweep_plot(points, title, score_name);
  for (const char* ext : {".png", ".svg"}) {
    report::save_figure(d, dir + "/kv_sweep" + ext);
    written.push_back(dir + "/kv_sweep" + ext);
  }
  return written;
}

}  // namespace rhead
