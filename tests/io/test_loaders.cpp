// Malformed model files are rejected with an Error that names the file and the problem, and
// never read out of bounds. The bad files are copies of real ones (../shared/models) with a
// few bytes patched or cut off, written to a temp dir. A small independent GGUF walker
// below finds the byte positions to patch.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "test_support.h"

namespace rhead {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <typename T>
T get(const std::string& b, size_t at) {
  T v;
  std::memcpy(&v, b.data() + at, sizeof(T));
  return v;
}

template <typename T>
void put(std::string& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof(T));
}

// Byte positions of a GGUF file's sections and of each tensor-info field, from the spec
// (u32 magic, u32 version, u64 n_tensors, u64 n_kv, KVs, tensor infos, aligned data).
struct GgufLayout {
  size_t metadata_begin = 24, tensor_infos_begin = 0, tensor_infos_end = 0, data_begin = 0;
  struct Info {
    std::string name;
    size_t name_at, dims_at, type_at, offset_at;
    std::vector<uint64_t> dims;
  };
  std::vector<Info> tensors;
  std::vector<size_t> kv_type_at;  // position of each KV's u32 value type
  const Info& tensor(const std::string& name) const {
    for (const auto& t : tensors)
      if (t.name == name) return t;
    throw std::runtime_error("no tensor " + name);
  }
};

size_t skip_value(const std::string& b, size_t at, uint32_t type) {
  static const size_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  if (type == 8) return at + 8 + get<uint64_t>(b, at);
  if (type == 9) {
    const uint32_t elem = get<uint32_t>(b, at);
    const uint64_t n = get<uint64_t>(b, at + 4);
    at += 12;
    for (uint64_t i = 0; i < n; ++i) at = skip_value(b, at, elem);
    return at;
  }
  return at + sizes[type];
}

GgufLayout walk_gguf(const std::string& b) {
  GgufLayout g;
  const uint64_t n_tensors = get<uint64_t>(b, 8), n_kv = get<uint64_t>(b, 16);
  size_t at = 24;
  uint64_t alignment = 32;
  for (uint64_t i = 0; i < n_kv; ++i) {
    const uint64_t klen = get<uint64_t>(b, at);
    const std::string key = b.substr(at + 8, klen);
    at += 8 + klen;
    g.kv_type_at.push_back(at);
    const uint32_t type = get<uint32_t>(b, at);
    at += 4;
    if (key == "general.alignment") alignment = get<uint32_t>(b, at);
    at = skip_value(b, at, type);
  }
  g.tensor_infos_begin = at;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufLayout::Info t;
    t.name_at = at;
    const uint64_t nlen = get<uint64_t>(b, at);
    t.name = b.substr(at + 8, nlen);
    at += 8 + nlen;
    const uint32_t n_dims = get<uint32_t>(b, at);
    t.dims_at = at + 4;
    for (uint32_t d = 0; d < n_dims; ++d) t.dims.push_back(get<uint64_t>(b, t.dims_at + 8 * d));
    at = t.dims_at + 8 * n_dims;
    t.type_at = at;
    t.offset_at = at + 4;
    at += 12;
    g.tensors.push_back(t);
  }
  g.tensor_infos_end = at;
  g.data_begin = (at + alignment - 1) / alignment * alignment;
  return g;
}

// The Error message of loading `path` (GGUFFile::open + model binding via load_model), or ""
// when it loads.
std::string load_error(const std::string& path) {
  try {
    load_model(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_REJECTED(path, ...)                                                                 \
  do {                                                                                             \
    const std::string msg_ = load_error(path);                                                     \
    EXPECT_FALSE(msg_.empty()) << (path) << " loaded";                                             \
    EXPECT_NE(msg_.find(path), std::string::npos) << "does not name the file: " << msg_;           \
    for (const char* part_ : {__VA_ARGS__})                                                        \
      EXPECT_NE(msg_.find(part_), std::string::npos) << "expected '" << part_ << "' in: " << msg_; \
  } while (0)

const std::string kGguf = "models/fmt-tiny/fmt-tiny-q8_0.gguf";

class MalformedGguf : public ::testing::Test {
 protected:
  void SetUp() override {
    RHEAD_REQUIRE_FILE(testing::shared_path(kGguf));
    bytes_ = read_bytes(testing::shared_path(kGguf));
    layout_ = walk_gguf(bytes_);
    ASSERT_GT(layout_.tensors.size(), 10u);
    ASSERT_LT(layout_.data_begin, bytes_.size());
  }
  std::string write(const std::string& name, const std::string& bytes) {
    const std::string p = dir_ / name;
    write_bytes(p, bytes);
    return p;
  }
  std::string bytes_;
  GgufLayout layout_;
  TempDir dir_{"rhead-bad-gguf"};
};

TEST_F(MalformedGguf, TheUnpatchedCopyLoads) { EXPECT_EQ(load_error(write("ok.gguf", bytes_)), ""); }

// Cut the file at points inside each section: header, metadata, tensor infos, data.
TEST_F(MalformedGguf, TruncatedAtEverySectionIsRejected) {
  struct Section {
    const char* name;
    size_t begin, end;
  };
  const Section sections[] = {{"header", 0, 24},
                              {"metadata", layout_.metadata_begin, layout_.tensor_infos_begin},
                              {"tensor infos", layout_.tensor_infos_begin, layout_.tensor_infos_end},
                              {"data", layout_.data_begin, bytes_.size()}};
  int cuts = 0;
  for (const auto& s : sections) {
    // Both ends of the section and ~40 points between.
    const size_t step = std::max<size_t>(1, (s.end - s.begin) / 40);
    for (size_t cut = s.begin; cut < s.end; cut += step) {
      const std::string p = write("cut.gguf", bytes_.substr(0, cut));
      const std::string msg = load_error(p);
      ASSERT_FALSE(msg.empty()) << s.name << ": cut at " << cut << " loaded";
      EXPECT_NE(msg.find(p), std::string::npos) << msg;
      EXPECT_TRUE(msg.find("truncated") != std::string::npos ||
                  msg.find("past the end of the file") != std::string::npos ||
                  msg.find("exceed") != std::string::npos || msg.find("not a GGUF file") != std::string::npos)
          << s.name << " cut at " << cut << ": " << msg;
      ++cuts;
    }
    const std::string p = write("cut.gguf", bytes_.substr(0, s.end - 1));
    EXPECT_FALSE(load_error(p).empty()) << s.name << ": cut one byte before its end loaded";
  }
  EXPECT_GT(cuts, 100);
}

TEST_F(MalformedGguf, SectionCutsGiveSpecificMessages) {
  EXPECT_REJECTED(write("a.gguf", bytes_.substr(0, 12)), "truncated: tensor count");
  EXPECT_REJECTED(write("b.gguf", bytes_.substr(0, layout_.metadata_begin + 30)), "metadata count",
                  "exceeds what the file can hold");
  EXPECT_REJECTED(write("c.gguf", bytes_.substr(0, layout_.tensor_infos_begin + 20)), "truncated: tensor");
  EXPECT_REJECTED(write("d.gguf", bytes_.substr(0, bytes_.size() - 1)), "lies past the end of the file");
}

TEST_F(MalformedGguf, BadMagicAndVersion) {
  std::string b = bytes_;
  b[0] = 'X';
  EXPECT_REJECTED(write("magic.gguf", b), "not a GGUF file");
  b = bytes_;
  put<uint32_t>(b, 4, 7);
  EXPECT_REJECTED(write("version.gguf", b), "unsupported GGUF version 7");
}

TEST_F(MalformedGguf, HugeCountsAreRejectedBeforeAllocating) {
  std::string b = bytes_;
  put<uint64_t>(b, 8, uint64_t{1} << 60);
  EXPECT_REJECTED(write("ntensors.gguf", b), "tensor count", "exceeds what the file can hold");
  b = bytes_;
  put<uint64_t>(b, 16, ~uint64_t{0});
  EXPECT_REJECTED(write("nkv.gguf", b), "metadata count", "exceeds what the file can hold");
  // A metadata string length near 2^64 must not wrap the bounds check.
  b = bytes_;
  put<uint64_t>(b, 24, ~uint64_t{0} - 3);
  EXPECT_REJECTED(write("keylen.gguf", b), "truncated: metadata key");
}

TEST_F(MalformedGguf, UnknownMetadataValueType) {
  std::string b = bytes_;
  put<uint32_t>(b, layout_.kv_type_at[0], 99);
  EXPECT_REJECTED(write("kvtype.gguf", b), "unknown value type 99");
}

TEST_F(MalformedGguf, TensorOffsetPastEof) {
  std::string b = bytes_;
  const auto& t = layout_.tensor("blk.1.attn_v.weight");
  put<uint64_t>(b, t.offset_at, (bytes_.size() + 4096) / 32 * 32);
  EXPECT_REJECTED(write("offset.gguf", b), "blk.1.attn_v.weight", "past the end of the file");
  // An offset so large that data_begin + offset overflows 64 bits.
  put<uint64_t>(b, t.offset_at, ~uint64_t{0} - 31);
  EXPECT_REJECTED(write("offset2.gguf", b), "blk.1.attn_v.weight");
  // The last tensor's data running one block past the end.
  b = bytes_;
  const auto& last = layout_.tensors.back();
  put<uint64_t>(b, last.offset_at, get<uint64_t>(b, last.offset_at) + 32);
  EXPECT_REJECTED(write("offset3.gguf", b), last.name.c_str(), "past the end of the file");
}

TEST_F(MalformedGguf, UnknownTensorType) {
  std::string b = bytes_;
  put<uint32_t>(b, layout_.tensor("blk.0.ffn_up.weight").type_at, 77);
  EXPECT_REJECTED(write("type.gguf", b), "blk.0.ffn_up.weight", "unsupported type id 77");
  // ggml ids that exist but rhead does not support (IQ2_XXS = 16) get the same message.
  put<uint32_t>(b, layout_.tensor("blk.0.ffn_up.weight").type_at, 16);
  EXPECT_REJECTED(write("type16.gguf", b), "unsupported type id 16");
}

TEST_F(MalformedGguf, MissingTensor) {
  std::string b = bytes_;
  const auto& t = layout_.tensor("blk.2.attn_q.weight");
  const size_t at = b.find("attn_q", t.name_at + 8);
  b.replace(at, 6, "attn_x");
  // The renamed tensor is one the family does not know: refused before anything is missing.
  EXPECT_REJECTED(write("missing.gguf", b), "tensor 'blk.2.attn_x.weight' is not part of the llama family");
}

TEST_F(MalformedGguf, ShapeMismatch) {
  std::string b = bytes_;
  const auto& t = layout_.tensor("blk.0.ffn_up.weight");
  ASSERT_EQ(t.dims.size(), 2u);
  put<uint64_t>(b, t.dims_at + 8, t.dims[1] - 1);  // one row fewer: still inside the file
  EXPECT_REJECTED(write("shape.gguf", b), "blk.0.ffn_up.weight", "has shape [383, 128], expected [384, 128]");
  // A row length that is not a whole number of Q8_0 blocks.
  b = bytes_;
  put<uint64_t>(b, t.dims_at, t.dims[0] - 1);
  EXPECT_REJECTED(write("block.gguf", b), "blk.0.ffn_up.weight", "not a multiple");
  // A zero dimension.
  b = bytes_;
  put<uint64_t>(b, t.dims_at, 0);
  EXPECT_REJECTED(write("zero.gguf", b), "blk.0.ffn_up.weight", "invalid dimension");
}

TEST_F(MalformedGguf, MissingArchitectureMetadata) {
  std::string b = bytes_;
  const size_t at = b.find("llama.block_count");
  ASSERT_NE(at, std::string::npos);
  b.replace(at, 5, "xxxxx");
  EXPECT_REJECTED(write("nokey.gguf", b), "missing metadata key 'llama.block_count'");
  b = bytes_;
  const size_t arch = b.find("general.architecture");
  ASSERT_NE(arch, std::string::npos);
  // The value follows the key and its u32 type: u64 length, then "llama".
  const size_t value = arch + std::strlen("general.architecture") + 4 + 8;
  ASSERT_EQ(b.substr(value, 5), "llama");
  b.replace(value, 5, "mamba");
  EXPECT_REJECTED(write("arch.gguf", b), "unsupported architecture 'mamba'");
}

// ---- safetensors / Hugging Face directories ----

class MalformedHf : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = testing::shared_path("models/fmt-tiny/hf-f32");
    RHEAD_REQUIRE_FILE(src_ + "/model.safetensors");
    config_ = nlohmann::json::parse(read_bytes(src_ + "/config.json"));
    weights_ = read_bytes(src_ + "/model.safetensors");
    header_len_ = get<uint64_t>(weights_, 0);
  }
  // A directory holding config `cfg` and safetensors bytes `st`.
  std::string make(const std::string& name, const nlohmann::json& cfg, const std::string& st) {
    const std::string d = dir_ / name;
    fs::create_directory(d);
    if (!cfg.is_null()) std::ofstream(d + "/config.json") << cfg.dump(2);
    if (!st.empty()) write_bytes(d + "/model.safetensors", st);
    return d;
  }
  // The weights with the first occurrence of `from` in the JSON header replaced by `to`
  // (same length, so offsets stay valid).
  std::string patch_header(const std::string& from, const std::string& to) {
    EXPECT_EQ(from.size(), to.size());
    std::string b = weights_;
    const size_t at = b.find(from, 8);
    EXPECT_LT(at, 8 + header_len_) << from;
    b.replace(at, from.size(), to);
    return b;
  }
  std::string src_;
  nlohmann::json config_;
  std::string weights_;
  uint64_t header_len_ = 0;
  TempDir dir_{"rhead-bad-hf"};
};

TEST_F(MalformedHf, TheUnpatchedCopyLoads) { EXPECT_EQ(load_error(make("ok", config_, weights_)), ""); }

TEST_F(MalformedHf, HeaderLengthLargerThanTheFile) {
  std::string b = weights_;
  put<uint64_t>(b, 0, b.size());
  const std::string d = make("hdr", config_, b);
  const std::string file = d + "/model.safetensors";
  EXPECT_REJECTED(d, file.c_str(), "header length", "larger than the file");
  put<uint64_t>(b, 0, ~uint64_t{0} - 2);  // must not wrap
  const std::string d2 = make("hdr2", config_, b);
  EXPECT_REJECTED(d2, "larger than the file");
  const std::string d3 = make("tiny", config_, weights_.substr(0, 5));
  EXPECT_REJECTED(d3, "truncated");
}

TEST_F(MalformedHf, DtypeDisagreesWithTheByteRange) {
  const std::string d = make(
      "dtype", config_, patch_header("\"dtype\":\"F32\",\"shape\":[384,128]", "\"dtype\":\"F16\",\"shape\":[384,128]"));
  EXPECT_REJECTED(d, "model.safetensors", "shape and dtype need", "bytes but data_offsets span");
}

TEST_F(MalformedHf, ShapeDisagreesWithTheByteRange) {
  const std::string d = make("shape", config_, patch_header("\"shape\":[384,128]", "\"shape\":[385,128]"));
  EXPECT_REJECTED(d, "model.safetensors", "shape and dtype need");
}

TEST_F(MalformedHf, ShapeDisagreesWithTheConfig) {
  // Same byte count, transposed: the file is consistent, the model is not.
  const std::string d = make("transposed", config_, patch_header("\"shape\":[384,128]", "\"shape\":[128,384]"));
  EXPECT_REJECTED(d, "model.safetensors", "has shape [128, 384]", "expected [384, 128]");
  nlohmann::json cfg = config_;
  cfg["intermediate_size"] = 512;
  const std::string d2 = make("config", cfg, weights_);
  EXPECT_REJECTED(d2, "has shape [384, 128], expected [512, 128]");
}

TEST_F(MalformedHf, UnsupportedDtype) {
  const std::string d = make("i32", config_, patch_header("\"dtype\":\"F32\"", "\"dtype\":\"I32\""));
  EXPECT_REJECTED(d, "model.safetensors", "unsupported dtype I32");
}

TEST_F(MalformedHf, DataPastTheEndOfTheFile) {
  const std::string d = make("cut", config_, weights_.substr(0, weights_.size() - 4));
  EXPECT_REJECTED(d, "model.safetensors", "past the end of the file");
}

TEST_F(MalformedHf, HeaderIsNotJson) {
  std::string b = weights_;
  b[8] = '[';
  const std::string d = make("json", config_, b);
  EXPECT_REJECTED(d, "model.safetensors", "invalid JSON");
}

TEST_F(MalformedHf, MissingConfigJson) {
  const std::string d = make("noconfig", nullptr, weights_);
  EXPECT_REJECTED(d, "missing config.json");
}

TEST_F(MalformedHf, MissingWeights) {
  const std::string d = make("noweights", config_, "");
  EXPECT_REJECTED(d, "no model.safetensors");
  const std::string d2 =
      make("missingtensor", config_, patch_header("model.layers.1.mlp.up_proj", "model.layers.1.mlp.xx_proj"));
  EXPECT_REJECTED(d2, "tensor 'model.layers.1.mlp.xx_proj.weight' is not part of the llama family");
}

TEST_F(MalformedHf, UnsupportedModelTypeAndRopeScaling) {
  nlohmann::json cfg = config_;
  cfg["model_type"] = "gpt2";
  std::string d = make("gpt2", cfg, weights_);
  EXPECT_REJECTED(d, "config.json", "unsupported model_type 'gpt2'");
  cfg = config_;
  cfg["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  d = make("yarn", cfg, weights_);
  EXPECT_REJECTED(d, "config.json", "unsupported rope_scaling type 'yarn'");
  cfg = config_;
  cfg["hidden_act"] = "gelu";
  d = make("gelu", cfg, weights_);
  EXPECT_REJECTED(d, "config.json", "hidden_act 'gelu' is not implemented by the llama family");
}

TEST_F(MalformedHf, BadConfigFields) {
  nlohmann::json cfg = config_;
  cfg.erase("hidden_size");
  std::string d = make("nohidden", cfg, weights_);
  EXPECT_REJECTED(d, "config.json", "hidden_size");
  cfg = config_;
  cfg["num_key_value_heads"] = 3;
  d = make("kvheads", cfg, weights_);
  EXPECT_REJECTED(d, "config.json", "not a multiple of the KV head count");
  cfg = config_;
  cfg["num_attention_heads"] = "eight";
  d = make("string", cfg, weights_);
  EXPECT_REJECTED(d, "config.json", "num_attention_heads");
  d = make("notjson", nullptr, weights_);
  std::ofstream(d + "/config.json") << "{\"model_type\": \"llama\",";
  EXPECT_REJECTED(d, "config.json", "invalid JSON");
}

// ---- llama2.c checkpoints ----

TEST(MalformedLlama2c, TruncatedAndCorrupt) {
  const std::string src = testing::shared_path("models/stories260K/stories260K.bin");
  RHEAD_REQUIRE_FILE(src);
  const std::string b = read_bytes(src);
  TempDir dir("rhead-bad-bin");
  for (size_t cut : {size_t{0}, size_t{10}, size_t{28}, size_t{1000}, b.size() / 2, b.size() - 1}) {
    const std::string p = dir / "cut.bin";
    write_bytes(p, b.substr(0, cut));
    EXPECT_REJECTED(p, "truncated");
  }
  std::string bad = b;
  put<int32_t>(bad, 8, -5);  // n_layers
  write_bytes(dir / "layers.bin", bad);
  EXPECT_REJECTED(dir / "layers.bin", "layer count");
  bad = b;
  put<int32_t>(bad, 16, 3);  // n_kv_heads 3 does not divide 8 heads
  write_bytes(dir / "kv.bin", bad);
  EXPECT_REJECTED(dir / "kv.bin", "KV head count");
}

TEST(MalformedInput, NoSuchFile) { EXPECT_REJECTED(std::string("/nonexistent/model.gguf"), "no such file"); }

// ---- the CLI: non-zero exit, exactly one line on stderr naming the file ----

struct CliResult {
  int exit_code = -1;
  std::string err;
};

// Runs rhead with `args`; the result carries its stderr alone.
CliResult run_cli(const std::string& args) {
  testing::CommandResult run = testing::run_command(testing::rhead_binary() + " " + args + " 2>&1 >/dev/null");
  CliResult r;
  r.exit_code = run.exit_code;
  r.err = std::move(run.output);
  return r;
}

void expect_one_line_error(const std::string& args, const std::string& path, const std::string& part) {
  CliResult r = run_cli(args);
  EXPECT_NE(r.exit_code, 0) << args;
  EXPECT_NE(r.exit_code, -1) << args << " died from a signal";
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
  EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(part), std::string::npos) << r.err;
}

TEST_F(MalformedGguf, CliReportsOneLine) {
  std::string cut = write("cut.gguf", bytes_.substr(0, layout_.tensor_infos_begin + 20));
  expect_one_line_error("info -m '" + cut + "'", cut, "truncated");
  expect_one_line_error("generate -m '" + cut + "' -n 4", cut, "truncated");
  std::string b = bytes_;
  put<uint32_t>(b, layout_.tensor("blk.0.ffn_up.weight").type_at, 77);
  std::string type = write("type.gguf", b);
  expect_one_line_error("info -m '" + type + "'", type, "unsupported type id 77");
  b = bytes_;
  put<uint64_t>(b, layout_.tensors.back().offset_at, (bytes_.size() + 4096) / 32 * 32);
  std::string off = write("offset.gguf", b);
  expect_one_line_error("generate -m '" + off + "' -n 4", off, "past the end of the file");
}

TEST_F(MalformedHf, CliReportsOneLine) {
  std::string b = weights_;
  put<uint64_t>(b, 0, b.size());
  const std::string d = make("hdr", config_, b);
  expect_one_line_error("info -m '" + d + "'", d + "/model.safetensors", "larger than the file");
  const std::string d2 = make("noconfig", nullptr, weights_);
  expect_one_line_error("generate -m '" + d2 + "' -n 2", d2, "missing config.json");
  nlohmann::json cfg = config_;
  cfg["model_type"] = "gpt2";
  const std::string d3 = make("gpt2", cfg, weights_);
  expect_one_line_error("info -m '" + d3 + "'", d3 + "/config.json", "unsupported model_type");
}

}  // namespace
}  // namespace rhead
