// The bf16 panel GEMM on AMX tiles: the loop of gemm_panel_tiles.inc on the instructions
// (entered only after cpu_has_amx_bf16_gemm(), gemm_panel.cpp) and on a software model of
// them that any CPU runs, so that a machine without AMX tests the loop, its strides and its
// tile shapes. The model follows the instruction set reference: TDPBF16PS's order and
// roundings (detail::amx_bf16_fma, shared with the scalar twin) and the shape checks that
// make the hardware fault (#UD), which the model reports as errors.
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "io/error.h"
#include "ops/gemm_panel.h"
#include "ops/isa_target.h"

namespace rhead::detail {
namespace {
// Shapes of the tiles that gemm_panel_tiles.inc uses (0, 1: C; 2: A; 3, 4: B), each row 64
// bytes; the instructions and the model configure these.
constexpr int kTiles = 5, kTileBytes = 64;
constexpr int kTileRows[kTiles] = {kPanelRows, kPanelRows, kPanelRows, 16, 16};
}  // namespace
}  // namespace rhead::detail

RHEAD_ISA_BEGIN("amx-tile,amx-bf16")
namespace rhead::detail {
namespace on_amx {
namespace {

// The tile configuration of palette 1 (64 bytes): tile t has rows[t] rows of colsb[t] bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64);

TileConfig panel_config() {
  TileConfig c;
  for (int t = 0; t < kTiles; ++t) {
    c.colsb[t] = kTileBytes;
    c.rows[t] = static_cast<uint8_t>(kTileRows[t]);
  }
  return c;
}

struct Tiles {
  static void configure() {
    static const TileConfig config = panel_config();
    _tile_loadconfig(&config);
  }
  static void zero_c() {
    _tile_zero(0);
    _tile_zero(1);
  }
  static void load_a(const void* p, int64_t stride) { _tile_loadd(2, p, stride); }
  static void load_b(const void* p0, const void* p1, int64_t stride) {
    _tile_loadd(3, p0, stride);
    _tile_loadd(4, p1, stride);
  }
  static void dp() {
    _tile_dpbf16ps(0, 2, 3);
    _tile_dpbf16ps(1, 2, 4);
  }
  static void store_c(void* p0, void* p1, int64_t stride) {
    _tile_stored(0, p0, stride);
    _tile_stored(1, p1, stride);
  }
  static void release() { _tile_release(); }
};

#include "ops/gemm_panel_tiles.inc"

}  // namespace
}  // namespace on_amx

void gemm_bf16_panel_amx(const uint32_t* xp, int64_t T, int64_t K, const uint32_t* panel, int64_t n_rows, float* y,
                         int64_t ldy) {
  on_amx::gemm_bf16_panel_tiles(xp, T, K, panel, n_rows, y, ldy);
}

}  // namespace rhead::detail
RHEAD_ISA_END

namespace rhead::detail {
namespace on_model {
namespace {

// The software model: eight tiles of up to 16 rows of 64 bytes, per thread as on the CPU.
struct Tile {
  int rows = 0, colsb = 0;
  uint8_t bytes[16][64] = {};
};
thread_local Tile g_tiles[8];
thread_local bool g_configured = false;

[[noreturn]] void fault(const std::string& what) { fail("amx tile model", what); }

Tile& tile(int t) {
  if (!g_configured) fault("tile " + std::to_string(t) + " used with no configuration loaded");
  return g_tiles[t];
}

void model_load(int t, const void* p, int64_t stride) {
  Tile& d = tile(t);
  for (int r = 0; r < d.rows; ++r) std::memcpy(d.bytes[r], static_cast<const uint8_t*>(p) + r * stride, d.colsb);
}

void model_store(int t, void* p, int64_t stride) {
  const Tile& s = tile(t);
  for (int r = 0; r < s.rows; ++r) std::memcpy(static_cast<uint8_t*>(p) + r * stride, s.bytes[r], s.colsb);
}

uint16_t half_of(const Tile& t, int row, int i) {
  uint16_t h;
  std::memcpy(&h, t.bytes[row] + 2 * i, 2);
  return h;
}

// TDPBF16PS c, a, b as the reference's pseudo-code writes it.
void model_dp(int ci, int ai, int bi) {
  Tile &c = tile(ci), &a = tile(ai), &b = tile(bi);
  if (a.colsb / 4 != b.rows || c.rows != a.rows || c.colsb != b.colsb)
    fault("TDPBF16PS on tiles of shapes that do not multiply (the CPU raises #UD)");
  for (int m = 0; m < c.rows; ++m) {
    float row[16];
    std::memcpy(row, c.bytes[m], sizeof row);
    for (int k = 0; k < a.colsb / 4; ++k)
      for (int n = 0; n < c.colsb / 4; ++n) {
        row[n] = amx_bf16_fma(half_of(a, m, 2 * k), half_of(b, k, 2 * n), row[n]);
        row[n] = amx_bf16_fma(half_of(a, m, 2 * k + 1), half_of(b, k, 2 * n + 1), row[n]);
      }
    std::memcpy(c.bytes[m], row, c.colsb);
  }
}

struct Tiles {
  static void configure() {
    for (int t = 0; t < 8; ++t) g_tiles[t] = Tile{};  // loading a configuration zeroes the tiles
    for (int t = 0; t < kTiles; ++t) {
      g_tiles[t].colsb = kTileBytes;
      g_tiles[t].rows = kTileRows[t];
    }
    g_configured = true;
  }
  static void zero_c() {
    for (int t : {0, 1}) std::memset(tile(t).bytes, 0, sizeof(Tile::bytes));
  }
  static void load_a(const void* p, int64_t stride) { model_load(2, p, stride); }
  static void load_b(const void* p0, const void* p1, int64_t stride) {
    model_load(3, p0, stride);
    model_load(4, p1, stride);
  }
  static void dp() {
    model_dp(0, 2, 3);
    model_dp(1, 2, 4);
  }
  static void store_c(void* p0, void* p1, int64_t stride) {
    model_store(0, p0, stride);
    model_store(1, p1, stride);
  }
  static void release() { g_configured = false; }
};

#include "ops/gemm_panel_tiles.inc"

}  // namespace
}  // namespace on_model

void gemm_bf16_panel_amx_model(const uint32_t* xp, int64_t T, int64_t K, const uint32_t* panel, int64_t n_rows,
                               float* y, int64_t ldy) {
  on_model::gemm_bf16_panel_tiles(xp, T, K, panel, n_rows, y, ldy);
}

}  // namespace rhead::detail
