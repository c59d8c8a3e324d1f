#include "report/label_placer.h"

#include <algorithm>
#include <cmath>

namespace rhead::report {

LabelBox text_box(double x, double y, const std::string& text, double font_size) {
  return {x, y - 0.8 * font_size, x + text_width(text, font_size), y + 0.25 * font_size};
}

bool LabelPlacer::free(const LabelBox& box) const {
  const bool inside = box.x0 >= area_.x0 && box.x1 <= area_.x1 && box.y0 >= area_.y0 && box.y1 <= area_.y1;
  if (!inside) return false;
  const auto hits = [&](const LabelBox& b) { return b.overlaps(box); };
  return std::none_of(placed_.begin(), placed_.end(), hits) && std::none_of(obstacles_.begin(), obstacles_.end(), hits);
}

bool LabelPlacer::place(Drawing& d, double x, double y, double r, const std::string& text, double font_size,
                        Color color) {
  const double w = text_width(text, font_size), ascent = 0.8 * font_size, descent = 0.25 * font_size;
  const double centre_baseline = y + (ascent - descent) / 2;  // baseline that centres the box on y
  for (int ring = 0; ring < 4; ++ring) {
    const double gap = r + 3 + 14.0 * ring;
    const double diagonal = gap * 0.7071;
    // Baseline-left corners of the candidates, nearest first.
    const std::pair<double, double> spots[] = {
        {x + gap, centre_baseline},                  // right
        {x - gap - w, centre_baseline},              // left
        {x - w / 2, y - gap - descent},              // above
        {x - w / 2, y + gap + ascent},               // below
        {x + diagonal, y - diagonal - descent},      // above right
        {x - diagonal - w, y - diagonal - descent},  // above left
        {x + diagonal, y + diagonal + ascent},       // below right
        {x - diagonal - w, y + diagonal + ascent},   // below left
    };
    for (const auto& [bx, by] : spots) {
      const LabelBox box = text_box(bx, by, text, font_size);
      if (!free(box)) continue;
      placed_.push_back(box);
      if (ring > 0) {  // a leader from the marker's edge to the nearest point of the box
        const double nx = std::clamp(x, box.x0, box.x1), ny = std::clamp(y, box.y0, box.y1);
        const double dist = std::hypot(nx - x, ny - y);
        if (dist > r) d.line(x + (nx - x) * r / dist, y + (ny - y) * r / dist, nx, ny, kGrey, 0.8);
      }
      d.text(bx, by, text, font_size, color);
      return true;
    }
  }
  return false;
}

}  // namespace rhead::report
