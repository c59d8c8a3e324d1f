// Hostile input, by class: every input here is built by the test itself (tiny GGUF,
// safetensors, tokenizer.json, JSONL and result files, CLI values) and every rejection is
// checked for its one-line message naming the input. Classes: sizes checked before any
// allocation, impossible or ambiguous models, integer overflow, strict JSON types, nesting
// depth, errors that start in a library, atomic writes on a full disk, nonsense CLI values,
// unique test ids.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <climits>
#include <initializer_list>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "analysis/run_files.h"
#include "analysis/score_map.h"
#include "io/atomic_file.h"
#include "io/checked.h"
#include "io/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "prompts/inputs.h"
#include "records/results.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"

namespace rhead {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::TempDir;

using testing::error_of;

// One line, naming `where`, holding every part.
#define EXPECT_ERROR(expr, where, ...)                                                             \
  do {                                                                                             \
    const std::string msg_ = error_of([&] { (void)(expr); });                                      \
    EXPECT_FALSE(msg_.empty()) << #expr << " was accepted";                                        \
    EXPECT_EQ(msg_.find('\n'), std::string::npos) << "not one line: " << msg_;                     \
    EXPECT_EQ(msg_.find("json.exception"), std::string::npos) << "library text: " << msg_;         \
    EXPECT_NE(msg_.find(where), std::string::npos) << "does not name " << (where) << ": " << msg_; \
    for (const char* part_ : std::initializer_list<const char*>{__VA_ARGS__})                      \
      EXPECT_NE(msg_.find(part_), std::string::npos) << "expected '" << part_ << "' in: " << msg_; \
  } while (0)

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// ---- a tiny llama GGUF, built here ----

constexpr int kEmbd = 16, kFf = 32, kHeads = 2, kKvHeads = 1, kVocab = 32;

void add_zeros(GGUFWriter& w, const std::string& name, std::vector<int64_t> dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<float> zeros(static_cast<size_t>(n), 0.0f);
  w.add_tensor(name, DType::F32, std::move(dims), zeros.data(), zeros.size() * sizeof(float));
}

// `layers_with_tensors` blocks of tensors; metadata says `block_count` blocks.
GGUFWriter tiny_gguf(int layers_with_tensors = 2) {
  GGUFWriter w;
  w.set("general.architecture", "llama");
  w.set("llama.block_count", layers_with_tensors);
  w.set("llama.embedding_length", kEmbd);
  w.set("llama.feed_forward_length", kFf);
  w.set("llama.attention.head_count", kHeads);
  w.set("llama.attention.head_count_kv", kKvHeads);
  w.set("llama.context_length", 64);
  w.set("llama.attention.layer_norm_rms_epsilon", 1e-5);
  w.set("llama.rope.freq_base", 10000.0);
  const int64_t hd = kEmbd / kHeads, kv = kKvHeads * hd;
  add_zeros(w, "token_embd.weight", {kEmbd, kVocab});  // ggml order: row length first
  add_zeros(w, "output_norm.weight", {kEmbd});
  add_zeros(w, "output.weight", {kEmbd, kVocab});
  for (int l = 0; l < layers_with_tensors; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add_zeros(w, p + "attn_norm.weight", {kEmbd});
    add_zeros(w, p + "attn_q.weight", {kEmbd, kEmbd});
    add_zeros(w, p + "attn_k.weight", {kEmbd, kv});
    add_zeros(w, p + "attn_v.weight", {kEmbd, kv});
    add_zeros(w, p + "attn_output.weight", {kEmbd, kEmbd});
    add_zeros(w, p + "ffn_norm.weight", {kEmbd});
    add_zeros(w, p + "ffn_gate.weight", {kEmbd, kFf});
    add_zeros(w, p + "ffn_up.weight", {kEmbd, kFf});
    add_zeros(w, p + "ffn_down.weight", {kFf, kEmbd});
  }
  return w;
}

std::string write_gguf(const TempDir& dir, const std::string& name, const GGUFWriter& w) {
  const std::string path = dir / name;
  w.write(path);
  return path;
}

std::string gguf_bytes(const GGUFWriter& w) {
  const std::vector<uint8_t> b = w.to_bytes();
  return std::string(b.begin(), b.end());
}

// Overwrites the dims of tensor `name` in a GGUF image (same n_dims).
void patch_dims(std::string& bytes, const std::string& name, const std::vector<uint64_t>& dims) {
  std::string key(8, '\0');
  const uint64_t len = name.size();
  std::memcpy(key.data(), &len, 8);
  key += name;
  const size_t at = bytes.find(key);
  ASSERT_NE(at, std::string::npos) << name;
  size_t pos = at + key.size() + 4;
  for (uint64_t d : dims) {
    std::memcpy(bytes.data() + pos, &d, 8);
    pos += 8;
  }
}

TEST(HardenedGguf, TheTinyModelLoads) {
  TempDir dir("rhead-hard");
  EXPECT_EQ(error_of([&] { load_model(write_gguf(dir, "ok.gguf", tiny_gguf())); }), "");
}

TEST(HardenedGguf, BlockCountMustMatchTheTensors) {
  TempDir dir("rhead-hard");
  GGUFWriter w = tiny_gguf(2);
  w.set("llama.block_count", 1);
  const std::string small = write_gguf(dir, "small.gguf", w);
  EXPECT_ERROR(load_model(small), small, "tensor 'blk.1.", "belongs to block 1", "declares 1 blocks");
  w.set("llama.block_count", 3);
  const std::string large = write_gguf(dir, "large.gguf", w);
  EXPECT_ERROR(load_model(large), large, "declares 3 blocks but tensors exist for 2");
  // 1e9 blocks: rejected by the sanity bound, before 1e9 layer structs are allocated.
  w.set("llama.block_count", 1000000000);
  const std::string huge = write_gguf(dir, "huge.gguf", w);
  EXPECT_ERROR(load_model(huge), huge, "layer count 1000000000 is beyond any real model");
}

TEST(HardenedGguf, A64BitBlockCountIsNotTruncated) {
  TempDir dir("rhead-hard");
  GGUFWriter w = tiny_gguf(2);
  w.set("llama.block_count", json(uint64_t{4294967296} + 5), GGUFValueType::U64);  // 2^32 + 5
  const std::string path = write_gguf(dir, "wrap.gguf", w);
  EXPECT_ERROR(load_model(path), path, "llama.block_count", "4294967301");
}

TEST(HardenedGguf, DuplicateTensorNamesAreAmbiguous) {
  TempDir dir("rhead-hard");
  GGUFWriter w = tiny_gguf(2);
  add_zeros(w, "blk.0.attn_norm.weight", {kEmbd});
  const std::string path = write_gguf(dir, "dup.gguf", w);
  EXPECT_ERROR(GGUFFile::open(path), path, "tensor 'blk.0.attn_norm.weight' appears twice");
}

TEST(HardenedGguf, OverlappingTensorBytesAreAmbiguous) {
  TempDir dir("rhead-hard");
  std::string b = gguf_bytes(tiny_gguf(2));
  // Point output_norm's offset at token_embd's bytes (offset 0): two names, one set of bytes.
  std::string key(8, '\0');
  const std::string name = "output_norm.weight";
  const uint64_t len = name.size();
  std::memcpy(key.data(), &len, 8);
  const size_t at = b.find(key + name);
  ASSERT_NE(at, std::string::npos);
  const size_t offset_at = at + 8 + name.size() + 4 + 8 + 4;  // n_dims, one dim, type
  const uint64_t zero = 0;
  std::memcpy(b.data() + offset_at, &zero, 8);
  const std::string path = dir / "overlap.gguf";
  write_bytes(path, b);
  EXPECT_ERROR(GGUFFile::open(path), path, "share bytes");
}

TEST(HardenedGguf, OverflowingShapesAreRejected) {
  TempDir dir("rhead-hard");
  std::string b = gguf_bytes(tiny_gguf(2));
  // 2^40 x 2^40 elements: each dim is allowed, the product overflows the element bound.
  patch_dims(b, "blk.0.ffn_gate.weight", {uint64_t{1} << 40, uint64_t{1} << 40});
  const std::string path = dir / "shape.gguf";
  write_bytes(path, b);
  EXPECT_ERROR(GGUFFile::open(path), path, "blk.0.ffn_gate.weight");
}

TEST(HardenedGguf, ImpossibleHyperParameters) {
  TempDir dir("rhead-hard");
  GGUFWriter w = tiny_gguf(2);
  w.set("llama.attention.layer_norm_rms_epsilon", std::nan(""));
  const std::string nan_eps = write_gguf(dir, "nan.gguf", w);
  EXPECT_ERROR(load_model(nan_eps), nan_eps, "RMS norm epsilon", "positive finite");
  w = tiny_gguf(2);
  w.set("llama.attention.layer_norm_rms_epsilon", -1e-5);
  const std::string neg_eps = write_gguf(dir, "neg.gguf", w);
  EXPECT_ERROR(load_model(neg_eps), neg_eps, "RMS norm epsilon");
  w = tiny_gguf(2);
  w.set("llama.rope.freq_base", -10000.0);
  const std::string theta = write_gguf(dir, "theta.gguf", w);
  EXPECT_ERROR(load_model(theta), theta, "RoPE theta", "positive finite");
}

// ---- Hugging Face directories: config.json typing and safetensors byte ranges ----

json tiny_hf_config() {
  return {{"model_type", "llama"},
          {"hidden_size", kEmbd},
          {"intermediate_size", kFf},
          {"num_attention_heads", kHeads},
          {"num_key_value_heads", kKvHeads},
          {"num_hidden_layers", 2},
          {"vocab_size", kVocab},
          {"max_position_embeddings", 64},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 10000.0},
          {"tie_word_embeddings", false},
          {"hidden_act", "silu"}};
}

// A random tiny HF model whose config.json is then replaced by `config`.
std::string hf_dir_with_config(const TempDir& dir, const std::string& name, const json& config) {
  const std::string d = dir / name;
  fs::create_directories(d);
  testing::write_random_hf_model(d, tiny_hf_config(), 7);
  std::ofstream(d + "/config.json") << config.dump(2);
  return d;
}

TEST(HardenedHf, IntegersMustBeIntegers) {
  TempDir dir("rhead-hard");
  EXPECT_EQ(error_of([&] { load_model(hf_dir_with_config(dir, "ok", tiny_hf_config())); }), "");
  json cfg = tiny_hf_config();
  cfg["num_hidden_layers"] = true;
  const std::string b = hf_dir_with_config(dir, "bool", cfg);
  EXPECT_ERROR(load_model(b), b + "/config.json", "field 'num_hidden_layers' must be an integer, got true");
  cfg["num_hidden_layers"] = 2.9;
  const std::string f = hf_dir_with_config(dir, "float", cfg);
  EXPECT_ERROR(load_model(f), f + "/config.json", "field 'num_hidden_layers' must be an integer, got 2.9");
  cfg["num_hidden_layers"] = "2";
  const std::string s = hf_dir_with_config(dir, "string", cfg);
  EXPECT_ERROR(load_model(s), s + "/config.json", "must be an integer");
  cfg = tiny_hf_config();
  cfg["tie_word_embeddings"] = 1;
  const std::string t = hf_dir_with_config(dir, "tie", cfg);
  EXPECT_ERROR(load_model(t), t + "/config.json", "field 'tie_word_embeddings' must be true or false");
}

TEST(HardenedHf, ImpossibleHyperParameters) {
  TempDir dir("rhead-hard");
  json cfg = tiny_hf_config();
  cfg["rms_norm_eps"] = -1e-6;
  const std::string eps = hf_dir_with_config(dir, "eps", cfg);
  EXPECT_ERROR(load_model(eps), eps + "/config.json", "RMS norm epsilon");
  cfg = tiny_hf_config();
  cfg["rope_theta"] = 0;
  const std::string theta = hf_dir_with_config(dir, "theta", cfg);
  EXPECT_ERROR(load_model(theta), theta + "/config.json", "RoPE theta");
  // q_dim = heads x head_dim would overflow int arithmetic downstream.
  cfg = tiny_hf_config();
  cfg["num_attention_heads"] = 65536;
  cfg["num_key_value_heads"] = 65536;
  cfg["head_dim"] = 65536;
  const std::string qdim = hf_dir_with_config(dir, "qdim", cfg);
  EXPECT_ERROR(load_model(qdim), qdim + "/config.json", "head count x head dimension");
  cfg = tiny_hf_config();
  cfg["num_hidden_layers"] = 1;  // the weights hold 2 blocks
  const std::string blocks = hf_dir_with_config(dir, "blocks", cfg);
  EXPECT_ERROR(load_model(blocks), "model.layers.1.", "beyond the model's 1");
}

// A safetensors file from a header object and raw data.
void write_safetensors(const std::string& path, const json& header, const std::string& data) {
  const std::string h = header.dump();
  std::string bytes(8, '\0');
  const uint64_t n = h.size();
  std::memcpy(bytes.data(), &n, 8);
  write_bytes(path, bytes + h + data);
}

TEST(HardenedSafetensors, ByteRangesShapesAndTypes) {
  TempDir dir("rhead-hard");
  const std::string data(64, '\0');
  const std::string overlap = dir / "overlap.safetensors";
  write_safetensors(overlap,
                    {{"a", {{"dtype", "F32"}, {"shape", {4, 4}}, {"data_offsets", {0, 64}}}},
                     {"b", {{"dtype", "F32"}, {"shape", {2, 4}}, {"data_offsets", {32, 64}}}}},
                    data);
  EXPECT_ERROR(SafetensorsFile::open(overlap), overlap, "tensors 'a' and 'b' share bytes [32, 64)");
  const std::string frac = dir / "frac.safetensors";
  write_safetensors(frac, {{"a", {{"dtype", "F32"}, {"shape", {2.5, 4}}, {"data_offsets", {0, 40}}}}}, data);
  EXPECT_ERROR(SafetensorsFile::open(frac), frac, "tensor 'a' dimension must be an integer, got 2.5");
  const std::string big = dir / "big.safetensors";
  const int64_t e = int64_t{1} << 40;
  write_safetensors(big, {{"a", {{"dtype", "F32"}, {"shape", {e, e}}, {"data_offsets", {0, 64}}}}}, data);
  EXPECT_ERROR(SafetensorsFile::open(big), big, "tensor 'a'");
  const std::string neg = dir / "neg.safetensors";
  write_safetensors(neg, {{"a", {{"dtype", "F32"}, {"shape", {-4, 4}}, {"data_offsets", {0, 64}}}}}, data);
  EXPECT_ERROR(SafetensorsFile::open(neg), neg, "tensor 'a' dimension is -4");
  const std::string off = dir / "off.safetensors";
  write_safetensors(off, {{"a", {{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {"0", 16}}}}}, data);
  EXPECT_ERROR(SafetensorsFile::open(off), off, "data offset must be an integer");
}

// ---- llama2.c header ----

TEST(HardenedLlama2c, IntMinInTheHeader) {
  TempDir dir("rhead-hard");
  const int32_t h[7] = {64, 172, 5, 8, 4, INT_MIN, 512};
  std::string bytes(reinterpret_cast<const char*>(h), sizeof(h));
  bytes += std::string(1024, '\0');
  const std::string path = dir / "intmin.bin";
  write_bytes(path, bytes);
  EXPECT_ERROR(load_model(path), path, "corrupt header");
}

// ---- tokenizer.json ----

std::string write_tokenizer_json(const TempDir& dir, const std::string& name, const std::string& text) {
  const std::string d = dir / name;
  fs::create_directories(d);
  write_bytes(d + "/tokenizer.json", text);
  return d + "/tokenizer.json";
}

json small_tokenizer() {
  return {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}}, {"merges", {"a b"}}}},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}}};
}

TEST(HardenedTokenizer, DeepSequenceNestingIsRejectedNotRecursed) {
  TempDir dir("rhead-hard");
  EXPECT_EQ(
      error_of([&] { Tokenizer::from_tokenizer_json(write_tokenizer_json(dir, "ok", small_tokenizer().dump())); }), "");
  // 100000 nested Sequence pre-tokenizers: once a stack overflow in a recursive walk.
  std::string nested;
  const int depth = 100000;
  for (int i = 0; i < depth; ++i) nested += R"({"type":"Sequence","pretokenizers":[)";
  nested += R"({"type":"ByteLevel"})";
  for (int i = 0; i < depth; ++i) nested += "]}";
  json doc = small_tokenizer();
  doc.erase("pre_tokenizer");
  std::string text = doc.dump();
  text.insert(text.size() - 1, R"(,"pre_tokenizer":)" + nested);
  const std::string path = write_tokenizer_json(dir, "deep", text);
  EXPECT_ERROR(Tokenizer::from_tokenizer_json(path), path, "nested deeper than 128 levels");
  // Moderate nesting within the limit still flattens, in order.
  std::string ok_nested;
  for (int i = 0; i < 20; ++i) ok_nested += R"({"type":"Sequence","pretokenizers":[)";
  ok_nested += R"({"type":"ByteLevel","add_prefix_space":false})";
  for (int i = 0; i < 20; ++i) ok_nested += "]}";
  text = doc.dump();
  text.insert(text.size() - 1, R"(,"pre_tokenizer":)" + ok_nested);
  const Tokenizer tok = Tokenizer::from_tokenizer_json(write_tokenizer_json(dir, "deep20", text));
  EXPECT_EQ(tok.encode("ab", false, false), (std::vector<int32_t>{2}));
}

TEST(HardenedTokenizer, VocabIdsAreBoundedBeforeAllocating) {
  TempDir dir("rhead-hard");
  json doc = small_tokenizer();
  doc["model"]["vocab"]["ab"] = 50000000;  // a 4 GB table from a tiny file
  const std::string far = write_tokenizer_json(dir, "far", doc.dump());
  EXPECT_ERROR(Tokenizer::from_tokenizer_json(far), far, "vocab entry \"ab\" id is 50000000");
  doc["model"]["vocab"]["ab"] = std::numeric_limits<int64_t>::max();  // max_id + 1 overflows
  const std::string top = write_tokenizer_json(dir, "top", doc.dump());
  EXPECT_ERROR(Tokenizer::from_tokenizer_json(top), top, "9223372036854775807");
  doc = small_tokenizer();
  doc["added_tokens"] = {{{"id", "3"}, {"content", "<s>"}, {"special", true}}};
  const std::string added = write_tokenizer_json(dir, "added", doc.dump());
  EXPECT_ERROR(Tokenizer::from_tokenizer_json(added), added, "added token id must be an integer");
  doc["added_tokens"] = {{{"id", 3}, {"content", "<s>"}, {"special", "yes"}}};
  const std::string special = write_tokenizer_json(dir, "special", doc.dump());
  EXPECT_ERROR(Tokenizer::from_tokenizer_json(special), special, "boolean");  // from a library, named
}

// ---- needles JSONL, head_score JSON, result lines ----

TEST(HardenedText, NeedlesNameTheFileAndLine) {
  TempDir dir("rhead-hard");
  const std::string path = dir / "needles.jsonl";
  const json good = {{"needle", "The code is 42."}, {"question", "What is the code?"}, {"real_needle", "42"}};
  json empty = good;
  empty["real_needle"] = "  ";
  write_bytes(path, good.dump() + "\n" + empty.dump() + "\n");
  EXPECT_ERROR(read_needle_sets(path), path + ":2", "field 'real_needle' is empty");
  empty = good;
  empty["needle"] = "";
  write_bytes(path, empty.dump() + "\n");
  EXPECT_ERROR(read_needle_sets(path), path + ":1", "field 'needle' is empty");
  json typed = good;
  typed["question"] = 7;
  write_bytes(path, good.dump() + "\n\n" + typed.dump() + "\n");
  EXPECT_ERROR(read_needle_sets(path), path + ":3", "field 'question' must be a string");
  write_bytes(path, good.dump() + "\n{\"needle\": \n");
  EXPECT_ERROR(read_needle_sets(path), path + ":2", "invalid JSON");
  write_bytes(path, good.dump() + "\n");
  EXPECT_EQ(read_needle_sets(path).size(), 1u);
}

TEST(HardenedText, ScoreMapKeysCannotOverflowTheGrid) {
  TempDir dir("rhead-hard");
  const std::string path = dir / "head_score.json";
  write_bytes(path, R"({"2147483647-0": [1.0]})");
  EXPECT_ERROR(analysis::read_head_score_json(path), path, "2147483647-0");
  write_bytes(path, R"({"0-0": [1.0], "1048575-1048575": [1.0]})");
  EXPECT_ERROR(analysis::read_head_score_json(path), path, "head grid of 1048576 layers x 1048576 heads");
}

TEST(HardenedText, ResultLinesNameTheFileAndLine) {
  TempDir dir("rhead-hard");
  const std::string path = dir / "results.jsonl";
  write_bytes(path, "{\"test_id\": \"a\"}\n[1, 2\n");
  EXPECT_ERROR(read_results_lines(path, false), path + ":2", "invalid JSON");
  EXPECT_ERROR(test_result_from_json(json::parse(R"({"test_id": "a", "needle_id": "x"})"), path + ":1"), path + ":1",
               "field 'needle_id' must be an integer");
  write_bytes(path,
              R"({"test_id": "a", "needle_id": 0, "length": 1000, "depth": 2.5, "needle_span": [1, 2], "answer": "",)"
              R"( "rouge_recall": 1, "counted": true, "head_scores": {}})"
              "\n");
  EXPECT_ERROR(analysis::read_detect_results(path), path + ":1", "field 'depth' must be an integer, got 2.5");
  write_bytes(path, std::string(300, '[') + "\n");
  EXPECT_ERROR(analysis::read_detect_results(path), path + ":1", "nested deeper");
  // Found by fuzz_result_lines: a line that is not an object, or a test_id or timing of the
  // wrong type, escaped as a library exception instead of a line naming the file.
  write_bytes(path, "{\"test_id\": \"a\"}\n\"t{est_id5\"\n");
  EXPECT_ERROR(read_results_lines(path, false), path + ":2", "expected one JSON object per line");
  write_bytes(path, "{\"test_id\": {}}\n");
  EXPECT_ERROR(read_results_lines(path, false), path + ":1", "field 'test_id'");
  json line = json::parse(R"({"test_id": "a", "needle_id": 0, "length": 1000, "depth": 50, "needle_span": [1, 2],
                              "answer": "", "rouge_recall": 1, "counted": true, "head_scores": {}})");
  line["timing"] = "fast";
  EXPECT_ERROR(test_result_from_json(line, path + ":1"), path + ":1", "field 'timing' is not an object");
  line["timing"] = json::object({{"prefill", "x"}});
  EXPECT_ERROR(test_result_from_json(line, path + ":1"), path + ":1", "field 'prefill'");
}

TEST(HardenedJson, OneStrictReader) {
  EXPECT_EQ(json_int(json(3), "f", "n"), 3);
  EXPECT_ERROR(json_int(json(true), "f", "field 'n'"), "f", "field 'n' must be an integer, got true");
  EXPECT_ERROR(json_int(json(2.9), "f", "field 'n'"), "f", "got 2.9");
  EXPECT_ERROR(json_int(json(uint64_t{1} << 40), "f", "field 'n'"), "f", "1099511627776", "must be in");
  EXPECT_ERROR(json_integer(json(std::numeric_limits<uint64_t>::max()), "f", "n"), "f", "18446744073709551615");
  EXPECT_ERROR(json_number(json("1"), "f", "x"), "f", "must be a number");
  EXPECT_ERROR(json_bool(json(0), "f", "x"), "f", "must be true or false");
  EXPECT_ERROR(parse_json("{\"a\": [1, 2", "f.json"), "f.json", "invalid JSON");
  // Brackets inside strings do not count toward the nesting limit.
  EXPECT_EQ(parse_json("{\"a\": \"" + std::string(1000, '[') + "\"}", "f.json")["a"].get<std::string>().size(), 1000u);
}

TEST(HardenedChecked, ProductsAndNarrowing) {
  EXPECT_EQ(checked_mul(uint64_t{1} << 31, uint64_t{4}, "f", "x"), uint64_t{1} << 33);
  EXPECT_ERROR(checked_mul(uint64_t{1} << 40, uint64_t{1} << 40, "f", "tensor 'w' byte size"), "f",
               "tensor 'w' byte size overflows");
  EXPECT_ERROR(checked_int(int64_t{4294967301}, "f", "block count"), "f", "block count is 4294967301");
  const std::vector<int64_t> dims = {int64_t{1} << 21, int64_t{1} << 21};
  EXPECT_ERROR(checked_element_count(dims, "f", "tensor 'w'"), "f", "more than 2^40 elements");
  EXPECT_ERROR(checked_double_to_int(std::nan(""), "f", "MIN", 1, 10), "f", "MIN is nan");
  EXPECT_ERROR(check_disjoint({{0, 10, "a"}, {20, 30, "b"}, {25, 26, "c"}}, "f"), "f",
               "'b' and 'c' share bytes [25, 26)");
  EXPECT_EQ(error_of([&] { check_disjoint({{0, 10, "a"}, {10, 20, "b"}, {20, 20, "empty"}}, "f"); }), "");
}

// ---- grids: unique test ids, bounded sizes, no NaN casts ----

TEST(HardenedGrid, DepthsAreDistinctAndBounded) {
  const std::vector<int> all = depths_from_count(101);
  EXPECT_EQ(all.size(), 101u);
  EXPECT_EQ(std::set<int>(all.begin(), all.end()).size(), 101u);
  EXPECT_ERROR(depths_from_count(102), "--depths 102", "must be in [1, 101]");
  EXPECT_ERROR(depths_from_count(100000000), "--depths 100000000");
  EXPECT_ERROR(depths_from_count(0), "--depths 0");
}

TEST(HardenedGrid, LengthsRejectNanAndHugeCounts) {
  EXPECT_ERROR(parse_lengths("nan:nan:1"), "--lengths 'nan:nan:1'", "MIN <= MAX");
  EXPECT_ERROR(parse_lengths("100:inf:2"), "--lengths '100:inf:2'");
  EXPECT_ERROR(parse_lengths("100:200:100000000"), "--lengths '100:200:100000000'", "N must be in [1, 10000]");
  EXPECT_ERROR(parse_lengths("100:1e300:2"), "--lengths '100:1e300:2'");
  EXPECT_EQ(parse_lengths("100:200:3"), (std::vector<int64_t>{100, 150, 200}));
}

// ---- atomic writes: the reason, no .tmp left, unchanged files need no space ----

// Runs `f` with the file-size limit at `bytes` (writes past it fail with EFBIG, as on a
// full disk), SIGXFSZ ignored; restores both.
template <typename F>
void with_file_size_limit(rlim_t bytes, F&& f) {
  rlimit old{};
  getrlimit(RLIMIT_FSIZE, &old);
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  rlimit lim = old;
  lim.rlim_cur = bytes;
  setrlimit(RLIMIT_FSIZE, &lim);
  f();
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, old_handler);
}

TEST(HardenedWrites, FailedWriteGivesTheReasonAndLeavesNoTmp) {
  TempDir dir("rhead-hard");
  const std::string path = dir / "summary.json";
  write_file_atomic(path, "old\n");
  with_file_size_limit(16, [&] {
    EXPECT_ERROR(write_file_atomic(path, std::string(4096, 'x')), path + ".tmp", "write failed", "File too large");
  });
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_EQ(testing::read_text_file(path), "old\n");  // the old file is untouched
  fs::create_directory(path + ".tmp");                // a .tmp that cannot be opened
  EXPECT_ERROR(write_file_atomic(path, "new\n"), path + ".tmp", "cannot open for writing", "Is a directory");
}

TEST(HardenedWrites, UnchangedFileNeedsNoSpace) {
  TempDir dir("rhead-hard");
  const std::string path = dir / "run.json";
  write_file_atomic(path, "{\"a\": 1}\n");
  with_file_size_limit(0, [&] { EXPECT_EQ(error_of([&] { write_file_atomic(path, "{\"a\": 1}\n"); }), ""); });
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

// ---- the CLI: nonsense values, one line, non-zero exit ----

struct Cli {
  int exit_code;
  std::string err;
};

Cli run_cli(const std::string& args, const std::string& prefix = "") {
  testing::CommandResult r = testing::run_command(prefix + testing::rhead_binary() + " " + args + " 2>&1 >/dev/null");
  return {r.exit_code, r.output};
}

void expect_cli_error(const std::string& args, const std::string& part) {
  const Cli r = run_cli(args);
  EXPECT_GT(r.exit_code, 0) << args;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << ": " << r.err;
  EXPECT_NE(r.err.find(part), std::string::npos) << args << ": " << r.err;
}

TEST(HardenedCli, NonsenseValuesAreRejected) {
  TempDir dir("rhead-hard");
  const std::string base = "detect -m builtin:induction --lengths 300:400:2 -q -o " + (dir / "o");
  expect_cli_error(base + " --max-new-tokens -3", "--max-new-tokens");
  expect_cli_error(base + " --ctx -5", "--ctx");
  expect_cli_error(base + " --threads -2", "--threads");
  expect_cli_error(base + " --shard 99999999999/1", "--shard '99999999999/1'");
  expect_cli_error(base + " --shard 0/99999999999", "--shard");
  expect_cli_error(base + " --depths 102", "--depths 102");
  expect_cli_error(base + " --depths 100000000", "--depths 100000000");
  const std::string no_lengths = "detect -m builtin:induction -q -o " + (dir / "o");
  expect_cli_error(no_lengths + " --lengths nan:nan:1", "--lengths 'nan:nan:1'");
  expect_cli_error(no_lengths + " --lengths 300:400:100000000", "N must be in");
  EXPECT_FALSE(fs::exists(dir / "o/results.jsonl"));
}

TEST(HardenedCli, CompletedRunResumesOnAFullDisk) {
  TempDir dir("rhead-hard");
  const std::string args = "detect -m builtin:induction --lengths 300:400:2 --depths 2 -q -o " + (dir / "o");
  const Cli first = run_cli(args);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::string results = testing::read_text_file(dir / "o/results.jsonl");
  // No byte may be written now: a rerun of the finished run must still succeed.
  const Cli again = run_cli(args, "ulimit -f 0; ");
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(testing::read_text_file(dir / "o/results.jsonl"), results);
  for (const auto& e : fs::directory_iterator(dir / std::string("o")))
    EXPECT_NE(e.path().extension(), ".tmp") << e.path();
}

// ---- values that would turn the maths into NaN are refused at load, naming the key or tensor ----

void add_values(GGUFWriter& w, const std::string& name, std::vector<int64_t> dims, float value, size_t at) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<float> v(static_cast<size_t>(n), 1.0f);
  v[at] = value;
  w.add_tensor(name, DType::F32, std::move(dims), v.data(), v.size() * sizeof(float));
}

TEST(HardenedModel, ValuesThatMakeTheMathsNaNAreRefused) {
  TempDir dir("rhead-hard");
  const int64_t half_dim = kEmbd / kHeads / 2;
  for (float bad : {0.0f, -1.0f, std::nanf("")}) {
    GGUFWriter w = tiny_gguf(2);
    add_values(w, "rope_freqs.weight", {half_dim}, bad, 1);
    const std::string path = write_gguf(dir, "rope_freqs.gguf", w);
    EXPECT_ERROR(load_model(path), path, "tensor 'rope_freqs.weight'", "element 1", "must be positive and finite");
  }
  {
    // A NaN in a norm of block 1: tensors for block 0 only, block 1 written here.
    GGUFWriter w = tiny_gguf(1);
    w.set("llama.block_count", 2);
    const int64_t kv = kKvHeads * (kEmbd / kHeads);
    add_values(w, "blk.1.attn_norm.weight", {kEmbd}, std::numeric_limits<float>::infinity(), 3);
    add_zeros(w, "blk.1.attn_q.weight", {kEmbd, kEmbd});
    add_zeros(w, "blk.1.attn_k.weight", {kEmbd, kv});
    add_zeros(w, "blk.1.attn_v.weight", {kEmbd, kv});
    add_zeros(w, "blk.1.attn_output.weight", {kEmbd, kEmbd});
    add_zeros(w, "blk.1.ffn_norm.weight", {kEmbd});
    add_zeros(w, "blk.1.ffn_gate.weight", {kEmbd, kFf});
    add_zeros(w, "blk.1.ffn_up.weight", {kEmbd, kFf});
    add_zeros(w, "blk.1.ffn_down.weight", {kFf, kEmbd});
    const std::string path = write_gguf(dir, "norm.gguf", w);
    EXPECT_ERROR(load_model(path), path, "tensor 'blk.1.attn_norm.weight'", "element 3", "must be finite");
  }
  {
    GGUFWriter w = tiny_gguf(2);
    w.set("llama.expert_count", 0);
    w.set("llama.expert_used_count", 2);
    const std::string path = write_gguf(dir, "experts.gguf", w);
    EXPECT_ERROR(load_model(path), path, "expert_used_count 2 with expert_count 0");
  }
  json cfg = tiny_hf_config();
  cfg["rope_scaling"] = {{"rope_type", "linear"}, {"type", "yarn"}, {"factor", 2.0}};
  const std::string types = hf_dir_with_config(dir, "rope_types", cfg);
  EXPECT_ERROR(load_model(types), types + "/config.json", "'rope_type' \"linear\" and 'type' \"yarn\" disagree");
}

}  // namespace
}  // namespace rhead
