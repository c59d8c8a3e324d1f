// GGUF writer: files it writes read back through the GGUF reader with the same metadata,
// shapes, types and bytes; its byte layout matches the format description.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "io/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "ops/quant.h"

namespace rhead {
namespace {

using json = nlohmann::json;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("rhead_test_" + std::to_string(::getpid()) + "_" + name)).string();
}

struct TempFile {
  std::string path;
  explicit TempFile(const std::string& name) : path(temp_path(name)) {}
  ~TempFile() { std::remove(path.c_str()); }
};

std::vector<uint8_t> bytes_of(DType t, int64_t row, int64_t rows, uint8_t seed) {
  std::vector<uint8_t> b(size_t(row_bytes(t, row) * rows));
  for (size_t i = 0; i < b.size(); ++i) b[i] = uint8_t(seed + i * 31);
  return b;
}

TEST(GGUFWriter, MetadataOfEveryTypeRoundTrips) {
  using VT = GGUFValueType;
  GGUFWriter w;
  w.set("general.architecture", "llama");
  w.set("t.u8", 200, VT::U8);
  w.set("t.i8", -100, VT::I8);
  w.set("t.u16", 60000, VT::U16);
  w.set("t.i16", -30000, VT::I16);
  w.set("t.u32", 4000000000u, VT::U32);
  w.set("t.i32", -2000000000);
  w.set("t.u64", uint64_t(1) << 60);
  w.set("t.i64", -(int64_t(1) << 50));
  w.set("t.f32", 0.5);
  w.set("t.f64", 1e-300, VT::F64);
  w.set("t.bool", true);
  w.set("t.string", "héllo\nworld");
  w.set("t.empty_string", "");
  w.set("t.strings", json::array({"<unk>", "<s>", "", "▁the"}));
  w.set("t.floats", json::array({0.0, -1.5, 3.25}));
  w.set("t.ints", json::array({1, -2, 3}));
  w.set("t.bytes", json::array({1, 2, 255}), VT::U8);
  w.set("t.doubles", json::array({0.1, 0.2}), VT::F64);
  w.set("t.nested", json::array({json::array({1, 2}), json::array({3})}));
  w.set("t.empty", json::array());
  w.set("t.replaced", 1);
  w.set("t.replaced", "second");
  TempFile f("meta.gguf");
  w.write(f.path);

  GGUFFile g = GGUFFile::open(f.path);
  EXPECT_EQ(g.version, 3u);
  EXPECT_EQ(g.metadata.size(), w.metadata.size());
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
  EXPECT_EQ(g.get_int("t.u8"), 200);
  EXPECT_EQ(g.get_int("t.i8"), -100);
  EXPECT_EQ(g.get_int("t.u16"), 60000);
  EXPECT_EQ(g.get_int("t.i16"), -30000);
  EXPECT_EQ(g.get_int("t.u32"), 4000000000LL);
  EXPECT_EQ(g.get_int("t.i32"), -2000000000);
  EXPECT_EQ(g.find("t.u64")->get<uint64_t>(), uint64_t(1) << 60);
  EXPECT_EQ(g.get_int("t.i64"), -(int64_t(1) << 50));
  EXPECT_EQ(g.get_float("t.f32"), 0.5);
  EXPECT_EQ(g.get_float("t.f64"), 1e-300);  // only an f64 holds this
  EXPECT_EQ(g.get_bool("t.bool"), true);
  EXPECT_EQ(g.get_string("t.string"), "héllo\nworld");
  EXPECT_EQ(g.get_string("t.empty_string"), "");
  EXPECT_EQ(*g.find("t.strings"), json::array({"<unk>", "<s>", "", "▁the"}));
  EXPECT_EQ(*g.find("t.floats"), json::array({0.0, -1.5, 3.25}));
  EXPECT_EQ(*g.find("t.ints"), json::array({1, -2, 3}));
  EXPECT_EQ(*g.find("t.bytes"), json::array({1, 2, 255}));
  EXPECT_EQ(*g.find("t.doubles"), json::array({0.1, 0.2}));
  EXPECT_EQ(*g.find("t.nested"), json::array({json::array({1, 2}), json::array({3})}));
  EXPECT_EQ(*g.find("t.empty"), json::array());
  EXPECT_EQ(g.get_string("t.replaced"), "second");
}

TEST(GGUFWriter, ByteLayoutMatchesTheFormat) {
  GGUFWriter w;
  w.set("a", 7, GGUFValueType::U8);
  w.set("b", json::array({"xy"}));
  std::vector<uint8_t> data = {1, 2, 3, 4};
  w.add_tensor("t", DType::F32, {1}, data.data(), data.size());
  std::vector<uint8_t> b = w.to_bytes();
  std::vector<uint8_t> expect = {
      'G', 'G', 'U', 'F', 3, 0, 0, 0,                        // magic, version
      1,   0,   0,   0,   0, 0, 0, 0,                        // tensors
      2,   0,   0,   0,   0, 0, 0, 0,                        // metadata entries
      1,   0,   0,   0,   0, 0, 0, 0, 'a', 0,   0, 0, 0, 7,  // "a": u8 7
      1,   0,   0,   0,   0, 0, 0, 0, 'b', 9,   0, 0, 0,     // "b": array
      8,   0,   0,   0,   1, 0, 0, 0, 0,   0,   0, 0,        // of 1 string
      2,   0,   0,   0,   0, 0, 0, 0, 'x', 'y',              // "xy"
      1,   0,   0,   0,   0, 0, 0, 0, 't',                   // tensor "t"
      1,   0,   0,   0,   1, 0, 0, 0, 0,   0,   0, 0,        // 1 dim: 1
      0,   0,   0,   0,   0, 0, 0, 0, 0,   0,   0, 0,        // type F32, offset 0
  };
  ASSERT_GE(b.size(), expect.size());
  EXPECT_EQ(std::vector<uint8_t>(b.begin(), b.begin() + long(expect.size())), expect);
  // 106 bytes of header and table, zero padding to 128 (alignment 32), then the 4 data bytes.
  ASSERT_EQ(expect.size(), 106u);
  ASSERT_EQ(b.size(), 132u);
  for (size_t i = 106; i < 128; ++i) EXPECT_EQ(b[i], 0) << i;
  EXPECT_EQ(std::vector<uint8_t>(b.begin() + 128, b.end()), data);
}

TEST(GGUFWriter, TensorsOfEveryTypeRoundTrip) {
  const DType types[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1,
                         DType::Q5_0, DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K};
  for (uint32_t alignment : {32u, 64u}) {
    GGUFWriter w;
    w.alignment = alignment;
    w.set("general.architecture", "test");
    std::vector<std::vector<uint8_t>> stored;
    int k = 0;
    for (DType t : types) {
      int64_t row = dtype_info(t).block_elems * 3 + (dtype_info(t).block_elems == 1 ? 2 : 0);
      int64_t rows = 5 + k % 3;
      stored.push_back(bytes_of(t, row, rows, uint8_t(k)));
      std::string name = std::string("w.") + dtype_name(t);
      if (k % 2 == 0) {
        w.add_tensor(name, t, {row, rows}, stored.back().data(), stored.back().size());
      } else {
        auto copy = stored.back();
        w.add_tensor(name, t, {row, rows}, [copy](uint8_t* dst) { std::memcpy(dst, copy.data(), copy.size()); });
      }
      ++k;
    }
    w.add_tensor("norm", DType::F32, {3, 1, 1}, stored[0].data(), 12);
    TempFile f("tensors.gguf");
    w.write(f.path);
    EXPECT_EQ(w.to_bytes().size(), std::filesystem::file_size(f.path));

    GGUFFile g = GGUFFile::open(f.path);
    if (alignment != 32) EXPECT_EQ(g.get_int("general.alignment"), int64_t(alignment));
    ASSERT_EQ(g.tensors.size(), std::size(types) + 1);
    for (size_t i = 0; i < std::size(types); ++i) {
      const GGUFTensorInfo& t = g.tensors[i];
      EXPECT_EQ(t.name, std::string("w.") + dtype_name(types[i]));
      EXPECT_EQ(t.type, types[i]);
      EXPECT_EQ(t.offset % alignment, 0u);
      EXPECT_EQ((t.data - g.file->data()) % alignment, 0) << t.name;
      ASSERT_EQ(t.bytes, stored[i].size());
      EXPECT_EQ(std::memcmp(t.data, stored[i].data(), t.bytes), 0) << t.name;
    }
    EXPECT_EQ(g.tensors.back().dims, (std::vector<int64_t>{3, 1, 1}));
  }
}

TEST(GGUFWriter, QuantizedWeightsDecodeAfterRoundTrip) {
  const int64_t n = 512, rows = 3;
  std::vector<float> src(size_t(n * rows));
  for (size_t i = 0; i < src.size(); ++i) src[i] = std::sin(0.37f * float(i));
  std::vector<uint8_t> q(size_t(row_bytes(DType::Q4_K, n) * rows));
  for (int64_t r = 0; r < rows; ++r)
    quantize_row(DType::Q4_K, src.data() + r * n, q.data() + r * row_bytes(DType::Q4_K, n), n);
  GGUFWriter w;
  w.add_tensor("w", DType::Q4_K, {n, rows}, q.data(), q.size());
  TempFile f("q.gguf");
  w.write(f.path);
  GGUFFile g = GGUFFile::open(f.path);
  std::vector<float> back(static_cast<size_t>(n));
  dequantize_row(DType::Q4_K, g.tensors[0].data + 2 * row_bytes(DType::Q4_K, n), back.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(back[size_t(i)], src[size_t(2 * n + i)], 0.1);
}

TEST(GGUFWriter, RejectsBadInput) {
  GGUFWriter w;
  std::vector<uint8_t> data(100);
  EXPECT_THROW(w.add_tensor("t", DType::F32, {4}, data.data(), 12), Error);    // wrong size
  EXPECT_THROW(w.add_tensor("t", DType::Q8_0, {33}, data.data(), 34), Error);  // partial block
  EXPECT_THROW(w.add_tensor("t", DType::F32, {0}, data.data(), 0), Error);     // empty dim
  w.set("k", json::array({1, "x"}));
  EXPECT_THROW(w.to_bytes(), Error);
  GGUFWriter w2;
  w2.set("k", 300, GGUFValueType::U8);
  EXPECT_THROW(w2.to_bytes(), Error);
  GGUFWriter w3;
  w3.set("k", "text", GGUFValueType::I32);
  EXPECT_THROW(w3.to_bytes(), Error);
  GGUFWriter w4;
  EXPECT_THROW(w4.write("/nonexistent-dir/x.gguf"), Error);
}

TEST(GGUFWriter, TruncatedFilesAreRejected) {
  // Every proper prefix of a written file is rejected by the reader (never read past the end).
  GGUFWriter w;
  w.set("general.architecture", "llama");
  w.set("tokens", json::array({"a", "bb", "ccc"}));
  std::vector<float> v = {1, 2, 3, 4, 5, 6, 7, 8};
  w.add_tensor("w", DType::F32, {4, 2}, v.data(), 32);
  std::vector<uint8_t> full = w.to_bytes();
  TempFile f("trunc.gguf");
  for (size_t len = 0; len < full.size(); ++len) {
    {
      std::ofstream out(f.path, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(full.data()), std::streamsize(len));
    }
    EXPECT_THROW(GGUFFile::open(f.path), Error) << "prefix of " << len << " bytes";
  }
}

}  // namespace
}  // namespace rhead
