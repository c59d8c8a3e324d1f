// KV sweep figure (see kv_sweep_figure.h).
#include "report/kv_sweep_figure.h"

#include <algorithm>
#include <map>
#include <set>

#include "report/plots.h"

namespace rhead::report {

Drawing kv_sweep_plot(const std::vector<KvSweepPoint>& points, const std::string& title,
                      const std::string& score_name) {
  LinePlotSpec spec;
  spec.title = title;
  spec.x_label = "KV cache kept (% of the full cache, per KV head)";
  spec.y_label = score_name;
  spec.y_min = 0;
  spec.y_max = 100;
  std::set<int64_t> windows;
  for (const KvSweepPoint& p : points)
    if (p.window > 0) windows.insert(p.window);
  // Per kind a hue, per window a shade (darker: larger window) and a dash for random.
  const Color red{214, 39, 40}, blue{31, 119, 180}, grey{110, 110, 110};
  auto shade = [](Color c, size_t i, size_t n) {
    const double t = n <= 1 ? 0.0 : 0.55 * (1.0 - static_cast<double>(i) / (n - 1));  // lightest first
    auto mix = [t](std::uint8_t v) { return static_cast<std::uint8_t>(v + (255 - v) * t); };
    return Color{mix(c.r), mix(c.g), mix(c.b)};
  };
  size_t wi = 0;
  for (int64_t w : windows) {
    const KvSweepPoint* none = nullptr;
    for (const KvSweepPoint& p : points)
      if (p.window == w && p.curve == "none") none = &p;
    for (const char* curve : {"retrieval", "random"}) {
      std::vector<const KvSweepPoint*> line;
      for (const KvSweepPoint& p : points)
        if (p.window == w && p.curve == curve) line.push_back(&p);
      if (line.empty()) continue;
      std::sort(line.begin(), line.end(), [](auto* a, auto* b) { return a->k < b->k; });
      if (none) line.insert(line.begin(), none);
      LineSeries s;
      s.name = std::string(curve == std::string("retrieval") ? "top-K" : "random-K") + " heads full, window " +
               std::to_string(w);
      for (const KvSweepPoint* p : line) {
        s.points.emplace_back(p->kv_kept_pct, p->mean_score);
        s.labels.push_back("K=" + std::to_string(p->k));
      }
      s.color = shade(curve == std::string("retrieval") ? red : blue, wi, windows.size());
      s.dashed = curve == std::string("random");
      spec.series.push_back(std::move(s));
    }
    // A window with only its no-head-full point still shows.
    bool has_line = false;
    for (const KvSweepPoint& p : points) has_line |= p.window == w && (p.curve == "retrieval" || p.curve == "random");
    if (none && !has_line) {
      LineSeries s;
      s.name = "no head full, window " + std::to_string(w);
      s.points.emplace_back(none->kv_kept_pct, none->mean_score);
      s.labels.push_back("K=0");
      s.color = shade(grey, wi, windows.size());
      spec.series.push_back(std::move(s));
    }
    ++wi;
  }
  for (const KvSweepPoint& p : points)
    if (p.curve == "full") {
      LineSeries s;
      s.name = "full cache (no policy)";
      s.points.emplace_back(p.kv_kept_pct, p.mean_score);
      s.labels.push_back("full");
      s.color = Color{0, 0, 0};
      spec.series.push_back(std::move(s));
    }
  return line_plot(spec);
}

}  // namespace rhead::report
