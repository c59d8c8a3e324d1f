// safetensors parsing with bounds checks.
#include "io/safetensors.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "io/error.h"

namespace rhead {

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile st;
  st.file = MappedFile::open(path);
  const MappedFile& f = *st.file;
  uint64_t header_len = 0;
  std::memcpy(&header_len, f.view(0, 8, "truncated: header length"), 8);
  if (header_len > f.size() - 8)
    fail(path, "header length " + std::to_string(header_len) + " is larger than the file (" +
                   std::to_string(f.size()) + " bytes)");
  const char* hp = reinterpret_cast<const char*>(f.data() + 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(hp, hp + header_len);
  } catch (const std::exception& e) {
    fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = f.size() - data_start;
  for (auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    SafetensorsTensor t;
    t.name = name;
    try {
      std::string dtype = info.at("dtype").get<std::string>();
      if (dtype == "F32") t.type = DType::F32;
      else if (dtype == "F16") t.type = DType::F16;
      else if (dtype == "BF16") t.type = DType::BF16;
      else fail(path, "tensor '" + name + "' has unsupported dtype " + dtype);
      t.shape = info.at("shape").get<std::vector<int64_t>>();
      auto offsets = info.at("data_offsets").get<std::vector<uint64_t>>();
      if (offsets.size() != 2 || offsets[1] < offsets[0])
        fail(path, "tensor '" + name + "' has invalid data_offsets");
      uint64_t n = 1;
      for (int64_t d : t.shape) {
        if (d < 0) fail(path, "tensor '" + name + "' has a negative dimension");
        n *= static_cast<uint64_t>(d);
      }
      t.bytes = offsets[1] - offsets[0];
      if (t.bytes != n * static_cast<uint64_t>(dtype_info(t.type).block_bytes))
        fail(path, "tensor '" + name + "': shape and dtype need " +
                       std::to_string(n * dtype_info(t.type).block_bytes) + " bytes but data_offsets span " +
                       std::to_string(t.bytes));
      if (offsets[1] > data_size)
        fail(path, "tensor '" + name + "' data lies past the end of the file");
      t.data = f.data() + data_start + offsets[0];
    } catch (const nlohmann::json::exception& e) {
      fail(path, "tensor '" + name + "' has a malformed header entry: " + e.what());
    }
    st.tensors.emplace(name, std::move(t));
  }
  return st;
}

}  // namespace rhead
