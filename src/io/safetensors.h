// safetensors reader.
//
// Byte layout: u64 little-endian header length N | N bytes of JSON header | data.
// Header: {"__metadata__": {...}, "<tensor name>": {"dtype": "F32"|"F16"|"BF16"|...,
//          "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}
// Offsets are relative to the first byte after the header; shape is row-major (d0 outermost).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "io/dtype.h"

namespace rhead {

struct SafetensorsTensor {
  std::string name;
  DType type;
  std::vector<int64_t> shape;  // row-major, outermost first
  const uint8_t* data = nullptr;
  uint64_t bytes = 0;
};

struct SafetensorsFile {
  std::shared_ptr<MappedFile> file;
  std::map<std::string, SafetensorsTensor> tensors;
  // Parses the header and checks every tensor's dtype, shape and byte range against the file.
  static SafetensorsFile open(const std::string& path);
};

}  // namespace rhead
