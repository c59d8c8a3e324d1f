// GGUF v3 writer: metadata of every value type (arrays included) and tensors of any DType,
// laid out exactly as io/gguf.h describes. Used by tests (synthetic and malformed files)
// and by bench/make_bench_model.
//
// Value types follow the JSON value unless one is given: bool -> BOOL, string -> STRING,
// signed integer -> I32 (I64 if it does not fit), unsigned -> U32 (U64), float -> F32,
// array -> ARRAY whose element type is inferred from the elements (floats win over integers;
// an empty array is an array of I32). An explicit type for an array names its element type.
// Tensor data is placed in metadata-then-table order, each at a multiple of `alignment`.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/dtype.h"

namespace rhead {

enum class GGUFValueType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

struct GGUFWriter {
  uint32_t version = 3;
  uint32_t alignment = 32;  // written as general.alignment when not 32

  // Sets (or replaces) a metadata key. Keys keep the order of their first set().
  void set(const std::string& key, nlohmann::json value, std::optional<GGUFValueType> type = {});

  // A tensor whose bytes are copied now. dims are in ggml order (dims[0] = row length);
  // `bytes` must equal the size the type and dims imply, else Error.
  void add_tensor(const std::string& name, DType type, std::vector<int64_t> dims, const void* data, size_t bytes);
  // A tensor whose bytes are produced at write time: fill(dst) writes all of them. For files
  // too large to hold in memory.
  void add_tensor(const std::string& name, DType type, std::vector<int64_t> dims,
                  std::function<void(uint8_t* dst)> fill);

  // The whole file in memory (small files, malformed-file tests).
  std::vector<uint8_t> to_bytes() const;
  // Writes the file, streaming tensor data; Error naming `path` on failure.
  void write(const std::string& path) const;

  struct Entry {
    std::string key;
    nlohmann::json value;
    std::optional<GGUFValueType> type;
  };
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> dims;
    uint64_t bytes = 0;
    std::vector<uint8_t> data;           // when copied
    std::function<void(uint8_t*)> fill;  // when produced at write time
  };
  std::vector<Entry> metadata;
  std::vector<Tensor> tensors;
};

// Bytes a tensor of `type` and ggml-order `dims` occupies; Error if dims[0] is not a whole
// number of blocks or any dim is not positive.
uint64_t gguf_tensor_bytes(const std::string& name, DType type, const std::vector<int64_t>& dims);

}  // namespace rhead
