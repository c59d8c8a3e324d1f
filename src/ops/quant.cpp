// Scalar row kernels (the references the SIMD versions are tested against), the
// quantizers, f16/bf16 conversions, and the run-time choice of kernel set.
#include "ops/quant.h"

#include <cpuid.h>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "io/enum_names.h"
#include "io/error.h"
#include "ops/lanes.h"

namespace rhead {

// ---------------------------------------------------------------------------------------
// f16 / bf16

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h >> 15) << 31;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24 is exact in f32.
    float v = float(mant) * 0x1p-24f;
    std::memcpy(&bits, &v, 4);
    bits |= sign;
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf, or nan with its payload kept
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // rebias 15 -> 127
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  uint16_t sign = uint16_t((bits >> 16) & 0x8000);
  uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00 | uint16_t((abs >> 13) & 0x3ff);  // quiet nan
  if (abs >= 0x477ff000u) return sign | 0x7c00;  // >= 65520 rounds to inf (and inf itself)
  if (abs < 0x38800000u) {
    // Below the smallest normal half (2^-14): a subnormal half in units of 2^-24.
    if (abs <= 0x33000000u) return sign;  // <= 2^-25 rounds (to even) to zero
    uint32_t e = abs >> 23;
    uint32_t m = (abs & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e;  // value / 2^-24 = m * 2^(e - 126)
    uint32_t r = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;
    return sign | uint16_t(r);
  }
  uint32_t r = (abs >> 13) - (112u << 10);
  uint32_t rem = abs & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) ++r;  // a carry into the exponent is right
  return sign | uint16_t(r);
}

float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);  // quiet nan
  bits += 0x7fff + ((bits >> 16) & 1);
  return uint16_t(bits >> 16);
}

namespace {

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
void store_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
float load_f16(const uint8_t* p) { return f16_to_f32(load_u16(p)); }

// Q4_K / Q5_K: 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes.
// Bytes 0-3: scales 0-3 (low 6 bits) + top 2 bits of scales 4-7; bytes 4-7: the same for
// mins; bytes 8-11: low nibble = low 4 bits of scale 4+i, high nibble = of min 4+i.
void k_scale_min(int j, const uint8_t* s, int& scale, int& min) {
  if (j < 4) {
    scale = s[j] & 63;
    min = s[j + 4] & 63;
  } else {
    scale = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
    min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

void k_pack_scales(const int scale[8], const int min[8], uint8_t* s) {
  for (int j = 0; j < 4; ++j) {
    s[j] = uint8_t((scale[j] & 63) | ((scale[j + 4] >> 4) << 6));
    s[j + 4] = uint8_t((min[j] & 63) | ((min[j + 4] >> 4) << 6));
    s[j + 8] = uint8_t((scale[j + 4] & 0xf) | ((min[j + 4] & 0xf) << 4));
  }
}

// ---- scalar dequantization, one block at a time ----

void dequant_block_q8_0(const uint8_t* b, float* y) {
  float d = load_f16(b);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int i = 0; i < 32; ++i) y[i] = d * qs[i];
}

void dequant_block_q4_0(const uint8_t* b, float* y) {
  float d = load_f16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * ((qs[j] & 0xf) - 8);
    y[j + 16] = d * ((qs[j] >> 4) - 8);
  }
}

void dequant_block_q4_1(const uint8_t* b, float* y) {
  float d = load_f16(b), m = load_f16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * (qs[j] & 0xf) + m;
    y[j + 16] = d * (qs[j] >> 4) + m;
  }
}

void dequant_block_q5_0(const uint8_t* b, float* y) {
  float d = load_f16(b);
  uint32_t qh = load_u32(b + 2);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    int q0 = (qs[j] & 0xf) | int(((qh >> j) & 1) << 4);
    int q1 = (qs[j] >> 4) | int(((qh >> (j + 16)) & 1) << 4);
    y[j] = d * (q0 - 16);
    y[j + 16] = d * (q1 - 16);
  }
}

void dequant_block_q5_1(const uint8_t* b, float* y) {
  float d = load_f16(b), m = load_f16(b + 2);
  uint32_t qh = load_u32(b + 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < 16; ++j) {
    int q0 = (qs[j] & 0xf) | int(((qh >> j) & 1) << 4);
    int q1 = (qs[j] >> 4) | int(((qh >> (j + 16)) & 1) << 4);
    y[j] = d * q0 + m;
    y[j + 16] = d * q1 + m;
  }
}

void dequant_block_q4_k(const uint8_t* b, float* y) {
  float d = load_f16(b), dmin = load_f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qs = b + 16;
  for (int c = 0; c < 4; ++c) {  // 64 elements: sub-blocks 2c (low nibbles), 2c+1 (high)
    int sc0, m0, sc1, m1;
    k_scale_min(2 * c, scales, sc0, m0);
    k_scale_min(2 * c + 1, scales, sc1, m1);
    float d0 = d * sc0, min0 = dmin * m0, d1 = d * sc1, min1 = dmin * m1;
    for (int l = 0; l < 32; ++l) {
      y[64 * c + l] = d0 * (qs[32 * c + l] & 0xf) - min0;
      y[64 * c + 32 + l] = d1 * (qs[32 * c + l] >> 4) - min1;
    }
  }
}

void dequant_block_q5_k(const uint8_t* b, float* y) {
  float d = load_f16(b), dmin = load_f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int c = 0; c < 4; ++c) {
    int sc0, m0, sc1, m1;
    k_scale_min(2 * c, scales, sc0, m0);
    k_scale_min(2 * c + 1, scales, sc1, m1);
    float d0 = d * sc0, min0 = dmin * m0, d1 = d * sc1, min1 = dmin * m1;
    for (int l = 0; l < 32; ++l) {
      int q0 = (qs[32 * c + l] & 0xf) | (((qh[l] >> (2 * c)) & 1) << 4);
      int q1 = (qs[32 * c + l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4);
      y[64 * c + l] = d0 * q0 - min0;
      y[64 * c + 32 + l] = d1 * q1 - min1;
    }
  }
}

void dequant_block_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);
  float d = load_f16(b + 208);
  for (int h = 0; h < 2; ++h) {  // two halves of 128 elements
    const uint8_t* l4 = ql + 64 * h;
    const uint8_t* h2 = qh + 32 * h;
    const int8_t* sc = scales + 8 * h;
    float* out = y + 128 * h;
    for (int l = 0; l < 32; ++l) {
      int q0 = ((l4[l] & 0xf) | (((h2[l] >> 0) & 3) << 4)) - 32;
      int q1 = ((l4[l + 32] & 0xf) | (((h2[l] >> 2) & 3) << 4)) - 32;
      int q2 = ((l4[l] >> 4) | (((h2[l] >> 4) & 3) << 4)) - 32;
      int q3 = ((l4[l + 32] >> 4) | (((h2[l] >> 6) & 3) << 4)) - 32;
      int g = l / 16;  // each 16 elements have their own scale
      out[l] = d * sc[g] * q0;
      out[l + 32] = d * sc[g + 2] * q1;
      out[l + 64] = d * sc[g + 4] * q2;
      out[l + 96] = d * sc[g + 6] * q3;
    }
  }
}

using BlockDecoder = void (*)(const uint8_t*, float*);

BlockDecoder block_decoder(DType t) {
  switch (t) {
    case DType::Q8_0: return dequant_block_q8_0;
    case DType::Q4_0: return dequant_block_q4_0;
    case DType::Q4_1: return dequant_block_q4_1;
    case DType::Q5_0: return dequant_block_q5_0;
    case DType::Q5_1: return dequant_block_q5_1;
    case DType::Q4_K: return dequant_block_q4_k;
    case DType::Q5_K: return dequant_block_q5_k;
    case DType::Q6_K: return dequant_block_q6_k;
    default: return nullptr;
  }
}

void check_row_length(const char* where, DType t, int64_t n) {
  DTypeInfo info = dtype_info(t);
  if (n < 0 || n % info.block_elems != 0)
    fail(where, "row length " + std::to_string(n) + " is not a multiple of the " + info.name + " block size " +
                    std::to_string(info.block_elems));
}

// ---- quantizers, one block at a time ----

// Rounds v to the f16 that will be stored, and returns it as f32.
float through_f16(float v, uint8_t* dst) {
  uint16_t h = f32_to_f16(v);
  store_u16(dst, h);
  return f16_to_f32(h);
}

int clamp_round(float v, int lo, int hi) {
  if (!(v == v)) return lo;
  return std::clamp(int(std::lrintf(std::clamp(v, -1e6f, 1e6f))), lo, hi);
}

// The element of largest magnitude, with its sign.
float signed_absmax(const float* x, int n) {
  float best = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > std::fabs(best)) best = x[i];
  return best;
}

void quant_block_q8_0(const float* x, uint8_t* b) {
  float amax = 0;
  for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
  float d = through_f16(amax / 127, b);
  float id = d != 0 ? 1 / d : 0;
  int8_t* qs = reinterpret_cast<int8_t*>(b + 2);
  for (int i = 0; i < 32; ++i) qs[i] = int8_t(clamp_round(x[i] * id, -127, 127));
}

// Q4_0 / Q5_0: the value of largest magnitude maps to the most negative code, so the
// asymmetric range -8..7 (-16..15) is used in full.
void quant_block_q4_0(const float* x, uint8_t* b) {
  float d = through_f16(signed_absmax(x, 32) / -8, b);
  float id = d != 0 ? 1 / d : 0;
  uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    int q0 = clamp_round(x[j] * id + 8, 0, 15);
    int q1 = clamp_round(x[j + 16] * id + 8, 0, 15);
    qs[j] = uint8_t(q0 | (q1 << 4));
  }
}

void quant_block_q5_0(const float* x, uint8_t* b) {
  float d = through_f16(signed_absmax(x, 32) / -16, b);
  float id = d != 0 ? 1 / d : 0;
  uint32_t qh = 0;
  uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    int q0 = clamp_round(x[j] * id + 16, 0, 31);
    int q1 = clamp_round(x[j + 16] * id + 16, 0, 31);
    qs[j] = uint8_t((q0 & 0xf) | ((q1 & 0xf) << 4));
    qh |= uint32_t(q0 >> 4) << j;
    qh |= uint32_t(q1 >> 4) << (j + 16);
  }
  std::memcpy(b + 2, &qh, 4);
}

// Q4_1 / Q5_1: codes 0..qmax span [min, max].
void quant_block_q4_1_or_q5_1(const float* x, uint8_t* b, int qmax) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < 32; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
  float d = through_f16((hi - lo) / qmax, b);
  float m = through_f16(lo, b + 2);
  float id = d != 0 ? 1 / d : 0;
  int q[32];
  for (int i = 0; i < 32; ++i) q[i] = clamp_round((x[i] - m) * id, 0, qmax);
  uint8_t* qs = b + (qmax == 15 ? 4 : 8);
  for (int j = 0; j < 16; ++j) qs[j] = uint8_t((q[j] & 0xf) | ((q[j + 16] & 0xf) << 4));
  if (qmax == 31) {
    uint32_t qh = 0;
    for (int i = 0; i < 32; ++i) qh |= uint32_t(q[i] >> 4) << i;
    std::memcpy(b + 4, &qh, 4);
  }
}

// Q4_K / Q5_K: each sub-block of 32 gets scale (max - min) / qmax and offset min (clamped to
// <= 0, since the format subtracts a non-negative dmin * m); both are then stored as 6-bit
// multiples of the block's d and dmin, and the elements are coded against the stored values.
void quant_block_k(const float* x, uint8_t* b, int qmax, int q[256]) {
  float scale[8], offset[8];
  float max_scale = 0, max_offset = 0;
  for (int s = 0; s < 8; ++s) {
    float lo = 0, hi = x[32 * s];
    for (int l = 0; l < 32; ++l) lo = std::min(lo, x[32 * s + l]), hi = std::max(hi, x[32 * s + l]);
    scale[s] = (hi - lo) / qmax;
    offset[s] = -lo;
    max_scale = std::max(max_scale, scale[s]);
    max_offset = std::max(max_offset, offset[s]);
  }
  float d = through_f16(max_scale / 63, b);
  float dmin = through_f16(max_offset / 63, b + 2);
  int sc[8], mn[8];
  for (int s = 0; s < 8; ++s) {
    // Round the scale up so that the sub-block's range still fits in qmax steps.
    sc[s] = d != 0 ? std::clamp(int(std::ceil(scale[s] / d - 1e-4f)), 0, 63) : 0;
    mn[s] = dmin != 0 ? clamp_round(offset[s] / dmin, 0, 63) : 0;
    float step = d * sc[s], base = dmin * mn[s];
    float inv = step != 0 ? 1 / step : 0;
    for (int l = 0; l < 32; ++l) q[32 * s + l] = clamp_round((x[32 * s + l] + base) * inv, 0, qmax);
  }
  k_pack_scales(sc, mn, b + 4);
}

void quant_block_q4_k(const float* x, uint8_t* b) {
  int q[256];
  quant_block_k(x, b, 15, q);
  uint8_t* qs = b + 16;
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) qs[32 * c + l] = uint8_t(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
}

void quant_block_q5_k(const float* x, uint8_t* b) {
  int q[256];
  quant_block_k(x, b, 31, q);
  uint8_t* qh = b + 16;
  uint8_t* qs = b + 48;
  std::memset(qh, 0, 32);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      int q0 = q[64 * c + l], q1 = q[64 * c + 32 + l];
      qs[32 * c + l] = uint8_t((q0 & 0xf) | ((q1 & 0xf) << 4));
      qh[l] |= uint8_t(((q0 >> 4) << (2 * c)) | ((q1 >> 4) << (2 * c + 1)));
    }
}

// Q6_K: each sub-block of 16 gets scale (signed absmax) / -32; the scales are stored as
// int8 multiples of d = max |scale| / 127.
void quant_block_q6_k(const float* x, uint8_t* b) {
  float scale[16];
  float max_scale = 0;
  for (int s = 0; s < 16; ++s) {
    scale[s] = signed_absmax(x + 16 * s, 16) / -32;
    max_scale = std::max(max_scale, std::fabs(scale[s]));
  }
  float d = through_f16(max_scale / 127, b + 208);
  int8_t* sc = reinterpret_cast<int8_t*>(b + 192);
  int q[256];
  for (int s = 0; s < 16; ++s) {
    sc[s] = int8_t(d != 0 ? clamp_round(scale[s] / d, -127, 127) : 0);
    float step = d * sc[s];
    float inv = step != 0 ? 1 / step : 0;
    for (int l = 0; l < 16; ++l) q[16 * s + l] = clamp_round(x[16 * s + l] * inv, -32, 31) + 32;
  }
  uint8_t* ql = b;
  uint8_t* qh = b + 128;
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const int* qq = q + 128 * h;
      int q0 = qq[l], q1 = qq[l + 32], q2 = qq[l + 64], q3 = qq[l + 96];
      ql[64 * h + l] = uint8_t((q0 & 0xf) | ((q2 & 0xf) << 4));
      ql[64 * h + l + 32] = uint8_t((q1 & 0xf) | ((q3 & 0xf) << 4));
      qh[32 * h + l] = uint8_t((q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) | ((q3 >> 4) << 6));
    }
}

using BlockQuantizer = void (*)(const float*, uint8_t*);

BlockQuantizer block_quantizer(DType t) {
  switch (t) {
    case DType::Q8_0: return quant_block_q8_0;
    case DType::Q4_0: return quant_block_q4_0;
    case DType::Q4_1: return [](const float* x, uint8_t* b) { quant_block_q4_1_or_q5_1(x, b, 15); };
    case DType::Q5_0: return quant_block_q5_0;
    case DType::Q5_1: return [](const float* x, uint8_t* b) { quant_block_q4_1_or_q5_1(x, b, 31); };
    case DType::Q4_K: return quant_block_q4_k;
    case DType::Q5_K: return quant_block_q5_k;
    case DType::Q6_K: return quant_block_q6_k;
    default: return nullptr;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Scalar references

void dequantize_row_ref(DType t, const void* row, float* dst, int64_t n) {
  check_row_length("dequantize_row", t, n);
  const uint8_t* p = static_cast<const uint8_t*>(row);
  switch (t) {
    case DType::F32: std::memcpy(dst, p, size_t(n) * 4); return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(load_u16(p + 2 * i));
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load_u16(p + 2 * i));
      return;
    default: break;
  }
  DTypeInfo info = dtype_info(t);
  BlockDecoder decode = block_decoder(t);
  for (int64_t b = 0; b < n / info.block_elems; ++b) decode(p + b * info.block_bytes, dst + b * info.block_elems);
}

float dot_row_ref(DType t, const void* row, const float* x, int64_t n) {
  check_row_length("dot_row", t, n);
  const uint8_t* p = static_cast<const uint8_t*>(row);
  DTypeInfo info = dtype_info(t);
  // Decode one block at a time and accumulate in double: a reference, not a fast path.
  float w[256];
  double sum = 0;
  for (int64_t b = 0; b < n / info.block_elems; ++b) {
    dequantize_row_ref(t, p + b * info.block_bytes, w, info.block_elems);
    for (int64_t i = 0; i < info.block_elems; ++i) sum += double(w[i]) * x[b * info.block_elems + i];
  }
  return float(sum);
}

void quantize_row(DType t, const float* src, void* row, int64_t n) {
  check_row_length("quantize_row", t, n);
  uint8_t* p = static_cast<uint8_t*>(row);
  switch (t) {
    case DType::F32: std::memcpy(p, src, size_t(n) * 4); return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) store_u16(p + 2 * i, f32_to_f16(src[i]));
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) store_u16(p + 2 * i, f32_to_bf16(src[i]));
      return;
    default: break;
  }
  DTypeInfo info = dtype_info(t);
  BlockQuantizer quantize = block_quantizer(t);
  for (int64_t b = 0; b < n / info.block_elems; ++b) quantize(src + b * info.block_elems, p + b * info.block_bytes);
}

// ---------------------------------------------------------------------------------------
// Dispatch

constexpr EnumName<KernelISA> kIsaNames[] = {
    {KernelISA::Scalar, "scalar"}, {KernelISA::AVX2, "avx2"}, {KernelISA::AVX512, "avx512"}};

const char* isa_name(KernelISA isa) { return name_in(kIsaNames, isa); }

namespace {
// The CPU's instruction sets, read once: CPUID is a trap into the hypervisor on a virtual
// machine (microseconds), far too slow for the per-row *_isa entry points.
struct CpuIsas {
  bool avx2 = false, avx512 = false, vnni = false;
  CpuIsas() {
    // F16C from CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports has no "f16c".
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29));
    avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl");
    vnni = avx512 && __builtin_cpu_supports("avx512vnni");
  }
};
const CpuIsas& cpu_isas() {
  static const CpuIsas isas;
  return isas;
}
}  // namespace

bool cpu_has_isa(KernelISA isa) {
  switch (isa) {
    case KernelISA::Scalar: return true;
    case KernelISA::AVX2: return cpu_isas().avx2;
    case KernelISA::AVX512: return cpu_isas().avx512;
  }
  return false;
}

KernelISA best_isa() {
  static const KernelISA best = cpu_has_isa(KernelISA::AVX512) ? KernelISA::AVX512
                                : cpu_has_isa(KernelISA::AVX2) ? KernelISA::AVX2
                                                               : KernelISA::Scalar;
  return best;
}

void dequantize_row_isa(KernelISA isa, DType t, const void* row, float* dst, int64_t n) {
  if (!cpu_has_isa(isa)) fail("dequantize_row", std::string("this CPU lacks ") + isa_name(isa));
  check_row_length("dequantize_row", t, n);
  switch (isa) {
    case KernelISA::Scalar: return dequantize_row_ref(t, row, dst, n);
    case KernelISA::AVX2: return detail::dequantize_row_avx2(t, row, dst, n);
    case KernelISA::AVX512: return detail::dequantize_row_avx512(t, row, dst, n);
  }
}

float dot_row_isa(KernelISA isa, DType t, const void* row, const float* x, int64_t n) {
  if (!cpu_has_isa(isa)) fail("dot_row", std::string("this CPU lacks ") + isa_name(isa));
  check_row_length("dot_row", t, n);
  switch (isa) {
    case KernelISA::Scalar: return dot_row_ref(t, row, x, n);
    case KernelISA::AVX2: return detail::dot_row_avx2(t, row, x, n);
    case KernelISA::AVX512: return detail::dot_row_avx512(t, row, x, n);
  }
  return 0;
}

void dequantize_row(DType t, const void* row, float* dst, int64_t n) {
  check_row_length("dequantize_row", t, n);
  switch (best_isa()) {
    case KernelISA::AVX512: return detail::dequantize_row_avx512(t, row, dst, n);
    case KernelISA::AVX2: return detail::dequantize_row_avx2(t, row, dst, n);
    case KernelISA::Scalar: return dequantize_row_ref(t, row, dst, n);
  }
}

float dot_row(DType t, const void* row, const float* x, int64_t n) {
  check_row_length("dot_row", t, n);
  switch (best_isa()) {
    case KernelISA::AVX512: return detail::dot_row_avx512(t, row, x, n);
    case KernelISA::AVX2: return detail::dot_row_avx2(t, row, x, n);
    case KernelISA::Scalar: return dot_row_ref(t, row, x, n);
  }
  return 0;
}

void dot_rows(DType t, const void* rows, int64_t stride, int64_t n_rows, const float* x, int64_t n, float* y) {
  check_row_length("dot_rows", t, n);
  const uint8_t* p = static_cast<const uint8_t*>(rows);
  const KernelISA isa = best_isa();
  for (int64_t r = 0; r < n_rows; ++r, p += stride) {
    switch (isa) {
      case KernelISA::AVX512: y[r] = detail::dot_row_avx512(t, p, x, n); break;
      case KernelISA::AVX2: y[r] = detail::dot_row_avx2(t, p, x, n); break;
      case KernelISA::Scalar: y[r] = dot_row_ref(t, p, x, n); break;
    }
  }
}

// ---------------------------------------------------------------------------------------
// f16 weights against f16 x

bool round_x_to_f16(const float* x, int64_t n, std::vector<uint16_t>& h) {
  const KernelISA isa = best_isa();
  if (isa == KernelISA::Scalar || n % 16 != 0) return false;
  for (int64_t i = 0; i < n; ++i)
    if (!(std::fabs(x[i]) < 65520.0f)) return false;  // would round to inf (or is NaN)
  h.resize(static_cast<size_t>(n));
  if (isa == KernelISA::AVX512)
    lanes16::to_f16(x, n, h.data());
  else
    lanes8::to_f16(x, n, h.data());
  return true;
}

void dot_rows_f16_f16(const void* rows, int64_t stride, int64_t n_rows, const uint16_t* h, int64_t n, float* y) {
  // (lanes.h's kernels are compiled for their own ISA: called from here, not inlined.)
  if (best_isa() == KernelISA::AVX512)
    lanes16::dot_rows_f16_f16(rows, stride, n_rows, h, n, y);
  else
    lanes8::dot_rows_f16_f16(rows, stride, n_rows, h, n, y);
}

double dot_row_f16_f16_ref(const void* row, const uint16_t* h, int64_t n) {
  const uint16_t* w = static_cast<const uint16_t*>(row);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(f16_to_f32(w[i])) * f16_to_f32(h[i]);
  return sum;
}

// ---------------------------------------------------------------------------------------
// Integer dot products

namespace {
void size_quantized(int64_t n, QuantizedVector& out) {
  if (n < 0 || n % 32 != 0) fail("quantize_vector", "length " + std::to_string(n) + " is not a multiple of 32");
  out.n = n;
  out.q.resize(size_t(n));
  out.d.resize(size_t(n / 32));
  out.sum16.resize(size_t(n / 16));
}
}  // namespace

KernelISA quantize_vector_isa() { return cpu_has_isa(KernelISA::AVX2) ? KernelISA::AVX2 : KernelISA::Scalar; }

void quantize_vector(const float* x, int64_t n, QuantizedVector& out) {
  if (quantize_vector_isa() == KernelISA::Scalar) return quantize_vector_ref(x, n, out);
  size_quantized(n, out);
  detail::quantize_vector_avx2(x, n, out.q.data(), out.d.data(), out.sum16.data());
}

void quantize_vector_ref(const float* x, int64_t n, QuantizedVector& out) {
  size_quantized(n, out);
  for (int64_t b = 0; b < n / 32; ++b) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[32 * b + i]));
    float d = amax / 127, id = d != 0 ? 1 / d : 0;
    out.d[size_t(b)] = d;
    for (int half = 0; half < 2; ++half) {
      int32_t sum = 0;
      for (int i = 16 * half; i < 16 * half + 16; ++i) {
        int q = clamp_round(x[32 * b + i] * id, -127, 127);
        out.q[size_t(32 * b + i)] = int8_t(q);
        sum += q;
      }
      out.sum16[size_t(2 * b + half)] = sum;
    }
  }
}

bool has_int8_dot(DType t) { return t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q4_K || t == DType::Q6_K; }

float dot_row_int8_ref(DType t, const void* row, const QuantizedVector& x) {
  if (!has_int8_dot(t)) fail("dot_row_int8", std::string("no integer kernel for ") + dtype_name(t));
  check_row_length("dot_row_int8", t, x.n);
  const uint8_t* p = static_cast<const uint8_t*>(row);
  DTypeInfo info = dtype_info(t);
  float w[256];
  double sum = 0;
  for (int64_t b = 0; b < x.n / info.block_elems; ++b) {
    dequantize_row_ref(t, p + b * info.block_bytes, w, info.block_elems);
    for (int64_t i = 0; i < info.block_elems; ++i) {
      int64_t at = b * info.block_elems + i;
      sum += double(w[i]) * x.d[size_t(at / 32)] * x.q[size_t(at)];
    }
  }
  return float(sum);
}

bool cpu_has_int8_isa(KernelISA isa) {
  if (isa == KernelISA::AVX512) return cpu_isas().vnni;
  return cpu_has_isa(isa);
}

KernelISA best_int8_isa() {
  static const KernelISA best = cpu_has_int8_isa(KernelISA::AVX512) ? KernelISA::AVX512
                                : cpu_has_int8_isa(KernelISA::AVX2) ? KernelISA::AVX2
                                                                    : KernelISA::Scalar;
  return best;
}

namespace {

// Every integer dot goes through here: n_rows rows `stride` bytes apart with the kernels of `isa`.
void rows_int8(KernelISA isa, const char* what, DType t, const void* rows, int64_t stride, int64_t n_rows,
               const QuantizedVector& x, float* y) {
  if (!has_int8_dot(t)) fail(what, std::string("no integer kernel for ") + dtype_name(t));
  check_row_length(what, t, x.n);
  const auto* p = static_cast<const uint8_t*>(rows);
  switch (isa) {
    case KernelISA::AVX512:
      return detail::dot_rows_int8_vnni(t, p, stride, n_rows, x.q.data(), x.d.data(), x.sum16.data(), x.n, y);
    case KernelISA::AVX2:
      return detail::dot_rows_int8_avx2(t, p, stride, n_rows, x.q.data(), x.d.data(), x.sum16.data(), x.n, y);
    case KernelISA::Scalar:
      for (int64_t r = 0; r < n_rows; ++r) y[r] = dot_row_int8_ref(t, p + r * stride, x);
      return;
  }
}
}  // namespace

float dot_row_int8_isa(KernelISA isa, DType t, const void* row, const QuantizedVector& x) {
  if (!cpu_has_int8_isa(isa)) fail("dot_row_int8", std::string("this CPU lacks ") + isa_name(isa));
  float y = 0;
  rows_int8(isa, "dot_row_int8", t, row, 0, 1, x, &y);
  return y;
}

float dot_row_int8(DType t, const void* row, const QuantizedVector& x) {
  float y = 0;
  rows_int8(best_int8_isa(), "dot_row_int8", t, row, 0, 1, x, &y);
  return y;
}

void dot_rows_int8(DType t, const void* rows, int64_t stride, int64_t n_rows, const QuantizedVector& x, float* y) {
  rows_int8(best_int8_isa(), "dot_rows_int8", t, rows, stride, n_rows, x, y);
}

}  // namespace rhead
