// q8_0 rows of the KV cache (kv_cache.h).
#include "ops/kv_cache.h"

#include <algorithm>
#include <vector>

#include "ops/quant.h"

namespace rhead {

void kv_quantize_row_q8_0(const float* src, int64_t head_dim, void* dst) {
  if (head_dim % 32 == 0) {
    quantize_row(DType::Q8_0, src, dst, head_dim);
    return;
  }
  std::vector<float> padded((head_dim + 31) / 32 * 32, 0.0f);
  std::copy(src, src + head_dim, padded.begin());
  quantize_row(DType::Q8_0, padded.data(), dst, static_cast<int64_t>(padded.size()));
}

void kv_dequantize_rows_q8_0(const void* src, int64_t rows, int64_t head_dim, float* dst) {
  if (head_dim % 32 == 0) {  // the rows are consecutive blocks
    dequantize_row(DType::Q8_0, src, dst, rows * head_dim);
    return;
  }
  const int64_t padded = (head_dim + 31) / 32 * 32, row_bytes = kv_row_bytes(KvType::q8_0, head_dim);
  float tmp[512];
  std::vector<float> big(padded > 512 ? padded : 0);
  float* t = padded > 512 ? big.data() : tmp;
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row(DType::Q8_0, static_cast<const uint8_t*>(src) + r * row_bytes, t, padded);
    std::copy(t, t + head_dim, dst + r * head_dim);
  }
}

int64_t kv_rows_allocated(int64_t length, bool full, int64_t window, int64_t sink, int64_t chunk, int64_t limit) {
  if (length <= 0) return 0;
  int64_t pow2 = 1;
  while (pow2 * 2 <= length) pow2 *= 2;
  const int64_t step = std::max<int64_t>(256, pow2 / 16);
  int64_t rows = (length + step - 1) / step * step;
  if (!full) rows = std::min(rows, sink + window + chunk);
  return std::min(rows, limit);
}

}  // namespace rhead
