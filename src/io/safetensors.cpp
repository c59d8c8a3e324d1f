// safetensors parsing with bounds checks.
#include "io/safetensors.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "io/checked.h"
#include "io/error.h"
#include "io/json.h"

namespace rhead {

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile st;
  st.file = MappedFile::open(path);
  const MappedFile& f = *st.file;
  uint64_t header_len = 0;
  std::memcpy(&header_len, f.view(0, 8, "truncated: header length"), 8);
  if (header_len > f.size() - 8)
    fail(path, "header length " + std::to_string(header_len) + " is larger than the file (" + std::to_string(f.size()) +
                   " bytes)");
  const char* hp = reinterpret_cast<const char*>(f.data() + 8);
  const nlohmann::json header = parse_json(std::string_view(hp, header_len), path);
  if (!header.is_object()) fail(path, "header is not a JSON object");
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = f.size() - data_start;
  std::vector<DataSpan> ranges;
  for (auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    const std::string what = "tensor '" + name + "'";
    if (!info.is_object()) fail(path, what + " has a malformed header entry (not an object)");
    SafetensorsTensor t;
    t.name = name;
    const std::string dtype = json_string(json_required(info, "dtype", path + ": " + what), path, what + " dtype");
    if (dtype == "F32")
      t.type = DType::F32;
    else if (dtype == "F16")
      t.type = DType::F16;
    else if (dtype == "BF16")
      t.type = DType::BF16;
    else
      fail(path, what + " has unsupported dtype " + dtype);
    const nlohmann::json& shape = json_required(info, "shape", path + ": " + what);
    if (!shape.is_array() || shape.size() > 8) fail(path, what + " shape is not a list of at most 8 dimensions");
    for (const auto& d : shape) t.shape.push_back(json_integer(d, path, what + " dimension", 0, kMaxTensorElements));
    const nlohmann::json& offsets = json_required(info, "data_offsets", path + ": " + what);
    if (!offsets.is_array() || offsets.size() != 2) fail(path, what + " has invalid data_offsets");
    const auto begin = static_cast<uint64_t>(json_integer(offsets[0], path, what + " data offset", 0));
    const auto end = static_cast<uint64_t>(json_integer(offsets[1], path, what + " data offset", 0));
    if (end < begin) fail(path, what + " has invalid data_offsets");
    const int64_t n = checked_element_count(t.shape, path, what, /*allow_zero=*/true);
    const uint64_t need = checked_mul(static_cast<uint64_t>(n), static_cast<uint64_t>(dtype_info(t.type).block_bytes),
                                      path, what + " byte size");
    t.bytes = end - begin;
    if (t.bytes != need)
      fail(path, what + ": shape and dtype need " + std::to_string(need) + " bytes but data_offsets span " +
                     std::to_string(t.bytes));
    if (end > data_size) fail(path, what + " data lies past the end of the file");
    t.data = f.data() + data_start + begin;
    ranges.push_back({begin, end, name});
    st.tensors.emplace(name, std::move(t));
  }
  check_disjoint(ranges, path);
  return st;
}

}  // namespace rhead
