// PNG and SVG output of drawings: libpng reads back what we wrote, Python's XML parser
// accepts our SVG, and the bitmap font's glyph table is sane.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "io/error.h"
#include "report/bitmap_font.h"
#include "report/drawing.h"
#include "report/html_report.h"
#include "synthetic_runs.h"
#include "test_helpers.h"

namespace {

using namespace rhead::report;
using rhead::testing::ScratchDir;

Color pixel(const RgbImage& img, int x, int y) {
  const std::size_t i = (static_cast<std::size_t>(y) * img.width + x) * 3;
  return {img.pixels[i], img.pixels[i + 1], img.pixels[i + 2]};
}

TEST(Png, ReadsBackWithSizeAndColours) {
  ScratchDir dir("rhead-draw-");
  Drawing d;
  d.width = 120;
  d.height = 80;
  d.rect(10, 10, 40, 30, {200, 30, 40});
  d.line(0, 70, 120, 70, {0, 0, 255}, 4);
  d.circle(90, 30, 12, {0, 160, 0});
  const std::string path = (dir.path() / "a.png").string();
  write_png(d, path);
  const RgbImage img = read_png(path);
  EXPECT_EQ(img.width, 120);
  EXPECT_EQ(img.height, 80);
  EXPECT_EQ(pixel(img, 30, 25), (Color{200, 30, 40}));
  EXPECT_EQ(pixel(img, 5, 5), kWhite);
  EXPECT_EQ(pixel(img, 60, 70), (Color{0, 0, 255}));
  EXPECT_EQ(pixel(img, 90, 30), (Color{0, 160, 0}));

  write_png(d, path, 2);
  const RgbImage big = read_png(path);
  EXPECT_EQ(big.width, 240);
  EXPECT_EQ(big.height, 160);
  EXPECT_EQ(pixel(big, 60, 50), (Color{200, 30, 40}));

  const auto bytes = encode_png(d);
  ASSERT_GT(bytes.size(), 8u);
  EXPECT_EQ(bytes[1], 'P');
  EXPECT_EQ(bytes[2], 'N');
  EXPECT_EQ(bytes[3], 'G');
}

TEST(Png, TextIsDrawnInsideItsBox) {
  ScratchDir dir("rhead-draw-");
  Drawing d;
  d.width = 200;
  d.height = 60;
  d.text(100, 40, "Layer 16-19", 20, kBlack, Anchor::middle);
  const std::string path = (dir.path() / "t.png").string();
  write_png(d, path);
  const RgbImage img = read_png(path);
  const double w = text_width("Layer 16-19", 20);
  int dark_inside = 0, dark_outside = 0;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      const bool dark = pixel(img, x, y).r < 128;
      const bool inside = x >= 100 - w / 2 - 1 && x <= 100 + w / 2 + 1 && y >= 40 - 14 - 1 && y <= 40 + 4 + 1;
      (inside ? dark_inside : dark_outside) += dark;
    }
  EXPECT_GT(dark_inside, 100);
  EXPECT_EQ(dark_outside, 0);
}

TEST(Png, ReadingGarbageIsAnError) {
  ScratchDir dir("rhead-draw-");
  const auto path = dir.path() / "bad.png";
  rhead::testing::write_text(path, "not a png");
  EXPECT_THROW(read_png(path.string()), rhead::Error);
}

TEST(Svg, IsWellFormedXmlWithEscapedText) {
  ScratchDir dir("rhead-draw-");
  Drawing d;
  d.width = 300;
  d.height = 100;
  d.rect(0, 0, 10, 10, kBlack);
  d.text(10, 50, "a < b & \"c\" > d", 14);
  d.text(10, 80, "upright", 14, kBlack, Anchor::middle, true);
  d.polyline({{0, 0}, {10, 20}, {30, 5}}, kGrey);
  d.line(0, 0, 100, 100, kGrey, 1, true);
  const std::string path = (dir.path() / "a.svg").string();
  write_svg(d, path);
  const auto r = rhead::testing::parse_svg(path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "svg 2 300 100\n");
  EXPECT_NE(to_svg(d).find("a &lt; b &amp; &quot;c&quot; &gt; d"), std::string::npos);
  EXPECT_NE(to_svg(d).find("rotate(-90"), std::string::npos);
}

TEST(SaveFigure, PicksFormatByExtension) {
  ScratchDir dir("rhead-draw-");
  Drawing d;
  save_figure(d, (dir.path() / "x.PNG").string());
  EXPECT_EQ(read_png((dir.path() / "x.PNG").string()).width, d.width);
  save_figure(d, (dir.path() / "x.svg").string());
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "x.svg"));
  EXPECT_THROW(save_figure(d, (dir.path() / "x.gif").string()), rhead::Error);
}

TEST(BitmapFont, EveryPrintableGlyphIsDistinct) {
  std::set<GlyphRows> seen;
  for (char32_t c = 33; c < 127; ++c) {
    const GlyphRows& g = glyph_for(c);
    bool any = false;
    for (auto row : g) any = any || row != 0;
    EXPECT_TRUE(any) << "empty glyph for '" << static_cast<char>(c) << "'";
    EXPECT_TRUE(seen.insert(g).second) << "glyph for '" << static_cast<char>(c) << "' repeats another";
    for (auto row : g) EXPECT_LT(row, 1u << BitmapFont::kColumns);
  }
  for (auto row : glyph_for(' ')) EXPECT_EQ(row, 0);
  EXPECT_NE(glyph_for(U'\u00e9'), glyph_for(' '));  // outside ASCII: a visible box
  // Descenders sit below the baseline, capitals do not.
  EXPECT_NE(glyph_for('g')[8], 0);
  EXPECT_EQ(glyph_for('G')[8], 0);
}

}  // namespace
