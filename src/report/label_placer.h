// Labels beside the points they name, clear of each other and of the markers.
// Each label takes the nearest free spot among candidates around its point: right, left,
// above and below first, then the four diagonals, then the same ring one step further out.
// Free means inside the plot area and overlapping no label placed before it and no obstacle
// (markers, notes already on the plot). A label set further than the first ring gets a thin
// leader line back to its point; a label with no free spot is not drawn (place returns false).
#pragma once
#include <string>
#include <vector>

#include "report/drawing.h"

namespace rhead::report {

struct LabelBox {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  bool overlaps(const LabelBox& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
};

// The box text drawn with Anchor::start at baseline (x, y) covers.
LabelBox text_box(double x, double y, const std::string& text, double font_size);

class LabelPlacer {
 public:
  explicit LabelPlacer(LabelBox area) : area_(area) {}
  // Something labels must not cover: a marker of radius r at (x, y), or any box.
  void avoid_marker(double x, double y, double r) { obstacles_.push_back({x - r, y - r, x + r, y + r}); }
  void avoid(const LabelBox& box) { obstacles_.push_back(box); }
  // Draws `text` beside the marker of radius r at (x, y); false when no spot was free.
  bool place(Drawing& d, double x, double y, double r, const std::string& text, double font_size, Color color);
  const std::vector<LabelBox>& placed() const { return placed_; }

 private:
  bool free(const LabelBox& box) const;
  LabelBox area_;
  std::vector<LabelBox> obstacles_, placed_;
};

}  // namespace rhead::report
