// Drawing primitives, the PNG renderer and the SVG writer.
// The PNG renderer fills shapes on a canvas kSupersample times finer than the output
// and averages each block of samples, which smooths edges and text without an
// anti-aliasing rasterizer.
#include "report/drawing.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "io/error.h"
#include "report/bitmap_font.h"
#include "report/html_text.h"

namespace rhead::report {

std::string Color::hex() const {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "#%02x%02x%02x", r, g, b);
  return buffer;
}

namespace {

// A shape of `kind` filled with `fill`, or outlined with `stroke`.
Shape filled(Shape::Kind kind, Color fill) {
  Shape s;
  s.kind = kind;
  s.fill = fill;
  s.has_fill = true;
  return s;
}
Shape stroked(Shape::Kind kind, Color stroke, double stroke_width) {
  Shape s;
  s.kind = kind;
  s.stroke = stroke;
  s.has_stroke = true;
  s.stroke_width = stroke_width;
  return s;
}

}  // namespace

void Drawing::rect(double x, double y, double w, double h, Color fill) {
  Shape& s = shapes.emplace_back(filled(Shape::Kind::rect, fill));
  s.x = x, s.y = y, s.w = w, s.h = h;
}

void Drawing::outline(double x, double y, double w, double h, Color stroke, double stroke_width) {
  Shape& s = shapes.emplace_back(stroked(Shape::Kind::rect, stroke, stroke_width));
  s.x = x, s.y = y, s.w = w, s.h = h;
}

void Drawing::line(double x1, double y1, double x2, double y2, Color stroke, double stroke_width, bool dashed) {
  Shape& s = shapes.emplace_back(stroked(Shape::Kind::line, stroke, stroke_width));
  s.x = x1, s.y = y1, s.x2 = x2, s.y2 = y2;
  s.dashed = dashed;
}

void Drawing::polyline(std::vector<std::pair<double, double>> points, Color stroke, double stroke_width) {
  shapes.emplace_back(stroked(Shape::Kind::polyline, stroke, stroke_width)).points = std::move(points);
}

void Drawing::circle(double cx, double cy, double r, Color fill) {
  Shape& s = shapes.emplace_back(filled(Shape::Kind::circle, fill));
  s.x = cx, s.y = cy, s.r = r;
}

void Drawing::text(double x, double y, std::string text, double font_size, Color color, Anchor anchor, bool vertical,
                   bool bold) {
  Shape& s = shapes.emplace_back(filled(Shape::Kind::text, color));
  s.x = x, s.y = y;
  s.text = std::move(text);
  s.font_size = font_size;
  s.anchor = anchor;
  s.vertical = vertical;
  s.bold = bold;
}

namespace {

// Decodes UTF-8 leniently: a malformed byte becomes U+FFFD.
std::vector<char32_t> code_points(const std::string& text) {
  std::vector<char32_t> out;
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    int extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    if (extra < 0 || i + static_cast<std::size_t>(extra) >= text.size()) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    char32_t cp = extra == 0 ? c : (c & (0x3F >> extra));
    for (int k = 1; k <= extra; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    out.push_back(cp);
    i += static_cast<std::size_t>(extra) + 1;
  }
  return out;
}

}  // namespace

double text_width(const std::string& text, double font_size) {
  const auto n = static_cast<double>(code_points(text).size());
  if (n == 0) return 0;
  const double unit = font_size / BitmapFont::kEm;
  return (n * BitmapFont::kAdvance - 1) * unit;
}

namespace {

constexpr int kSupersample = 3;

// An RGB canvas at supersampled resolution; every fill paints whole samples.
class Canvas {
 public:
  Canvas(int width, int height, Color background)
      : width_(width), height_(height), pixels_(static_cast<std::size_t>(width) * height * 3) {
    for (std::size_t i = 0; i < pixels_.size(); i += 3) {
      pixels_[i] = background.r;
      pixels_[i + 1] = background.g;
      pixels_[i + 2] = background.b;
    }
  }

  void set(int x, int y, Color c) {
    if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
    const std::size_t i = (static_cast<std::size_t>(y) * width_ + x) * 3;
    pixels_[i] = c.r;
    pixels_[i + 1] = c.g;
    pixels_[i + 2] = c.b;
  }

  // Samples whose centres lie in [x0, x1) x [y0, y1).
  void fill_rect(double x0, double y0, double x1, double y1, Color c) {
    const int ix0 = std::max(0, static_cast<int>(std::ceil(x0 - 0.5)));
    const int iy0 = std::max(0, static_cast<int>(std::ceil(y0 - 0.5)));
    const int ix1 = std::min(width_, static_cast<int>(std::ceil(x1 - 0.5)));
    const int iy1 = std::min(height_, static_cast<int>(std::ceil(y1 - 0.5)));
    for (int y = iy0; y < iy1; ++y)
      for (int x = ix0; x < ix1; ++x) set(x, y, c);
  }

  void fill_disc(double cx, double cy, double r, Color c) {
    const int x0 = static_cast<int>(std::floor(cx - r)), x1 = static_cast<int>(std::ceil(cx + r));
    const int y0 = static_cast<int>(std::floor(cy - r)), y1 = static_cast<int>(std::ceil(cy + r));
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) {
        const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
        if (dx * dx + dy * dy <= r * r) set(x, y, c);
      }
  }

  // A segment of the given width with flat ends: a rotated rectangle.
  void fill_segment(double x1, double y1, double x2, double y2, double width, Color c) {
    const double dx = x2 - x1, dy = y2 - y1, length = std::hypot(dx, dy);
    const double half = std::max(width, 1.0) / 2;
    if (length == 0) return;
    const double ux = dx / length, uy = dy / length;
    const int bx0 = static_cast<int>(std::floor(std::min(x1, x2) - half)),
              bx1 = static_cast<int>(std::ceil(std::max(x1, x2) + half));
    const int by0 = static_cast<int>(std::floor(std::min(y1, y2) - half)),
              by1 = static_cast<int>(std::ceil(std::max(y1, y2) + half));
    for (int y = std::max(by0, 0); y <= std::min(by1, height_ - 1); ++y)
      for (int x = std::max(bx0, 0); x <= std::min(bx1, width_ - 1); ++x) {
        const double px = x + 0.5 - x1, py = y + 0.5 - y1;
        const double along = px * ux + py * uy, across = -px * uy + py * ux;
        if (along >= 0 && along <= length && std::abs(across) <= half) set(x, y, c);
      }
  }

  // Averages kSupersample x kSupersample blocks into the output image.
  std::vector<std::uint8_t> downsample() const {
    const int out_w = width_ / kSupersample, out_h = height_ / kSupersample;
    std::vector<std::uint8_t> out(static_cast<std::size_t>(out_w) * out_h * 3);
    for (int y = 0; y < out_h; ++y)
      for (int x = 0; x < out_w; ++x)
        for (int ch = 0; ch < 3; ++ch) {
          int sum = 0;
          for (int sy = 0; sy < kSupersample; ++sy)
            for (int sx = 0; sx < kSupersample; ++sx)
              sum += pixels_[((static_cast<std::size_t>(y) * kSupersample + sy) * width_ + x * kSupersample + sx) * 3 +
                             ch];
          out[(static_cast<std::size_t>(y) * out_w + x) * 3 + ch] =
              static_cast<std::uint8_t>((sum + kSupersample * kSupersample / 2) / (kSupersample * kSupersample));
        }
    return out;
  }

 private:
  int width_, height_;
  std::vector<std::uint8_t> pixels_;
};

void draw_text(Canvas& canvas, const Shape& s, double k) {
  const double unit = s.font_size / BitmapFont::kEm * k;  // canvas samples per glyph cell
  const double width = text_width(s.text, s.font_size) * k;
  double u0 = s.anchor == Anchor::start ? 0 : s.anchor == Anchor::middle ? -width / 2 : -width;
  const double ax = s.x * k, ay = s.y * k;
  // Bold widens each set cell to the right by part of a cell.
  const double extra = s.bold ? unit * 0.45 : 0;
  for (char32_t cp : code_points(s.text)) {
    const GlyphRows& rows = glyph_for(cp);
    for (int gy = 0; gy < BitmapFont::kRows; ++gy)
      for (int gx = 0; gx < BitmapFont::kColumns; ++gx) {
        if (!((rows[gy] >> (BitmapFont::kColumns - 1 - gx)) & 1)) continue;
        const double u = u0 + gx * unit, v = (gy - BitmapFont::kAscent) * unit;
        if (!s.vertical) {
          canvas.fill_rect(ax + u, ay + v, ax + u + unit + extra, ay + v + unit, s.fill);
        } else {
          canvas.fill_rect(ax + v, ay - u - unit - extra, ax + v + unit, ay - u, s.fill);
        }
      }
    u0 += BitmapFont::kAdvance * unit;
  }
}

void draw_dashed(Canvas& canvas, double x1, double y1, double x2, double y2, double width, Color c) {
  const double length = std::hypot(x2 - x1, y2 - y1);
  if (length == 0) return;
  const double dash = std::max(width, 1.0) * 5, gap = std::max(width, 1.0) * 3.5;
  for (double t = 0; t < length; t += dash + gap) {
    const double t1 = std::min(t + dash, length);
    canvas.fill_segment(x1 + (x2 - x1) * t / length, y1 + (y2 - y1) * t / length, x1 + (x2 - x1) * t1 / length,
                        y1 + (y2 - y1) * t1 / length, width, c);
  }
}

void draw_shape(Canvas& canvas, const Shape& s, double k) {
  switch (s.kind) {
    case Shape::Kind::rect:
      if (s.has_fill) canvas.fill_rect(s.x * k, s.y * k, (s.x + s.w) * k, (s.y + s.h) * k, s.fill);
      if (s.has_stroke) {
        const double half = s.stroke_width / 2;
        const double x0 = s.x - half, y0 = s.y - half, x1 = s.x + s.w + half, y1 = s.y + s.h + half;
        const double t = s.stroke_width;
        canvas.fill_rect(x0 * k, y0 * k, x1 * k, (y0 + t) * k, s.stroke);
        canvas.fill_rect(x0 * k, (y1 - t) * k, x1 * k, y1 * k, s.stroke);
        canvas.fill_rect(x0 * k, y0 * k, (x0 + t) * k, y1 * k, s.stroke);
        canvas.fill_rect((x1 - t) * k, y0 * k, x1 * k, y1 * k, s.stroke);
      }
      break;
    case Shape::Kind::line:
      if (s.dashed)
        draw_dashed(canvas, s.x * k, s.y * k, s.x2 * k, s.y2 * k, s.stroke_width * k, s.stroke);
      else
        canvas.fill_segment(s.x * k, s.y * k, s.x2 * k, s.y2 * k, s.stroke_width * k, s.stroke);
      break;
    case Shape::Kind::polyline:
      for (std::size_t i = 0; i + 1 < s.points.size(); ++i) {
        const auto [xa, ya] = s.points[i];
        const auto [xb, yb] = s.points[i + 1];
        canvas.fill_segment(xa * k, ya * k, xb * k, yb * k, s.stroke_width * k, s.stroke);
      }
      for (const auto& [px, py] : s.points) canvas.fill_disc(px * k, py * k, s.stroke_width * k / 2, s.stroke);
      break;
    case Shape::Kind::circle: canvas.fill_disc(s.x * k, s.y * k, s.r * k, s.fill); break;
    case Shape::Kind::text: draw_text(canvas, s, k); break;
  }
}

std::vector<std::uint8_t> render_rgb(const Drawing& drawing, int scale, int& out_w, int& out_h) {
  if (drawing.width <= 0 || drawing.height <= 0 || scale <= 0) fail("figure", "empty drawing size");
  out_w = drawing.width * scale;
  out_h = drawing.height * scale;
  Canvas canvas(out_w * kSupersample, out_h * kSupersample, drawing.background);
  const double k = static_cast<double>(scale) * kSupersample;
  for (const auto& shape : drawing.shapes) draw_shape(canvas, shape, k);
  return canvas.downsample();
}

png_image rgb_image_header(int width, int height) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  image.format = PNG_FORMAT_RGB;
  return image;
}

}  // namespace

std::vector<std::uint8_t> encode_png(const Drawing& drawing, int scale) {
  int w = 0, h = 0;
  const std::vector<std::uint8_t> rgb = render_rgb(drawing, scale, w, h);
  png_image image = rgb_image_header(w, h);
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&image, nullptr, &size, 0, rgb.data(), 0, nullptr))
    fail("png", std::string("cannot size the image: ") + image.message);
  std::vector<std::uint8_t> out(size);
  if (!png_image_write_to_memory(&image, out.data(), &size, 0, rgb.data(), 0, nullptr))
    fail("png", std::string("cannot encode the image: ") + image.message);
  out.resize(size);
  return out;
}

void write_png(const Drawing& drawing, const std::string& path, int scale) {
  const std::vector<std::uint8_t> bytes = encode_png(drawing, scale);
  std::ofstream out(path, std::ios::binary);
  if (!out) fail(path, "cannot open for writing");
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) fail(path, "write failed");
}

RgbImage read_png(const std::string& path) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) fail(path, std::string("not a PNG: ") + image.message);
  image.format = PNG_FORMAT_RGB;
  RgbImage out;
  out.width = static_cast<int>(image.width);
  out.height = static_cast<int>(image.height);
  out.pixels.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, out.pixels.data(), 0, nullptr)) {
    std::string message = image.message;
    png_image_free(&image);
    fail(path, "cannot decode PNG: " + message);
  }
  return out;
}

namespace {

std::string num(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f", v);
  std::string s = buffer;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

}  // namespace

std::string to_svg(const Drawing& drawing) {
  std::ostringstream out;
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << drawing.width << "\" height=\"" << drawing.height
      << "\" viewBox=\"0 0 " << drawing.width << ' ' << drawing.height
      << "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
      << "<rect x=\"0\" y=\"0\" width=\"" << drawing.width << "\" height=\"" << drawing.height << "\" fill=\""
      << drawing.background.hex() << "\"/>\n";
  for (const auto& s : drawing.shapes) {
    const std::string title = s.tooltip.empty() ? "" : "<title>" + html_escape(s.tooltip) + "</title>";
    switch (s.kind) {
      case Shape::Kind::rect:
        out << "<rect x=\"" << num(s.x) << "\" y=\"" << num(s.y) << "\" width=\"" << num(s.w) << "\" height=\""
            << num(s.h) << "\" fill=\"" << (s.has_fill ? s.fill.hex() : "none") << '"';
        if (s.has_stroke) out << " stroke=\"" << s.stroke.hex() << "\" stroke-width=\"" << num(s.stroke_width) << '"';
        out << (title.empty() ? "/>\n" : ">" + title + "</rect>\n");
        break;
      case Shape::Kind::line:
        out << "<line x1=\"" << num(s.x) << "\" y1=\"" << num(s.y) << "\" x2=\"" << num(s.x2) << "\" y2=\"" << num(s.y2)
            << "\" stroke=\"" << s.stroke.hex() << "\" stroke-width=\"" << num(s.stroke_width) << '"';
        if (s.dashed)
          out << " stroke-dasharray=\"" << num(s.stroke_width * 5) << ' ' << num(s.stroke_width * 3.5) << '"';
        out << "/>\n";
        break;
      case Shape::Kind::polyline: {
        out << "<polyline fill=\"none\" stroke=\"" << s.stroke.hex() << "\" stroke-width=\"" << num(s.stroke_width)
            << "\" stroke-linejoin=\"round\" points=\"";
        for (std::size_t i = 0; i < s.points.size(); ++i)
          out << (i ? " " : "") << num(s.points[i].first) << ',' << num(s.points[i].second);
        out << "\"/>\n";
        break;
      }
      case Shape::Kind::circle:
        out << "<circle cx=\"" << num(s.x) << "\" cy=\"" << num(s.y) << "\" r=\"" << num(s.r) << "\" fill=\""
            << s.fill.hex() << '"' << (title.empty() ? "/>\n" : ">" + title + "</circle>\n");
        break;
      case Shape::Kind::text: {
        const char* anchor = s.anchor == Anchor::start ? "start" : s.anchor == Anchor::middle ? "middle" : "end";
        out << "<text x=\"" << num(s.x) << "\" y=\"" << num(s.y) << "\" font-size=\"" << num(s.font_size)
            << "\" fill=\"" << s.fill.hex() << "\" text-anchor=\"" << anchor << "\" pointer-events=\"none\"";
        if (s.bold) out << " font-weight=\"bold\"";
        if (s.vertical) out << " transform=\"rotate(-90 " << num(s.x) << ' ' << num(s.y) << ")\"";
        out << '>' << html_escape(s.text) << "</text>\n";
        break;
      }
    }
  }
  out << "</svg>\n";
  return out.str();
}

void write_svg(const Drawing& drawing, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  if (!out) fail(path, "cannot open for writing");
  out << to_svg(drawing);
  if (!out) fail(path, "write failed");
}

void save_figure(const Drawing& drawing, const std::string& path) {
  const auto dot = path.rfind('.');
  std::string ext = dot == std::string::npos ? "" : path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == "png")
    write_png(drawing, path);
  else if (ext == "svg")
    write_svg(drawing, path);
  else
    fail(path, "unknown figure format (use .png or .svg)");
}

}  // namespace rhead::report
