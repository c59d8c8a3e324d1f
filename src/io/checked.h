// Checked arithmetic and sanity bounds for sizes read from files and command lines.
// Every product of dimensions, every element or byte count and every narrowing of a
// 64-bit count to `int` goes through these, so an overflow becomes an Error naming the
// input instead of undefined behaviour or a huge allocation.
#pragma once
#include <sstream>
#include <cmath>
#include <cstdint>
#include <algorithm>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "io/error.h"

namespace rhead {

// Largest element count of one tensor rhead accepts (2^40): far above any real model,
// far below where products of dims could overflow int64.
inline constexpr int64_t kMaxTensorElements = int64_t{1} << 40;
// Largest layer, head, block or vocabulary count rhead accepts from a file.
inline constexpr int64_t kMaxModelCount = int64_t{1} << 24;

// a * b, or Error "where: <what> overflows (a x b)".
inline uint64_t checked_mul(uint64_t a, uint64_t b, const std::string& where, const std::string& what) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r))
    fail(where, what + " overflows (" + std::to_string(a) + " x " + std::to_string(b) + ")");
  return r;
}

inline int64_t checked_mul(int64_t a, int64_t b, const std::string& where, const std::string& what) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r))
    fail(where, what + " overflows (" + std::to_string(a) + " x " + std::to_string(b) + ")");
  return r;
}

inline uint64_t checked_add(uint64_t a, uint64_t b, const std::string& where, const std::string& what) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r))
    fail(where, what + " overflows (" + std::to_string(a) + " + " + std::to_string(b) + ")");
  return r;
}

// Element count of a tensor shape: every dim must be positive (zero when allow_zero) and the
// product at most kMaxTensorElements. `what` names the tensor in the error.
inline int64_t checked_element_count(std::span<const int64_t> dims, const std::string& where, const std::string& what,
                                     bool allow_zero = false) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0 || (d == 0 && !allow_zero)) fail(where, what + " has invalid dimension " + std::to_string(d));
    n = checked_mul(n, d, where, what + " element count");
    if (n > kMaxTensorElements) fail(where, what + " has more than 2^40 elements");
  }
  return n;
}

// `v` as an int in [lo, hi], or Error "where: <what> is V (must be in [lo, hi])".
inline int checked_int(int64_t v, const std::string& where, const std::string& what, int64_t lo = 0,
                       int64_t hi = std::numeric_limits<int>::max()) {
  if (v < lo || v > hi)
    fail(where,
         what + " is " + std::to_string(v) + " (must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "])");
  return static_cast<int>(v);
}

// `v` as an int64 in [lo, hi] when it is finite and integral, else Error. For doubles
// that are meant as counts or positions (NaN, infinities and out-of-range values would be
// undefined behaviour in a plain cast).
inline int64_t checked_double_to_int(double v, const std::string& where, const std::string& what, int64_t lo,
                                     int64_t hi) {
  if (!std::isfinite(v) || v < static_cast<double>(lo) || v > static_cast<double>(hi))
    fail(where, what + " is " + std::to_string(v) + " (must be a number in [" + std::to_string(lo) + ", " +
                    std::to_string(hi) + "])");
  return static_cast<int64_t>(std::nearbyint(v));
}

// A tensor's bytes [begin, end) within a file's data section.
struct DataSpan {
  uint64_t begin = 0, end = 0;
  std::string name;
};

// Error "where: tensors 'a' and 'b' share bytes [x, y)" when two non-empty ranges overlap:
// two names for one set of bytes would make the file mean two things.
inline void check_disjoint(std::vector<DataSpan> ranges, const std::string& where) {
  std::sort(ranges.begin(), ranges.end(), [](const DataSpan& a, const DataSpan& b) { return a.begin < b.begin; });
  const DataSpan* last = nullptr;
  for (const DataSpan& r : ranges) {
    if (r.end <= r.begin) continue;
    if (last && r.begin < last->end)
      fail(where, "tensors '" + last->name + "' and '" + r.name + "' share bytes [" + std::to_string(r.begin) + ", " +
                      std::to_string(std::min(r.end, last->end)) + ")");
    if (!last || r.end > last->end) last = &r;
  }
}

// Error "--option: 'x' is given twice" when a list option repeats a value (a repeated seed or
// style would run one condition twice under one key).
template <typename T>
void refuse_duplicates(const std::vector<T>& values, const std::string& option) {
  for (size_t i = 0; i < values.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (values[j] == values[i]) {
        std::ostringstream text;
        text << option << ": '" << values[i] << "' is given twice";
        throw Error(text.str());
      }
}

}  // namespace rhead
