// A small built-in bitmap font for labels in PNG figures: printable ASCII glyphs on a
// 5 x 9 grid (rows 0-6 sit on the baseline, rows 7-8 are descenders), drawn at any
// size by scaling the grid.
#pragma once
#include <array>
#include <cstdint>

namespace rhead::report {

struct BitmapFont {
  static constexpr int kColumns = 5;  // glyph width, grid cells
  static constexpr int kRows = 9;     // glyph height including descenders
  static constexpr int kAscent = 7;   // rows above the baseline
  static constexpr int kAdvance = 6;  // horizontal step per character, grid cells
  static constexpr int kEm = 10;      // grid cells per font size unit (line height)
};

// Row bitmasks of one glyph: bit (kColumns - 1 - x) of rows[y] is cell (x, y).
using GlyphRows = std::array<std::uint8_t, BitmapFont::kRows>;

// The glyph of a code point; characters outside printable ASCII get a hollow box.
const GlyphRows& glyph_for(char32_t code_point);

}  // namespace rhead::report
