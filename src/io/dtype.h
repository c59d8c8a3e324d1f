// Element types of weight tensors, with the GGUF (ggml) type ids and block layouts.
// A row of n elements of a block type occupies (n / block_elems) * block_bytes bytes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace rhead {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  BF16 = 30,
};

struct DTypeInfo {
  const char* name;
  int64_t block_elems;  // elements per block (1 for plain floats)
  int64_t block_bytes;  // bytes per block
};

// Layout of a supported type; std::nullopt for a ggml id rhead does not support.
std::optional<DType> dtype_from_ggml(uint32_t ggml_type);
DTypeInfo dtype_info(DType t);
inline const char* dtype_name(DType t) { return dtype_info(t).name; }

// Bytes of a row of n elements; n must be a multiple of the block size.
inline int64_t row_bytes(DType t, int64_t n) {
  DTypeInfo i = dtype_info(t);
  return n / i.block_elems * i.block_bytes;
}

}  // namespace rhead
