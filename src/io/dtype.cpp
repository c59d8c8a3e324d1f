// Type table for DType.
#include "io/dtype.h"

namespace rhead {

DTypeInfo dtype_info(DType t) {
  switch (t) {
    case DType::F32: return {"F32", 1, 4};
    case DType::F16: return {"F16", 1, 2};
    case DType::BF16: return {"BF16", 1, 2};
    case DType::Q4_0: return {"Q4_0", 32, 18};
    case DType::Q4_1: return {"Q4_1", 32, 20};
    case DType::Q5_0: return {"Q5_0", 32, 22};
    case DType::Q5_1: return {"Q5_1", 32, 24};
    case DType::Q8_0: return {"Q8_0", 32, 34};
    case DType::Q4_K: return {"Q4_K", 256, 144};
    case DType::Q5_K: return {"Q5_K", 256, 176};
    case DType::Q6_K: return {"Q6_K", 256, 210};
  }
  return {"?", 1, 1};
}

std::optional<DType> dtype_from_ggml(uint32_t id) {
  switch (id) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 6:
    case 7:
    case 8:
    case 12:
    case 13:
    case 14:
    case 30: return static_cast<DType>(id);
    default: return std::nullopt;
  }
}

}  // namespace rhead
