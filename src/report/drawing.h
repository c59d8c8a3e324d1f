// Figures as plain lists of shapes. A plot builds a Drawing once; the PNG renderer
// (libpng, built-in bitmap font) and the SVG writer both turn it into a file, so
// both formats always show the same figure.
// Coordinates are pixels of the PNG at scale 1, y pointing down.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace rhead::report {

struct Color {
  std::uint8_t r = 0, g = 0, b = 0;
  std::string hex() const;  // "#rrggbb"
  bool operator==(const Color&) const = default;
};

inline constexpr Color kBlack{0, 0, 0};
inline constexpr Color kWhite{255, 255, 255};
inline constexpr Color kGrey{128, 128, 128};
inline constexpr Color kLightGrey{220, 220, 220};

enum class Anchor { start, middle, end };

struct Shape {
  enum class Kind { rect, line, polyline, circle, text } kind = Kind::rect;
  // rect: (x, y) top-left, w x h. line: (x, y) -> (x2, y2). circle: centre (x, y), radius r.
  // text: (x, y) is the anchor point on the baseline.
  double x = 0, y = 0, w = 0, h = 0, x2 = 0, y2 = 0, r = 0;
  std::vector<std::pair<double, double>> points;  // polyline
  Color fill{}, stroke{};
  bool has_fill = false, has_stroke = false;
  double stroke_width = 1;
  bool dashed = false;
  std::string text;       // UTF-8; PNG shows non-ASCII as boxes
  double font_size = 14;  // line height in pixels
  Anchor anchor = Anchor::start;
  bool vertical = false;  // text reads bottom to top (rotated -90 degrees)
  bool bold = false;
  std::string tooltip;  // SVG <title>, ignored in PNG
};

struct Drawing {
  int width = 800, height = 600;
  Color background = kWhite;
  std::vector<Shape> shapes;

  void rect(double x, double y, double w, double h, Color fill);
  void outline(double x, double y, double w, double h, Color stroke, double stroke_width = 1);
  void line(double x1, double y1, double x2, double y2, Color stroke, double stroke_width = 1, bool dashed = false);
  void polyline(std::vector<std::pair<double, double>> points, Color stroke, double stroke_width = 2);
  void circle(double cx, double cy, double r, Color fill);
  void text(double x, double y, std::string text, double font_size, Color color = kBlack, Anchor anchor = Anchor::start,
            bool vertical = false, bool bold = false);
};

// Width in pixels of `text` set at `font_size`, the same metric for PNG and SVG layout.
double text_width(const std::string& text, double font_size);

// PNG via libpng. `scale` multiplies every coordinate (2 gives a print-resolution image).
std::vector<std::uint8_t> encode_png(const Drawing& drawing, int scale = 1);
void write_png(const Drawing& drawing, const std::string& path, int scale = 1);

// A standalone SVG document.
std::string to_svg(const Drawing& drawing);
void write_svg(const Drawing& drawing, const std::string& path);

// Writes PNG or SVG, chosen by the extension of `path` (".png" or ".svg").
void save_figure(const Drawing& drawing, const std::string& path);

// An RGB image read back from a PNG file (tests, and checks of written figures).
struct RgbImage {
  int width = 0, height = 0;
  std::vector<std::uint8_t> pixels;  // [height][width][3]
};
RgbImage read_png(const std::string& path);

}  // namespace rhead::report
