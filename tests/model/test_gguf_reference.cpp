// The random-weight reference fixtures again, this time written as GGUF files the way
// llama.cpp's converter writes them, and compared with the same PyTorch logits:
//   - llama: Q/K rows permuted to the adjacent-pair RoPE layout; linear scaling as
//     rope.scaling.type/factor; Llama-3 scaling as a rope_freqs.weight tensor of per-pair
//     divisors (llama.cpp writes no scaling type for it);
//   - qwen2: no permutation (its GGUF keeps the half-split layout), q/k/v biases, tied head.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/gguf_writer.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "model/session.h"
#include "test_support.h"

namespace rhead {
namespace {

using nlohmann::json;
using testing::NamedTensor;
using testing::TempDir;

json read_fixture(const std::string& name) {
  std::ifstream in(testing::test_data_path("model/" + name + ".json"));
  return json::parse(in);
}

// llama.cpp's permute(): within each head, row j of the first half goes to row 2j and row j
// of the second half to row 2j + 1.
std::vector<float> permute_rows_to_adjacent(const std::vector<float>& w, int64_t n_heads, int64_t head_dim,
                                            int64_t cols) {
  std::vector<float> out(w.size());
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t j = 0; j < half; ++j)
      for (int s = 0; s < 2; ++s) {
        const int64_t from = h * head_dim + s * half + j, to = h * head_dim + 2 * j + s;
        std::copy(&w[from * cols], &w[(from + 1) * cols], &out[to * cols]);
      }
  return out;
}

// Per-pair divisors for Llama-3 scaling, as llama.cpp's converter computes them.
std::vector<float> llama3_freq_factors(const json& cfg, int64_t head_dim) {
  const json& rs = cfg.at("rope_scaling");
  const double theta = cfg.at("rope_theta"), factor = rs.at("factor");
  const double low = rs.at("low_freq_factor"), high = rs.at("high_freq_factor");
  const double orig = rs.at("original_max_position_embeddings");
  std::vector<float> out;
  for (int64_t i = 0; i < head_dim; i += 2) {
    const double freq = 1.0 / std::pow(theta, static_cast<double>(i) / head_dim);
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < orig / high) out.push_back(1.0f);
    else if (wavelen > orig / low) out.push_back(static_cast<float>(factor));
    else {
      const double smooth = (orig / wavelen - low) / (high - low);
      out.push_back(static_cast<float>(1.0 / ((1 - smooth) / factor + smooth)));
    }
  }
  return out;
}

std::string write_gguf(const std::string& path, const json& cfg, const std::vector<NamedTensor>& hf) {
  const bool qwen = cfg.at("model_type") == "qwen2";
  const std::string arch = qwen ? "qwen2" : "llama";
  const int64_t d = cfg.at("hidden_size"), nh = cfg.at("num_attention_heads");
  const int64_t nkv = cfg.value("num_key_value_heads", nh);
  const int64_t hd = cfg.contains("head_dim") ? cfg.at("head_dim").get<int64_t>() : d / nh;
  GGUFWriter w;
  w.set("general.architecture", arch);
  w.set(arch + ".block_count", cfg.at("num_hidden_layers").get<uint32_t>());
  w.set(arch + ".context_length", cfg.at("max_position_embeddings").get<uint32_t>());
  w.set(arch + ".embedding_length", static_cast<uint32_t>(d));
  w.set(arch + ".feed_forward_length", cfg.at("intermediate_size").get<uint32_t>());
  w.set(arch + ".attention.head_count", static_cast<uint32_t>(nh));
  w.set(arch + ".attention.head_count_kv", static_cast<uint32_t>(nkv));
  w.set(arch + ".attention.key_length", static_cast<uint32_t>(hd));
  w.set(arch + ".attention.value_length", static_cast<uint32_t>(hd));
  w.set(arch + ".attention.layer_norm_rms_epsilon", cfg.at("rms_norm_eps").get<double>(), GGUFValueType::F32);
  w.set(arch + ".rope.freq_base", cfg.at("rope_theta").get<double>(), GGUFValueType::F32);
  std::vector<std::vector<float>> keep;  // tensors converted here, alive until write()
  if (cfg.contains("rope_scaling")) {
    const json& rs = cfg.at("rope_scaling");
    const std::string type = rs.value("rope_type", rs.value("type", std::string()));
    if (type == "linear") {
      w.set(arch + ".rope.scaling.type", "linear");
      w.set(arch + ".rope.scaling.factor", rs.at("factor").get<double>(), GGUFValueType::F32);
    } else if (type == "llama3") {
      keep.push_back(llama3_freq_factors(cfg, hd));
      w.add_tensor("rope_freqs.weight", DType::F32, {hd / 2}, keep.back().data(), keep.back().size() * 4);
    }
  }
  static const std::vector<std::pair<std::string, std::string>> names = {
      {"model.embed_tokens.weight", "token_embd.weight"}, {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"}, {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"}, {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"}, {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.bias", "attn_k.bias"}, {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.o_proj.weight", "attn_output.weight"}, {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"}, {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"}};
  for (const auto& t : hf) {
    std::string name;
    std::string rest = t.name;
    std::string prefix;
    if (rest.rfind("model.layers.", 0) == 0) {
      const size_t dot = rest.find('.', 13);
      prefix = "blk." + rest.substr(13, dot - 13) + ".";
      rest = rest.substr(dot + 1);
    }
    for (const auto& [from, to] : names)
      if (from == rest) name = prefix + to;
    EXPECT_FALSE(name.empty()) << t.name;
    const std::vector<float>* values = &t.values;
    const bool is_q = rest == "self_attn.q_proj.weight", is_k = rest == "self_attn.k_proj.weight";
    if (!qwen && (is_q || is_k)) {
      keep.push_back(permute_rows_to_adjacent(t.values, is_q ? nh : nkv, hd, d));
      values = &keep.back();
    }
    std::vector<int64_t> dims(t.shape.rbegin(), t.shape.rend());  // row-major -> ggml order
    w.add_tensor(name, DType::F32, dims, values->data(), values->size() * 4);
  }
  w.write(path);
  return path;
}

class GgufReference : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufReference, MatchesTorch) {
  const json fx = read_fixture(GetParam());
  const json cfg = fx.at("config");
  TempDir dir("rhead-gguf-" + GetParam());
  const std::string path =
      write_gguf(dir / "model.gguf", cfg, testing::random_hf_weights(cfg, fx.at("seed").get<uint64_t>()));
  auto model = load_model(path).model;
  EXPECT_EQ(model->config.rope_pairing,
            cfg.at("model_type") == "qwen2" ? RopePairing::half : RopePairing::adjacent);
  const auto tokens = fx.at("tokens").get<std::vector<int32_t>>();
  SessionOptions so;
  so.kv_f16 = false;
  Session s(model, so);
  ForwardOptions fo;
  fo.all_logits = true;
  const auto logits = s.forward(tokens, fo);
  const auto expected = fx.at("logits").get<std::vector<std::vector<float>>>();
  const auto positions = fx.at("positions").get<std::vector<int>>();
  const int64_t V = model->config.n_vocab;
  ASSERT_EQ(logits.size(), tokens.size() * V);
  double max_diff = 0;
  for (size_t i = 0; i < positions.size(); ++i)
    for (int64_t v = 0; v < V; ++v)
      max_diff = std::max(max_diff, std::fabs(double(logits[positions[i] * V + v]) - expected[i][v]));
  std::printf("%s as GGUF vs torch: max |dlogit| = %.3g\n", GetParam().c_str(), max_diff);
  EXPECT_LE(max_diff, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GgufReference, ::testing::Values("random_qwen2", "random_llama3", "random_linear"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace rhead
