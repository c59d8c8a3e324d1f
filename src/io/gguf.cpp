// GGUF parsing with bounds checks on every read.
#include "io/gguf.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "io/checked.h"
#include "io/error.h"
#include "io/json.h"

namespace rhead {
namespace {

class Reader {
 public:
  Reader(const MappedFile& f) : f_(f) {}
  uint64_t pos = 0;

  template <typename T>
  T read(const char* what) {
    T v;
    std::memcpy(&v, f_.view(pos, sizeof(T), std::string("truncated: ") + what), sizeof(T));
    pos += sizeof(T);
    return v;
  }
  std::string read_string(const char* what) {
    uint64_t n = read<uint64_t>(what);
    const uint8_t* p = f_.view(pos, n, std::string("truncated: ") + what);
    pos += n;
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  size_t remaining() const { return f_.size() - pos; }

 private:
  const MappedFile& f_;
};

enum : uint32_t { kU8 = 0, kI8, kU16, kI16, kU32, kI32, kF32, kBool, kString, kArray, kU64, kI64, kF64 };

// Fewest bytes one value of `type` takes in the file (a string: its u64 length; an array:
// its u32 type and u64 count). Unknown types: 1, so the caller's own check reports them.
uint64_t min_value_bytes(uint32_t type) {
  switch (type) {
    case kU16:
    case kI16: return 2;
    case kU32:
    case kI32:
    case kF32: return 4;
    case kString:
    case kU64:
    case kI64:
    case kF64: return 8;
    case kArray: return 12;
    default: return 1;
  }
}

nlohmann::json read_value(Reader& r, uint32_t type, const std::string& key, const std::string& path, int depth) {
  const char* what = "metadata value";
  switch (type) {
    case kU8: return r.read<uint8_t>(what);
    case kI8: return r.read<int8_t>(what);
    case kU16: return r.read<uint16_t>(what);
    case kI16: return r.read<int16_t>(what);
    case kU32: return r.read<uint32_t>(what);
    case kI32: return r.read<int32_t>(what);
    case kF32: return r.read<float>(what);
    case kBool: return r.read<uint8_t>(what) != 0;
    case kString: return r.read_string(what);
    case kU64: return r.read<uint64_t>(what);
    case kI64: return r.read<int64_t>(what);
    case kF64: return r.read<double>(what);
    case kArray: {
      if (depth > 4) fail(path, "metadata key '" + key + "': arrays nested too deeply");
      uint32_t elem = r.read<uint32_t>("array type");
      uint64_t n = r.read<uint64_t>("array length");
      // Every element takes at least min_value_bytes: a count that cannot fit in the rest of
      // the file is corrupt, and is rejected before anything is allocated for it.
      if (n > r.remaining() / min_value_bytes(elem))
        fail(path, "metadata key '" + key + "': array length " + std::to_string(n) + " exceeds the file size");
      nlohmann::json arr = nlohmann::json::array();
      arr.get_ref<nlohmann::json::array_t&>().reserve(n);
      for (uint64_t i = 0; i < n; ++i) arr.push_back(read_value(r, elem, key, path, depth + 1));
      return arr;
    }
    default: fail(path, "metadata key '" + key + "' has unknown value type " + std::to_string(type));
  }
}

}  // namespace

int64_t GGUFTensorInfo::n_elements() const {
  return checked_element_count(dims, "GGUF tensor", "tensor '" + name + "'");
}

namespace {
GGUFFile open_unguarded(const std::string& path) {
  GGUFFile g;
  g.file = MappedFile::open(path);
  g.source = path;
  Reader r(*g.file);
  uint32_t magic = r.read<uint32_t>("magic");
  if (magic != 0x46554747u) fail(path, "not a GGUF file (bad magic)");
  g.version = r.read<uint32_t>("version");
  if (g.version != 2 && g.version != 3)
    fail(path, "unsupported GGUF version " + std::to_string(g.version) + " (need 2 or 3)");
  uint64_t n_tensors = r.read<uint64_t>("tensor count");
  uint64_t n_kv = r.read<uint64_t>("metadata count");
  // A metadata entry takes at least 13 bytes (key length, type, one value byte) and a tensor
  // record at least 32 (name length, n_dims, one dim, type, offset).
  if (n_kv > r.remaining() / 13)
    fail(path, "corrupt header: metadata count " + std::to_string(n_kv) + " exceeds what the file can hold");
  if (n_tensors > r.remaining() / 32)
    fail(path, "corrupt header: tensor count " + std::to_string(n_tensors) + " exceeds what the file can hold");

  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = r.read_string("metadata key");
    uint32_t type = r.read<uint32_t>("metadata type");
    nlohmann::json value = read_value(r, type, key, path, 0);
    if (!g.metadata.emplace(key, std::move(value)).second) fail(path, "metadata key '" + key + "' appears twice");
  }

  uint64_t alignment = 32;
  if (auto a = g.get_int("general.alignment")) {
    if (*a <= 0 || (*a & (*a - 1)) != 0)
      fail(path, "general.alignment " + std::to_string(*a) + " is not a power of two");
    alignment = static_cast<uint64_t>(*a);
  }

  std::set<std::string> names;
  g.tensors.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GGUFTensorInfo t;
    t.name = r.read_string("tensor name");
    if (!names.insert(t.name).second) fail(path, "tensor '" + t.name + "' appears twice");
    uint32_t n_dims = r.read<uint32_t>("tensor dims");
    if (n_dims == 0 || n_dims > 4) fail(path, "tensor '" + t.name + "' has " + std::to_string(n_dims) + " dimensions");
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t v = r.read<uint64_t>("tensor shape");
      if (v == 0 || v > (uint64_t(1) << 40))
        fail(path, "tensor '" + t.name + "' has invalid dimension " + std::to_string(v));
      t.dims.push_back(static_cast<int64_t>(v));
    }
    uint32_t ty = r.read<uint32_t>("tensor type");
    auto dt = dtype_from_ggml(ty);
    if (!dt) fail(path, "tensor '" + t.name + "' has unsupported type id " + std::to_string(ty));
    t.type = *dt;
    t.offset = r.read<uint64_t>("tensor offset");
    DTypeInfo info = dtype_info(t.type);
    if (t.dims[0] % info.block_elems != 0)
      fail(path, "tensor '" + t.name + "': row length " + std::to_string(t.dims[0]) + " is not a multiple of the " +
                     info.name + " block size");
    const int64_t n_elements = checked_element_count(t.dims, path, "tensor '" + t.name + "'");
    t.bytes = checked_mul(static_cast<uint64_t>(row_bytes(t.type, t.dims[0])),
                          static_cast<uint64_t>(n_elements / t.dims[0]), path, "tensor '" + t.name + "' byte size");
    if (t.offset % alignment != 0)
      fail(path, "tensor '" + t.name + "' offset is not aligned to " + std::to_string(alignment));
    g.tensors.push_back(std::move(t));
  }

  uint64_t data_start = (r.pos + alignment - 1) / alignment * alignment;
  std::vector<DataSpan> ranges;
  for (auto& t : g.tensors) {
    if (t.offset > g.file->size() || data_start > g.file->size() - t.offset)
      fail(path, "tensor '" + t.name + "' data offset lies past the end of the file");
    t.data = g.file->view(data_start + t.offset, t.bytes, "tensor '" + t.name + "' data");
    ranges.push_back({t.offset, t.offset + t.bytes, t.name});
  }
  check_disjoint(ranges, path);
  return g;
}
}  // namespace

GGUFFile GGUFFile::open(const std::string& path) {
  return guard_input(path, [&] { return open_unguarded(path); });
}

const GGUFTensorInfo* GGUFFile::find_tensor(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

const nlohmann::json* GGUFFile::find(const std::string& key) const {
  auto it = metadata.find(key);
  return it == metadata.end() ? nullptr : &it->second;
}

std::optional<std::string> GGUFFile::get_string(const std::string& key) const {
  const auto* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) fail(path(), "metadata key '" + key + "' is not a string");
  return v->get<std::string>();
}

std::optional<int64_t> GGUFFile::get_int(const std::string& key) const {
  const auto* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) fail(path(), "metadata key '" + key + "' is not an integer");
  return v->get<int64_t>();
}

std::optional<double> GGUFFile::get_float(const std::string& key) const {
  const auto* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) fail(path(), "metadata key '" + key + "' is not a number");
  return v->get<double>();
}

std::optional<bool> GGUFFile::get_bool(const std::string& key) const {
  const auto* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) fail(path(), "metadata key '" + key + "' is not a bool");
  return v->get<bool>();
}

}  // namespace rhead
