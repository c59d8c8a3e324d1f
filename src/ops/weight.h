// Weight: a view of a 2-D weight matrix in any supported element type.
#pragma once
#include <cstdint>

#include "io/dtype.h"

namespace rhead {

// `rows` rows of `cols` elements, row-major, each row stored in `type`.
// y = W x maps a cols-vector to a rows-vector (the nn.Linear layout).
struct Weight {
  DType type = DType::F32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  const uint8_t* row(int64_t r) const { return static_cast<const uint8_t*>(data) + r * row_bytes(type, cols); }
  int64_t bytes() const { return rows * row_bytes(type, cols); }
};

}  // namespace rhead
