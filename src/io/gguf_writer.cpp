// GGUF v3 writer: header, metadata, tensor table, aligned tensor data.
#include "io/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include "io/error.h"

namespace rhead {
namespace {

using json = nlohmann::json;
using VT = GGUFValueType;

class ByteSink {
 public:
  std::vector<uint8_t> bytes;
  template <typename T>
  void put(T v) {
    size_t at = bytes.size();
    bytes.resize(at + sizeof(T));
    std::memcpy(bytes.data() + at, &v, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
  }
};

VT infer_type(const json& v, const std::string& key) {
  switch (v.type()) {
    case json::value_t::boolean: return VT::BOOL;
    case json::value_t::string: return VT::STRING;
    case json::value_t::number_integer: {
      int64_t i = v.get<int64_t>();
      return i >= std::numeric_limits<int32_t>::min() && i <= std::numeric_limits<int32_t>::max() ? VT::I32 : VT::I64;
    }
    case json::value_t::number_unsigned:
      return v.get<uint64_t>() <= std::numeric_limits<uint32_t>::max() ? VT::U32 : VT::U64;
    case json::value_t::number_float: return VT::F32;
    case json::value_t::array: return VT::ARRAY;
    default: fail("gguf writer", "metadata key '" + key + "' has a value GGUF cannot hold");
  }
}

// Element type of an array: the widest of its elements (float > 64-bit > 32-bit integers).
VT infer_element_type(const json& arr, const std::string& key) {
  if (arr.empty()) return VT::I32;
  VT t = infer_type(arr[0], key);
  for (const auto& e : arr) {
    VT u = infer_type(e, key);
    if (u == t) continue;
    bool t_num = t != VT::BOOL && t != VT::STRING && t != VT::ARRAY;
    bool u_num = u != VT::BOOL && u != VT::STRING && u != VT::ARRAY;
    if (!t_num || !u_num) fail("gguf writer", "metadata key '" + key + "': array mixes value types");
    if (t == VT::F32 || u == VT::F32)
      t = VT::F32;
    else if (t == VT::I64 || u == VT::I64 || t == VT::U64 || u == VT::U64)
      t = (t == VT::U64 && u == VT::U64) ? VT::U64 : VT::I64;
    else
      t = VT::I32;
  }
  return t;
}

template <typename T>
T checked_int(const json& v, const std::string& key) {
  if (!v.is_number_integer() && !v.is_boolean())
    fail("gguf writer", "metadata key '" + key + "': expected an integer, got " + v.dump());
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > uint64_t(std::numeric_limits<T>::max()))
      fail("gguf writer", "metadata key '" + key + "': " + v.dump() + " does not fit its type");
    return T(u);
  }
  int64_t i = v.get<int64_t>();
  if constexpr (std::is_signed_v<T>) {
    if (i < int64_t(std::numeric_limits<T>::min()) || i > int64_t(std::numeric_limits<T>::max()))
      fail("gguf writer", "metadata key '" + key + "': " + v.dump() + " does not fit its type");
  } else {
    if (i < 0 || uint64_t(i) > uint64_t(std::numeric_limits<T>::max()))
      fail("gguf writer", "metadata key '" + key + "': " + v.dump() + " does not fit its type");
  }
  return T(i);
}

void put_value(ByteSink& out, const json& v, VT type, std::optional<VT> leaf, const std::string& key) {
  auto need_number = [&] {
    if (!v.is_number()) fail("gguf writer", "metadata key '" + key + "': expected a number, got " + v.dump());
  };
  switch (type) {
    case VT::U8: return out.put(checked_int<uint8_t>(v, key));
    case VT::I8: return out.put(checked_int<int8_t>(v, key));
    case VT::U16: return out.put(checked_int<uint16_t>(v, key));
    case VT::I16: return out.put(checked_int<int16_t>(v, key));
    case VT::U32: return out.put(checked_int<uint32_t>(v, key));
    case VT::I32: return out.put(checked_int<int32_t>(v, key));
    case VT::U64: return out.put(checked_int<uint64_t>(v, key));
    case VT::I64: return out.put(checked_int<int64_t>(v, key));
    case VT::F32: need_number(); return out.put(v.get<float>());
    case VT::F64: need_number(); return out.put(v.get<double>());
    case VT::BOOL:
      if (!v.is_boolean()) fail("gguf writer", "metadata key '" + key + "': expected a bool");
      return out.put<uint8_t>(v.get<bool>() ? 1 : 0);
    case VT::STRING:
      if (!v.is_string()) fail("gguf writer", "metadata key '" + key + "': expected a string");
      return out.put_string(v.get<std::string>());
    case VT::ARRAY: {
      if (!v.is_array()) fail("gguf writer", "metadata key '" + key + "': expected an array");
      // Nested arrays carry their own element type; the explicit type applies to the leaves.
      VT elem = v.empty()         ? leaf.value_or(VT::I32)
                : v[0].is_array() ? VT::ARRAY
                : leaf            ? *leaf
                                  : infer_element_type(v, key);
      out.put<uint32_t>(uint32_t(elem));
      out.put<uint64_t>(v.size());
      for (const auto& e : v) put_value(out, e, elem, leaf, key);
      return;
    }
  }
  fail("gguf writer", "metadata key '" + key + "' has unknown value type " + std::to_string(uint32_t(type)));
}

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// Header, metadata and tensor table (without the padding after it), plus each tensor's offset.
std::vector<uint8_t> head_bytes(const GGUFWriter& w, std::vector<uint64_t>& offsets) {
  if (w.alignment == 0 || (w.alignment & (w.alignment - 1)) != 0)
    fail("gguf writer", "alignment " + std::to_string(w.alignment) + " is not a power of two");
  std::vector<GGUFWriter::Entry> entries = w.metadata;
  bool has_alignment = false;
  for (const auto& e : entries) has_alignment |= e.key == "general.alignment";
  if (w.alignment != 32 && !has_alignment) entries.push_back({"general.alignment", json(w.alignment), VT::U32});

  ByteSink out;
  out.put<uint32_t>(0x46554747u);  // "GGUF"
  out.put<uint32_t>(w.version);
  out.put<uint64_t>(w.tensors.size());
  out.put<uint64_t>(entries.size());
  for (const auto& e : entries) {
    out.put_string(e.key);
    VT type = e.value.is_array() ? VT::ARRAY : e.type ? *e.type : infer_type(e.value, e.key);
    out.put<uint32_t>(uint32_t(type));
    std::optional<VT> leaf;
    if (e.value.is_array() && e.type && *e.type != VT::ARRAY) leaf = *e.type;
    put_value(out, e.value, type, leaf, e.key);
  }
  offsets.clear();
  uint64_t offset = 0;
  for (const auto& t : w.tensors) {
    out.put_string(t.name);
    out.put<uint32_t>(uint32_t(t.dims.size()));
    for (int64_t d : t.dims) out.put<uint64_t>(uint64_t(d));
    out.put<uint32_t>(uint32_t(t.type));
    out.put<uint64_t>(offset);
    offsets.push_back(offset);
    offset = align_up(offset + t.bytes, w.alignment);
  }
  return std::move(out.bytes);
}

void produce(const GGUFWriter::Tensor& t, uint8_t* dst) {
  if (t.fill)
    t.fill(dst);
  else
    std::memcpy(dst, t.data.data(), t.bytes);
}

}  // namespace

uint64_t gguf_tensor_bytes(const std::string& name, DType type, const std::vector<int64_t>& dims) {
  if (dims.empty() || dims.size() > 4) fail("gguf writer", "tensor '" + name + "' needs 1 to 4 dimensions");
  uint64_t rows = 1;
  for (int64_t d : dims) {
    if (d <= 0) fail("gguf writer", "tensor '" + name + "' has dimension " + std::to_string(d));
  }
  for (size_t i = 1; i < dims.size(); ++i) rows *= uint64_t(dims[i]);
  DTypeInfo info = dtype_info(type);
  if (dims[0] % info.block_elems != 0)
    fail("gguf writer", "tensor '" + name + "': row length " + std::to_string(dims[0]) + " is not a multiple of the " +
                            info.name + " block size");
  return uint64_t(row_bytes(type, dims[0])) * rows;
}

void GGUFWriter::set(const std::string& key, nlohmann::json value, std::optional<GGUFValueType> type) {
  for (auto& e : metadata)
    if (e.key == key) {
      e.value = std::move(value);
      e.type = type;
      return;
    }
  metadata.push_back({key, std::move(value), type});
}

void GGUFWriter::add_tensor(const std::string& name, DType type, std::vector<int64_t> dims, const void* data,
                            size_t bytes) {
  uint64_t need = gguf_tensor_bytes(name, type, dims);
  if (bytes != need)
    fail("gguf writer",
         "tensor '" + name + "': got " + std::to_string(bytes) + " bytes, its shape needs " + std::to_string(need));
  Tensor t{name, type, std::move(dims), need, {}, {}};
  const uint8_t* p = static_cast<const uint8_t*>(data);
  t.data.assign(p, p + bytes);
  tensors.push_back(std::move(t));
}

void GGUFWriter::add_tensor(const std::string& name, DType type, std::vector<int64_t> dims,
                            std::function<void(uint8_t* dst)> fill) {
  uint64_t need = gguf_tensor_bytes(name, type, dims);
  tensors.push_back(Tensor{name, type, std::move(dims), need, {}, std::move(fill)});
}

std::vector<uint8_t> GGUFWriter::to_bytes() const {
  std::vector<uint64_t> offsets;
  std::vector<uint8_t> out = head_bytes(*this, offsets);
  uint64_t data_start = align_up(out.size(), alignment);
  uint64_t end = data_start;
  if (!tensors.empty()) end += offsets.back() + tensors.back().bytes;
  out.resize(end, 0);
  for (size_t i = 0; i < tensors.size(); ++i) produce(tensors[i], out.data() + data_start + offsets[i]);
  return out;
}

void GGUFWriter::write(const std::string& path) const {
  std::vector<uint64_t> offsets;
  std::vector<uint8_t> head = head_bytes(*this, offsets);
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) fail(path, std::string("cannot create: ") + std::strerror(errno));
  auto put = [&](const uint8_t* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f.get()) != n) fail(path, std::string("write failed: ") + std::strerror(errno));
  };
  put(head.data(), head.size());
  uint64_t pos = head.size();
  std::vector<uint8_t> zeros(alignment, 0);
  std::vector<uint8_t> buffer;
  uint64_t data_start = align_up(pos, alignment);
  for (size_t i = 0; i < tensors.size(); ++i) {
    uint64_t at = data_start + offsets[i];
    put(zeros.data(), at - pos);
    buffer.resize(tensors[i].bytes);
    produce(tensors[i], buffer.data());
    put(buffer.data(), buffer.size());
    pos = at + tensors[i].bytes;
  }
  if (tensors.empty()) put(zeros.data(), data_start - pos);
  if (std::fflush(f.get()) != 0) fail(path, std::string("write failed: ") + std::strerror(errno));
  FILE* raw = f.release();
  if (std::fclose(raw) != 0) fail(path, std::string("write failed: ") + std::strerror(errno));
}

}  // namespace rhead
