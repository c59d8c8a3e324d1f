// GGUF reader (versions 2 and 3).
//
// Byte layout (little-endian):
//   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv x { string key | u32 value_type | value }
//       string = u64 length + bytes (no terminator)
//       value_type: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool(u8), 8 string,
//                   9 array = { u32 elem_type | u64 count | count x value }, 10 u64, 11 i64, 12 f64
//   n_tensors x { string name | u32 n_dims | u64 dims[n_dims] | u32 ggml_type | u64 offset }
//   padding to `general.alignment` (default 32)
//   tensor data; each tensor at data_start + offset. dims[0] is the fastest-varying
//   (row length); a 2-D weight [dims0, dims1] has dims1 rows of dims0 elements.
// Every count, length and offset is checked against the file size before use.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "io/dtype.h"

namespace rhead {

struct GGUFTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // ggml order: dims[0] = elements per row
  DType type;
  uint64_t offset = 0;  // from the start of the data section
  uint64_t bytes = 0;
  const uint8_t* data = nullptr;  // into the mapped file
  int64_t n_elements() const;
};

class GGUFFile {
 public:
  // Parses and validates the header, metadata and tensor table. Throws Error naming `path`.
  static GGUFFile open(const std::string& path);

  uint32_t version = 0;
  // Metadata: numbers, bools, strings, and arrays of them, as JSON values.
  std::map<std::string, nlohmann::json> metadata;
  std::vector<GGUFTensorInfo> tensors;
  std::shared_ptr<MappedFile> file;  // null for a GGUFFile built in memory
  std::string source;                // file path, or a name for in-memory metadata

  const GGUFTensorInfo* find_tensor(const std::string& name) const;
  const nlohmann::json* find(const std::string& key) const;
  // Typed getters: Error naming the file if present with the wrong type.
  std::optional<std::string> get_string(const std::string& key) const;
  std::optional<int64_t> get_int(const std::string& key) const;
  std::optional<double> get_float(const std::string& key) const;
  std::optional<bool> get_bool(const std::string& key) const;
  const std::string& path() const { return source; }
};

}  // namespace rhead
