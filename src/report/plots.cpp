// Layout and drawing of every figure. Sizes are in PNG pixels at scale 1; the font
// sizes below keep tick labels at about 1/50 of the figure width, which stays legible
// when a figure is printed one column wide.
#include "report/plots.h"

#include <algorithm>
#include <map>
#include <cmath>
#include <cstdio>

#include "io/error.h"
#include "report/label_placer.h"

namespace rhead::report {

using analysis::ScoreMap;

namespace {

constexpr double kTitleSize = 22;
constexpr double kLabelSize = 18;
constexpr double kTickSize = 15;
constexpr Color kAxisColor{40, 40, 40};
constexpr Color kGridColor{225, 225, 225};
constexpr Color kMissingColor{200, 200, 200};
constexpr Color kRed{214, 39, 40};
constexpr Color kBlue{31, 119, 180};

std::string format_number(double value, int decimals) {
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "%.*f", std::max(decimals, 0), value);
  std::string s = buffer;
  if (s == "-0" || s.rfind("-0.", 0) == 0) {
    if (std::abs(value) < 0.5 * std::pow(10.0, -decimals)) s.erase(0, 1);
  }
  return s;
}

// Tick values covering [lo, hi] at a 1-2-2.5-5 step; lo/hi are widened to whole steps.
struct Ticks {
  double lo = 0, hi = 1, step = 0.2;
  std::vector<double> values;
  int decimals = 1;
};

Ticks nice_ticks(double lo, double hi, int target = 5) {
  if (!(hi > lo)) hi = lo + 1;
  const double raw = (hi - lo) / std::max(target, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  Ticks t;
  t.step = step;
  t.lo = std::floor(lo / step + 1e-9) * step;
  t.hi = std::ceil(hi / step - 1e-9) * step;
  for (double v = t.lo; v <= t.hi + step * 1e-6; v += step) t.values.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
  t.decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  if (std::abs(step / std::pow(10.0, -t.decimals) - std::round(step / std::pow(10.0, -t.decimals))) > 1e-6)
    ++t.decimals;
  return t;
}

double luminance(Color c) { return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b; }

void draw_title(Drawing& d, const std::string& title, double y) {
  if (!title.empty()) d.text(d.width / 2.0, y, title, kTitleSize, kBlack, Anchor::middle, false, true);
}

// Geometry of one heatmap panel.
struct HeatmapLayout {
  int rows = 0, cols = 0;
  double cell_w = 0, cell_h = 0;
  double left = 0;  // from the panel's left edge to the grid
  double top = 0;   // from the panel's top edge to the grid
  double grid_w = 0, grid_h = 0;
  double colorbar_space = 0;     // room right of the grid for the colour bar
  double width = 0, height = 0;  // whole panel
  int column_step = 1, row_step = 1;
  bool vertical_columns = false;  // word labels too wide for a cell are turned upright
  double column_label_h = 0;      // room below the grid taken by column labels
};

bool all_numeric(const std::vector<std::string>& labels) {
  for (const auto& l : labels)
    if (l.empty() || l.find_first_not_of("0123456789.-") != std::string::npos) return false;
  return true;
}

double max_label_width(const std::vector<std::string>& labels, double size) {
  double w = 0;
  for (const auto& l : labels) w = std::max(w, text_width(l, size));
  return w;
}

HeatmapLayout layout_heatmap(const HeatmapSpec& spec, bool with_colorbar) {
  HeatmapLayout lay;
  lay.rows = static_cast<int>(spec.values.size());
  lay.cols = lay.rows ? static_cast<int>(spec.values[0].size()) : 0;
  if (lay.rows == 0 || lay.cols == 0) fail("heatmap", "no values to draw");
  for (const auto& row : spec.values)
    if (static_cast<int>(row.size()) != lay.cols) fail("heatmap", "rows of different lengths");
  if (spec.square_cells) {
    lay.cell_w = lay.cell_h = std::clamp(std::min(680.0 / lay.cols, 620.0 / lay.rows), 6.0, 80.0);
  } else {
    lay.cell_w = std::clamp(760.0 / lay.cols, 8.0, 90.0);
    lay.cell_h = std::clamp(440.0 / lay.rows, 8.0, 56.0);
  }
  lay.grid_w = lay.cell_w * lay.cols;
  lay.grid_h = lay.cell_h * lay.rows;
  const double row_label_w = max_label_width(spec.row_labels, kTickSize);
  const double col_label_w = max_label_width(spec.column_labels, kTickSize);
  lay.column_step = std::max(1, static_cast<int>(std::ceil((col_label_w + 8) / lay.cell_w)));
  lay.column_label_h = kTickSize;
  if (lay.column_step > 1 && !all_numeric(spec.column_labels) && lay.cell_w >= kTickSize + 3) {
    lay.vertical_columns = true;
    lay.column_step = 1;
    lay.column_label_h = col_label_w;
  }
  lay.row_step = std::max(1, static_cast<int>(std::ceil((kTickSize + 3) / lay.cell_h)));
  lay.left = 16 + (spec.y_label.empty() ? 0 : kLabelSize + 10) + row_label_w + 10;
  lay.top = 16 + (spec.title.empty() ? 0 : kTitleSize + 14);
  if (with_colorbar) {
    // gap, bar, tick marks and labels, vertical caption
    lay.colorbar_space =
        22 + 22 + 6 + text_width("0.000", kTickSize) + 8 + (spec.colorbar_label.empty() ? 0 : kLabelSize + 8);
  }
  lay.width = lay.left + lay.grid_w + lay.colorbar_space + 20;
  lay.height = lay.top + lay.grid_h + 10 + lay.column_label_h + (spec.x_label.empty() ? 0 : 12 + kLabelSize) + 18;
  // Room for the title when it is wider than the grid.
  const double title_w = spec.title.empty() ? 0 : text_width(spec.title, kTitleSize * 0.9) + 40;
  lay.width = std::max(lay.width, title_w);
  return lay;
}

void draw_colorbar(Drawing& d, const ColorScale& colors, double min, double max, const std::string& label, double x,
                   double y, double height) {
  const double bar_w = 22;
  const int steps = 128;
  for (int i = 0; i < steps; ++i) {
    const double t0 = static_cast<double>(i) / steps;
    // t = 0 at the bottom
    d.rect(x, y + height * (1 - t0 - 1.0 / steps), bar_w, height / steps + 0.5, colors.at(t0 + 0.5 / steps));
  }
  d.outline(x, y, bar_w, height, kAxisColor, 1);
  const Ticks ticks = nice_ticks(min, max, 5);
  double widest = 0;
  for (double v : ticks.values) {
    if (v < min - 1e-9 || v > max + 1e-9) continue;
    const double ty = y + height * (1 - (v - min) / (max - min));
    d.line(x + bar_w, ty, x + bar_w + 5, ty, kAxisColor, 1);
    const std::string text = format_number(v, ticks.decimals);
    widest = std::max(widest, text_width(text, kTickSize));
    d.text(x + bar_w + 8, ty + kTickSize * 0.35, text, kTickSize, kAxisColor);
  }
  if (!label.empty()) {
    // Upright caption; smaller when the bar is shorter than the caption.
    const double size =
        std::clamp(kLabelSize * (height - 10) / std::max(1.0, text_width(label, kLabelSize)), 11.0, kLabelSize);
    d.text(x + bar_w + 8 + widest + 10 + size * 0.7, y + height / 2, label, size, kBlack, Anchor::middle, true);
  }
}

void draw_heatmap_panel(Drawing& d, const HeatmapSpec& spec, const HeatmapLayout& lay, double ox, double oy,
                        bool with_colorbar) {
  if (!spec.title.empty()) {
    // Centred over the grid, but shifted to stay inside the panel.
    const double half = text_width(spec.title, kTitleSize * 0.9) / 2;
    const double cx = std::clamp(ox + lay.left + lay.grid_w / 2, ox + half + 16, ox + lay.width - half - 16);
    d.text(cx, oy + 16 + kTitleSize * 0.8, spec.title, kTitleSize * 0.9, kBlack, Anchor::middle, false, true);
  }
  const double gx = ox + lay.left, gy = oy + lay.top;
  const double gap = std::min(lay.cell_w, lay.cell_h) >= 14 ? 1 : 0;
  const double range = spec.max > spec.min ? spec.max - spec.min : 1;
  for (int r = 0; r < lay.rows; ++r)
    for (int c = 0; c < lay.cols; ++c) {
      const double v = spec.values[r][c];
      const double x = gx + c * lay.cell_w, y = gy + r * lay.cell_h;
      const Color color = std::isnan(v) ? kMissingColor : spec.colors.at((v - spec.min) / range);
      d.rect(x, y, lay.cell_w - gap, lay.cell_h - gap, color);
      if (r < static_cast<int>(spec.cell_tooltips.size()) && c < static_cast<int>(spec.cell_tooltips[r].size()))
        d.shapes.back().tooltip = spec.cell_tooltips[r][c];
      if (spec.annotate && !std::isnan(v)) {
        const std::string text = format_number(v, spec.annotate_decimals);
        const double size = std::min({lay.cell_h * 0.5, lay.cell_w / (text.size() * 0.62 + 0.4), 15.0});
        if (size >= 7)
          d.text(x + (lay.cell_w - gap) / 2, y + (lay.cell_h - gap) / 2 + size * 0.35, text, size,
                 luminance(color) < 110 ? kWhite : kBlack, Anchor::middle);
      }
    }
  d.outline(gx, gy, lay.grid_w - gap, lay.grid_h - gap, kAxisColor, 1);
  if (!spec.path.empty()) {
    const Color path_color{214, 39, 40};
    std::vector<std::pair<double, double>> centres;
    for (const auto& [r, c] : spec.path) {
      if (r < 0 || r >= lay.rows || c < 0 || c >= lay.cols) continue;
      d.outline(gx + c * lay.cell_w, gy + r * lay.cell_h, lay.cell_w - gap, lay.cell_h - gap, path_color, 2.5);
      centres.emplace_back(gx + (c + 0.5) * lay.cell_w, gy + (r + 0.5) * lay.cell_h);
    }
    if (centres.size() > 1) d.polyline(centres, path_color, 1.5);
  }
  // Tick labels at cell centres, thinned so they never overlap.
  for (int c = 0; c < lay.cols && c < static_cast<int>(spec.column_labels.size()); c += lay.column_step) {
    const double x = gx + (c + 0.5) * lay.cell_w;
    d.line(x, gy + lay.grid_h, x, gy + lay.grid_h + 4, kAxisColor, 1);
    if (lay.vertical_columns)
      d.text(x + kTickSize * 0.35, gy + lay.grid_h + 7, spec.column_labels[c], kTickSize, kAxisColor, Anchor::end,
             true);
    else
      d.text(x, gy + lay.grid_h + 6 + kTickSize * 0.8, spec.column_labels[c], kTickSize, kAxisColor, Anchor::middle);
  }
  for (int r = 0; r < lay.rows && r < static_cast<int>(spec.row_labels.size()); r += lay.row_step) {
    const double y = gy + (r + 0.5) * lay.cell_h;
    d.line(gx - 4, y, gx, y, kAxisColor, 1);
    d.text(gx - 7, y + kTickSize * 0.35, spec.row_labels[r], kTickSize, kAxisColor, Anchor::end);
  }
  if (!spec.x_label.empty())
    d.text(gx + lay.grid_w / 2, gy + lay.grid_h + 10 + lay.column_label_h + 12 + kLabelSize * 0.75, spec.x_label,
           kLabelSize, kBlack, Anchor::middle);
  if (!spec.y_label.empty())
    d.text(ox + 16 + kLabelSize * 0.75, gy + lay.grid_h / 2, spec.y_label, kLabelSize, kBlack, Anchor::middle, true);
  if (with_colorbar)
    draw_colorbar(d, spec.colors, spec.min, spec.max, spec.colorbar_label, gx + lay.grid_w + 22, gy, lay.grid_h);
}

std::vector<std::string> index_labels(int n) {
  std::vector<std::string> labels;
  for (int i = 0; i < n; ++i) labels.push_back(std::to_string(i));
  return labels;
}

HeatmapSpec head_spec(const ScoreMap& map, double max, const std::string& title) {
  HeatmapSpec spec;
  spec.title = title;
  spec.x_label = "head";
  spec.y_label = "layer";
  spec.column_labels = index_labels(map.n_head);
  spec.row_labels = index_labels(map.n_layer);
  spec.values.assign(map.n_layer, std::vector<double>(map.n_head));
  for (int l = 0; l < map.n_layer; ++l)
    for (int h = 0; h < map.n_head; ++h) spec.values[l][h] = map.mean_at(l, h);
  // Scores below 0 (qrhead's calibrated scores): a diverging scale centred on 0.
  const double lowest = *std::min_element(map.mean.begin(), map.mean.end());
  spec.min = 0;
  spec.max = max;
  if (lowest < 0) {
    spec.max = std::max(max, -lowest);
    spec.min = -spec.max;
    spec.colors = correlation_colors();
  }
  spec.colorbar_label = map.score_name();
  spec.annotate = map.n_layer * map.n_head <= 64;
  // Hover text: head, mean score and activation frequency (share of tests with score > 0).
  spec.cell_tooltips.assign(map.n_layer, std::vector<std::string>(map.n_head));
  for (int l = 0; l < map.n_layer; ++l)
    for (int h = 0; h < map.n_head; ++h) {
      const std::size_t i = map.index(l, h);
      std::string text =
          "head " + std::to_string(l) + "-" + std::to_string(h) + ": score " + format_number(map.mean[i], 3);
      if (map.frequency.size() == map.head_count())
        text += ", activation frequency " + format_number(map.frequency[i], 3);
      spec.cell_tooltips[l][h] = text;
    }
  return spec;
}

double map_max(const ScoreMap& map) {
  double m = 0;
  for (double v : map.mean) m = std::max(m, v);
  return m > 0 ? std::min(1.0, m) : 1.0;
}

// A plot frame with data-to-pixel mapping and axes.
struct Axes {
  double left, top, width, height;
  Ticks x, y;
  double px(double v) const { return left + (v - x.lo) / (x.hi - x.lo) * width; }
  double py(double v) const { return top + height - (v - y.lo) / (y.hi - y.lo) * height; }
};

// A drawing sized for axes `a` (plus `right_margin` pixels on the right, and one row of tick
// labels and an axis label below) or for the title if wider, with the title drawn.
Drawing titled_plot(const Axes& a, const std::string& title, double right_margin) {
  Drawing d;
  d.width = static_cast<int>(std::max(a.left + a.width + right_margin, text_width(title, kTitleSize) + 60));
  d.height = static_cast<int>(a.top + a.height + 14 + kTickSize + kLabelSize + 24);
  draw_title(d, title, 20 + kTitleSize * 0.8);
  return d;
}

void draw_axes(Drawing& d, const Axes& a, const std::string& x_label, const std::string& y_label, bool x_ticks = true) {
  double widest = 0;
  for (double v : a.y.values) {
    const double y = a.py(v);
    d.line(a.left, y, a.left + a.width, y, kGridColor, 1);
    d.line(a.left - 5, y, a.left, y, kAxisColor, 1);
    const std::string text = format_number(v, a.y.decimals);
    widest = std::max(widest, text_width(text, kTickSize));
    d.text(a.left - 8, y + kTickSize * 0.35, text, kTickSize, kAxisColor, Anchor::end);
  }
  if (x_ticks)
    for (double v : a.x.values) {
      const double x = a.px(v);
      d.line(x, a.top, x, a.top + a.height, kGridColor, 1);
      d.line(x, a.top + a.height, x, a.top + a.height + 5, kAxisColor, 1);
      d.text(x, a.top + a.height + 8 + kTickSize * 0.8, format_number(v, a.x.decimals), kTickSize, kAxisColor,
             Anchor::middle);
    }
  d.outline(a.left, a.top, a.width, a.height, kAxisColor, 1);
  if (!x_label.empty())
    d.text(a.left + a.width / 2, a.top + a.height + 14 + kTickSize + kLabelSize, x_label, kLabelSize, kBlack,
           Anchor::middle);
  if (!y_label.empty())
    d.text(a.left - 14 - widest - kLabelSize * 0.4, a.top + a.height / 2, y_label, kLabelSize, kBlack, Anchor::middle,
           true);
}

}  // namespace

Color ColorScale::at(double t) const {
  if (stops.empty()) return kBlack;
  if (std::isnan(t)) return kMissingColor;
  t = std::clamp(t, 0.0, 1.0);
  if (t <= stops.front().first) return stops.front().second;
  for (std::size_t i = 1; i < stops.size(); ++i) {
    if (t <= stops[i].first) {
      const auto& [t0, c0] = stops[i - 1];
      const auto& [t1, c1] = stops[i];
      const double f = t1 > t0 ? (t - t0) / (t1 - t0) : 0;
      auto mix = [f](std::uint8_t a, std::uint8_t b) {
        return static_cast<std::uint8_t>(std::lround(a + (static_cast<double>(b) - a) * f));
      };
      return {mix(c0.r, c1.r), mix(c0.g, c1.g), mix(c0.b, c1.b)};
    }
  }
  return stops.back().second;
}

ColorScale score_colors() {
  return {{{0.0, {250, 250, 252}},
           {0.15, {205, 224, 240}},
           {0.35, {120, 178, 218}},
           {0.6, {40, 112, 178}},
           {0.85, {18, 58, 120}},
           {1.0, {10, 25, 70}}}};
}

ColorScale niah_colors() { return {{{0.0, {205, 40, 50}}, {0.5, {245, 205, 75}}, {1.0, {30, 160, 95}}}}; }

ColorScale correlation_colors() { return {{{0.0, {40, 90, 170}}, {0.5, {250, 250, 250}}, {1.0, {190, 35, 40}}}}; }

Color series_color(std::size_t index) {
  static const Color palette[] = {kRed, kBlue, {44, 160, 44}, {148, 103, 189}, {255, 127, 14}, {23, 190, 207}};
  return palette[index % (sizeof palette / sizeof palette[0])];
}

Drawing heatmap(const HeatmapSpec& spec) {
  const HeatmapLayout lay = layout_heatmap(spec, true);
  Drawing d;
  d.width = static_cast<int>(std::ceil(lay.width));
  d.height = static_cast<int>(std::ceil(lay.height));
  draw_heatmap_panel(d, spec, lay, 0, 0, true);
  return d;
}

Drawing side_by_side(const HeatmapSpec& left, const HeatmapSpec& right, const std::string& title) {
  const HeatmapLayout a = layout_heatmap(left, false);
  const HeatmapLayout b = layout_heatmap(right, true);
  const double band = title.empty() ? 0 : kTitleSize + 20;
  Drawing d;
  d.width = static_cast<int>(std::ceil(std::max(a.width + b.width, text_width(title, kTitleSize) + 60)));
  d.height = static_cast<int>(std::ceil(band + std::max(a.height, b.height)));
  draw_title(d, title, 14 + kTitleSize * 0.8);
  draw_heatmap_panel(d, left, a, 0, band, false);
  draw_heatmap_panel(d, right, b, a.width, band, true);
  return d;
}

Drawing line_plot(const LinePlotSpec& spec) {
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (const auto& s : spec.series)
    for (const auto* pts : {&s.points, &s.samples})
      for (const auto& [x, y] : *pts) {
        x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x);
        y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y);
      }
  if (!std::isfinite(x_lo)) x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;
  if (!std::isnan(spec.y_min)) y_lo = spec.y_min;
  if (!std::isnan(spec.y_max)) y_hi = spec.y_max;
  double legend_w = 0;
  for (const auto& s : spec.series) legend_w = std::max(legend_w, text_width(s.name, kTickSize));
  legend_w = spec.series.empty() ? 0 : legend_w + 60;
  Axes a{100, 24 + kTitleSize + 16, 620, 400, nice_ticks(x_lo, x_hi, 8), nice_ticks(y_lo, y_hi, 5)};
  Drawing d;
  d.width = static_cast<int>(std::max(a.left + a.width + 30 + legend_w + 20, text_width(spec.title, kTitleSize) + 60));
  d.height = static_cast<int>(a.top + a.height + 14 + kTickSize + kLabelSize + 24);
  draw_title(d, spec.title, 20 + kTitleSize * 0.8);
  draw_axes(d, a, spec.x_label, spec.y_label);
  for (const auto& s : spec.series) {
    std::vector<std::pair<double, double>> pixels;
    for (const auto& [x, y] : s.points) pixels.emplace_back(a.px(x), a.py(y));
    if (s.dashed) {
      for (std::size_t i = 0; i + 1 < pixels.size(); ++i)
        d.line(pixels[i].first, pixels[i].second, pixels[i + 1].first, pixels[i + 1].second, s.color, 2.5, true);
    } else {
      d.polyline(pixels, s.color, 2.5);
    }
    for (const auto& [px, py] : pixels) d.circle(px, py, 4.5, s.color);
    // Spread: a bar from the lowest to the highest sample at each x, and every sample.
    std::map<double, std::pair<double, double>> range;
    for (const auto& [x, y] : s.samples) {
      auto [it, fresh] = range.try_emplace(x, y, y);
      if (!fresh) it->second = {std::min(it->second.first, y), std::max(it->second.second, y)};
    }
    const Color light{static_cast<std::uint8_t>((s.color.r + 255) / 2),
                      static_cast<std::uint8_t>((s.color.g + 255) / 2),
                      static_cast<std::uint8_t>((s.color.b + 255) / 2)};
    for (const auto& [x, lohi] : range) {
      const double px = a.px(x) + 7;  // beside the mean's marker
      d.line(px, a.py(lohi.first), px, a.py(lohi.second), light, 2);
      d.line(px - 4, a.py(lohi.first), px + 4, a.py(lohi.first), light, 2);
      d.line(px - 4, a.py(lohi.second), px + 4, a.py(lohi.second), light, 2);
    }
    for (const auto& [x, y] : s.samples) d.circle(a.px(x) + 7, a.py(y), 3, s.color);
  }
  // Point labels (e.g. a KV sweep's window or K), clear of every marker and of each other.
  LabelPlacer labels({a.left + 2, a.top + 2, a.left + a.width + 20, a.top + a.height - 2});
  for (const auto& s : spec.series) {
    for (const auto& [x, y] : s.points) labels.avoid_marker(a.px(x), a.py(y), 4.5);
    for (const auto& [x, y] : s.samples) labels.avoid_marker(a.px(x) + 7, a.py(y), 3);
  }
  for (const auto& s : spec.series)
    for (std::size_t i = 0; i < s.labels.size() && i < s.points.size(); ++i)
      labels.place(d, a.px(s.points[i].first), a.py(s.points[i].second), 4.5, s.labels[i], kTickSize * 0.8, s.color);
  // Legend right of the plot.
  double ly = a.top + 10;
  for (const auto& s : spec.series) {
    const double lx = a.left + a.width + 30;
    d.line(lx, ly, lx + 34, ly, s.color, 2.5, s.dashed);
    d.circle(lx + 17, ly, 4.5, s.color);
    d.text(lx + 44, ly + kTickSize * 0.35, s.name, kTickSize, kBlack);
    ly += kTickSize + 14;
  }
  return d;
}

Drawing head_score_heatmap(const ScoreMap& map, const std::string& title) {
  const std::string t = title.empty() ? map.label + ": " + map.score_name() + " per head" : title;
  return heatmap(head_spec(map, map_max(map), t));
}

Drawing score_histogram(const ScoreMap& map, const std::string& title) {
  const analysis::ScoreBuckets b = analysis::bucket_scores(map);
  const double total = static_cast<double>(map.head_count());
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.1f%%", 100.0 * b.high / total);
  const std::string t = title.empty() ? map.label + ": " + std::to_string(b.high) + " of " +
                                            std::to_string(map.head_count()) + " heads (" + pct + ") score > 0.1"
                                      : title;
  const double counts[3] = {static_cast<double>(b.zero), static_cast<double>(b.low), static_cast<double>(b.high)};
  const bool signed_scores = *std::min_element(map.mean.begin(), map.mean.end()) < 0;
  const char* names[3] = {signed_scores ? "<= 0" : "0", "(0, 0.1]", "> 0.1"};
  const Color colors[3] = {{170, 170, 170}, {120, 178, 218}, kRed};
  const double largest = std::max({counts[0], counts[1], counts[2], 1.0});
  Axes a{100, 24 + kTitleSize + 16, 540, 380, nice_ticks(0, 3, 3), nice_ticks(0, largest * 1.12, 5)};
  a.x.lo = 0;
  a.x.hi = 3;
  Drawing d = titled_plot(a, t, 40);
  draw_axes(d, a, "mean " + map.score_name(), "number of heads", false);
  for (int i = 0; i < 3; ++i) {
    const double x0 = a.px(i + 0.18), x1 = a.px(i + 0.82);
    const double y = a.py(counts[i]);
    d.rect(x0, y, x1 - x0, a.top + a.height - y, colors[i]);
    char label[64];
    std::snprintf(label, sizeof label, "%d (%.1f%%)", static_cast<int>(counts[i]), 100.0 * counts[i] / total);
    d.text((x0 + x1) / 2, y - 8, label, kTickSize, kBlack, Anchor::middle, false, true);
    d.line(a.px(i + 0.5), a.top + a.height, a.px(i + 0.5), a.top + a.height + 5, kAxisColor, 1);
    d.text(a.px(i + 0.5), a.top + a.height + 8 + kTickSize * 0.8, names[i], kTickSize, kAxisColor, Anchor::middle);
  }
  return d;
}

Drawing frequency_scatter(const ScoreMap& map, const std::string& title) {
  const std::string t = title.empty() ? map.label + ": activation frequency vs " + map.score_name() : title;
  Axes a{100, 24 + kTitleSize + 16, 600, 420, nice_ticks(0, map_max(map), 5), nice_ticks(0, 1, 5)};
  Drawing d = titled_plot(a, t, 50);
  draw_axes(d, a, "mean " + map.score_name(), "activation frequency");
  const double threshold_x = a.px(kRetrievalThreshold);
  if (kRetrievalThreshold < a.x.hi) {
    d.line(threshold_x, a.top, threshold_x, a.top + a.height, kGrey, 1.5, true);
    d.text(threshold_x + 6, a.top + a.height - 40, "0.1", kTickSize, kGrey);
  }
  // Weak heads first so that retrieval heads are drawn on top.
  const auto order = heads_by_score(map.mean);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const double m = map.mean[*it], f = map.frequency[*it];
    const bool strong = m > kRetrievalThreshold;
    d.circle(a.px(m), a.py(f), strong ? 5 : 3.5, strong ? kRed : Color{90, 140, 190});
  }
  const std::size_t above = analysis::count_above(map);
  const std::string summary =
      std::to_string(above) + " retrieval heads (red, > 0.1), " + std::to_string(map.head_count() - above) + " others";
  const double summary_x = a.left + a.width - 10, summary_y = a.top + a.height - 12;
  d.text(summary_x, summary_y, summary, kTickSize, kBlack, Anchor::end);
  // Name the strongest heads beside their points, clear of each other, of the retrieval
  // heads' markers and of the notes on the plot.
  LabelPlacer labels({a.left + 2, a.top + 2, a.left + a.width - 2, a.top + a.height - 2});
  for (std::size_t h : order)
    if (map.mean[h] > kRetrievalThreshold) labels.avoid_marker(a.px(map.mean[h]), a.py(map.frequency[h]), 5);
  const LabelBox note = text_box(summary_x - text_width(summary, kTickSize), summary_y, summary, kTickSize);
  labels.avoid(note);
  if (kRetrievalThreshold < a.x.hi) labels.avoid(text_box(threshold_x + 6, a.top + a.height - 40, "0.1", kTickSize));
  for (std::size_t i = 0; i < std::min<std::size_t>(6, order.size()); ++i) {
    const std::size_t h = order[i];
    if (map.mean[h] <= kRetrievalThreshold) break;
    labels.place(d, a.px(map.mean[h]), a.py(map.frequency[h]), 5, map.head_at(h).key(), kTickSize, kBlack);
  }
  return d;
}

Drawing ranked_heads(const analysis::HeadStats& stats, const std::string& title, int top_n) {
  std::vector<std::size_t> order(stats.heads.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return stats.heads[a].mean > stats.heads[b].mean; });
  order.resize(std::min<std::size_t>(order.size(), static_cast<std::size_t>(std::max(1, top_n))));
  double top = 0, predicted_top = 0;
  for (std::size_t i : order) {
    top = std::max({top, stats.heads[i].mean, stats.heads[i].ci_high});
    if (std::isfinite(stats.heads[i].predict_high))
      predicted_top = std::max(predicted_top, stats.heads[i].predict_high);
  }
  // The prediction intervals widen the axis up to twice the bootstrap's top; a band reaching
  // higher is cut at the axis (bands have no caps, so a cut one looks open-ended).
  top = std::max(top, std::min(predicted_top, 2 * top));
  const double step = std::max(14.0, std::min(40.0, 600.0 / static_cast<double>(order.size())));
  Axes a{100,
         24 + kTitleSize + 16,
         step * static_cast<double>(order.size()),
         380,
         nice_ticks(0, static_cast<double>(order.size()), 1),
         nice_ticks(0, top > 0 ? top : 1, 5)};
  const std::string t = title.empty() ? "ranked heads: mean retrieval score and bootstrap interval" : title;
  char note[320];
  int n = std::snprintf(note, sizeof(note),
                        "%.0f%% intervals, %d cluster-bootstrap replicates (%d needle sets x %d lengths)",
                        100 * stats.level, stats.valid_replicates, stats.needle_sets, stats.lengths);
  if (stats.predict_sets >= 2)
    std::snprintf(note + n, sizeof(note) - static_cast<std::size_t>(n),
                  "; light bands: prediction for a grid of %d other needle sets", stats.predict_sets);
  Drawing d;
  d.width = static_cast<int>(
      std::max({a.left + a.width + 50, text_width(t, kTitleSize) + 60, text_width(note, kTickSize) + 40}));
  d.height = static_cast<int>(a.top + a.height + 30 + text_width("00-00", kTickSize) + kLabelSize + 20);
  draw_title(d, t, 20 + kTitleSize * 0.8);
  draw_axes(d, a, "", "mean retrieval score", false);
  if (kRetrievalThreshold < a.y.hi) {
    const double ty = a.py(kRetrievalThreshold);
    d.line(a.left, ty, a.left + a.width, ty, kGrey, 1.5, true);
  }
  for (std::size_t r = 0; r < order.size(); ++r) {
    const auto& h = stats.heads[order[r]];
    const double x = a.left + step * (static_cast<double>(r) + 0.5);
    const bool strong = h.mean > kRetrievalThreshold;
    const Color c = strong ? kRed : Color{90, 140, 190};
    // Light band: the prediction interval for another grid's mean, under the error bar.
    if (std::isfinite(h.predict_low) && std::isfinite(h.predict_high)) {
      const Color light{static_cast<unsigned char>(c.r + (255 - c.r) * 3 / 4),
                        static_cast<unsigned char>(c.g + (255 - c.g) * 3 / 4),
                        static_cast<unsigned char>(c.b + (255 - c.b) * 3 / 4)};
      d.line(x, a.py(h.predict_low), x, a.py(std::min(h.predict_high, a.y.hi)), light, 7);
    }
    // Error bar: the percentile interval, with caps.
    d.line(x, a.py(h.ci_low), x, a.py(h.ci_high), c, 1.5);
    d.line(x - 4, a.py(h.ci_low), x + 4, a.py(h.ci_low), c, 1.5);
    d.line(x - 4, a.py(h.ci_high), x + 4, a.py(h.ci_high), c, 1.5);
    d.circle(x, a.py(h.mean), strong ? 4.5 : 3.5, c);
    d.text(x + kTickSize * 0.35, a.top + a.height + 8, h.id.key(), kTickSize, kAxisColor, Anchor::end, true);
  }
  d.text(d.width / 2.0, d.height - 12.0, note, kTickSize, kBlack, Anchor::middle);
  return d;
}

Drawing pair_heatmaps(const ScoreMap& a, const ScoreMap& b, bool allow_shape_mismatch) {
  const auto comparison = analysis::compare_pair(a, b, allow_shape_mismatch);
  const double max = std::max(map_max(a), map_max(b));
  HeatmapSpec left = head_spec(a, max, a.label);
  HeatmapSpec right = head_spec(b, max, b.label);
  left.colorbar_label.clear();
  char title[256];
  std::snprintf(title, sizeof title, "Retrieval scores: Pearson r = %.3f, Spearman = %.3f", comparison.pearson,
                comparison.spearman);
  return side_by_side(left, right, title);
}

Drawing correlation_heatmap(const analysis::CorrelationMatrix& matrix) {
  HeatmapSpec spec;
  spec.title = "Pearson correlation of retrieval scores";
  spec.column_labels = matrix.labels;
  spec.row_labels = matrix.labels;
  spec.values = matrix.pearson;
  spec.min = -1;
  spec.max = 1;
  spec.colors = correlation_colors();
  spec.colorbar_label = "Pearson r";
  spec.annotate = true;
  // Long model names: cells wide enough for the labels.
  spec.square_cells = true;
  Drawing d = heatmap(spec);
  return d;
}

Drawing niah_heatmap(const analysis::NiahGrid& grid, const std::string& title) {
  HeatmapSpec spec;
  char mean[64];
  std::snprintf(mean, sizeof mean, "mean score %.1f", grid.mean_score);
  const std::string prefix =
      title.empty() ? (grid.mask.empty() ? std::string("NIAH") : "NIAH, mask " + grid.mask) : title;
  spec.title = prefix + " (" + mean + ")";
  spec.x_label = "context length (haystack: length - buffer)";
  spec.y_label = "depth (%)";
  for (int l : grid.lengths) spec.column_labels.push_back(std::to_string(l));
  for (int dpt : grid.depths) spec.row_labels.push_back(std::to_string(dpt));
  spec.values = grid.score;
  spec.min = 0;
  spec.max = 100;
  spec.colors = niah_colors();
  spec.colorbar_label = "score";
  spec.square_cells = false;
  spec.annotate = grid.lengths.size() <= 24;
  spec.annotate_decimals = 0;
  spec.cell_tooltips.assign(grid.depths.size(), std::vector<std::string>(grid.lengths.size()));
  for (std::size_t r = 0; r < grid.depths.size(); ++r)
    for (std::size_t c = 0; c < grid.lengths.size(); ++c) {
      const double v = r < grid.score.size() && c < grid.score[r].size() ? grid.score[r][c] : NAN;
      spec.cell_tooltips[r][c] = "length " + std::to_string(grid.lengths[c]) + ", depth " +
                                 std::to_string(grid.depths[r]) +
                                 "%: " + (std::isnan(v) ? std::string("no test") : "score " + format_number(v, 1));
    }
  return heatmap(spec);
}

Drawing support_share_histogram(const std::vector<double>& passed, const std::vector<double>& failed, double auroc,
                                const std::string& title) {
  constexpr int kBins = 10;
  auto shares = [](const std::vector<double>& values, std::vector<int>& counts) {
    counts.assign(kBins, 0);
    for (double v : values) counts[std::clamp(static_cast<int>(v * kBins), 0, kBins - 1)]++;
    std::vector<double> out(kBins, 0.0);
    for (int b = 0; b < kBins; ++b) out[b] = values.empty() ? 0.0 : 100.0 * counts[b] / values.size();
    return out;
  };
  std::vector<int> passed_n, failed_n;
  const std::vector<double> p = shares(passed, passed_n), f = shares(failed, failed_n);
  std::string t = title.empty() ? std::string("support share of passed and failed tests") : title;
  if (std::isfinite(auroc)) t += " (AUROC " + format_number(auroc, 3) + ")";
  double largest = 1;
  for (int b = 0; b < kBins; ++b) largest = std::max({largest, p[b], f[b]});
  Axes a{100, 24 + kTitleSize + 16, 620, 380, nice_ticks(0, 1, 5), nice_ticks(0, largest * 1.1, 5)};
  a.x.lo = 0;
  a.x.hi = 1;
  Drawing d = titled_plot(a, t, 200);
  draw_axes(d, a, "support share (answer tokens copied by the top heads)", "tests of the group (%)");
  const Color passed_color{46, 139, 87}, failed_color{205, 60, 60};
  for (int b = 0; b < kBins; ++b) {
    const double lo = static_cast<double>(b) / kBins, width = 1.0 / kBins;
    const std::string range = format_number(lo, 1) + (b + 1 == kBins ? "-1.0" : "-" + format_number(lo + width, 1));
    const struct {
      const std::vector<double>& share;
      const std::vector<int>& count;
      Color color;
      const char* name;
      double at;
    } groups[2] = {{p, passed_n, passed_color, "passed", 0.1}, {f, failed_n, failed_color, "failed", 0.5}};
    for (const auto& g : groups) {
      if (g.count[b] == 0) continue;
      const double x0 = a.px(lo + width * g.at), x1 = a.px(lo + width * (g.at + 0.4));
      const double y = a.py(g.share[b]);
      d.rect(x0, y, x1 - x0, a.top + a.height - y, g.color);
      d.shapes.back().tooltip = std::string(g.name) + ", support share " + range + ": " + std::to_string(g.count[b]) +
                                " tests (" + format_number(g.share[b], 1) + "%)";
    }
  }
  double ly = a.top + 10;
  const std::string labels[2] = {"passed (" + std::to_string(passed.size()) + ")",
                                 "failed (" + std::to_string(failed.size()) + ")"};
  const Color colors[2] = {passed_color, failed_color};
  for (int i = 0; i < 2; ++i) {
    const double lx = a.left + a.width + 24;
    d.rect(lx, ly - 7, 22, 14, colors[i]);
    d.text(lx + 30, ly + kTickSize * 0.35, labels[i], kTickSize, kBlack);
    ly += kTickSize + 14;
  }
  return d;
}

Drawing sweep_plot(const std::vector<analysis::SweepSeries>& series, const std::string& title) {
  LinePlotSpec spec;
  spec.title = title.empty() ? "NIAH score when masking K heads" : title;
  spec.x_label = "number of masked heads K";
  spec.y_label = "NIAH mean score";
  spec.y_min = 0;
  spec.y_max = 100;
  for (std::size_t i = 0; i < series.size(); ++i) {
    LineSeries s;
    s.name = series[i].name == "top"      ? "top-K retrieval heads"
             : series[i].name == "random" ? "random K heads"
                                          : series[i].name;
    s.points = series[i].points;
    s.color = series[i].name == "top" ? kRed : series[i].name == "random" ? kBlue : series_color(i + 2);
    s.dashed = series[i].name == "random";
    for (const auto& seed : series[i].seeds) s.samples.emplace_back(seed.k, seed.score);
    if (!s.samples.empty()) s.name += " (mean; dots: each seed, bar: spread)";
    spec.series.push_back(std::move(s));
  }
  return line_plot(spec);
}

}  // namespace rhead::report
