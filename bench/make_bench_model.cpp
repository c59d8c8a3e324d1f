// Writes a llama-architecture GGUF of random weights in a realistic shape, for speed
// measurements on machines without a real model, plus a minimal SentencePiece-style vocab
// (byte tokens and filler pieces) so that the file loads like a llama.cpp conversion.
//
//   make_bench_model OUT.gguf --type f16|bf16|q8_0|q4_K [--preset 1b|7b|8b|tiny|moe-1b|moe-tiny] [--seed N]
//
// Presets moe-1b and moe-tiny are Mixtral-style twins of 1b and tiny with the same active size
// (top-2 of 8 experts of half the MLP width; llama.cpp's 3-D ffn_*_exps layout).
// Preset 1b is TinyLlama-1.1B's shape: dim 2048, 22 layers, 32 heads, 4 KV heads (head_dim
// 64), hidden 5632, vocab 32000 (1.10e9 parameters). Preset 7b is Llama-2-7B's shape (dim
// 4096, 32 layers, 32 heads, 32 KV heads, hidden 11008, vocab 32000); 8b is Llama-3-8B's (dim
// 4096, 32 layers, 32 heads, 8 KV heads, hidden 14336, vocab 128256, RoPE theta 500000). Both
// declare a 64K context so that the paper's 50K-token tests fit. Weights are N(0, 0.02),
// norms are 1.
// --type q4_K mixes types the way llama.cpp's Q4_K_M does: Q6_K for output.weight and for
// attn_v / ffn_down in the first and last eighth of the layers and every third layer between,
// Q4_K elsewhere.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "io/error.h"
#include "io/gguf_writer.h"
#include "ops/quant.h"

namespace {

using namespace rhead;
using json = nlohmann::json;

struct Shape {
  int64_t dim, n_layers, n_heads, n_kv_heads, hidden, vocab, context;
  int64_t n_expert = 0, n_expert_used = 0;  // MoE: `hidden` is one expert's width
  double rope_theta = 10000.0;
};

// The MoE presets have the active size of their dense twin: top-2 of 8 experts, each half
// the dense MLP width, so a token runs the same number of multiply-adds.
Shape preset_shape(const std::string& name) {
  if (name == "1b") return {2048, 22, 32, 4, 5632, 32000, 2048};
  if (name == "7b") return {4096, 32, 32, 32, 11008, 32000, 65536};
  if (name == "8b") return {4096, 32, 32, 8, 14336, 128256, 65536, 0, 0, 500000.0};
  if (name == "tiny") return {256, 2, 8, 4, 768, 512, 512};
  if (name == "moe-1b") return {2048, 22, 32, 4, 2816, 32000, 2048, 8, 2};
  if (name == "moe-tiny") return {256, 2, 8, 4, 384, 512, 512, 8, 2};
  fail("make_bench_model", "unknown preset '" + name + "' (expected 1b, 7b, 8b, tiny, moe-1b or moe-tiny)");
}

// splitmix64: a fast, well-mixed generator whose state can be seeded per row, so that
// rows are generated in parallel and the file does not depend on the thread count.
struct Random {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

// Normal deviates by table look-up: entry i is the standard normal quantile at
// (i + 0.5) / 65536, so 16 random bits give one deviate (tails end at about 4.3 sigma).
// Drawing a billion weights this way takes a fraction of what exact sampling would.
class NormalTable {
 public:
  NormalTable() {
    values_.resize(65536);
    for (int i = 0; i < 32768; ++i) {
      // Solve Phi(z) = p for the upper half by Newton's method; the lower half mirrors it.
      double p = (32768 + i + 0.5) / 65536.0, z = 0;
      for (int it = 0; it < 50; ++it) {
        double cdf = 0.5 * std::erfc(-z / std::sqrt(2.0));
        double pdf = std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI);
        double step = (cdf - p) / pdf;
        z -= step;
        if (std::fabs(step) < 1e-12) break;
      }
      values_[size_t(32768 + i)] = float(z);
      values_[size_t(32767 - i)] = float(-z);
    }
  }
  void fill(Random& rng, float* out, int64_t n, float sigma) const {
    for (int64_t i = 0; i < n; i += 4) {
      uint64_t bits = rng.next();
      for (int64_t k = 0; k < 4 && i + k < n; ++k, bits >>= 16) out[i + k] = sigma * values_[bits & 0xffff];
    }
  }

 private:
  std::vector<float> values_;
};

const NormalTable& normal_table() {
  static const NormalTable table;
  return table;
}

// A 2-D weight [rows, row_length] of random values, generated and quantized row by row.
// A [rows, row_length] matrix, or `n_mat` of them stacked as one 3-D tensor (MoE experts).
void add_random_weight(GGUFWriter& w, const std::string& name, DType type, int64_t row_length, int64_t rows,
                       uint64_t seed, int64_t n_mat = 1) {
  const NormalTable& table = normal_table();
  std::vector<int64_t> dims = {row_length, rows};
  if (n_mat > 1) dims.push_back(n_mat);
  rows *= n_mat;
  w.add_tensor(name, type, dims, [=, &table](uint8_t* dst) {
    const int64_t stride = row_bytes(type, row_length);
#pragma omp parallel
    {
      std::vector<float> row(static_cast<size_t>(row_length));
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        Random rng{seed * 0x100000001b3ull + uint64_t(r) * 0x9e3779b97f4a7c15ull};
        table.fill(rng, row.data(), row_length, 0.02f);
        quantize_row(type, row.data(), dst + r * stride, row_length);
      }
    }
  });
}

void add_ones(GGUFWriter& w, const std::string& name, int64_t n) {
  std::vector<float> ones(static_cast<size_t>(n), 1.0f);
  w.add_tensor(name, DType::F32, {n}, ones.data(), ones.size() * sizeof(float));
}

// Vocab: <unk>, <s>, </s>, the 256 byte tokens, printable characters, then letter strings
// of growing length (with and without the word-start mark), each reachable by merging
// pieces that come before it. Scores fall with the index, as in SentencePiece vocabs.
void add_tokenizer(GGUFWriter& w, int64_t n_vocab) {
  enum { kNormal = 1, kUnknown = 2, kControl = 3, kByte = 6 };
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int> types = {kUnknown, kControl, kControl};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    tokens.push_back(buf);
    types.push_back(kByte);
  }
  const std::string mark = "\xe2\x96\x81";  // U+2581, SentencePiece's word start
  std::vector<std::string> pieces = {mark};
  for (char c = 33; c < 127; ++c) pieces.push_back(std::string(1, c));
  std::vector<std::string> words = {""};
  for (int len = 1; len <= 4 && int64_t(tokens.size() + pieces.size()) < n_vocab; ++len) {
    std::vector<std::string> longer;
    for (const auto& w0 : words)
      for (char c = 'a'; c <= 'z'; ++c) longer.push_back(w0 + c);
    for (const auto& s : longer) {
      if (len > 1) pieces.push_back(s);
      pieces.push_back(mark + s);
    }
    words = std::move(longer);
  }
  for (const auto& p : pieces) {
    if (int64_t(tokens.size()) >= n_vocab) break;
    tokens.push_back(p);
    types.push_back(kNormal);
  }
  if (int64_t(tokens.size()) < n_vocab)
    fail("make_bench_model", "vocab of " + std::to_string(n_vocab) + " is larger than the filler pieces");
  std::vector<float> scores(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) scores[i] = types[i] == kNormal ? -float(i) : 0.0f;
  w.set("tokenizer.ggml.model", "llama");
  w.set("tokenizer.ggml.tokens", tokens);
  w.set("tokenizer.ggml.scores", scores, GGUFValueType::F32);
  w.set("tokenizer.ggml.token_type", types, GGUFValueType::I32);
  w.set("tokenizer.ggml.unknown_token_id", 0, GGUFValueType::U32);
  w.set("tokenizer.ggml.bos_token_id", 1, GGUFValueType::U32);
  w.set("tokenizer.ggml.eos_token_id", 2, GGUFValueType::U32);
  w.set("tokenizer.ggml.add_bos_token", true);
  w.set("tokenizer.ggml.add_eos_token", false);
}

// llama.cpp's Q4_K_M rule for the layers whose attn_v and ffn_down get more bits.
bool more_bits(int64_t layer, int64_t n_layers) {
  return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

int run(int argc, char** argv) {
  std::string out, type_name, preset = "1b";
  uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail("make_bench_model", a + " needs a value");
      return argv[++i];
    };
    if (a == "--type")
      type_name = value();
    else if (a == "--preset")
      preset = value();
    else if (a == "--seed")
      seed = std::stoull(value());
    else if (a == "-h" || a == "--help") {
      std::printf(
          "usage: make_bench_model OUT.gguf --type f16|bf16|q8_0|q4_K [--preset 1b|7b|8b|tiny|moe-1b|moe-tiny] [--seed "
          "N]\n");
      return 0;
    } else if (!a.empty() && a[0] == '-')
      fail("make_bench_model", "unknown option " + a);
    else if (out.empty())
      out = a;
    else
      fail("make_bench_model", "unexpected argument " + a);
  }
  if (out.empty() || type_name.empty())
    fail("make_bench_model",
         "usage: make_bench_model OUT.gguf --type f16|bf16|q8_0|q4_K [--preset 1b|7b|8b|tiny|moe-1b|moe-tiny]");

  DType main_type, more_bits_type, output_type;
  int file_type;  // llama.cpp's general.file_type
  if (type_name == "f16")
    main_type = more_bits_type = output_type = DType::F16, file_type = 1;
  else if (type_name == "bf16")
    main_type = more_bits_type = output_type = DType::BF16, file_type = 32;
  else if (type_name == "q8_0")
    main_type = more_bits_type = output_type = DType::Q8_0, file_type = 7;
  else if (type_name == "q4_K" || type_name == "q4_k")
    main_type = DType::Q4_K, more_bits_type = output_type = DType::Q6_K, file_type = 15;
  else
    fail("make_bench_model", "unknown --type '" + type_name + "' (expected f16, bf16, q8_0 or q4_K)");

  Shape s = preset_shape(preset);
  const int64_t head_dim = s.dim / s.n_heads, kv_dim = head_dim * s.n_kv_heads;

  GGUFWriter w;
  w.set("general.architecture", "llama");
  w.set("general.name", "rhead-bench-" + preset + "-" + type_name);
  w.set("general.file_type", file_type, GGUFValueType::U32);
  w.set("general.quantization_version", 2, GGUFValueType::U32);
  w.set("llama.context_length", s.context, GGUFValueType::U32);
  w.set("llama.embedding_length", s.dim, GGUFValueType::U32);
  w.set("llama.block_count", s.n_layers, GGUFValueType::U32);
  w.set("llama.feed_forward_length", s.hidden, GGUFValueType::U32);
  w.set("llama.attention.head_count", s.n_heads, GGUFValueType::U32);
  w.set("llama.attention.head_count_kv", s.n_kv_heads, GGUFValueType::U32);
  w.set("llama.rope.dimension_count", head_dim, GGUFValueType::U32);
  w.set("llama.rope.freq_base", s.rope_theta, GGUFValueType::F32);
  w.set("llama.attention.layer_norm_rms_epsilon", 1e-5, GGUFValueType::F32);
  w.set("llama.vocab_size", s.vocab, GGUFValueType::U32);
  if (s.n_expert > 0) {
    w.set("llama.expert_count", s.n_expert, GGUFValueType::U32);
    w.set("llama.expert_used_count", s.n_expert_used, GGUFValueType::U32);
  }
  add_tokenizer(w, s.vocab);

  uint64_t tensor_seed = seed * 1000;
  int64_t params = 0;
  auto weight = [&](const std::string& name, DType t, int64_t row_length, int64_t rows, int64_t n_mat = 1) {
    add_random_weight(w, name, t, row_length, rows, ++tensor_seed, n_mat);
    params += row_length * rows * n_mat;
  };
  weight("token_embd.weight", main_type, s.dim, s.vocab);
  for (int64_t l = 0; l < s.n_layers; ++l) {
    std::string p = "blk." + std::to_string(l) + ".";
    DType v_down = more_bits(l, s.n_layers) ? more_bits_type : main_type;
    add_ones(w, p + "attn_norm.weight", s.dim);
    weight(p + "attn_q.weight", main_type, s.dim, s.dim);
    weight(p + "attn_k.weight", main_type, s.dim, kv_dim);
    weight(p + "attn_v.weight", v_down, s.dim, kv_dim);
    weight(p + "attn_output.weight", main_type, s.dim, s.dim);
    add_ones(w, p + "ffn_norm.weight", s.dim);
    if (s.n_expert > 0) {  // Mixtral as llama.cpp writes it: router + 3-D expert tensors
      weight(p + "ffn_gate_inp.weight", DType::F32, s.dim, s.n_expert);
      weight(p + "ffn_gate_exps.weight", main_type, s.dim, s.hidden, s.n_expert);
      weight(p + "ffn_up_exps.weight", main_type, s.dim, s.hidden, s.n_expert);
      weight(p + "ffn_down_exps.weight", v_down, s.hidden, s.dim, s.n_expert);
    } else {
      weight(p + "ffn_gate.weight", main_type, s.dim, s.hidden);
      weight(p + "ffn_up.weight", main_type, s.dim, s.hidden);
      weight(p + "ffn_down.weight", v_down, s.hidden, s.dim);
    }
    params += 2 * s.dim;
  }
  add_ones(w, "output_norm.weight", s.dim);
  weight("output.weight", output_type, s.dim, s.vocab);
  params += s.dim;

  auto start = std::chrono::steady_clock::now();
  w.write(out);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  uint64_t bytes = 0;
  for (const auto& t : w.tensors) bytes += t.bytes;
  std::printf("%s: %s, %lld parameters, %.2f GiB of tensors, written in %.1f s\n", out.c_str(), type_name.c_str(),
              static_cast<long long>(params), double(bytes) / (1 << 30), seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
